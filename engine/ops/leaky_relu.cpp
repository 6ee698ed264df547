// leaky_relu.cpp - x >= 0 ? x : alpha * x. Attribute: alpha [a] (required, finite).
#include "op.h"

namespace fm {
namespace {

Status Infer(const Graph& g, const Node& n, Shape* out) {
  const float alpha = n.Float("alpha", 0.f);
  if (!(alpha - alpha == 0.f)) return Errorf("alpha must be finite");
  return InferSameShape(g, n, out);
}

void Reference(const KernelArgs& a) {
  ReferenceUnary(a,
                 [](float x, const Node& n) { return x >= 0.f ? x : n.Float("alpha", 0.f) * x; });
}

}  // namespace

extern const OpDef kLeakyReluOp = {
    "leaky_relu", {{"input", InputRole::kActivation}},
    false,        {{"alpha", Attr::kFloats, 1, 1, true}},
    Infer,        Reference,
};

}  // namespace fm
