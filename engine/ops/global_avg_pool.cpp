// global_avg_pool.cpp - mean over height and width: [N, H, W, C] -> [N, 1, 1, C].
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(InputRank(g, n, 0, 4));
  const Shape& x = g.ShapeOf(n.inputs[0]);
  *out = {x[0], 1, 1, x[3]};
  return Status::Ok();
}

void Reference(const KernelArgs& a) {
  const Shape& x = *a.in_shape[0];
  const int64_t HW = x[1] * x[2], C = x[3];
  for (int64_t b = 0; b < x[0]; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double sum = 0;
      for (int64_t p = 0; p < HW; ++p) sum += a.in[0][(b * HW + p) * C + c];
      a.out[b * C + c] = static_cast<float>(sum / double(HW));
    }
}

}  // namespace

extern const OpDef kGlobalAvgPoolOp = {
    "global_avg_pool", {{"input", InputRole::kActivation}}, false, {}, Infer, Reference,
};

}  // namespace fm
