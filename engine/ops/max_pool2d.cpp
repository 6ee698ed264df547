// max_pool2d.cpp - 2-D max pooling over NHWC; padded positions never win (they are skipped).
// Attributes: kernel [h, w] (required, more than one element), stride (at most the kernel),
// dilation, padding or same (as conv2d; each pad must be smaller than the window), clamp.
#include <limits>

#include "op.h"

namespace fm {

// The window of a max_pool2d node (declared in op.h; the XNNPACK definition uses it too).
Status ResolveMaxPool2dWindow(const Node& n, const Shape& x, Window* win) {
  const std::vector<int64_t> k = n.Ints("kernel", {1, 1});
  win->kh = k[0];
  win->kw = k[1];
  if (k[0] < 1 || k[1] < 1 || k[0] > 1024 || k[1] > 1024)
    return Errorf("kernel ", k[0], "x", k[1], " is outside 1..1024");
  if (k[0] * k[1] < 2) return Errorf("kernel ", k[0], "x", k[1], " must cover 2 or more pixels");
  FM_RETURN_IF_ERROR(ResolveWindow(n, x[1], x[2], win));
  if (win->sh > win->kh || win->sw > win->kw)
    return Errorf("stride ", win->sh, "x", win->sw, " is larger than the kernel ", win->kh, "x",
                  win->kw, " (pixels would be skipped)");
  const int64_t eff_h = (win->kh - 1) * win->dh + 1, eff_w = (win->kw - 1) * win->dw + 1;
  if (win->pad_top >= eff_h || win->pad_bottom >= eff_h || win->pad_left >= eff_w ||
      win->pad_right >= eff_w)
    return Errorf("padding must be smaller than the window ", eff_h, "x", eff_w);
  return Status::Ok();
}

namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 4));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  FM_RETURN_IF_ERROR(CheckClamp(n));
  Window win;
  FM_RETURN_IF_ERROR(ResolveMaxPool2dWindow(n, x, &win));
  *out = {x[0], win.out_h, win.out_w, x[3]};
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  Window win;
  (void)ResolveMaxPool2dWindow(*a.node, x, &win);
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  const int64_t H = x[1], W = x[2], C = x[3];
  float* out = a.out;
  for (int64_t b = 0; b < x[0]; ++b)
    for (int64_t oy = 0; oy < win.out_h; ++oy)
      for (int64_t ox = 0; ox < win.out_w; ++ox)
        for (int64_t c = 0; c < C; ++c) {
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t ky = 0; ky < win.kh; ++ky) {
            const int64_t iy = oy * win.sh - win.pad_top + ky * win.dh;
            if (iy < 0 || iy >= H) continue;
            for (int64_t kx = 0; kx < win.kw; ++kx) {
              const int64_t ix = ox * win.sw - win.pad_left + kx * win.dw;
              if (ix < 0 || ix >= W) continue;
              const float v = a.in[0][((b * H + iy) * W + ix) * C + c];
              if (v > m) m = v;
            }
          }
          *out++ = ApplyClamp(m, lo, hi);
        }
}

}  // namespace

extern const OpDef kMaxPool2dOp = {
    "max_pool2d",
    {{"input", InputRole::kActivation}},
    false,
    {{"kernel", Attr::kInts, 2, 2, true},
     {"stride", Attr::kInts, 2, 2, false},
     {"dilation", Attr::kInts, 2, 2, false},
     {"padding", Attr::kInts, 4, 4, false},
     {"same", Attr::kInts, 1, 1, false},
     {"clamp", Attr::kFloats, 2, 2, false}},
    Infer,
    Reference,
};

}  // namespace fm
