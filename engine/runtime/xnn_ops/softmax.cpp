// softmax.cpp - the softmax op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/softmax.cpp).
#include <cmath>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return XnnCheck(xnn_define_softmax(a.subgraph, a.in[0], a.out, 0), "softmax");
}

}  // namespace

extern const XnnOpDef kXnnSoftmaxOp = {"softmax", DefineXnn};

}  // namespace fm
