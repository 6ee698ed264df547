// test_face_api.cpp - the face-api.js converter (tools/convert/face_api.cpp) on synthetic weight
// manifests written here: the graph it builds has face-api's shapes and MACs, converts and runs
// on both backends with the same result, and every malformed manifest (missing, misshapen,
// duplicate or unused weights, short shards, bad options, a JSON list that is not face-api's)
// is refused with a message naming the problem. That the converted network computes what
// face-api.js computes is checked against TensorFlow.js by tests/parity/faceapi_parity.mjs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "face_api.h"
#include "model_import.h"
#include "runtime/runtime.h"
#include "tfjs_convert.h"

namespace fm {
namespace {

namespace fs = std::filesystem;

struct W {
  std::string name;
  Shape shape;
};

// The weights of face_expression_model, in its manifest's order.
std::vector<W> FaceApiWeights() {
  std::vector<W> w;
  const int64_t ch[4] = {32, 64, 128, 256};
  int64_t in = 3;
  for (int b = 0; b < 4; ++b) {
    const std::string p = "dense" + std::to_string(b) + "/";
    const int64_t c = ch[b];
    for (int k = 0; k < 4; ++k) {
      const std::string q = p + "conv" + std::to_string(k) + "/";
      const int64_t cin = k == 0 ? in : c;
      if (b == 0 && k == 0) {
        w.push_back({q + "filters", {3, 3, cin, c}});
      } else {
        w.push_back({q + "depthwise_filter", {3, 3, cin, 1}});
        w.push_back({q + "pointwise_filter", {1, 1, cin, c}});
      }
      w.push_back({q + "bias", {c}});
    }
    in = c;
  }
  w.push_back({"fc/weights", {256, 7}});
  w.push_back({"fc/bias", {7}});
  return w;
}

class FaceApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fm_face_api_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes manifest.json + weights.bin (float32, small deterministic values); `trim` bytes are
  // cut from the end of the shard.
  std::string Write(const std::vector<W>& weights, size_t trim = 0) {
    std::string json = "[{\"paths\": [\"weights.bin\"], \"weights\": [";
    std::vector<float> data;
    uint32_t s = 7;
    for (size_t i = 0; i < weights.size(); ++i) {
      json += std::string(i ? ", " : "") + "{\"name\": \"" + weights[i].name + "\", \"shape\": [";
      for (size_t d = 0; d < weights[i].shape.size(); ++d)
        json += (d ? ", " : "") + std::to_string(weights[i].shape[d]);
      json += "], \"dtype\": \"float32\"}";
      for (int64_t k = 0; k < NumElements(weights[i].shape); ++k) {
        s = s * 1664525u + 1013904223u;
        data.push_back((float(s >> 8) / float(1 << 24) - 0.5f) * 0.3f);
      }
    }
    json += "]}]";
    std::ofstream(dir_ / "manifest.json") << json;
    std::ofstream bin(dir_ / "weights.bin", std::ios::binary);
    bin.write(reinterpret_cast<const char*>(data.data()),
              std::streamsize(data.size() * sizeof(float) - trim));
    return (dir_ / "manifest.json").string();
  }

  std::string Error(const std::vector<W>& weights, const FaceApiOptions& o, size_t trim = 0) {
    Graph g;
    const Status s = ConvertFaceApi(Write(weights, trim), o, &g);
    EXPECT_FALSE(s.ok());
    return s.message();
  }

