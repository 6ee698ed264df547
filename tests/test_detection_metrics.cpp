// test_detection_metrics.cpp - the scene metrics of tools/detection_metrics.h (the rules of
// ../shared/eval/map.py and score.py) on small cases worked out by hand: AP of a known ranking,
// duplicates, difficult ground truth, recall by width, unmatched boxes and empty inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "detection_metrics.h"

namespace fm {
namespace metrics {
namespace {

// A 10 x 10 box with its left edge at x.
Box At(double x, double w = 10) {
  return {x, 0, x + w, 10};
}

GroundTruth Truth(const Box& b, int cls = 0) {
  return {b, cls, false};
}

Scored Det(const Box& b, double score, int cls = 0, int classes = 1) {
  Scored d;
  d.box = b;
  d.score = score;
  d.class_scores.assign(size_t(classes), 0.0);
  d.class_scores[size_t(cls)] = score;
  return d;
}

TEST(DetectionMetrics, IoU) {
  EXPECT_DOUBLE_EQ(IoU(At(0), At(0)), 1.0);
  EXPECT_DOUBLE_EQ(IoU(At(0), At(5)), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(IoU(At(0), At(20)), 0.0);
  EXPECT_DOUBLE_EQ(IoU({1, 1, 1, 1}, {1, 1, 1, 1}), 0.0);  // empty union
}

TEST(DetectionMetrics, MaskClassNames) {
  EXPECT_EQ(MaskClassIndex("with_mask"), 0);
  EXPECT_EQ(MaskClassIndex("without_mask"), 1);
  EXPECT_EQ(MaskClassIndex("mask_weared_incorrect"), 2);
  EXPECT_EQ(MaskClassIndex("mask_worn_incorrectly"), 2);
  EXPECT_EQ(MaskClassIndex("incorrect"), 2);
  EXPECT_EQ(MaskClassIndex("face"), -1);
}

TEST(DetectionMetrics, ApOfKnownRanking) {
  // Ground truth A, B, C. Ranked detections: 0.9 on A (TP), 0.8 nowhere (FP), 0.7 on B (TP),
  // 0.6 and 0.5 nowhere (FP); C is never found.
  //   precision 1, 1/2, 2/3, 2/4, 2/5; recall 1/3, 1/3, 2/3, 2/3, 2/3
  //   envelope from the right: 1, 2/3, 2/3, 1/2, 2/5
  //   AP = (1/3 - 0) * 1 + (2/3 - 1/3) * 2/3 + (1 - 2/3) * 0 = 1/3 + 2/9 = 5/9
  Photo p;
  p.truth = {Truth(At(0)), Truth(At(20)), Truth(At(40))};
  // Listed out of order: the ranking is by score.
  p.detections = {Det(At(200), 0.6), Det(At(20), 0.7), Det(At(100), 0.8), Det(At(0), 0.9),
                  Det(At(300), 0.5)};
  const ApResult r = AveragePrecision({p}, 0);
  EXPECT_NEAR(r.ap, 5.0 / 9.0, 1e-12);
  EXPECT_EQ(r.gt, 3);
  EXPECT_EQ(r.tp, 2);
  EXPECT_EQ(r.fp, 3);
  EXPECT_NEAR(r.max_recall, 2.0 / 3.0, 1e-12);
  ASSERT_EQ(r.curve.size(), 5u);
  EXPECT_NEAR(r.curve[1].precision, 0.5, 1e-12);
  EXPECT_NEAR(r.curve[2].recall, 2.0 / 3.0, 1e-12);
}

TEST(DetectionMetrics, AllPointApOfACurve) {
  // Precision 1, 0.5, 0.6 at recall 0.5, 0.75, 1: envelope 1, 0.6, 0.6 over recall steps 0.5,
  // 0.25, 0.25 -> 0.5 + 0.15 + 0.15 = 0.8.
  EXPECT_NEAR(AllPointAp({{0.5, 1.0}, {0.75, 0.5}, {1.0, 0.6}}), 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(AllPointAp({}), 0.0);
}

TEST(DetectionMetrics, DuplicateIsFalsePositive) {
  // A and B; 0.9 on A (TP: P 1, R 1/2), 0.8 on A again (duplicate, FP: P 1/2, R 1/2), 0.7 on B
  // (TP: P 2/3, R 1). Envelope 1, 2/3, 2/3: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  Photo p;
  p.truth = {Truth(At(0)), Truth(At(20))};
  p.detections = {Det(At(0), 0.9), Det(At(1), 0.8), Det(At(20), 0.7)};
  const ApResult r = AveragePrecision({p}, 0);
  EXPECT_NEAR(r.ap, 5.0 / 6.0, 1e-12);
  EXPECT_EQ(r.tp, 2);
  EXPECT_EQ(r.fp, 1);
}

TEST(DetectionMetrics, DuplicateDoesNotFallBackToSecondBest) {
  // A = [0,10], B = [5,15]. 0.9 exactly on A: TP. 0.8 at [2,12]: IoU with A 80/120 = 0.667, with
  // B 70/130 = 0.538; its best box A is taken, so it is a false positive (map.py) and B stays
  // unfound although it overlaps enough.
  Photo p;
  p.truth = {Truth(At(0)), Truth(At(5))};
  p.detections = {Det(At(0), 0.9), Det(At(2), 0.8)};
  const ApResult r = AveragePrecision({p}, 0);
  EXPECT_EQ(r.tp, 1);
  EXPECT_EQ(r.fp, 1);
  EXPECT_NEAR(r.max_recall, 0.5, 1e-12);
  EXPECT_NEAR(r.ap, 0.5, 1e-12);  // envelope 1 up to recall 1/2
}

TEST(DetectionMetrics, ClassesAndZeroScores) {
  // Class 1 detections only match class-1 truth; a zero class score is no detection at all.
  Photo p;
  p.truth = {Truth(At(0), 0), Truth(At(20), 1)};
  p.detections = {Det(At(0), 0.9, 1, 2), Det(At(20), 0.8, 1, 2)};
  const ApResult c1 = AveragePrecision({p}, 1);
  EXPECT_EQ(c1.gt, 1);
  EXPECT_EQ(c1.tp, 1);
  EXPECT_EQ(c1.fp, 1);  // the 0.9 box on the class-0 face
  // P 0 R 0, then P 1/2 R 1: envelope 1/2 over the whole recall step.
  EXPECT_NEAR(c1.ap, 0.5, 1e-12);
  const ApResult c0 = AveragePrecision({p}, 0);
  EXPECT_EQ(c0.gt, 1);
  EXPECT_TRUE(c0.curve.empty());
  EXPECT_DOUBLE_EQ(c0.ap, 0.0);
  EXPECT_NEAR(MeanAp({c0, c1}), 0.25, 1e-12);
}

TEST(DetectionMetrics, DifficultTruthCountsNeitherWay) {
  // A is 40 px wide, S 10 px (difficult with min 32 px). Ranked: 0.95 nowhere (FP), 0.9 on S
  // (ignored), 0.8 on A (TP), 0.7 on S again (ignored, not a duplicate FP).
  //   min 32 px: gt 1; P 0 R 0, P 1/2 R 1 -> AP = 1 * 1/2 = 0.5
  //   min 0: gt 2; 0.95 FP (P 0 R 0), S TP (P 1/2 R 1/2), A TP (P 2/3 R 1), S dup FP (P 1/2 R 1)
  //          envelope 2/3 from recall 0 to 1 -> AP = 2/3
  std::vector<Photo> photos(1);
  photos[0].truth = {Truth(At(0, 40)), Truth(At(100))};
  photos[0].detections = {Det(At(300), 0.95), Det(At(100), 0.9), Det(At(0, 40), 0.8),
                          Det(At(100), 0.7)};
  MarkNarrowDifficult(&photos, 32);
  EXPECT_FALSE(photos[0].truth[0].difficult);
  EXPECT_TRUE(photos[0].truth[1].difficult);
  const ApResult hard = AveragePrecision(photos, 0);
  EXPECT_EQ(hard.gt, 1);
  EXPECT_EQ(hard.tp, 1);
  EXPECT_EQ(hard.fp, 1);
  EXPECT_EQ(hard.curve.size(), 2u);
  EXPECT_NEAR(hard.ap, 0.5, 1e-12);
  MarkNarrowDifficult(&photos, 0);
  const ApResult all = AveragePrecision(photos, 0);
  EXPECT_EQ(all.gt, 2);
  EXPECT_EQ(all.tp, 2);
  EXPECT_EQ(all.fp, 2);
  EXPECT_NEAR(all.ap, 2.0 / 3.0, 1e-12);
}

TEST(DetectionMetrics, RankingAcrossPhotos) {
  // Two photos, one face each. 0.9 in photo 2 on its face (TP), 0.8 in photo 1 off its face (FP),
  // 0.7 in photo 1 on its face (TP): P 1, 1/2, 2/3; R 1/2, 1/2, 1 -> AP = 1/2 + 1/2 * 2/3 = 5/6.
  std::vector<Photo> photos(2);
  photos[0].truth = {Truth(At(0))};
  photos[0].detections = {Det(At(0), 0.7), Det(At(50), 0.8)};
  photos[1].truth = {Truth(At(0))};
  photos[1].detections = {Det(At(0), 0.9)};
  EXPECT_NEAR(AveragePrecision(photos, 0).ap, 5.0 / 6.0, 1e-12);
}

TEST(DetectionMetrics, EmptyInputs) {
  const ApResult none = AveragePrecision({}, 0);
  EXPECT_DOUBLE_EQ(none.ap, 0.0);
  EXPECT_EQ(none.gt, 0);
  EXPECT_TRUE(none.curve.empty());
  EXPECT_DOUBLE_EQ(none.max_recall, 0.0);
  EXPECT_DOUBLE_EQ(MeanAp({}), 0.0);

  Photo truth_only;
  truth_only.truth = {Truth(At(0))};
  EXPECT_DOUBLE_EQ(AveragePrecision({truth_only}, 0).ap, 0.0);
  EXPECT_EQ(AveragePrecision({truth_only}, 0).gt, 1);
  EXPECT_EQ(UnmatchedBoxes(truth_only), 0);

  Photo dets_only;
  dets_only.detections = {Det(At(0), 0.9), Det(At(20), 0.8)};
  const ApResult fp = AveragePrecision({dets_only}, 0);
  EXPECT_DOUBLE_EQ(fp.ap, 0.0);
  EXPECT_EQ(fp.fp, 2);
  EXPECT_EQ(UnmatchedBoxes(dets_only), 2);
  EXPECT_TRUE(FoundTruth(dets_only, 0.5).empty());

  const std::vector<WidthBin> bins = RecallByWidth({}, {16, 32, 64}, 0.5);
  ASSERT_EQ(bins.size(), 4u);
  for (const WidthBin& b : bins) EXPECT_EQ(b.total, 0);
  EXPECT_EQ(UnmatchedBoxes(Photo()), 0);
}

TEST(DetectionMetrics, RecallByWidth) {
  // Widths 10, 16, 31, 32, 63, 64, 200 -> bins [0,16) [16,32) [32,64) [64,inf) get 1, 2, 2, 2.
  // Found: the 16 (exact box), the 63 (IoU 60/63 = 0.95) and the 200 (IoU 100/200 = 0.5).
  Photo p;
  p.truth = {Truth(At(0, 10)),   Truth(At(100, 16)), Truth(At(200, 31)),  Truth(At(300, 32)),
             Truth(At(400, 63)), Truth(At(500, 64)), Truth(At(1000, 200))};
  p.detections = {Det(At(100, 16), 0.9), Det(At(400, 60), 0.9), Det(At(1000, 100), 0.9),
                  Det(At(500, 20), 0.9)};  // IoU 20/64 with the 64 px face: not found
  const std::vector<WidthBin> bins = RecallByWidth({p}, {16, 32, 64}, 0.5);
  ASSERT_EQ(bins.size(), 4u);
  EXPECT_EQ(bins[0].total, 1);
  EXPECT_EQ(bins[0].found, 0);
  EXPECT_EQ(bins[1].total, 2);
  EXPECT_EQ(bins[1].found, 1);
  EXPECT_EQ(bins[2].total, 2);
  EXPECT_EQ(bins[2].found, 1);
  EXPECT_EQ(bins[3].total, 2);
  EXPECT_EQ(bins[3].found, 1);
  EXPECT_DOUBLE_EQ(bins[2].min_px, 32);
  EXPECT_TRUE(std::isinf(bins[3].max_px));
}

TEST(DetectionMetrics, OneDetectionFindsOneFace) {
  // One box between two faces (IoU 0.667 with A, 0.538 with B): A, first, takes it; B is missed.
  Photo p;
  p.truth = {Truth(At(0)), Truth(At(5))};
  p.detections = {Det(At(2), 0.9)};
  const std::vector<bool> found = FoundTruth(p, 0.5);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_TRUE(found[0]);
  EXPECT_FALSE(found[1]);
}

TEST(DetectionMetrics, UnmatchedBoxesAsScorePy) {
  // Face A (class 2: any class matches). 0.9 at IoU 0.45 with A takes it first (>= 0.4), so the
  // exact box 0.5 finds A taken: unmatched, as is the 0.7 box far away -> 2. At IoU 0.5 the 0.9
  // box is unmatched and the exact one takes A -> still 2, but a different pair.
  Photo p;
  p.truth = {Truth(At(0), 2)};
  p.detections = {Det(At(0), 0.5), Det({0, 0, 10, 4.5}, 0.9), Det(At(100), 0.7)};
  EXPECT_NEAR(IoU(p.detections[1].box, p.truth[0].box), 0.45, 1e-12);
  EXPECT_EQ(UnmatchedBoxes(p), 2);
  EXPECT_EQ(UnmatchedBoxes(p, 0.5), 2);
  p.detections.pop_back();
  EXPECT_EQ(UnmatchedBoxes(p), 1);
  p.detections[1].box = {0, 0, 10, 3.5};  // IoU 0.35: unmatched, the exact box takes A
  EXPECT_EQ(UnmatchedBoxes(p), 1);
}

}  // namespace
}  // namespace metrics
}  // namespace fm
