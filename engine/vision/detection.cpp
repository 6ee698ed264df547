// detection.cpp - see detection.h.
#include "vision/detection.h"

#include <algorithm>
#include <cmath>

namespace fm {
std::vector<Anchor> GenerateAnchors(const AnchorOptions& o) {
  std::vector<Anchor> anchors;
  const int layers = int(o.strides.size());
  int layer = 0;
  while (layer < layers) {
    // Layers sharing a stride share one feature map; each contributes its anchors per cell.
    int per_cell = 0;
    int last = layer;
    while (last < layers && o.strides[size_t(last)] == o.strides[size_t(layer)]) {
      per_cell += 1;                                             // aspect ratio 1.0
      if (o.interpolated_scale_aspect_ratio > 0) per_cell += 1;  // interpolated scale
      ++last;
    }
    const int stride = o.strides[size_t(layer)];
    const int fm_size = (o.input_size + stride - 1) / stride;
    for (int y = 0; y < fm_size; ++y)
      for (int x = 0; x < fm_size; ++x)
        for (int k = 0; k < per_cell; ++k)
          anchors.push_back(
              {(float(x) + o.offset) / float(fm_size), (float(y) + o.offset) / float(fm_size)});
    layer = last;
  }
  return anchors;
}

int64_t CountAnchors(const AnchorOptions& o) {
  // As GenerateAnchors: a run of equal strides is one feature map with 1 or 2 anchors per layer.
  const int64_t per_layer = o.interpolated_scale_aspect_ratio > 0 ? 2 : 1;
  int64_t count = 0;
  for (size_t layer = 0, last = 0; layer < o.strides.size(); layer = last) {
    while (last < o.strides.size() && o.strides[last] == o.strides[layer]) ++last;
    const int64_t fm_size = (o.input_size + o.strides[layer] - 1) / o.strides[layer];
    count += fm_size * fm_size * per_layer * int64_t(last - layer);
  }
  return count;
}

float IoU(const Detection& a, const Detection& b) {
  const float ix = std::max(0.f, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  const float iy = std::max(0.f, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  const float inter = ix * iy;
  const float uni = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

std::vector<Detection> WeightedNms(std::vector<Detection> candidates, float iou) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> out;
  std::vector<char> used(candidates.size(), 0);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (used[i]) continue;
    const Detection& top = candidates[i];
    Detection merged = top;
    double wsum = 0, box[4] = {0, 0, 0, 0}, kp[kNumKeypoints][2] = {};
    for (size_t j = i; j < candidates.size(); ++j) {
      if (used[j] || IoU(top, candidates[j]) <= iou) continue;
      used[j] = 1;
      const Detection& c = candidates[j];
      const double w = c.score;
      wsum += w;
      box[0] += w * c.x0;
      box[1] += w * c.y0;
      box[2] += w * c.x1;
      box[3] += w * c.y1;
      for (int k = 0; k < kNumKeypoints; ++k) {
        kp[k][0] += w * c.keypoints[k][0];
        kp[k][1] += w * c.keypoints[k][1];
      }
    }
    if (wsum > 0) {
      merged.x0 = float(box[0] / wsum);
      merged.y0 = float(box[1] / wsum);
      merged.x1 = float(box[2] / wsum);
      merged.y1 = float(box[3] / wsum);
      for (int k = 0; k < kNumKeypoints; ++k) {
        merged.keypoints[k][0] = float(kp[k][0] / wsum);
        merged.keypoints[k][1] = float(kp[k][1] / wsum);
      }
    }
    used[i] = 1;
    out.push_back(merged);
  }
  return out;
}

std::vector<Detection> DecodeBlazeFace(const float* raw, int row_stride, int score_column,
                                       int regressor_column, const std::vector<Anchor>& anchors,
                                       int input_size, const DecodeOptions& options) {
  std::vector<Detection> candidates;
  const float size = float(input_size);
  // score >= min_score  <=>  logit >= log(p / (1 - p)); skip the sigmoid for most anchors.
  const float p = std::min(std::max(options.min_score, 1e-6f), 1.f - 1e-6f);
  const float min_logit = std::log(p / (1.f - p));
  for (size_t i = 0; i < anchors.size(); ++i) {
    const float* row = raw + i * size_t(row_stride);
    const float logit = std::min(std::max(row[score_column], -100.f), 100.f);
    const float* r = row + regressor_column;
    if (!(logit >= min_logit)) continue;
    const Anchor& a = anchors[i];
    // Offsets are in input pixels relative to the anchor centre; anchors have unit size.
    const float cx = r[0] / size + a.x_center, cy = r[1] / size + a.y_center;
    const float w = r[2] / size, h = r[3] / size;
    Detection d;
    d.x0 = (cx - w * 0.5f) * size;
    d.y0 = (cy - h * 0.5f) * size;
    d.x1 = (cx + w * 0.5f) * size;
    d.y1 = (cy + h * 0.5f) * size;
    d.score = 1.f / (1.f + std::exp(-logit));
    for (int k = 0; k < kNumKeypoints; ++k) {
      d.keypoints[k][0] = (r[4 + 2 * k] / size + a.x_center) * size;
      d.keypoints[k][1] = (r[5 + 2 * k] / size + a.y_center) * size;
    }
    if (!(d.x1 > d.x0 && d.y1 > d.y0)) continue;  // degenerate or NaN boxes
    candidates.push_back(d);
  }
  return WeightedNms(std::move(candidates), options.nms_iou);
}

}  // namespace fm
