// tracker.cpp - see tracker.h.
#include "tracker.h"

#include <algorithm>
#include <cmath>

namespace fm {
namespace {

float Blend(float old_value, float new_value, float keep) {
  return old_value * keep + new_value * (1.f - keep);
}

}  // namespace

void Tracker::Update(double t, std::vector<Face>* faces, std::vector<int>* ids) {
  // Forget stale tracks (and everything if time went backwards: a new stream).
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(),
                               [&](const Track& tr) {
                                 return t < tr.last_seen_ms ||
                                        t - tr.last_seen_ms > options_.forget_after_ms;
                               }),
                tracks_.end());
  // Greedy matching, best overlaps first.
  match_.assign(faces->size(), -1);
  std::vector<char> taken(tracks_.size(), 0);
  for (;;) {
    float best = options_.min_iou;
    int bf = -1, bt = -1;
    for (size_t f = 0; f < faces->size(); ++f) {
      if (match_[f] >= 0) continue;
      for (size_t k = 0; k < tracks_.size(); ++k) {
        if (taken[k]) continue;
        const float iou = IoU((*faces)[f].det, tracks_[k].face.det);
        if (iou > best) best = iou, bf = int(f), bt = int(k);
      }
    }
    if (bf < 0) break;
    match_[size_t(bf)] = bt;
    taken[size_t(bt)] = 1;
  }
  ids->resize(faces->size());
  for (size_t f = 0; f < faces->size(); ++f) {
    Face& face = (*faces)[f];
    if (match_[f] < 0) {
      tracks_.push_back({next_id_++, face, t});
      (*ids)[f] = tracks_.back().id;
      continue;
    }
    Track& tr = tracks_[size_t(match_[f])];
    const float dt = float(t - tr.last_seen_ms);
    const float keep_box = std::exp(-dt / options_.box_time_constant_ms);
    const float keep_prob = std::exp(-dt / options_.prob_time_constant_ms);
    Detection& d = face.det;
    const Detection& o = tr.face.det;
    d.x0 = Blend(o.x0, d.x0, keep_box);
    d.y0 = Blend(o.y0, d.y0, keep_box);
    d.x1 = Blend(o.x1, d.x1, keep_box);
    d.y1 = Blend(o.y1, d.y1, keep_box);
    for (int k = 0; k < kNumKeypoints; ++k)
      for (int c = 0; c < 2; ++c)
        d.keypoints[k][c] = Blend(o.keypoints[k][c], d.keypoints[k][c], keep_box);
    if (face.probs.size() == tr.face.probs.size() && !face.probs.empty()) {
      for (size_t c = 0; c < face.probs.size(); ++c)
        face.probs[c] = Blend(tr.face.probs[c], face.probs[c], keep_prob);
      // Hysteresis: keep the previous label unless another class now leads it clearly.
      const int best =
          int(std::max_element(face.probs.begin(), face.probs.end()) - face.probs.begin());
      const int previous = tr.face.label;
      face.label =
          previous >= 0 && best != previous &&
                  face.probs[size_t(best)] - face.probs[size_t(previous)] < options_.switch_margin
              ? previous
              : best;
    }
    tr.face = face;
    tr.last_seen_ms = t;
    (*ids)[f] = tr.id;
  }
}

}  // namespace fm
