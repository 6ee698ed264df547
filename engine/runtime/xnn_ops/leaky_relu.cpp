// leaky_relu.cpp - the leaky_relu op as an XNNPACK subgraph node (its shape rules and reference
// kernel: ops/leaky_relu.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  xnn_unary_params params;
  params.leaky_relu.negative_slope = a.node->Float("alpha", 0.f);
  return DefineXnnUnary(a, xnn_unary_leaky_relu, &params, "leaky_relu");
}

}  // namespace

extern const XnnOpDef kXnnLeakyReluOp = {"leaky_relu", DefineXnn};

}  // namespace fm
