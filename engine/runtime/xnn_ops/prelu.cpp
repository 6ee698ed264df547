// prelu.cpp - the prelu op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/prelu.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return XnnCheck(
      xnn_define_binary(a.subgraph, xnn_binary_prelu, nullptr, a.in[0], a.in[1], a.out, 0),
      "prelu");
}

}  // namespace

extern const XnnOpDef kXnnPreluOp = {"prelu", DefineXnn};

}  // namespace fm
