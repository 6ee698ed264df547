// depth_to_space.cpp - the depth_to_space op as an XNNPACK subgraph node (its shape rules and
// reference kernel: ops/depth_to_space.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  return XnnCheck(xnn_define_depth_to_space_2d(a.subgraph, uint32_t(a.node->Int("block", 0)),
                                               a.in[0], a.out, 0),
                  "depth_to_space");
}

}  // namespace

extern const XnnOpDef kXnnDepthToSpaceOp = {"depth_to_space", DefineXnn};

}  // namespace fm
