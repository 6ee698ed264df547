// tracker.h - keeps faces' identities across video frames and steadies their labels: each new
// detection is matched to the track it overlaps most (IoU), class probabilities are smoothed with
// a time-based exponential moving average and the label only changes when another class clearly
// leads (hysteresis). Boxes are lightly smoothed too. Tracks unseen for a while are dropped.
#pragma once

#include <vector>

#include "pipeline.h"

namespace fm {

struct TrackerOptions {
  float min_iou = 0.3f;  // to continue a track
  float prob_time_constant_ms = 250.f;
  float box_time_constant_ms = 60.f;
  float switch_margin = 0.15f;  // a new label must lead the current one by this much
  float forget_after_ms = 600.f;
};

class Tracker {
 public:
  explicit Tracker(TrackerOptions options = {}) : options_(options) {}
  // Rewrites `faces` in place (smoothed boxes, probabilities, labels) and fills `ids`.
  void Update(double timestamp_ms, std::vector<Face>* faces, std::vector<int>* ids);
  void Reset() { tracks_.clear(); }

 private:
  struct Track {
    int id;
    Face face;
    double last_seen_ms;
  };
  TrackerOptions options_;
  std::vector<Track> tracks_;
  std::vector<int> match_;  // reused: track index for each face, -1 = new
  int next_id_ = 1;
};

}  // namespace fm
