// tracker.cpp - see tracker.h.
#include "vision/tracker.h"

#include <algorithm>
#include <cmath>

namespace fm {
namespace {

float Blend(float old_value, float new_value, float keep) {
  return old_value * keep + new_value * (1.f - keep);
}

// out = a * ka + b * kb for every coordinate (box corners, keypoints); out's score is untouched.
void Combine(const Detection& a, float ka, const Detection& b, float kb, Detection* out) {
  out->x0 = a.x0 * ka + b.x0 * kb;
  out->y0 = a.y0 * ka + b.y0 * kb;
  out->x1 = a.x1 * ka + b.x1 * kb;
  out->y1 = a.y1 * ka + b.y1 * kb;
  for (int k = 0; k < kNumKeypoints; ++k)
    for (int c = 0; c < 2; ++c)
      out->keypoints[k][c] = a.keypoints[k][c] * ka + b.keypoints[k][c] * kb;
}

}  // namespace

void Tracker::Reset() {
  tracks_.clear();
  has_detected_ = last_detected_ = false;
  frames_since_detect_ = 0;
  classify_credit_ = 0;
}

Status Tracker::SetDetectEvery(int n) {
  if (n < 1 || n > kMaxDetectEvery)
    return Errorf("detect_every must be 1..", kMaxDetectEvery,
                  " (1 = the detector on every frame), got ", n);
  options_.detect_every = n;
  return Status::Ok();
}

Status Tracker::SetClassifyEvery(int n) {
  if (n < 1 || n > kMaxClassifyEvery)
    return Errorf("classify_every must be 1..", kMaxClassifyEvery,
                  " (frames between two classifications of a face), got ", n);
  options_.classify_every = n;
  return Status::Ok();
}

void Tracker::Forget(double t) {
  // Forget stale tracks (and everything if time went backwards: a new stream).
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(),
                               [&](const FaceTrack& tr) {
                                 return t < tr.last_seen_ms ||
                                        t - tr.last_seen_ms > options_.forget_after_ms;
                               }),
                tracks_.end());
}

void Tracker::Match(const std::vector<Face>& faces) {
  // Greedy matching, best overlaps first.
  match_.assign(faces.size(), -1);
  taken_.assign(tracks_.size(), 0);
  for (;;) {
    float best = options_.min_iou;
    int bf = -1, bt = -1;
    for (size_t f = 0; f < faces.size(); ++f) {
      if (match_[f] >= 0) continue;
      for (size_t k = 0; k < tracks_.size(); ++k) {
        if (taken_[k]) continue;
        const float iou = IoU(faces[f].det, tracks_[k].face.det);
        if (iou > best) best = iou, bf = int(f), bt = int(k);
      }
    }
    if (bf < 0) break;
    match_[size_t(bf)] = bt;
    taken_[size_t(bt)] = 1;
  }
}

void Tracker::Apply(double t, bool measured, std::vector<Face>* faces, std::vector<int>* ids) {
  ids->resize(faces->size());
  for (size_t f = 0; f < faces->size(); ++f) {
    Face& face = (*faces)[f];
    if (match_[f] < 0) {
      const Detection still{};  // no motion measured yet
      tracks_.push_back({next_id_++, face, t, face.det, still, t, frame_, false});
      (*ids)[f] = tracks_.back().id;
      continue;
    }
    FaceTrack& tr = tracks_[size_t(match_[f])];
    Detection& d = face.det;
    if (measured) {
      // Motion of the raw detector boxes (the reported ones are smoothed, so they lag).
      const double since = t - tr.measured_ms;
      if (since >= 1.0) {
        Detection v = d;
        Combine(d, float(1.0 / since), tr.measured, float(-1.0 / since), &v);
        if (tr.has_velocity) Combine(tr.velocity, 0.5f, v, 0.5f, &v);
        tr.velocity = v;
        tr.has_velocity = true;
      }
      tr.measured = d;
      tr.measured_ms = t;
    }
    const float dt = float(t - tr.last_seen_ms);
    const float keep_box = std::exp(-dt / options_.box_time_constant_ms);
    const float keep_prob = std::exp(-dt / options_.prob_time_constant_ms);
    Combine(tr.face.det, keep_box, d, 1.f - keep_box, &d);
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
    MarkConfidence(unsure_below_, &face);
    tr.face = face;
    tr.last_seen_ms = t;
    if (classified_[f]) tr.classified_frame = frame_;
    (*ids)[f] = tr.id;
  }
}

void Tracker::Update(double t, std::vector<Face>* faces, std::vector<int>* ids) {
  ++frame_;
  Forget(t);
  Match(*faces);
  classified_.assign(faces->size(), 1);
  Apply(t, /*measured=*/true, faces, ids);
}

