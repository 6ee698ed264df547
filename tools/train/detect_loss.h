// detect_loss.h - the detector's training targets and loss over BlazeFace's raw output (one row
// of 17 per anchor: score logit, then cx, cy, w, h and 6 keypoints (x, y), in input pixels
// relative to the anchor centre; detection.h decodes the same rows).
//
// Matching (centre sampling, as in FCOS; BlazeFace's anchors have one fixed size, so IoU with an
// anchor box means nothing): an anchor is positive for a face when its centre lies within
// max(min_radius, radius * face size) of the face centre along both axes; an anchor inside a face
// box that is not positive is ignored (neither face nor background); a face too small or too cut
// to learn from is an ignore region. An anchor claimed by several faces goes to the smallest.
// Loss: focal loss on every non-ignored anchor (copes with the thousands of background anchors
// per photo), smooth L1 on the box (size-normalised) and on the keypoints, normalised by the
// positive weight of the whole batch. Each positive anchor weighs face.weight / sqrt(positives of
// that face), so a small face with one anchor is not drowned by a large one with thirty.
#pragma once

#include <vector>

#include "vision/detection.h"

namespace fm::train {

struct GtBox {
  float x0, y0, x1, y1;  // input pixels
  float weight = 1.f;
  bool ignore = false;  // an ignore region, not a face to learn
};

struct DetLossOptions {
  float radius = 0.15f, min_radius = 2.f;
  float alpha = 0.25f, gamma = 2.f;
  float box_weight = 1.f, keypoint_weight = 0.25f;
  float smooth_l1_beta = 0.05f;
  float teacher_min_prob = 0.5f;  // teacher keypoints used where its score is at least this
};

constexpr int kRawColumns = 17;

// Per anchor: -2 ignore, -1 background, else the index of the face it detects.
void AssignAnchors(const std::vector<Anchor>& anchors, int input_size,
                   const std::vector<GtBox>& gts, const DetLossOptions& o,
                   std::vector<int>* assign);

// Sum of positive weights of one sample (the batch's normaliser is the sum over samples).
float PositiveWeight(const std::vector<GtBox>& gts, const std::vector<int>& assign);

struct DetLoss {
  double cls = 0, box = 0, keypoints = 0;
  int positives = 0;
};

// One sample: raw and (optional) teacher rows [anchors x 17]; writes d loss / d raw into grad
// (same layout) scaled by `norm` and returns the scaled loss parts. Keypoint targets: the
// teacher's where it is confident, else a canonical layout inside the face box.
DetLoss SampleLoss(const float* raw, const float* teacher, const std::vector<Anchor>& anchors,
                   int input_size, const std::vector<GtBox>& gts, const std::vector<int>& assign,
                   float norm, const DetLossOptions& o, float* grad);

// Focal loss of one logit and its derivative (target 1 or 0); exposed for the tests.
double FocalLoss(float logit, bool positive, float alpha, float gamma, float* dlogit);

}  // namespace fm::train
