// loss.cpp - see loss.h.
#include "loss.h"

#include <algorithm>
#include <cmath>

namespace fm::train {

void Softmax(const Tensor& logits, std::vector<float>* probs) {
  const size_t k = size_t(logits.c) * size_t(logits.h) * size_t(logits.w);
  probs->resize(logits.v.size());
  for (int i = 0; i < logits.n; ++i) {
    const float* z = logits.data() + size_t(i) * k;
    float* p = probs->data() + size_t(i) * k;
    const float mx = *std::max_element(z, z + k);
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += std::exp(double(z[j] - mx));
    for (size_t j = 0; j < k; ++j) p[j] = float(std::exp(double(z[j] - mx)) / sum);
  }
}

double SoftmaxCrossEntropy(const Tensor& logits, const std::vector<int>& labels,
                           const LossOptions& options, Tensor* dlogits) {
  const size_t k = size_t(logits.c) * size_t(logits.h) * size_t(logits.w);
  std::vector<float> probs;
  Softmax(logits, &probs);
  double wsum = 0, loss = 0;
  std::vector<double> wi(static_cast<size_t>(logits.n));
  for (int i = 0; i < logits.n; ++i) {
    const size_t y = size_t(labels[size_t(i)]);
    wi[size_t(i)] = options.class_weights.empty() ? 1.0 : double(options.class_weights[y]);
    wsum += wi[size_t(i)];
  }
  if (wsum <= 0) wsum = 1;
  const double s = options.label_smoothing;
  if (dlogits) dlogits->Resize(logits.n, logits.h, logits.w, logits.c);
  for (int i = 0; i < logits.n; ++i) {
    const size_t y = size_t(labels[size_t(i)]);
    const float* z = logits.data() + size_t(i) * k;
    const float mx = *std::max_element(z, z + k);
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += std::exp(double(z[j] - mx));
    const double log_sum = std::log(sum) + mx;
    for (size_t j = 0; j < k; ++j) {
      const double t = (1.0 - s) * (j == y ? 1.0 : 0.0) + s / double(k);
      loss += wi[size_t(i)] * t * (log_sum - z[j]);
      if (dlogits)
        dlogits->v[size_t(i) * k + j] =
            float(wi[size_t(i)] * (probs[size_t(i) * k + j] - t) / wsum);
    }
  }
  return loss / wsum;
}

}  // namespace fm::train
