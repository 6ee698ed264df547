// resize_bilinear.cpp - bilinear resize of NHWC height and width.
// Attributes: size [out_h, out_w] (required), mode [m]: 0 = half-pixel centres (TF2
// half_pixel_centers, PyTorch align_corners=False), 1 = align corners, 2 = asymmetric (TF1
// legacy: src = dst * in / out). Source coordinates are clamped to the image.
#include <cmath>

#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 4));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  const std::vector<int64_t> size = n.Ints("size", {});
  if (size[0] < 1 || size[1] < 1 || size[0] > 16384 || size[1] > 16384)
    return Errorf("size ", size[0], "x", size[1], " is outside 1..16384");
  const int64_t mode = n.Int("mode", 0);
  if (mode < 0 || mode > 2) return Errorf("mode ", mode, " is not 0, 1 or 2");
  *out = {x[0], size[0], size[1], x[3]};
  return Status::Ok();
}

// Source coordinate of output pixel i for one axis.
double Source(int64_t mode, int64_t i, int64_t in, int64_t out) {
  if (mode == 1) return out > 1 ? double(i) * double(in - 1) / double(out - 1) : 0.0;
  if (mode == 2) return double(i) * double(in) / double(out);
  return std::max(0.0, (double(i) + 0.5) * double(in) / double(out) - 0.5);
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const Shape& y = *a.out_shape;
  const int64_t mode = a.node->Int("mode", 0);
  const int64_t H = x[1], W = x[2], C = x[3];
  float* out = a.out;
  for (int64_t b = 0; b < x[0]; ++b)
    for (int64_t oy = 0; oy < y[1]; ++oy) {
      const double sy = Source(mode, oy, H, y[1]);
      const int64_t y0 = std::min<int64_t>(int64_t(std::floor(sy)), H - 1);
      const int64_t y1 = std::min<int64_t>(y0 + 1, H - 1);
      const double fy = sy - double(y0);
      for (int64_t ox = 0; ox < y[2]; ++ox) {
        const double sx = Source(mode, ox, W, y[2]);
        const int64_t x0 = std::min<int64_t>(int64_t(std::floor(sx)), W - 1);
        const int64_t x1 = std::min<int64_t>(x0 + 1, W - 1);
        const double fx = sx - double(x0);
        const float* p = a.in[0] + b * H * W * C;
        for (int64_t c = 0; c < C; ++c) {
          const double top = p[(y0 * W + x0) * C + c] * (1 - fx) + p[(y0 * W + x1) * C + c] * fx;
          const double bot = p[(y1 * W + x0) * C + c] * (1 - fx) + p[(y1 * W + x1) * C + c] * fx;
          *out++ = static_cast<float>(top * (1 - fy) + bot * fy);
        }
      }
    }
}

}  // namespace

extern const OpDef kResizeBilinearOp = {
    "resize_bilinear",
    {{"input", InputRole::kActivation}},
    false,
    {{"size", Attr::kInts, 2, 2, true}, {"mode", Attr::kInts, 1, 1, false}},
    Infer,
    Reference,
};

}  // namespace fm
