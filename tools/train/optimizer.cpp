// optimizer.cpp - see optimizer.h.
#include "optimizer.h"

#include <algorithm>
#include <cmath>

namespace fm::train {

Optimizer::Optimizer(std::vector<Param*> params, const OptimizerOptions& options)
    : params_(std::move(params)), o_(options) {
  for (Param* p : params_) {
    m_.emplace_back(p->value.size(), 0.f);
    v_.emplace_back(o_.type == "adam" ? p->value.size() : 0, 0.f);
  }
}

void Optimizer::Step(float lr) {
  ++t_;
  const bool adam = o_.type == "adam";
  const float c1 = 1.f - std::pow(o_.beta1, float(t_)), c2 = 1.f - std::pow(o_.beta2, float(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i];
    std::vector<float>& m = m_[i];
    const float decay = p.decay ? lr * o_.weight_decay : 0.f;
    for (size_t j = 0; j < p.value.size(); ++j) {
      const float g = p.grad[j];
      p.value[j] -= decay * p.value[j];
      if (adam) {
        float& v = v_[i][j];
        m[j] = o_.beta1 * m[j] + (1.f - o_.beta1) * g;
        v = o_.beta2 * v + (1.f - o_.beta2) * g * g;
        p.value[j] -= lr * (m[j] / c1) / (std::sqrt(v / c2) + o_.eps);
      } else {
        m[j] = o_.momentum * m[j] + g;
        p.value[j] -= lr * m[j];
      }
    }
  }
}

float ScheduledLr(float base, float progress, float warmup, float total, float final_fraction) {
  if (warmup > 0 && progress < warmup) return base * (0.1f + 0.9f * progress / warmup);
  const float span = std::max(total - warmup, 1e-6f);
  const float t = std::min(std::max((progress - warmup) / span, 0.f), 1.f);
  const float lo = base * final_fraction;
  return lo + (base - lo) * 0.5f * (1.f + std::cos(3.14159265f * t));
}

}  // namespace fm::train
