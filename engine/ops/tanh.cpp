// tanh.cpp - elementwise hyperbolic tangent.
#include <cmath>

#include "op.h"

namespace fm {
namespace {

void Reference(const KernelArgs& a) {
  ReferenceUnary(a, [](float x, const Node&) { return static_cast<float>(std::tanh(double(x))); });
}

}  // namespace

extern const OpDef kTanhOp = {
    "tanh", {{"input", InputRole::kActivation}}, false, {}, InferSameShape, Reference,
};

}  // namespace fm
