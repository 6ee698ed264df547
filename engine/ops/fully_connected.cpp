// fully_connected.cpp - y = x W^T + b: input [N, K], weights [O, K], optional bias [O], fused
// clamp. Flatten first (reshape) when coming from a 4-D tensor.
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 2));
  FM_RETURN_IF_ERROR(InputRank(g, n, 1, 2));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  const Shape& w = g.ShapeOf(n.inputs[1]);
  if (w[1] != x[1])
    return Errorf("weights ", ShapeToString(w), " expect ", w[1], " features, input has ", x[1]);
  if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor && g.ShapeOf(n.inputs[2]) != Shape{w[0]})
    return Errorf("bias must be [", w[0], "], got ", ShapeToString(g.ShapeOf(n.inputs[2])));
  FM_RETURN_IF_ERROR(CheckClamp(n));
  *out = {x[0], w[0]};
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const Shape& w = *a.in_shape[1];
  const float* bias = a.num_inputs > 2 ? a.in[2] : nullptr;
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  const int64_t K = x[1], O = w[0];
  for (int64_t b = 0; b < x[0]; ++b)
    for (int64_t o = 0; o < O; ++o) {
      double sum = bias ? bias[o] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        sum += double(a.in[0][b * K + k]) * double(a.in[1][o * K + k]);
      a.out[b * O + o] = ApplyClamp(static_cast<float>(sum), lo, hi);
    }
}

}  // namespace

extern const OpDef kFullyConnectedOp = {
    "fully_connected",
    {{"input", InputRole::kActivation},
     {"weights", InputRole::kConstant},
     {"bias", InputRole::kOptionalConst}},
    false,
    {{"clamp", Attr::kFloats, 2, 2, false}},
    Infer,
    Reference,
};

}  // namespace fm
