// conv2d.cpp - the conv2d op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/conv2d.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const Shape& x = a.graph->ShapeOf(a.node->inputs[0]);
  const Shape& w = a.graph->ShapeOf(a.node->inputs[1]);
  Window win;
  win.kh = w[1];
  win.kw = w[2];
  FM_RETURN_IF_ERROR(ResolveWindow(*a.node, x[1], x[2], &win));
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  return XnnCheck(
      xnn_define_convolution_2d(
          a.subgraph, uint32_t(win.pad_top), uint32_t(win.pad_right), uint32_t(win.pad_bottom),
          uint32_t(win.pad_left), uint32_t(win.kh), uint32_t(win.kw), uint32_t(win.sh),
          uint32_t(win.sw), uint32_t(win.dh), uint32_t(win.dw), /*groups=*/1, size_t(x[3]),
          size_t(w[0]), lo, hi, a.in[0], a.in[1], a.in[2], a.out, /*flags=*/0),
      "conv2d");
}

}  // namespace

extern const XnnOpDef kXnnConv2dOp = {"conv2d", DefineXnn};

}  // namespace fm
