// sigmoid.cpp - the sigmoid op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/sigmoid.cpp).
#include <cmath>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return DefineXnnUnary(a, xnn_unary_sigmoid, nullptr, "sigmoid");
}

}  // namespace

extern const XnnOpDef kXnnSigmoidOp = {"sigmoid", DefineXnn};

}  // namespace fm
