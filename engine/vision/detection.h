// detection.h - BlazeFace post-processing, as MediaPipe does it: SSD anchors, box and keypoint
// decoding, sigmoid scores and weighted non-maximum suppression. Pure functions over the model's
// raw output, so the same code serves the CLI, the page and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace fm {

// MediaPipe SsdAnchorsCalculator options, the subset BlazeFace uses: aspect ratio 1 and fixed
// anchor size (so min/max scale do not affect the anchors, only their count per cell).
struct AnchorOptions {
  int input_size = 128;
  std::vector<int> strides = {8, 16, 16, 16};
  float offset = 0.5f;
  float interpolated_scale_aspect_ratio = 1.0f;  // 0 = no interpolated anchor
};

struct Anchor {
  float x_center, y_center;  // normalised to [0, 1] of the model input
};

std::vector<Anchor> GenerateAnchors(const AnchorOptions& options);
// GenerateAnchors(options).size(), counted without making them (strides >= 1).
int64_t CountAnchors(const AnchorOptions& options);

constexpr int kNumKeypoints = 6;  // right eye, left eye, nose tip, mouth, right ear, left ear

struct Detection {
  float x0, y0, x1, y1;  // box corners
  float score;           // 0..1
  float keypoints[kNumKeypoints][2];
};

struct DecodeOptions {
  float min_score = 0.5f;
  float nms_iou = 0.3f;
};

// Decodes raw rows (one per anchor, row_stride floats apart; 16 regressors from regressor_column
// and a logit at score_column; the converted models have the logit first) into detections in
// model-input pixels, then applies weighted NMS. Results are sorted by score, highest first.
std::vector<Detection> DecodeBlazeFace(const float* raw, int row_stride, int score_column,
                                       int regressor_column, const std::vector<Anchor>& anchors,
                                       int input_size, const DecodeOptions& options);

// MediaPipe's weighted NMS: the highest-scoring box absorbs every box overlapping it by more
// than iou; the merged box and keypoints are the score-weighted mean, its score the highest.
std::vector<Detection> WeightedNms(std::vector<Detection> candidates, float iou);

float IoU(const Detection& a, const Detection& b);

}  // namespace fm
