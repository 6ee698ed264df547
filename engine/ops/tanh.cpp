// tanh.cpp - elementwise hyperbolic tangent.
#include <cmath>

#include "op.h"

namespace fm {
namespace {

void Reference(const KernelArgs& a) {
  ReferenceUnary(a, [](float x, const Node&) { return static_cast<float>(std::tanh(double(x))); });
}

Status DefineXnn(const XnnArgs& a) {
  return DefineXnnUnary(a, xnn_unary_tanh, nullptr, "tanh");
}

}  // namespace

extern const OpDef kTanhOp = {
    "tanh", {{"input", InputRole::kActivation}}, false, {}, InferSameShape, Reference, DefineXnn,
};

}  // namespace fm
