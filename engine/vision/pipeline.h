// pipeline.h - photo or frame in, labelled faces out: detect (BlazeFace) -> for each face an
// upright crop (turned by the eye keypoints, with margin) -> classifier -> results ordered left to
// right. All buffers are allocated once and reused across calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/graph.h"
#include "runtime/runtime.h"
#include "status.h"
#include "vision/detection.h"
#include "vision/image.h"

namespace fm {

struct Face {
  Detection det;             // in source image pixels
  int label = -1;            // index into Pipeline::labels(), -1 without a classifier
  std::vector<float> probs;  // one per label
  // false when the top probability (probs[label]) is under the classifier's `unsure_below`: the
  // label is still the most likely class, but the page and the CLI show it as a guess.
  bool confident = true;
};

// The classifier metadata `unsure_below` when a model has none (model/README.md, "Confidence").
constexpr float kDefaultUnsureBelow = 0.6f;

// Sets face->confident from its probabilities and label (true without a classifier).
void MarkConfidence(float unsure_below, Face* face);

struct PipelineOptions {
  float min_score = -1.f;       // detector score threshold; < 0 = the default (0.45)
  float tile_min_score = -1.f;  // threshold inside tiles; < 0 = the default (0.7)
  int threads = 1;
  Backend backend = Backend::kXnnpack;
  // XNNPACK's sparse path for models whose 1x1 convolutions are mostly zeros (the full-range
  // detector): see RuntimeOptions::sparse_hint.
  bool sparse = true;
  int max_faces = 64;
  // Small faces in large photos: besides the whole picture, also look at overlapping square tiles
  // (each as large as the detector input or larger). kAuto does so for still photos whose longer
  // side is at least twice the detector input; video frames (Track) never tile.
  enum class Tiling { kOff, kAuto, kOn } tiling = Tiling::kAuto;
  // Smallest tile side, in detector inputs (0.5..8; under 1 the tiles are magnified). 0.75
  // (default): a 400x267 photo gets 12 tiles of 144 px at 1.33x, where the scenes' 14-32 px faces
  // are found (tools/train-detector chooses the detector's thresholds for this tiling; the model
  // card has the numbers); photos whose shorter side is over 288 px get tiles of half that side.
  float min_tile = 0.75f;
};

// A classifier's class names: its metadata "labels" split at commas; without it "0", "1", ... one
// per output of a [1, N] output. The one rule for face and whole-image classifiers.
std::vector<std::string> ReadLabels(const Graph& graph);
// How a model wants its pixels: read from model metadata (norm_scale, norm_offset, channel_order).
Status ReadNormalization(const Graph& graph, Normalization* norm);
// A detector's anchor layout (metadata anchor_strides + anchor_interpolated_scale_aspect_ratio,
// else BlazeFace full range's for 2304 rows), refused unless it gives exactly `rows` anchors,
// counted before any is made (metadata such as "1,2,1,2,..." would ask for billions).
Status ReadAnchorOptions(const Graph& detector, int input_size, int64_t rows,
                         AnchorOptions* anchors);

class Pipeline {
 public:
  Pipeline() = default;  // use Create()
  // detector: a BlazeFace .fmm (kind=detector). classifier: optional (kind=classifier, labels).
  static Status Create(std::shared_ptr<const Graph> detector,
                       std::shared_ptr<const Graph> classifier, const PipelineOptions& options,
                       std::unique_ptr<Pipeline>* out);

  // allow_tiles = false for video frames (speed over the smallest faces).
  Status Run(const ImageView& image, std::vector<Face>* faces, bool allow_tiles = true);

  // Detection only (no classification), in image pixels, sorted left to right.
  Status Detect(const ImageView& image, std::vector<Detection>* detections,
                bool allow_tiles = true);
  // Classifies the upright crop around one detection.
  Status Classify(const ImageView& image, const Detection& det, Face* face);
  // The box the classifier's crop is cut around: the detection mapped by the detector's crop_box
  // metadata (the trainer cuts its crops through this too).
  Detection ClassifierBox(const Detection& det) const;

  const std::vector<std::string>& labels() const { return labels_; }
  bool has_classifier() const { return classifier_ != nullptr; }
  float unsure_below() const { return unsure_below_; }
  int detector_input_size() const { return det_size_; }

  // The affine map (crop pixels -> image pixels) of the classifier's crop_w x crop_h upright crop
  // around `det`: centred on the box, turned by the eyes, one scale on both axes, the shorter
  // side spanning the box's longer side x `margin`.
  static Affine UprightCrop(const Detection& det, int crop_w, int crop_h, float margin);
  static Affine UprightCrop(const Detection& det, int crop_size, float margin) {
    return UprightCrop(det, crop_size, crop_size, margin);
  }

 private:
  // Runs the detector on the square [x0, x0 + side) x [y0, y0 + side) of `image` (may extend
  // past it) and appends detections in image pixels. With drop_cut, boxes touching a tile edge
  // that is inside the image are dropped (a neighbouring tile sees those faces whole).
  Status DetectSquare(const ImageView& image, float x0, float y0, float side, bool drop_cut,
                      float min_score, std::vector<Detection>* out);

  std::unique_ptr<Runtime> detector_;
  std::unique_ptr<Runtime> classifier_;
  std::vector<Anchor> anchors_;
  Normalization det_norm_, cls_norm_;
  DecodeOptions decode_;
  float tile_min_score_ = 0.6f;
  int det_size_ = 0;
  int score_column_ = 16, regressor_column_ = 0;  // in each [17] output row
  int cls_w_ = 0, cls_h_ = 0, cls_c_ = 3;
  float crop_margin_ = 1.3f;
  float unsure_below_ = kDefaultUnsureBelow;
  // Detector metadata crop_box = "scale,dx,dy": maps this detector's box to the box the
  // classifier's crops were cut around (side * scale, centre + (dx, dy) * side).
  float crop_box_[3] = {1.f, 0.f, 0.f};
  int max_faces_ = 64;
  PipelineOptions::Tiling tiling_ = PipelineOptions::Tiling::kAuto;
  float min_tile_ = 0.75f;
  std::vector<std::string> labels_;
  Image scaled_;  // reused box-filtered copy of large inputs
  std::vector<Detection> detections_;
};

// Where a model comes from: a .fmm file (path) or its bytes (data, size; not copied).
struct ModelSource {
  std::string path;
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool given() const { return !path.empty() || data != nullptr || size != 0; }
};

// A detector and its optional classifier, read once; several pipelines may share them.
struct PipelineModels {
  std::shared_ptr<const Graph> detector, classifier;
};

// Reads the detector and, when given, the classifier: the one way the C API, the CLI and
// fm_eval_scenes read theirs. Errors say which model: a file's name its path ("FILE: model:
// ..." as ReadModelFile), bytes say "detector model: ..." / "classifier model: ...". Running out
// of memory is an error too ("FILE: out of memory").
Status ReadPipelineModels(const ModelSource& detector, const ModelSource& classifier,
                          PipelineModels* out);
// ReadPipelineModels, then Pipeline::Create.
Status LoadPipeline(const ModelSource& detector, const ModelSource& classifier,
                    const PipelineOptions& options, std::unique_ptr<Pipeline>* out);

}  // namespace fm
