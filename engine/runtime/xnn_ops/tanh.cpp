// tanh.cpp - the tanh op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/tanh.cpp).
#include <cmath>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return DefineXnnUnary(a, xnn_unary_tanh, nullptr, "tanh");
}

}  // namespace

extern const XnnOpDef kXnnTanhOp = {"tanh", DefineXnn};

}  // namespace fm
