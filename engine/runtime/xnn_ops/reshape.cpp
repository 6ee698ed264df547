// reshape.cpp - the reshape op as an XNNPACK subgraph node (its shape rules and reference kernel:
// ops/reshape.cpp).
#include <cstring>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const std::vector<int64_t> shape = a.node->Ints("shape", {});
  size_t dims[XNN_MAX_TENSOR_DIMS] = {};
  for (size_t i = 0; i < shape.size(); ++i) dims[i] = size_t(shape[i]);
  return XnnCheck(xnn_define_static_reshape(a.subgraph, shape.size(), dims, a.in[0], a.out, 0),
                  "reshape");
}

}  // namespace

extern const XnnOpDef kXnnReshapeOp = {"reshape", DefineXnn};

}  // namespace fm