// A predicted frame's share of the classifications: faces x detect_every / classify_every per
// detection cycle, spread over its detect_every - 1 predicted frames (the fraction carried over),
// the faces classified longest ago first; a face without probabilities, or due, always. (So with
// detect_every 2 an odd classify_every acts as the even number below it.)
Status Tracker::ClassifyInTurn(Pipeline* pipeline, const ImageView& image,
                               std::vector<Face>* faces) {
  const size_t n = faces->size();
  classified_.assign(n, 0);
  classify_credit_ += double(n) * double(options_.detect_every) /
                      (double(options_.detect_every - 1) * double(options_.classify_every));
  size_t budget = size_t(classify_credit_);
  classify_credit_ -= double(budget);
  due_.clear();
  for (size_t i = 0; i < n; ++i)
    due_.push_back({tracks_[size_t(match_[i])].classified_frame, int(i)});
  std::stable_sort(due_.begin(), due_.end(),
                   [](const std::pair<int64_t, int>& a, const std::pair<int64_t, int>& b) {
                     return a.first < b.first;
                   });
  for (const auto& d : due_) {
    const FaceTrack& tr = tracks_[size_t(match_[size_t(d.second)])];
    Face& face = (*faces)[size_t(d.second)];
    // Due: it would wait classify_every frames by the next frame (a detector frame, with
    // detect_every 2), which should not have to classify it.
    const bool due = tr.face.probs.empty() || frame_ + 1 - d.first >= options_.classify_every;
    if (budget == 0 && !due) {  // keeps its probabilities until its turn
      face.probs = tr.face.probs;
      face.label = tr.face.label;
      continue;
    }
    budget -= budget > 0 ? 1 : 0;
    const Detection box = face.det;
    FM_RETURN_IF_ERROR(pipeline->Classify(image, box, &face));
    classified_[size_t(d.second)] = 1;
  }
  if (n == 0) classify_credit_ = 0;
  return Status::Ok();
}

Status Tracker::Track(Pipeline* pipeline, const ImageView& image, double t,
                      std::vector<Face>* faces, std::vector<int>* ids) {
  ++frame_;
  Forget(t);
  unsure_below_ = pipeline->unsure_below();
  const bool detect = options_.detect_every <= 1 || !has_detected_ ||
                      frames_since_detect_ + 1 >= options_.detect_every || image.width != width_ ||
                      image.height != height_ ||
                      !(t >= last_detect_ms_ && t - last_detect_ms_ <= options_.max_predict_ms);
  if (detect) {
    FM_RETURN_IF_ERROR(pipeline->Detect(image, &detections_, /*allow_tiles=*/false));
    faces->resize(detections_.size());
    for (size_t i = 0; i < detections_.size(); ++i) (*faces)[i].det = detections_[i];
    Match(*faces);
    classified_.assign(faces->size(), 1);
    for (size_t i = 0; i < faces->size(); ++i) {
      Face& face = (*faces)[i];
      const int k = match_[i];
      // Taking turns: a face the classifier saw less than classify_every frames ago keeps those
      // probabilities (the predicted frames classify).
      if (options_.detect_every > 1 && k >= 0 && !tracks_[size_t(k)].face.probs.empty() &&
          frame_ - tracks_[size_t(k)].classified_frame < options_.classify_every) {
        face.probs = tracks_[size_t(k)].face.probs;
        face.label = tracks_[size_t(k)].face.label;
        classified_[i] = 0;
      } else {
        FM_RETURN_IF_ERROR(pipeline->Classify(image, detections_[i], &face));
      }
    }
    Apply(t, /*measured=*/true, faces, ids);
    frames_since_detect_ = 0;
    last_detect_ms_ = t;
    width_ = image.width;
    height_ = image.height;
    has_detected_ = true;
    last_detected_ = true;
    return Status::Ok();
  }

  // Between detections: the faces of the last detection, moved by their motion, left to right.
  order_.clear();
  for (size_t k = 0; k < tracks_.size(); ++k) {
    const FaceTrack& tr = tracks_[k];
    if (tr.measured_ms != last_detect_ms_) continue;  // not seen by the last detection
    const float ahead = float(t - tr.measured_ms);
    order_.push_back(
        {(tr.measured.x0 + tr.measured.x1) + (tr.velocity.x0 + tr.velocity.x1) * ahead, int(k)});
  }
  std::stable_sort(order_.begin(), order_.end(),
                   [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
                     return a.first < b.first;
                   });
  faces->resize(order_.size());
  match_.resize(order_.size());
  size_t n = 0;
  const float w = float(image.width), h = float(image.height);
  for (const auto& o : order_) {
    const FaceTrack& tr = tracks_[size_t(o.second)];
    Detection d = tr.measured;
    Combine(tr.measured, 1.f, tr.velocity, float(t - tr.measured_ms), &d);
    d.x0 = std::max(0.f, d.x0);
    d.y0 = std::max(0.f, d.y0);
    d.x1 = std::min(w, d.x1);
    d.y1 = std::min(h, d.y1);
    if (!(d.x1 - d.x0 >= 2.f && d.y1 - d.y0 >= 2.f)) continue;  // moved out of the picture
    (*faces)[n].det = d;
    match_[n++] = o.second;
  }
  faces->resize(n);
  match_.resize(n);
  FM_RETURN_IF_ERROR(ClassifyInTurn(pipeline, image, faces));
  Apply(t, /*measured=*/false, faces, ids);
  ++frames_since_detect_;
  last_detected_ = false;
  return Status::Ok();
}

}  // namespace fm
