// test_c_api.cpp - the C API (what the CLI and the wasm bindings call): real runs, and bad
// arguments answered with messages instead of crashes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "api/facemask.h"
#include "model/graph_builder.h"
#include "model/model_format.h"
#include "test_models.h"
#include "test_util.h"

namespace fm::test {
namespace {

std::vector<uint8_t> ModelBytes() {
  Graph g;
  EXPECT_TRUE(BuildSmallCnn(1, &g).ok());
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(WriteModel(g, &bytes).ok());
  return bytes;
}

#ifdef __EMSCRIPTEN__
// The wasm builds compile C++ exceptions as WebAssembly exceptions (-fwasm-exceptions): when the
// memory cannot grow, a model load's std::bad_alloc reaches the C API's catch and comes back as
// NULL + a message, and the module goes on (built without it, the module aborted).
TEST(CApi, OutOfMemoryInWasmIsAnErrorNotAnAbort) {
  Graph g;
  GraphBuilder b;
  const int32_t x = b.Input("x", Shape{1, 1024, 1024, 1});
  const int32_t c = b.Constant("c", Shape{1, 1024, 1024, 1}, std::vector<float>(1 << 20, 0.5f));
  ASSERT_TRUE(b.Finish({b.Op("add", "sum", {x, c})}, &g).ok());
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(g, &bytes).ok());
  // Take the memory up to its 2 GB maximum (untouched pages cost nothing), leaving < 256 KB.
  std::vector<void*> blocks;
  blocks.reserve(1 << 14);
  for (size_t size = size_t(256) << 20; size >= (size_t(256) << 10); size /= 2) {
    while (void* p = std::malloc(size)) blocks.push_back(p);
  }
  fm_model* m = fm_model_load(bytes.data(), bytes.size(), FM_BACKEND_REFERENCE, 1);
  // Copy the message without allocating: what is left may not hold a std::string (the threaded
  // build keeps less slack), and a throw here would skip the frees and starve every later test.
  char error_buf[512];
  std::snprintf(error_buf, sizeof error_buf, "%s", fm_last_error());
  for (void* p : blocks) std::free(p);
  const std::string error = error_buf;
  EXPECT_EQ(m, nullptr);
  EXPECT_NE(error.find("bad_alloc"), std::string::npos) << error;
  EXPECT_EQ(error.find("unknown"), std::string::npos) << error;
  fm_model_free(m);
  // The module is whole: the same load now works.
  m = fm_model_load(bytes.data(), bytes.size(), FM_BACKEND_REFERENCE, 1);
  ASSERT_NE(m, nullptr) << fm_last_error();
  fm_model_free(m);
}
#endif

TEST(CApi, LoadRunAndInspect) {
  const std::vector<uint8_t> bytes = ModelBytes();
  for (int backend : {FM_BACKEND_XNNPACK, FM_BACKEND_REFERENCE}) {
    fm_model* m = fm_model_load(bytes.data(), bytes.size(), backend, 1);
    ASSERT_NE(m, nullptr) << fm_last_error();
    EXPECT_EQ(fm_model_num_inputs(m), 1);
    EXPECT_EQ(fm_model_num_outputs(m), 2);
    EXPECT_EQ(fm_model_input_rank(m, 0), 4);
    EXPECT_EQ(fm_model_input_dim(m, 0, 1), 33);
    EXPECT_EQ(fm_model_output_dim(m, 0, 1), 10);
    EXPECT_STREQ(fm_model_metadata(m, "kind"), "test");
    EXPECT_EQ(fm_model_metadata(m, "nope"), nullptr);
    float* in = fm_model_input(m, 0);
    for (int i = 0; i < 33 * 29 * 3; ++i) in[i] = float(i % 17) / 17.f;
    ASSERT_EQ(fm_model_run(m), 0) << fm_last_error();
    float sum = 0;
    for (int i = 0; i < 10; ++i) sum += fm_model_output(m, 0)[i];
    EXPECT_NEAR(sum, 1.f, 1e-5f);
    fm_model_free(m);
  }
}

TEST(CApi, BadArgumentsAreReported) {
  EXPECT_EQ(fm_model_load(nullptr, 0, 0, 1), nullptr);
  EXPECT_STREQ(fm_last_error(), "fm_model_load: no model bytes");
  const uint8_t junk[100] = {1, 2, 3};
  EXPECT_EQ(fm_model_load(junk, sizeof junk, 0, 1), nullptr);
  EXPECT_STREQ(fm_last_error(), "model: bad magic (not a facemask .fmm model file)");
  const std::vector<uint8_t> bytes = ModelBytes();
  EXPECT_EQ(fm_model_load(bytes.data(), bytes.size(), 7, 1), nullptr);
  EXPECT_NE(std::string(fm_last_error()).find("backend must be"), std::string::npos);
  EXPECT_EQ(fm_model_load(bytes.data(), bytes.size(), 0, 0), nullptr);
  EXPECT_NE(std::string(fm_last_error()).find("threads must be 1..64"), std::string::npos);
  EXPECT_EQ(fm_model_load_file("/nonexistent/model.fmm", 0, 1), nullptr);
  EXPECT_STREQ(fm_last_error(), "cannot open model file '/nonexistent/model.fmm'");
  EXPECT_EQ(fm_model_load_file(nullptr, 0, 1), nullptr);

  EXPECT_EQ(fm_model_run(nullptr), -1);
  EXPECT_STREQ(fm_last_error(), "fm_model_run: model is NULL");
  EXPECT_EQ(fm_model_num_inputs(nullptr), -1);
  EXPECT_EQ(fm_model_input(nullptr, 0), nullptr);
  fm_model_free(nullptr);

  fm_model* m = fm_model_load(bytes.data(), bytes.size(), 0, 1);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(fm_model_input(m, 1), nullptr);
  EXPECT_STREQ(fm_last_error(), "fm_model_input: index 1 is outside 0..0");
  EXPECT_EQ(fm_model_output(m, -1), nullptr);
  EXPECT_EQ(fm_model_input_dim(m, 0, 4), -1);
  EXPECT_STREQ(fm_last_error(), "fm_model_input_dim: dimension 4 is outside the rank 4");
  EXPECT_EQ(fm_model_metadata(m, nullptr), nullptr);
  fm_model_free(m);
}

// The full-range detector's 1x1 weights are 69% zeros: FM_BACKEND_XNNPACK lets XNNPACK run it on
// its sparse (NCHW) path where that pays (WebAssembly, ARM; x86 with AVX stays dense). Both paths
// and the reference backend must agree (the browser benchmark's tolerance: 1e-3 on raw outputs).
TEST(CApi, SparseAndDensePathsAgreeOnTheFullDetector) {
  std::ifstream f(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  ASSERT_FALSE(bytes.empty());
  const std::vector<float> input = Rng(7).Data(192 * 192 * 3);
  std::vector<std::vector<float>> outputs;
  for (int backend : {FM_BACKEND_XNNPACK, FM_BACKEND_XNNPACK_DENSE, FM_BACKEND_REFERENCE}) {
    fm_model* m = fm_model_load(bytes.data(), bytes.size(), backend, 1);
    ASSERT_NE(m, nullptr) << fm_last_error();
    const int n = fm_model_output_dim(m, 0, 1) * fm_model_output_dim(m, 0, 2);
    ASSERT_EQ(n, 2304 * 17);
    std::copy(input.begin(), input.end(), fm_model_input(m, 0));
    ASSERT_EQ(fm_model_run(m), 0) << fm_last_error();
    outputs.emplace_back(fm_model_output(m, 0), fm_model_output(m, 0) + n);
    fm_model_free(m);
  }
  float sparse_dense = 0, sparse_ref = 0, largest = 0;
  for (size_t i = 0; i < outputs[0].size(); ++i) {
    sparse_dense = std::max(sparse_dense, std::fabs(outputs[0][i] - outputs[1][i]));
    sparse_ref = std::max(sparse_ref, std::fabs(outputs[0][i] - outputs[2][i]));
    largest = std::max(largest, std::fabs(outputs[2][i]));
  }
  EXPECT_GT(largest, 10.f);
  EXPECT_LE(sparse_dense, 1e-3f);
  EXPECT_LE(sparse_ref, 1e-3f);
#if defined(__EMSCRIPTEN__)
  // In WebAssembly XNNPACK must really have taken the sparse path (other kernels, other sums).
  EXPECT_GT(sparse_dense, 0.f) << "the sparse path was not taken";
#endif
  std::printf(
      "[ sparse ] max |sparse - dense| %.3g, |sparse - reference| %.3g (|output| <= %.0f)\n",
      double(sparse_dense), double(sparse_ref), double(largest));
  EXPECT_EQ(fm_model_load(bytes.data(), bytes.size(), 3, 1), nullptr);
  EXPECT_NE(std::string(fm_last_error()).find("FM_BACKEND_XNNPACK_DENSE (2), got 3"),
            std::string::npos)
      << fm_last_error();
}

TEST(CApi, DetectEveryIsValidated) {
  EXPECT_EQ(fm_pipeline_set_detect_every(nullptr, 2), -1);
  EXPECT_STREQ(fm_last_error(), "fm_pipeline_set_detect_every: pipeline is NULL");
  std::ifstream f(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-short.fmm", std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  fm_pipeline* p = fm_pipeline_create(bytes.data(), bytes.size(), nullptr, 0, -1.f, 1);
  ASSERT_NE(p, nullptr) << fm_last_error();
  for (int bad : {0, -1, 31}) {
    EXPECT_EQ(fm_pipeline_set_detect_every(p, bad), -1);
    EXPECT_EQ(std::string(fm_last_error()),
              "fm_pipeline_set_detect_every: detect_every must be 1..30 (1 = the detector on every "
              "frame), got " +
                  std::to_string(bad));
  }
  for (int good : {1, 2, 30}) EXPECT_EQ(fm_pipeline_set_detect_every(p, good), 0) << good;
  fm_pipeline_free(p);
}

}  // namespace
}  // namespace fm::test
