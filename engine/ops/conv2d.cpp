// conv2d.cpp - 2-D convolution, NHWC input, OHWI weights, optional bias, fused clamp.
// Attributes: stride [h, w], dilation [h, w], padding [top, left, bottom, right] or same [1]
// (TensorFlow SAME), clamp [min, max].
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 4));
  FM_RETURN_IF_ERROR(InputRank(g, n, 1, 4));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  const Shape& w = g.ShapeOf(n.inputs[1]);
  if (w[3] != x[3])
    return Errorf("weights ", ShapeToString(w), " expect ", w[3], " input channels, input has ",
                  x[3]);
  if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor && g.ShapeOf(n.inputs[2]) != Shape{w[0]})
    return Errorf("bias must be [", w[0], "], got ", ShapeToString(g.ShapeOf(n.inputs[2])));
  FM_RETURN_IF_ERROR(CheckClamp(n));
  Window win;
  win.kh = w[1];
  win.kw = w[2];
  FM_RETURN_IF_ERROR(ResolveWindow(n, x[1], x[2], &win));
  *out = {x[0], win.out_h, win.out_w, w[0]};
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const Shape& w = *a.in_shape[1];
  const float* bias = a.num_inputs > 2 ? a.in[2] : nullptr;
  Window win;
  win.kh = w[1];
  win.kw = w[2];
  (void)ResolveWindow(*a.node, x[1], x[2], &win);
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  const int64_t H = x[1], W = x[2], C = x[3], O = w[0];
  float* out = a.out;
  for (int64_t b = 0; b < x[0]; ++b)
    for (int64_t oy = 0; oy < win.out_h; ++oy)
      for (int64_t ox = 0; ox < win.out_w; ++ox)
        for (int64_t o = 0; o < O; ++o) {
          double sum = bias ? bias[o] : 0.0;
          for (int64_t ky = 0; ky < win.kh; ++ky) {
            const int64_t iy = oy * win.sh - win.pad_top + ky * win.dh;
            if (iy < 0 || iy >= H) continue;
            for (int64_t kx = 0; kx < win.kw; ++kx) {
              const int64_t ix = ox * win.sw - win.pad_left + kx * win.dw;
              if (ix < 0 || ix >= W) continue;
              const float* px = a.in[0] + ((b * H + iy) * W + ix) * C;
              const float* wt = a.in[1] + ((o * win.kh + ky) * win.kw + kx) * C;
              for (int64_t c = 0; c < C; ++c) sum += double(px[c]) * double(wt[c]);
            }
          }
          *out++ = ApplyClamp(static_cast<float>(sum), lo, hi);
        }
}

}  // namespace

extern const OpDef kConv2dOp = {
    "conv2d",
    {{"input", InputRole::kActivation},
     {"weights", InputRole::kConstant},
     {"bias", InputRole::kOptionalConst}},
    false,
    {{"stride", Attr::kInts, 2, 2, false},
     {"dilation", Attr::kInts, 2, 2, false},
     {"padding", Attr::kInts, 4, 4, false},
     {"same", Attr::kInts, 1, 1, false},
     {"clamp", Attr::kFloats, 2, 2, false}},
    Infer,
    Reference,
};

}  // namespace fm
