// pad.cpp - constant padding of any dimension (spatial or channels).
// Attributes: pads [before_0 .. before_{r-1}, after_0 .. after_{r-1}] (required, each 0..4096),
// value [v] (default 0).
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  const Shape& x = g.ShapeOf(n.inputs[0]);
  const std::vector<int64_t> pads = n.Ints("pads", {});
  if (pads.size() != 2 * x.size())
    return Errorf("'pads' has ", pads.size(), " values, input rank ", x.size(), " needs ",
                  2 * x.size());
  const float value = n.Float("value", 0.f);
  if (!(value - value == 0.f)) return Errorf("'value' must be finite");
  *out = x;
  for (size_t d = 0; d < x.size(); ++d) {
    if (pads[d] < 0 || pads[d] > 4096 || pads[d + x.size()] < 0 || pads[d + x.size()] > 4096)
      return Errorf("pads of dimension ", d, " must be 0..4096");
    (*out)[d] += pads[d] + pads[d + x.size()];
  }
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const Shape& y = *a.out_shape;
  const std::vector<int64_t> pads = a.node->Ints("pads", {});
  const float value = a.node->Float("value", 0.f);
  const size_t rank = y.size();
  int64_t index[kMaxRank] = {};
  const int64_t total = NumElements(y);
  for (int64_t flat = 0; flat < total; ++flat) {
    bool inside = true;
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t i = index[d] - pads[d];
      if (i < 0 || i >= x[d]) inside = false;
      src = src * x[d] + i;
    }
    a.out[flat] = inside ? a.in[0][src] : value;
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < y[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

extern const OpDef kPadOp = {
    "pad", {{"input", InputRole::kActivation}},
    false, {{"pads", Attr::kInts, 2, 2 * kMaxRank, true}, {"value", Attr::kFloats, 1, 1, false}},
    Infer, Reference,
};

}  // namespace fm
