// clamp.cpp - elementwise min(max(x, lo), hi): relu is clamp [0, inf], relu6 is clamp [0, 6].
// Attribute: clamp [min, max] (required).
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  FM_RETURN_IF_ERROR(CheckClamp(n));
  return InferSameShape(g, n, out);
}

void Reference(const KernelArgs& a) {
  ReferenceUnary(a, [](float x, const Node& n) {
    float lo, hi;
    ClampRange(n, &lo, &hi);
    return ApplyClamp(x, lo, hi);
  });
}

}  // namespace

extern const OpDef kClampOp = {
    "clamp", {{"input", InputRole::kActivation}},
    false,   {{"clamp", Attr::kFloats, 2, 2, true}},
    Infer,   Reference,
};

}  // namespace fm
