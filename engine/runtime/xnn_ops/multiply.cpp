// multiply.cpp - the multiply op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/multiply.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return DefineXnnBinary(a, xnn_binary_multiply, "multiply");
}

}  // namespace

extern const XnnOpDef kXnnMultiplyOp = {"multiply", DefineXnn};

}  // namespace fm
