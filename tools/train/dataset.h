// dataset.h - the crop cache: every training and evaluation face of ../shared/data cut once, the
// way the deployed pipeline cuts it, and kept as 8-bit RGB so epochs never decode a JPEG.
//
// For each photo the detector (model/detector.fmm) runs through fm::Pipeline::Detect (same
// downscaling and tiling as deployment); the face is cropped with fm::Pipeline::UprightCrop (turned
// by the eyes, `margin` around the box). When no face is found the labelled box is used (scenes/:
// the VOC box; faces/ and maskedfacenet/: a centred square, the photos being face-centred), level.
//
// Two crops per face:
//   exact   size x size, exactly the pipeline's crop (evaluation, and training without jitter);
//   context (size * context)^2 covering `context` times the same region, so augmentation can shift,
//           scale and rotate the crop as detector jitter would, from the cache.
//
// Splits (deterministic, no randomness):
//   scenes/         by photo, as the detector's trainer splits them (detect_data.h SplitOf):
//                   FNV-1a(stem) % 4 == 0 -> dev (as tools/eval_scenes.cpp), its val photos ->
//                   val, the rest -> train;
//   faces/          near-duplicates grouped first (same name family "x_copy_N", or a perceptual
//                   hash within 3 bits under any of the 8 flips/quarter turns), then
//                   FNV-1a(group's first name) % 100 < val_percent -> val;
//   maskedfacenet/  by FFHQ face id (the with_mask and incorrect versions of one face share it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace fm::train {

enum Label : uint8_t { kWithMask = 0, kWithoutMask = 1, kIncorrect = 2 };
constexpr int kNumClasses = 3;
enum Source : uint8_t { kFaces = 0, kMaskedFaceNet = 1, kScenes = 2 };
enum Split : uint8_t { kTrain = 0, kVal = 1, kDev = 2 };
const char* LabelName(int label);
const char* SourceName(int source);
const char* SplitName(int split);

struct Sample {
  uint8_t label = 0, source = 0, split = 0;
  uint8_t detected = 0;  // 1: crop from a detection, 0: from the labelled / assumed box
  uint16_t face_px = 0;  // labelled face width in the photo (scenes), else the detected/assumed box
  uint32_t group = 0;    // near-duplicate group (faces/), face id (maskedfacenet), photo (scenes)
  std::string name;      // "faces/with_mask/c0129.jpg" or "scenes/x.jpg#3"
};

struct CropSet {
  int size = 0;          // model input side
  int ctx_size = 0;      // stored context crop side
  float context = 1.5f;  // context crop region / pipeline crop region
  float margin = 1.3f;   // the pipeline's crop_margin
  std::vector<Sample> samples;
  std::vector<uint8_t> exact;  // samples x size x size x 3
  std::vector<uint8_t> ctx;    // samples x ctx_size x ctx_size x 3
  const uint8_t* Exact(size_t i) const { return exact.data() + i * size_t(size * size * 3); }
  const uint8_t* Context(size_t i) const {
    return ctx.data() + i * size_t(ctx_size) * size_t(ctx_size) * 3;
  }
  Status Save(const std::string& path) const;
  Status Load(const std::string& path);
};

struct CropOptions {
  std::string data_dir = "../shared/data";
  std::string detector;  // .fmm; empty = no detector (labelled boxes only, for tests)
  int size = 64;
  float context = 1.5f;
  float margin = 1.3f;
  int min_scene_px = 16;  // scenes/ boxes narrower than this are skipped
  int val_percent = 20;
  int limit = 0;  // > 0: at most this many photos per folder (quick runs)
  int threads = 2;
};

Status BuildCrops(const CropOptions& options, CropSet* out, std::string* report);

// Default cache path for a size: $HOME/.cache/facemask/crops/crops-<size>.bin
std::string DefaultCachePath(int size);

}  // namespace fm::train
