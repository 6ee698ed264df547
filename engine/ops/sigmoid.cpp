// sigmoid.cpp - elementwise 1 / (1 + exp(-x)).
#include <cmath>

#include "op.h"

namespace fm {
namespace {

void Reference(const KernelArgs& a) {
  ReferenceUnary(a, [](float x, const Node&) {
    return static_cast<float>(1.0 / (1.0 + std::exp(-double(x))));
  });
}

}  // namespace

extern const OpDef kSigmoidOp = {
    "sigmoid", {{"input", InputRole::kActivation}}, false, {}, InferSameShape, Reference,
};

}  // namespace fm
