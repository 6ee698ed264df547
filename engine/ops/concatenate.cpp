// concatenate.cpp - joins 2..16 inputs along one axis; all other dimensions must match.
// Attribute: axis [a] (required; negative counts from the end).
#include <cstring>

#include "op.h"

namespace fm {
namespace {

int64_t Axis(const Node& n, size_t rank) {
  const int64_t axis = n.Int("axis", 0);
  return axis < 0 ? axis + int64_t(rank) : axis;
}

Status Infer(const Graph& g, const Node& n, Shape* out) {
  const Shape& first = g.ShapeOf(n.inputs[0]);
  const int64_t axis = Axis(n, first.size());
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
  const size_t axis = size_t(Axis(*a.node, y.size()));
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

// XNNPACK concatenates at most 5 values per node: longer lists are joined in steps through
// internal values.
Status DefineXnn(const XnnArgs& a) {
  const Graph& g = *a.graph;
  const Node& n = *a.node;
  const Shape& first = g.ShapeOf(n.inputs[0]);
  const int32_t axis = int32_t(Axis(n, first.size()));
  uint32_t acc = a.in[0];
  Shape acc_shape = first;
  size_t next = 1;
  while (next < n.inputs.size()) {
    const size_t take = std::min<size_t>(4, n.inputs.size() - next);
    uint32_t ids[5] = {acc};
    for (size_t i = 0; i < take; ++i) {
      ids[i + 1] = a.in[next + i];
      acc_shape[size_t(axis)] += g.ShapeOf(n.inputs[next + i])[size_t(axis)];
    }
    next += take;
    uint32_t out = a.out;
    if (next < n.inputs.size()) {
      size_t dims[XNN_MAX_TENSOR_DIMS] = {};
      for (size_t d = 0; d < acc_shape.size(); ++d) dims[d] = size_t(acc_shape[d]);
      FM_RETURN_IF_ERROR(
          XnnCheck(xnn_define_tensor_value(a.subgraph, xnn_datatype_fp32, acc_shape.size(), dims,
                                           nullptr, XNN_INVALID_VALUE_ID, 0, &out),
                   "concatenate (intermediate value)"));
    }
    enum xnn_status st = xnn_status_invalid_parameter;
    switch (take) {
      case 1:
        st = xnn_define_concatenate2(a.subgraph, axis, ids[0], ids[1], out, 0);
        break;
      case 2:
        st = xnn_define_concatenate3(a.subgraph, axis, ids[0], ids[1], ids[2], out, 0);
        break;
      case 3:
        st = xnn_define_concatenate4(a.subgraph, axis, ids[0], ids[1], ids[2], ids[3], out, 0);
        break;
      default:
        st = xnn_define_concatenate5(a.subgraph, axis, ids[0], ids[1], ids[2], ids[3], ids[4], out,
                                     0);
    }
    FM_RETURN_IF_ERROR(XnnCheck(st, "concatenate"));
    acc = out;
  }
  return Status::Ok();
}

}  // namespace

extern const OpDef kConcatenateOp = {
    "concatenate", {{"inputs", InputRole::kActivation}, {"inputs", InputRole::kActivation}},
    true,          {{"axis", Attr::kInts, 1, 1, true}},
    Infer,         Reference,
    DefineXnn,
};

}  // namespace fm
