// tracker.h - keeps faces' identities across video frames and steadies their labels: each new
// detection is matched to the track it overlaps most (IoU), class probabilities are smoothed with
// a time-based exponential moving average and the label only changes when another class clearly
// leads (hysteresis). Boxes are lightly smoothed too. Tracks unseen for a while are dropped.
//
// Track() runs a whole video frame through a Pipeline and can skip the detector: it runs on every
// detect_every-th frame only; on the frames between, each face of the last detection is moved by
// its measured motion (constant velocity of the detector's boxes and keypoints) and classified at
// that predicted place. With detect_every > 1 the classifier then also takes turns: each face is
// classified every classify_every-th frame (new faces at once), on the predicted frames, the
// longest-unclassified first, so that detector frames classify only new faces and no frame pays
// for both models in full.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "vision/pipeline.h"

namespace fm {

constexpr int kDefaultDetectEvery = 2;  // measured in tools/bench-browser (README "Numbers")
constexpr int kMaxDetectEvery = 30;
// Frames between two classifications of a tracked face (with detect_every > 1): 2 = on every
// predicted frame; 4 (default) = every other predicted frame, about 133 ms at 30 FPS, so the 96 px
// classifier fits the camera budget (tools/bench-browser, README "Numbers").
constexpr int kDefaultClassifyEvery = 4;
constexpr int kMaxClassifyEvery = 30;

struct TrackerOptions {
  float min_iou = 0.3f;  // to continue a track
  float prob_time_constant_ms = 250.f;
  float box_time_constant_ms = 60.f;
  float switch_margin = 0.15f;  // a new label must lead the current one by this much
  float forget_after_ms = 600.f;
  int detect_every = kDefaultDetectEvery;  // Track(): 1 = the detector runs on every frame
  // Track() with detect_every > 1: a tracked face goes through the classifier at least every
  // classify_every-th frame (>= 1); about faces x detect_every / classify_every of them per
  // predicted frame, new faces at once.
  int classify_every = kDefaultClassifyEvery;
  float max_predict_ms = 250.f;  // Track() runs the detector when its last run is older than this
};

class Tracker {
 public:
  explicit Tracker(TrackerOptions options = {}) : options_(options) {}

  // One video frame: runs pipeline->Detect (no tiles) when due, else predicts the faces of the last
  // detection; classifies; then smooths as Update() does. `faces` are left to right, `ids` match.
  Status Track(Pipeline* pipeline, const ImageView& image, double timestamp_ms,
               std::vector<Face>* faces, std::vector<int>* ids);
  // Rewrites `faces` (fresh detections, classified) in place (smoothed boxes, probabilities,
  // labels) and fills `ids`.
  void Update(double timestamp_ms, std::vector<Face>* faces, std::vector<int>* ids);
  void Reset();

  // 1..kMaxDetectEvery; anything else is refused.
  Status SetDetectEvery(int n);
  int detect_every() const { return options_.detect_every; }
  // 1..kMaxClassifyEvery; anything else is refused.
  Status SetClassifyEvery(int n);
  int classify_every() const { return options_.classify_every; }
  bool last_frame_detected() const { return last_detected_; }  // did the last Track() detect
  // Per face of the last Track() / Update(): did it go through the classifier on that frame.
  const std::vector<char>& last_frame_classified() const { return classified_; }

 private:
  struct FaceTrack {
    int id;
    Face face;  // as last reported (smoothed)
    double last_seen_ms;
    Detection measured;  // the detector's last box for this face, unsmoothed
    Detection velocity;  // of measured's coordinates, per ms (score unused)
    double measured_ms;
    int64_t classified_frame;  // the last frame its crop went through the classifier
    bool has_velocity;
  };
  void Forget(double t);
  void Match(const std::vector<Face>& faces);  // fills match_: track index per face, -1 = new
  // Smooths `faces` into their tracks (match_) and starts new tracks; `measured`: the boxes come
  // from the detector (they update the motion), else from Predict.
  void Apply(double t, bool measured, std::vector<Face>* faces, std::vector<int>* ids);
  // On a predicted frame (faces' boxes set, match_ filled): classifies this frame's share of the
  // faces (see classify_every) and gives the others their track's probabilities.
  Status ClassifyInTurn(Pipeline* pipeline, const ImageView& image, std::vector<Face>* faces);

  TrackerOptions options_;
  std::vector<FaceTrack> tracks_;
  std::vector<int> match_;                    // reused: track index for each face, -1 = new
  std::vector<char> taken_;                   // reused by Match
  std::vector<char> classified_;              // reused: did this frame classify face i
  std::vector<Detection> detections_;         // reused by Track
  std::vector<std::pair<float, int>> order_;  // reused by Track: (left-to-right key, track)
  std::vector<std::pair<int64_t, int>> due_;  // reused by Track: (last classified, face)
  float unsure_below_ = kDefaultUnsureBelow;  // the pipeline's, from the last Track()
  int next_id_ = 1;
  int64_t frame_ = 0;           // frames seen (Track and Update)
  double classify_credit_ = 0;  // classifications owed to the predicted frames, fractional part
  int frames_since_detect_ = 0;
  int width_ = 0, height_ = 0;  // of the last detected frame
  double last_detect_ms_ = 0;
  bool has_detected_ = false, last_detected_ = false;
};

}  // namespace fm
