// depth_to_space.cpp - moves channel blocks into space, TensorFlow's DCR order:
// out[n, y * b + i, x * b + j, c] = in[n, y, x, (i * b + j) * C_out + c]. Attribute: block [b].
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 4));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  const int64_t b = n.Int("block", 0);
  if (b < 2 || b > 64) return Errorf("block ", b, " is outside 2..64");
  if (x[3] % (b * b) != 0)
    return Errorf("input channels ", x[3], " are not a multiple of block^2 = ", b * b);
  *out = {x[0], x[1] * b, x[2] * b, x[3] / (b * b)};
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const Shape& y = *a.out_shape;
  const int64_t b = a.node->Int("block", 0), Co = y[3];
  float* out = a.out;
  for (int64_t n = 0; n < y[0]; ++n)
    for (int64_t oy = 0; oy < y[1]; ++oy)
      for (int64_t ox = 0; ox < y[2]; ++ox)
        for (int64_t c = 0; c < Co; ++c) {
          const int64_t iy = oy / b, ix = ox / b, i = oy % b, j = ox % b;
          *out++ = a.in[0][((n * x[1] + iy) * x[2] + ix) * x[3] + (i * b + j) * Co + c];
        }
}

}  // namespace

extern const OpDef kDepthToSpaceOp = {
    "depth_to_space",
    {{"input", InputRole::kActivation}},
    false,
    {{"block", Attr::kInts, 1, 1, true}},
    Infer,
    Reference,
};

}  // namespace fm
