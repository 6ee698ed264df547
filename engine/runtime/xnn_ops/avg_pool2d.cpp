// avg_pool2d.cpp - the avg_pool2d op as an XNNPACK subgraph node (its shape rules and reference
// kernel: ops/avg_pool2d.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const Shape& x = a.graph->ShapeOf(a.node->inputs[0]);
  Window win;
  FM_RETURN_IF_ERROR(ResolveAvgPool2dWindow(*a.node, x, &win));
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  return XnnCheck(
      xnn_define_average_pooling_2d(a.subgraph, uint32_t(win.pad_top), uint32_t(win.pad_right),
                                    uint32_t(win.pad_bottom), uint32_t(win.pad_left),
                                    uint32_t(win.kh), uint32_t(win.kw), uint32_t(win.sh),
                                    uint32_t(win.sw), lo, hi, a.in[0], a.out, /*flags=*/0),
      "avg_pool2d");
}

}  // namespace

extern const XnnOpDef kXnnAvgPool2dOp = {"avg_pool2d", DefineXnn};

}  // namespace fm
