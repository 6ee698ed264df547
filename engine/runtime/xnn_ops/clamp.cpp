// clamp.cpp - the clamp op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/clamp.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  xnn_unary_params params;
  ClampRange(*a.node, &params.clamp.min, &params.clamp.max);
  return DefineXnnUnary(a, xnn_unary_clamp, &params, "clamp");
}

}  // namespace

extern const XnnOpDef kXnnClampOp = {"clamp", DefineXnn};

}  // namespace fm
