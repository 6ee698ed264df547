// optimizer.h - Adam (decoupled weight decay, i.e. AdamW) and SGD with momentum (decoupled decay
// too), and the learning-rate schedule: linear warm-up, then cosine decay to final_fraction * lr.
#pragma once

#include <string>
#include <vector>

#include "layers.h"

namespace fm::train {

struct OptimizerOptions {
  std::string type = "adam";  // adam | sgd
  float lr = 2e-3f;
  float momentum = 0.9f;  // sgd
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 1e-4f;
};

class Optimizer {
 public:
  Optimizer(std::vector<Param*> params, const OptimizerOptions& options);
  void Step(float lr);  // uses each Param's grad

 private:
  std::vector<Param*> params_;
  OptimizerOptions o_;
  std::vector<std::vector<float>> m_, v_;
  int64_t t_ = 0;
};

// progress = epochs done (fractional); warmup and total in epochs.
float ScheduledLr(float base, float progress, float warmup, float total,
                  float final_fraction = 0.02f);

}  // namespace fm::train