  fs::path dir_;
};

TEST_F(FaceApiTest, WholeNetShapesMacsAndBackendsAgree) {
  const std::string path = Write(FaceApiWeights());
  ModelFormat format;
  ASSERT_TRUE(DetectModelFormat(path, &format).ok());
  EXPECT_EQ(format, ModelFormat::kFaceApi);
  auto g = std::make_shared<Graph>();
  ImportOptions io;
  const Status s = ImportModel(path, io, g.get());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(g->ShapeOf(g->inputs[0]), (Shape{1, 112, 112, 3}));
  EXPECT_EQ(g->ShapeOf(g->outputs[0]), (Shape{1, 7}));
  EXPECT_EQ(g->metadata["kind"], "classifier");
  EXPECT_EQ(g->metadata["labels"], "neutral,happy,sad,angry,fearful,disgusted,surprised");
  EXPECT_EQ(g->metadata["norm_offset"].substr(0, 6), "-0.481");  // -122.782 / 255
  // MACs counted by hand: dense0 at 56x56, dense1 28x28, dense2 14x14, dense3 7x7, fc.
  auto sep = [](int64_t hw, int64_t cin, int64_t cout) { return hw * (9 * cin + cin * cout); };
  int64_t macs = 56 * 56 * 32 * 27 + 3 * sep(56 * 56, 32, 32);
  const int64_t ch[4] = {32, 64, 128, 256}, hw[4] = {56 * 56, 28 * 28, 14 * 14, 7 * 7};
  for (int b = 1; b < 4; ++b) macs += sep(hw[b], ch[b - 1], ch[b]) + 3 * sep(hw[b], ch[b], ch[b]);
  macs += 256 * 7;
  EXPECT_EQ(ComputeGraphStats(*g).macs, macs);

  std::vector<std::vector<float>> outs;
  for (Backend b : {Backend::kReference, Backend::kXnnpack}) {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    ro.backend = b;
    ASSERT_TRUE(Runtime::Create(g, ro, &rt).ok());
    for (size_t i = 0; i < 112 * 112 * 3; ++i) rt->input(0)[i] = std::sin(float(i) * 0.01f);
    ASSERT_TRUE(rt->Run().ok());
    outs.emplace_back(rt->output(0), rt->output(0) + 7);
  }
  float sum = 0;
  for (int k = 0; k < 7; ++k) {
    EXPECT_NEAR(outs[0][size_t(k)], outs[1][size_t(k)], 1e-5f);
    sum += outs[0][size_t(k)];
  }
  EXPECT_NEAR(sum, 1.f, 1e-5f);
}

TEST_F(FaceApiTest, FeatureExtractorCuts) {
  const std::string path = Write(FaceApiWeights());
  for (auto [blocks, size, features] : {std::tuple{4, 112, 256}, {3, 96, 128}, {1, 40, 32}}) {
    FaceApiOptions o;
    o.blocks = blocks;
    o.input_size = size;
    o.features_only = true;
    Graph g;
    const Status s = ConvertFaceApi(path, o, &g);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(g.ShapeOf(g.outputs[0]), (Shape{1, features}));
    EXPECT_EQ(g.ShapeOf(g.inputs[0]), (Shape{1, size, size, 3}));
  }
  ImportOptions io;
  io.feature_blocks = 3;
  Graph g;
  ASSERT_TRUE(ImportModel(path, io, &g).ok());
  EXPECT_EQ(g.metadata["kind"], "features");
}

TEST_F(FaceApiTest, RefusesBadManifestsAndOptions) {
  std::vector<W> w = FaceApiWeights();
  FaceApiOptions o;
  // A missing weight.
  std::vector<W> missing = w;
  missing.erase(missing.begin() + 5);
  EXPECT_NE(Error(missing, o).find("'" + w[5].name + "' is missing"), std::string::npos);
  // A misshapen weight.
  std::vector<W> shaped = w;
  shaped[0].shape = {3, 3, 3, 16};
  EXPECT_NE(Error(shaped, o).find("'dense0/conv0/filters' has shape [3, 3, 3, 16]"),
            std::string::npos);
  // The same weight twice.
  std::vector<W> twice = w;
  twice.push_back(w[3]);
  EXPECT_NE(Error(twice, o).find("appears twice"), std::string::npos);
  // A weight FaceExpressionNet does not use.
  std::vector<W> extra = w;
  extra.push_back({"extra/weights", {4}});
  EXPECT_NE(Error(extra, o).find("does not use"), std::string::npos);
  // A short shard.
  EXPECT_NE(Error(w, o, 4).find("truncated shard"), std::string::npos);
  // Options.
  FaceApiOptions bad = o;
  bad.input_size = 16;
  EXPECT_NE(Error(w, bad).find("outside 32..448"), std::string::npos);
  bad = o;
  bad.blocks = 5;
  EXPECT_NE(Error(w, bad).find("outside 1..4"), std::string::npos);
  bad = o;
  bad.blocks = 2;
  EXPECT_NE(Error(w, bad).find("features_only"), std::string::npos);
  // Preprocessing options do not apply; face-api options do not apply to other formats.
  const std::string path = Write(w);
  ImportOptions io;
  io.bgr = true;
  Graph g;
  Status s = ImportModel(path, io, &g);
  EXPECT_NE(s.message().find("fixed preprocessing"), std::string::npos) << s.message();
  // A JSON list that is not a face-api manifest.
  std::ofstream(dir_ / "list.json") << "[1, 2, 3]";
  ModelFormat f;
  s = DetectModelFormat((dir_ / "list.json").string(), &f);
  EXPECT_NE(s.message().find("not a face-api.js weights manifest"), std::string::npos)
      << s.message();
  std::ofstream(dir_ / "model.json") << "{\"format\": \"layers-model\"}";
  io = ImportOptions();
  io.feature_blocks = 2;
  s = ImportModel((dir_ / "model.json").string(), io, &g);
  EXPECT_NE(s.message().find("face-api.js manifests only"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fm
