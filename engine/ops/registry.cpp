// registry.cpp - the list of ops the engine knows. A new op is one file and one line here, plus its
// XNNPACK definition: one file and one line in runtime/xnn_ops/registry.cpp.
#include "op.h"

namespace fm {

extern const OpDef kAddOp, kAvgPool2dOp, kClampOp, kConcatenateOp, kConv2dOp, kDepthToSpaceOp,
    kDepthwiseConv2dOp, kFullyConnectedOp, kGlobalAvgPoolOp, kLeakyReluOp, kMaxPool2dOp,
    kMultiplyOp, kPadOp, kPreluOp, kReshapeOp, kResizeBilinearOp, kSigmoidOp, kSoftmaxOp, kTanhOp;

const std::vector<const OpDef*>& AllOps() {
  static const std::vector<const OpDef*> ops = {
      &kAddOp,
      &kAvgPool2dOp,
      &kClampOp,
      &kConcatenateOp,
      &kConv2dOp,
      &kDepthToSpaceOp,
      &kDepthwiseConv2dOp,
      &kFullyConnectedOp,
      &kGlobalAvgPoolOp,
      &kLeakyReluOp,
      &kMaxPool2dOp,
      &kMultiplyOp,
      &kPadOp,
      &kPreluOp,
      &kReshapeOp,
      &kResizeBilinearOp,
      &kSigmoidOp,
      &kSoftmaxOp,
      &kTanhOp,
  };
  return ops;
}

const OpDef* FindOp(const std::string& name) {
  for (const OpDef* op : AllOps())
    if (name == op->name) return op;
  return nullptr;
}

}  // namespace fm
