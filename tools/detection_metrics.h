// detection_metrics.h - detection scores over plain boxes, by the rules of ../shared/eval/map.py
// and score.py: VOC all-point AP (greedy by score; 'difficult' ground truth counts neither way),
// face recall by ground-truth width and unmatched (false) boxes. Pure functions, used by
// fm_eval_scenes and tested in tests/test_detection_metrics.cpp.
#pragma once

#include <string>
#include <vector>

namespace fm {
namespace metrics {

struct Box {
  double x0, y0, x1, y1;
};

// map.py's iou(): intersection over union, 0 when the union is empty.
double IoU(const Box& a, const Box& b);

// map.py's classes: 0 with_mask, 1 without_mask, 2 mask_weared_incorrect (also accepted:
// mask_worn_incorrectly, incorrect); -1 for any other name.
constexpr int kNumMaskClasses = 3;
extern const char* const kMaskClassNames[kNumMaskClasses];
int MaskClassIndex(const std::string& label);

struct GroundTruth {
  Box box;
  int cls = 0;             // class index; -1 matches no class
  bool difficult = false;  // detections matched to it count neither way
};

struct Scored {
  Box box;
  double score = 0;                  // face score
  std::vector<double> class_scores;  // per class: face score x class probability
};

struct Photo {
  std::vector<GroundTruth> truth;
  std::vector<Scored> detections;
};

// map.py --min-px: ground truth narrower than min_px is difficult, the rest is not.
void MarkNarrowDifficult(std::vector<Photo>* photos, double min_px);

struct PrPoint {
  double recall, precision;
};

struct ApResult {
  double ap = 0;
  int gt = 0;                  // non-difficult ground truth of the class
  int tp = 0, fp = 0;          // counted detections (matches to difficult boxes are neither)
  double max_recall = 0;       // recall after the last counted detection
  std::vector<PrPoint> curve;  // after each counted detection, best score first
};

// VOC all-point interpolation: the area under the precision envelope of `curve`.
double AllPointAp(const std::vector<PrPoint>& curve);

// AP of class `cls` over all photos, as map.py: detections with class_scores[cls] > 0, ranked by
// that score (ties keep photo, then detection order); each matches the best-IoU ground-truth box
// of its class in its photo (first on ties); IoU >= min_iou: a difficult box -> ignored, a box
// already taken -> false positive, else true positive; below -> false positive.
ApResult AveragePrecision(const std::vector<Photo>& photos, int cls, double min_iou = 0.5);

// Mean of AveragePrecision over classes 0..num_classes-1 (classes without ground truth count 0).
double MeanAp(const std::vector<ApResult>& per_class);

// Class-agnostic: which ground-truth boxes of a photo are found. In file order each takes the
// best-IoU detection (first on ties) not taken yet, if IoU >= min_iou.
std::vector<bool> FoundTruth(const Photo& photo, double min_iou);

struct WidthBin {
  double min_px, max_px;  // [min_px, max_px) of the ground-truth box width
  int total = 0, found = 0;
};

// Face recall (FoundTruth) binned by ground-truth width; edges ascending, e.g. {16, 32, 64} ->
// [0,16) [16,32) [32,64) [64,inf).
std::vector<WidthBin> RecallByWidth(const std::vector<Photo>& photos,
                                    const std::vector<double>& edges, double min_iou);

// score.py's false boxes: detections by face score (highest first, ties in order) each take the
// best-IoU ground-truth box of any class not taken yet (first on ties); those with IoU < min_iou
// (default 0.4, score.py's) are unmatched.
int UnmatchedBoxes(const Photo& photo, double min_iou = 0.4);
// The same per detection (in photo.detections order): true for an unmatched one.
std::vector<bool> UnmatchedDetections(const Photo& photo, double min_iou = 0.4);

}  // namespace metrics
}  // namespace fm
