// fuzz_image.cpp - libFuzzer target: file bytes -> decode (stb_image, EXIF) -> face pipeline. Any
// input must give an image or a message, never a crash; decoded images run through the detector.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "model/model_format.h"
#include "vision/pipeline.h"

namespace {

fm::Pipeline* GetPipeline() {
  static std::unique_ptr<fm::Pipeline> pipeline = [] {
    std::unique_ptr<fm::Pipeline> p;
    auto graph = std::make_shared<fm::Graph>();
    if (fm::ReadModelFile(FM_DEFAULT_MODEL_DIR "/blazeface-short.fmm", graph.get()).ok())
      (void)fm::Pipeline::Create(graph, nullptr, {}, &p);
    return p;
  }();
  return pipeline.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fm::Image image;
  fm::Status s = fm::DecodeImage(data, size, &image);
  if (!s.ok()) {
    if (s.message().empty()) std::abort();
    return 0;
  }
  if (image.rgb.size() != size_t(image.width) * size_t(image.height) * 3) std::abort();
  if (fm::Pipeline* p = GetPipeline()) {
    std::vector<fm::Face> faces;
    if (!p->Run(image, &faces).ok()) std::abort();
  }
  return 0;
}
