// registry.cpp - the ops the XNNPACK runtime can define, one line each (as ops/registry.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {

extern const XnnOpDef kXnnAddOp, kXnnAvgPool2dOp, kXnnClampOp, kXnnConcatenateOp, kXnnConv2dOp,
    kXnnDepthToSpaceOp, kXnnDepthwiseConv2dOp, kXnnFullyConnectedOp, kXnnGlobalAvgPoolOp,
    kXnnLeakyReluOp, kXnnMaxPool2dOp, kXnnMultiplyOp, kXnnPadOp, kXnnPreluOp, kXnnReshapeOp,
    kXnnResizeBilinearOp, kXnnSigmoidOp, kXnnSoftmaxOp, kXnnTanhOp;

const std::vector<const XnnOpDef*>& AllXnnOps() {
  static const std::vector<const XnnOpDef*> ops = {
      &kXnnAddOp,
      &kXnnAvgPool2dOp,
      &kXnnClampOp,
      &kXnnConcatenateOp,
      &kXnnConv2dOp,
      &kXnnDepthToSpaceOp,
      &kXnnDepthwiseConv2dOp,
      &kXnnFullyConnectedOp,
      &kXnnGlobalAvgPoolOp,
      &kXnnLeakyReluOp,
      &kXnnMaxPool2dOp,
      &kXnnMultiplyOp,
      &kXnnPadOp,
      &kXnnPreluOp,
      &kXnnReshapeOp,
      &kXnnResizeBilinearOp,
      &kXnnSigmoidOp,
      &kXnnSoftmaxOp,
      &kXnnTanhOp,
  };
  return ops;
}

const XnnOpDef* FindXnnOp(const std::string& name) {
  for (const XnnOpDef* op : AllXnnOps())
    if (name == op->name) return op;
  return nullptr;
}

}  // namespace fm
