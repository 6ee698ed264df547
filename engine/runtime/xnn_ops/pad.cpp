// pad.cpp - the pad op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/pad.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const std::vector<int64_t> pads = a.node->Ints("pads", {});
  const size_t rank = pads.size() / 2;
  size_t pre[XNN_MAX_TENSOR_DIMS] = {}, post[XNN_MAX_TENSOR_DIMS] = {};
  for (size_t d = 0; d < rank; ++d) {
    pre[d] = size_t(pads[d]);
    post[d] = size_t(pads[d + rank]);
  }
  return XnnCheck(xnn_define_static_constant_pad(a.subgraph, pre, post, a.node->Float("value", 0.f),
                                                 a.in[0], a.out, 0),
                  "pad");
}

}  // namespace

extern const XnnOpDef kXnnPadOp = {"pad", DefineXnn};

}  // namespace fm
