// fuzz_c_api.cpp - libFuzzer target: the C API as the wasm bindings call it, with fuzzed
// arguments: model bytes, backends, thread counts, indices, pixel sizes, channels and strides.
// Every bad argument must come back as NULL/-1 with a message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "api/facemask.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fm::fuzz::Input in(data, size);
  const int mode = int(in.Int(0, 1));
  if (mode == 0) {
    const int backend = int(in.Int(-1, 2));
    const int threads = int(in.Int(-1, 2));
    size_t n = 0;
    const uint8_t* bytes = in.Rest(&n);
    fm_model* m = fm_model_load(bytes, n, backend, threads);
    if (!m) {
      if (!*fm_last_error()) std::abort();
      return 0;
    }
    fm::fuzz::Input args(data, size);  // reuse the bytes as call arguments
    for (int call = 0; call < 8; ++call) {
      const int i = int(args.Int(-2, 3)), d = int(args.Int(-2, 7));
      (void)fm_model_input_dim(m, i, d);
      (void)fm_model_output_dim(m, i, d);
      (void)fm_model_output(m, i);
      if (float* x = fm_model_input(m, i)) x[0] = args.Float();
    }
    (void)fm_model_run(m);
    fm_model_free(m);
    return 0;
  }
  // Pixels through a detector-only pipeline with fuzzed geometry.
  static fm_pipeline* pipeline = [] {
    FILE* f = std::fopen(FM_DEFAULT_MODEL_DIR "/blazeface-short.fmm", "rb");
    if (!f) return static_cast<fm_pipeline*>(nullptr);
    std::vector<uint8_t> bytes(1 << 22);
    const size_t n = std::fread(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return fm_pipeline_create(bytes.data(), n, nullptr, 0, -1.f, 1);
  }();
  const int w = int(in.Int(-2, 300)), h = int(in.Int(-2, 300));
  const int channels = int(in.Int(0, 5)), stride = int(in.Int(-4, 1300));
  std::vector<uint8_t> pixels(w > 0 && h > 0 && stride > 0 ? size_t(h) * size_t(stride) : 16, 128);
  size_t n = 0;
  const uint8_t* rest = in.Rest(&n);
  std::memcpy(pixels.data(), rest, std::min(n, pixels.size()));
  const char* json = fm_pipeline_run_pixels(pipeline, pixels.data(), w, h, channels, stride);
  if (!json && !*fm_last_error()) std::abort();
  json = fm_pipeline_run_encoded(pipeline, rest, n);
  if (!json && !*fm_last_error()) std::abort();
  return 0;
}
