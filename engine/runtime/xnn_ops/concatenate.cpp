// concatenate.cpp - the concatenate op as an XNNPACK subgraph node (its shape rules and reference
// kernel: ops/concatenate.cpp).
#include <cstring>

#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

// XNNPACK concatenates at most 5 values per node: longer lists are joined in steps through
// internal values.
Status DefineXnn(const XnnArgs& a) {
  const Graph& g = *a.graph;
  const Node& n = *a.node;
  const Shape& first = g.ShapeOf(n.inputs[0]);
  const int32_t axis = int32_t(ConcatenateAxis(n, first.size()));
  uint32_t acc = a.in[0];
  Shape acc_shape = first;
  size_t next = 1;
  while (next < n.inputs.size()) {
    const size_t take = std::min<size_t>(4, n.inputs.size() - next);
    uint32_t ids[5] = {acc};
    for (size_t i = 0; i < take; ++i) {
      ids[i + 1] = a.in[next + i];
      acc_shape[size_t(axis)] += g.ShapeOf(n.inputs[next + i])[size_t(axis)];
    }
    next += take;
    uint32_t out = a.out;
    if (next < n.inputs.size()) {
      size_t dims[XNN_MAX_TENSOR_DIMS] = {};
      for (size_t d = 0; d < acc_shape.size(); ++d) dims[d] = size_t(acc_shape[d]);
      FM_RETURN_IF_ERROR(
          XnnCheck(xnn_define_tensor_value(a.subgraph, xnn_datatype_fp32, acc_shape.size(), dims,
                                           nullptr, XNN_INVALID_VALUE_ID, 0, &out),
                   "concatenate (intermediate value)"));
    }
    enum xnn_status st = xnn_status_invalid_parameter;
    switch (take) {
      case 1:
        st = xnn_define_concatenate2(a.subgraph, axis, ids[0], ids[1], out, 0);
        break;
      case 2:
        st = xnn_define_concatenate3(a.subgraph, axis, ids[0], ids[1], ids[2], out, 0);
        break;
      case 3:
        st = xnn_define_concatenate4(a.subgraph, axis, ids[0], ids[1], ids[2], ids[3], out, 0);
        break;
      default:
        st = xnn_define_concatenate5(a.subgraph, axis, ids[0], ids[1], ids[2], ids[3], ids[4], out,
                                     0);
    }
    FM_RETURN_IF_ERROR(XnnCheck(st, "concatenate"));
    acc = out;
  }
  return Status::Ok();
}

}  // namespace

extern const XnnOpDef kXnnConcatenateOp = {"concatenate", DefineXnn};

}  // namespace fm
