// softmax.cpp - softmax over the last dimension: exp(x - max) / sum(exp(x - max)).
#include <cmath>

#include "op.h"

namespace fm {
namespace {

void Reference(const KernelArgs& a) {
  const Shape& s = *a.out_shape;
  const int64_t n = s.back();
  const int64_t rows = NumElements(s) / n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a.in[0] + r * n;
    float* y = a.out + r * n;
    double m = x[0];
    for (int64_t i = 1; i < n; ++i) m = std::max(m, double(x[i]));
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - m);
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(double(x[i]) - m) / sum);
  }
}

}  // namespace

extern const OpDef kSoftmaxOp = {
    "softmax", {{"input", InputRole::kActivation}}, false, {}, InferSameShape, Reference,
};

}  // namespace fm
