// fuzz_pipeline.cpp - libFuzzer target: pipelines built from the shipped detector and classifier
// with fuzzed metadata (anchor_strides, labels, norm_*, crop_box, thresholds, ...: every key the
// pipeline reads, plus arbitrary ones) and fuzzed options, then run on a small fuzzed photo, as a
// still image and as video frames. A refused model must say why; an accepted one must run.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "model/model_format.h"
#include "vision/pipeline.h"
#include "vision/tracker.h"

namespace {

std::shared_ptr<const fm::Graph> Load(const char* name) {
  fm::Graph g;
  const fm::Status s = fm::ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR "/") + name, &g);
  if (!s.ok()) std::abort();  // the shipped models must load
  return std::make_shared<const fm::Graph>(std::move(g));
}

const char* const kKeys[] = {"anchor_strides",
                             "anchor_interpolated_scale_aspect_ratio",
                             "channel_order",
                             "crop_box",
                             "crop_margin",
                             "labels",
                             "norm_offset",
                             "norm_scale",
                             "pipeline_min_score",
                             "pipeline_tile_min_score",
                             "score_column",
                             "unsure_below",
                             "kind"};
// Values that parse, so the fuzzer starts near the interesting edges.
const char* const kValues[] = {"8,16,16,16",
                               "1,2,1,2,1,2,1,2",
                               "1",
                               "0",
                               "-1",
                               "0.5",
                               "1e30",
                               "nan",
                               "inf",
                               "bgr",
                               "rgb",
                               "1.2,0,0.1",
                               "0,0,0",
                               "a,b,c",
                               "with_mask,without_mask,mask_worn_incorrectly",
                               "",
                               "2",
                               "65536",
                               "0.0078125",
                               "-1,-1,-1"};

std::string Text(fm::fuzz::Input* in) {
  const int pick = int(in->Int(0, 2 * int(std::size(kValues)) - 1));
  if (pick < int(std::size(kValues))) return kValues[pick];
  std::string s;
  for (int n = int(in->Int(0, 24)); n > 0; --n) s += char(in->Int(0, 255));
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const fm::Graph> kDetector = Load("blazeface-short.fmm");
  static const std::shared_ptr<const fm::Graph> kClassifier = Load("classifier.fmm");
  fm::fuzz::Input in(data, size);

  fm::Graph det = *kDetector;
  fm::Graph cls = *kClassifier;
  for (int edits = int(in.Int(0, 6)); edits > 0; --edits) {
    fm::Graph& g = in.Int(0, 1) ? cls : det;
    const int k = int(in.Int(0, int(std::size(kKeys))));
    const std::string key = k < int(std::size(kKeys)) ? kKeys[k] : Text(&in);
    if (in.Int(0, 7) == 0) {
      g.metadata.erase(key);
    } else {
      g.metadata[key] = Text(&in);
    }
  }
  fm::PipelineOptions options;
  options.min_score = in.Int(0, 3) == 0 ? in.Float() : -1.f;
  options.max_faces = int(in.Int(-1, 70));
  options.min_tile = in.Int(0, 3) == 0 ? in.Float() : 1.25f;
  options.tiling = fm::PipelineOptions::Tiling(in.Int(0, 2));
  const bool with_classifier = in.Int(0, 3) != 0;

  std::unique_ptr<fm::Pipeline> pipeline;
  const fm::Status s = fm::Pipeline::Create(
      std::make_shared<const fm::Graph>(std::move(det)),
      with_classifier ? std::make_shared<const fm::Graph>(std::move(cls)) : nullptr, options,
      &pipeline);
  if (!s.ok()) {
    if (s.message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  // A small photo from the rest of the bytes (grey where they run out).
  fm::Image image;
  image.width = int(in.Int(1, 96));
  image.height = int(in.Int(1, 96));
  image.rgb.assign(size_t(image.width) * size_t(image.height) * 3, 128);
  size_t n = 0;
  const uint8_t* rest = in.Rest(&n);
  for (size_t i = 0; i < image.rgb.size() && i < n; ++i) image.rgb[i] = rest[i];

  std::vector<fm::Face> faces;
  if (!pipeline->Run(image, &faces).ok()) return 0;
  for (const fm::Face& f : faces) {
    if (with_classifier && (f.label < 0 || f.label >= int(pipeline->labels().size()))) std::abort();
  }
  fm::Tracker tracker;
  std::vector<int> ids;
  for (int frame = 0; frame < 3; ++frame) {
    if (!tracker.Track(pipeline.get(), image, 40.0 * frame, &faces, &ids).ok()) break;
    if (ids.size() != faces.size()) std::abort();
  }
  return 0;
}
