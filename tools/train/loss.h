// loss.h - softmax cross-entropy over logits [N, K] with per-class weights and label smoothing:
//   loss = sum_i w[y_i] * sum_k -t_ik * log softmax(z_i)_k / sum_i w[y_i],
//   t_ik = (1 - s) * [k == y_i] + s / K.
#pragma once

#include <vector>

#include "common.h"

namespace fm::train {

struct LossOptions {
  std::vector<float> class_weights;  // empty = all 1
  float label_smoothing = 0.f;
};

// Returns the loss; writes d loss / d logits into dlogits (same shape as logits) when non-null.
double SoftmaxCrossEntropy(const Tensor& logits, const std::vector<int>& labels,
                           const LossOptions& options, Tensor* dlogits);

// Row-wise softmax of logits [N, K] (probabilities, as the exported graph's last op).
void Softmax(const Tensor& logits, std::vector<float>* probs);

}  // namespace fm::train
