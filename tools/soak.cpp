// soak.cpp - long-run check of the C API as the page drives it: N frames through
// fm_pipeline_track_pixels (video), with a still (run_encoded) every 10th frame and the pipeline
// re-created every N/4 frames, sampling the resident memory ten times. Run it in the native-asan
// build so LeakSanitizer reports any leak at exit. Fails if memory keeps growing after warm-up.
//   fm_soak [--frames N] [--detector F] IMAGE
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "api/facemask.h"
#include "vision/image.h"

namespace {

long ResidentKb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4;
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace

int main(int argc, char** argv) {
  int frames = 10000;
  std::string detector = std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", image_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--frames" && i + 1 < argc)
      frames = std::atoi(argv[++i]);
    else if (a == "--detector" && i + 1 < argc)
      detector = argv[++i];
    else
      image_path = a;
  }
  if (image_path.empty() || frames < 1) {
    std::fprintf(stderr, "usage: fm_soak [--frames N] [--detector F] IMAGE\n");
    return 2;
  }
  const std::vector<uint8_t> model = ReadFile(detector), encoded = ReadFile(image_path);
  fm::Image image;
  fm::Status s = fm::DecodeImage(encoded.data(), encoded.size(), &image);
  if (!s.ok() || model.empty()) {
    std::fprintf(stderr, "fm_soak: %s\n",
                 s.ok() ? "cannot read the detector" : s.message().c_str());
    return 2;
  }
  std::vector<uint8_t> rgba(size_t(image.width) * size_t(image.height) * 4, 255);
  for (size_t i = 0; i < size_t(image.width) * size_t(image.height); ++i)
    for (int c = 0; c < 3; ++c) rgba[i * 4 + size_t(c)] = image.rgb[i * 3 + size_t(c)];
  fm_pipeline* p = nullptr;
  std::vector<long> samples;
  size_t faces = 0;
  for (int f = 0; f < frames; ++f) {
    if (f % std::max(1, frames / 4) == 0) {
      fm_pipeline_free(p);
      p = fm_pipeline_create(model.data(), model.size(), nullptr, 0, -1.f, 1);
      if (!p) {
        std::fprintf(stderr, "fm_soak: %s\n", fm_last_error());
        return 1;
      }
    }
    const char* json = f % 10 == 9
                           ? fm_pipeline_run_encoded(p, encoded.data(), encoded.size())
                           : fm_pipeline_track_pixels(p, rgba.data(), image.width, image.height, 4,
                                                      image.width * 4, f * 33.0);
    if (!json) {
      std::fprintf(stderr, "fm_soak: frame %d: %s\n", f, fm_last_error());
      return 1;
    }
    faces += std::string(json).find("\"box\"") != std::string::npos;
    if ((f + 1) % std::max(1, frames / 10) == 0) samples.push_back(ResidentKb());
  }
  fm_pipeline_free(p);
  std::printf("fm_soak: %d frames, %zu with faces; resident KB every %d frames:", frames, faces,
              std::max(1, frames / 10));
  for (long kb : samples) std::printf(" %ld", kb);
  std::printf("\n");
  // Flat after warm-up: the last sample may not exceed the second by more than 2 MB.
  if (samples.size() >= 3 && samples.back() > samples[1] + 2048) {
    std::fprintf(stderr, "fm_soak: memory grew from %ld KB to %ld KB\n", samples[1],
                 samples.back());
    return 1;
  }
  return 0;
}
