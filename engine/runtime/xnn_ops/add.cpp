// add.cpp - the add op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/add.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return DefineXnnBinary(a, xnn_binary_add, "add");
}

}  // namespace

extern const XnnOpDef kXnnAddOp = {"add", DefineXnn};

}  // namespace fm
