// detect_loss.cpp - see detect_loss.h.
#include "detect_loss.h"

#include <algorithm>
#include <cmath>

namespace fm::train {

namespace {

// Canonical keypoints inside a face box (fractions of width, height): right eye, left eye, nose
// tip, mouth, right ear, left ear (image left = the subject's right).
constexpr float kCanonical[kNumKeypoints][2] = {{0.33f, 0.40f}, {0.67f, 0.40f}, {0.50f, 0.58f},
                                                {0.50f, 0.76f}, {0.08f, 0.47f}, {0.92f, 0.47f}};

double Softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

// Smooth L1 of d with its derivative.
double SmoothL1(double d, double beta, double* dd) {
  const double a = std::fabs(d);
  if (a < beta) {
    *dd = d / beta;
    return 0.5 * d * d / beta;
  }
  *dd = d > 0 ? 1.0 : -1.0;
  return a - 0.5 * beta;
}

std::vector<int> CountPositives(const std::vector<GtBox>& gts, const std::vector<int>& assign) {
  std::vector<int> count(gts.size(), 0);
  for (int a : assign)
    if (a >= 0) ++count[size_t(a)];
  return count;
}

}  // namespace

double FocalLoss(float logit, bool positive, float alpha, float gamma, float* dlogit) {
  const double z = logit;
  const double p = 1.0 / (1.0 + std::exp(-z));
  if (positive) {
    const double logp = -Softplus(-z), q = 1.0 - p;
    *dlogit = float(alpha * (gamma * std::pow(q, gamma) * p * logp - std::pow(q, gamma + 1)));
    return -alpha * std::pow(q, gamma) * logp;
  }
  const double log1mp = -Softplus(z);
  *dlogit =
      float((1 - alpha) * (std::pow(p, gamma + 1) - gamma * std::pow(p, gamma) * (1 - p) * log1mp));
  return -(1 - alpha) * std::pow(p, gamma) * log1mp;
}

void AssignAnchors(const std::vector<Anchor>& anchors, int input_size,
                   const std::vector<GtBox>& gts, const DetLossOptions& o,
                   std::vector<int>* assign) {
  assign->assign(anchors.size(), -1);
  std::vector<float> best_area(anchors.size(), 1e30f);
  const float S = float(input_size);
  for (size_t a = 0; a < anchors.size(); ++a) {
    const float ax = anchors[a].x_center * S, ay = anchors[a].y_center * S;
    for (size_t g = 0; g < gts.size(); ++g) {
      const GtBox& b = gts[g];
      if (ax < b.x0 || ax > b.x1 || ay < b.y0 || ay > b.y1) {
        // Outside the box: only the minimum radius can still reach a very small face.
        if (b.ignore) continue;
      } else if (b.ignore) {
        if ((*assign)[a] == -1) (*assign)[a] = -2;
        continue;
      }
      const float w = b.x1 - b.x0, h = b.y1 - b.y0;
      const float cx = (b.x0 + b.x1) * 0.5f, cy = (b.y0 + b.y1) * 0.5f;
      const float rx = std::max(o.min_radius, o.radius * w),
                  ry = std::max(o.min_radius, o.radius * h);
      const bool inside = ax >= b.x0 && ax <= b.x1 && ay >= b.y0 && ay <= b.y1;
      if (std::fabs(ax - cx) <= rx && std::fabs(ay - cy) <= ry) {
        if (w * h < best_area[a]) {
          best_area[a] = w * h;
          (*assign)[a] = int(g);
        }
      } else if (inside && (*assign)[a] == -1) {
        (*assign)[a] = -2;
      }
    }
  }
}

float PositiveWeight(const std::vector<GtBox>& gts, const std::vector<int>& assign) {
  const std::vector<int> count = CountPositives(gts, assign);
  float total = 0.f;
  for (size_t g = 0; g < gts.size(); ++g)
    if (count[g] > 0) total += gts[g].weight * std::sqrt(float(count[g]));
  return total;  // = sum over positive anchors of weight / sqrt(count)
}

DetLoss SampleLoss(const float* raw, const float* teacher, const std::vector<Anchor>& anchors,
                   int input_size, const std::vector<GtBox>& gts, const std::vector<int>& assign,
                   float norm, const DetLossOptions& o, float* grad) {
  DetLoss loss;
  const std::vector<int> count = CountPositives(gts, assign);
  const float S = float(input_size);
  std::fill(grad, grad + anchors.size() * kRawColumns, 0.f);
  for (size_t a = 0; a < anchors.size(); ++a) {
    const int g = assign[a];
    if (g == -2) continue;
    const float* r = raw + a * kRawColumns;
    float* d = grad + a * kRawColumns;
    float dz = 0.f;
    if (g < 0) {
      loss.cls += FocalLoss(r[0], false, o.alpha, o.gamma, &dz) * norm;
      d[0] = dz * norm;
      continue;
    }
    ++loss.positives;
    const GtBox& b = gts[size_t(g)];
    const float wa = b.weight / std::sqrt(float(count[size_t(g)])) * norm;
    loss.cls += FocalLoss(r[0], true, o.alpha, o.gamma, &dz) * wa;
    d[0] = dz * wa;
    const float ax = anchors[a].x_center * S, ay = anchors[a].y_center * S;
    const float w = b.x1 - b.x0, h = b.y1 - b.y0;
    const float size = std::max({w, h, 4.f});
    const float target[4] = {(b.x0 + b.x1) * 0.5f - ax, (b.y0 + b.y1) * 0.5f - ay, w, h};
    double dd;
    for (int j = 0; j < 4; ++j) {
      loss.box +=
          SmoothL1((r[1 + j] - target[j]) / size, o.smooth_l1_beta, &dd) * wa * o.box_weight;
      d[1 + j] = float(dd / size) * wa * o.box_weight;
    }
    bool from_teacher = false;
    if (teacher) {
      const double tp = 1.0 / (1.0 + std::exp(-double(teacher[a * kRawColumns])));
      from_teacher = tp >= o.teacher_min_prob;
    }
    for (int k = 0; k < kNumKeypoints; ++k)
      for (int c = 0; c < 2; ++c) {
        const int col = 5 + 2 * k + c;
        const float t = from_teacher ? teacher[a * kRawColumns + size_t(col)]
                                     : (c == 0 ? b.x0 + kCanonical[k][0] * w - ax
                                               : b.y0 + kCanonical[k][1] * h - ay);
        loss.keypoints +=
            SmoothL1((r[col] - t) / size, o.smooth_l1_beta, &dd) * wa * o.keypoint_weight;
        d[col] = float(dd / size) * wa * o.keypoint_weight;
      }
  }
  return loss;
}

}  // namespace fm::train
