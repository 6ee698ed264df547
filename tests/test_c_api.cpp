// test_c_api.cpp - the C API (what the CLI and the wasm bindings call): real runs, and bad
// arguments answered with messages instead of crashes.
#include <string>

#include "facemask.h"
#include "model_format.h"
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

}  // namespace
}  // namespace fm::test
