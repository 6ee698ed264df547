// common.cpp - helpers shared by the XNNPACK definitions: status messages, binary and unary nodes.
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {

Status XnnCheck(enum xnn_status status, const char* what) {
  if (status == xnn_status_success) return Status::Ok();
  return Errorf("XNNPACK rejected ", what, " (status ", static_cast<int>(status), ")");
}

Status DefineXnnBinary(const XnnArgs& a, enum xnn_binary_operator type, const char* what) {
  float lo, hi;
  ClampRange(*a.node, &lo, &hi);
  const xnn_binary_params params = {lo, hi};
  return XnnCheck(xnn_define_binary(a.subgraph, type, &params, a.in[0], a.in[1], a.out, 0), what);
}

Status DefineXnnUnary(const XnnArgs& a, enum xnn_unary_operator type,
                      const union xnn_unary_params* params, const char* what) {
  return XnnCheck(xnn_define_unary(a.subgraph, type, params, a.in[0], a.out, 0), what);
}

}  // namespace fm
