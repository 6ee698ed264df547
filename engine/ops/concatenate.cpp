// concatenate.cpp - joins 2..16 inputs along one axis; all other dimensions must match.
// Attribute: axis [a] (required; negative counts from the end).
#include <cstring>

#include "op.h"

namespace fm {

// The axis of a concatenate node, counted from the front (declared in op.h).
int64_t ConcatenateAxis(const Node& n, size_t rank) {
  const int64_t axis = n.Int("axis", 0);
  return axis < 0 ? axis + int64_t(rank) : axis;
}

namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  const Shape& first = g.ShapeOf(n.inputs[0]);
  const int64_t axis = ConcatenateAxis(n, first.size());
  if (axis < 0 || axis >= int64_t(first.size()))
    return Errorf("axis ", n.Int("axis", 0), " is outside the rank ", first.size());
  *out = first;
  for (size_t i = 1; i < n.inputs.size(); ++i) {
    const Shape& s = g.ShapeOf(n.inputs[i]);
    bool match = s.size() == first.size();
    for (size_t d = 0; match && d < s.size(); ++d) match = int64_t(d) == axis || s[d] == first[d];
    if (!match)
      return Errorf("input ", i, " ", ShapeToString(s), " does not match input 0 ",
                    ShapeToString(first), " outside axis ", axis);
    (*out)[size_t(axis)] += s[size_t(axis)];
  }
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& y = *a.out_shape;
  const size_t axis = size_t(ConcatenateAxis(*a.node, y.size()));
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= y[d];
  for (size_t d = axis + 1; d < y.size(); ++d) inner *= y[d];
  float* out = a.out;
  for (int64_t o = 0; o < outer; ++o)
    for (int i = 0; i < a.num_inputs; ++i) {
      const int64_t chunk = (*a.in_shape[i])[axis] * inner;
      std::memcpy(out, a.in[i] + o * chunk, sizeof(float) * size_t(chunk));
      out += chunk;
    }
}

}  // namespace

extern const OpDef kConcatenateOp = {
    "concatenate", {{"inputs", InputRole::kActivation}, {"inputs", InputRole::kActivation}},
    true,          {{"axis", Attr::kInts, 1, 1, true}},
    Infer,         Reference,
};

}  // namespace fm
