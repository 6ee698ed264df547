// fully_connected.cpp - the fully_connected op as an XNNPACK subgraph node (its shape rules and
// reference kernel: ops/fully_connected.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  return XnnCheck(
      xnn_define_fully_connected(a.subgraph, lo, hi, a.in[0], a.in[1], a.in[2], a.out, 0),
      "fully_connected");
}

}  // namespace

extern const XnnOpDef kXnnFullyConnectedOp = {"fully_connected", DefineXnn};

}  // namespace fm
