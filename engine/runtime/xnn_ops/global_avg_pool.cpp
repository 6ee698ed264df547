// global_avg_pool.cpp - the global_avg_pool op as an XNNPACK subgraph node (its shape rules and
// reference kernel: ops/global_avg_pool.cpp).
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status DefineXnn(const XnnArgs& a) {
  const size_t axes[2] = {1, 2};
  return XnnCheck(xnn_define_static_reduce(a.subgraph, xnn_reduce_mean, 2, axes, a.in[0], a.out,
                                           XNN_FLAG_KEEP_DIMS),
                  "global_avg_pool");
}

}  // namespace

extern const XnnOpDef kXnnGlobalAvgPoolOp = {"global_avg_pool", DefineXnn};

}  // namespace fm
