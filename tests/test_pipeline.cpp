// test_pipeline.cpp - the whole pipeline with the shipped BlazeFace models: the committed fixture
// (a downscaled demo photo with three faces) always; the demo photos of ../shared/data when the
// data is present (the six group photos hold 22 faces). Also the C API's JSON on the same input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "facemask.h"
#include "model_format.h"
#include "pipeline.h"

namespace fm {
namespace {

const std::string kModels = FM_DEFAULT_MODEL_DIR;
const std::string kFixtures = FM_TEST_FIXTURES_DIR;
const std::string kData = FM_SHARED_DATA_DIR;

std::unique_ptr<Pipeline> MakePipeline(const std::string& detector) {
  auto graph = std::make_shared<Graph>();
  Status s = ReadModelFile(kModels + "/" + detector, graph.get());
  EXPECT_TRUE(s.ok()) << s.message();
  std::unique_ptr<Pipeline> p;
  s = Pipeline::Create(graph, nullptr, {}, &p);
  EXPECT_TRUE(s.ok()) << s.message();
  return p;
}

std::vector<Detection> Detect(Pipeline& p, const std::string& path) {
  Image image;
  Status s = DecodeImageFile(path, &image);
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<Detection> dets;
  s = p.Detect(image, &dets);
  EXPECT_TRUE(s.ok()) << s.message();
  for (const Detection& d : dets) {
    EXPECT_GE(d.x0, 0.f);
    EXPECT_GE(d.y0, 0.f);
    EXPECT_LE(d.x1, float(image.width));
    EXPECT_LE(d.y1, float(image.height));
    EXPECT_GT(d.x1 - d.x0, 10.f);
  }
  return dets;
}

TEST(Pipeline, FixtureHasThreeFacesLeftToRight) {
  for (const char* model : {"blazeface-full.fmm", "blazeface-short.fmm"}) {
    auto p = MakePipeline(model);
    ASSERT_TRUE(p);
    const auto dets = Detect(*p, kFixtures + "/three_faces_1mask_1nomask_1chin.jpg");
    ASSERT_EQ(dets.size(), 3u) << model;
    // Hand-checked face centres in the 412x215 fixture: x ~ 69, 226, 340; y ~ 100.
    const float expected_x[3] = {69, 226, 340};
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR((dets[size_t(i)].x0 + dets[size_t(i)].x1) / 2, expected_x[i], 12) << model;
      EXPECT_NEAR((dets[size_t(i)].y0 + dets[size_t(i)].y1) / 2, 100, 20) << model;
      // Eyes above the mouth, right eye (keypoint 0) left of the left eye.
      EXPECT_LT(dets[size_t(i)].keypoints[0][0], dets[size_t(i)].keypoints[1][0]);
      EXPECT_LT(dets[size_t(i)].keypoints[0][1], dets[size_t(i)].keypoints[3][1]);
    }
  }
}

TEST(Pipeline, DemoPhotosFromSharedData) {
  if (!std::filesystem::exists(kData + "/demo")) GTEST_SKIP() << "no " << kData << "/demo";
  auto p = MakePipeline("blazeface-full.fmm");
  ASSERT_TRUE(p);
  EXPECT_EQ(Detect(*p, kData + "/demo/chandrikadeb7_pic2_1mask_1nomask_1chin.jpg").size(), 3u);
  size_t total = 0;
  for (int i = 1; i <= 6; ++i)
    total += Detect(*p, kData + "/demo/group_nomask_sample" + std::to_string(i) + ".jpg").size();
  EXPECT_EQ(total, 22u);
}

TEST(Pipeline, CApiJsonOnEncodedAndRawPixels) {
  std::ifstream f(kModels + "/blazeface-short.fmm", std::ios::binary);
  const std::vector<uint8_t> model((std::istreambuf_iterator<char>(f)), {});
  std::ifstream j(kFixtures + "/three_faces_1mask_1nomask_1chin.jpg", std::ios::binary);
  const std::vector<uint8_t> jpg((std::istreambuf_iterator<char>(j)), {});
  fm_pipeline* p = fm_pipeline_create(model.data(), model.size(), nullptr, 0, -1.f, 1);
  ASSERT_NE(p, nullptr) << fm_last_error();
  const std::string json = fm_pipeline_run_encoded(p, jpg.data(), jpg.size());
  EXPECT_EQ(json.rfind("{\"width\": 412, \"height\": 215, \"faces\": [{\"box\": [", 0), 0u) << json;
  size_t boxes = 0;
  for (size_t at = json.find("\"box\""); at != std::string::npos; at = json.find("\"box\"", at + 1))
    ++boxes;
  EXPECT_EQ(boxes, 3u) << json;
  EXPECT_EQ(json.find("\"id\""), std::string::npos);  // stills are not tracked
  // The same picture as RGBA pixels, twice as video frames: ids 1..3, stable.
  Image image;
  ASSERT_TRUE(DecodeImage(jpg.data(), jpg.size(), &image).ok());
  std::vector<uint8_t> rgba(size_t(image.width) * size_t(image.height) * 4, 255);
  for (size_t i = 0; i < size_t(image.width) * size_t(image.height); ++i)
    for (int c = 0; c < 3; ++c) rgba[i * 4 + size_t(c)] = image.rgb[i * 3 + size_t(c)];
  for (double t : {0.0, 33.0}) {
    const char* out = fm_pipeline_track_pixels(p, rgba.data(), image.width, image.height, 4,
                                               image.width * 4, t);
    ASSERT_NE(out, nullptr) << fm_last_error();
    const std::string s = out;
    EXPECT_NE(s.find("\"id\": 1}"), std::string::npos) << s;
    EXPECT_NE(s.find("\"id\": 3}"), std::string::npos) << s;
  }
  EXPECT_EQ(fm_pipeline_run_pixels(p, rgba.data(), 0, image.height, 4, 0), nullptr);
  EXPECT_EQ(std::string(fm_last_error()).rfind("pixels: size 0x215", 0), 0u) << fm_last_error();
  EXPECT_EQ(fm_pipeline_run_encoded(p, jpg.data(), 100), nullptr);  // truncated JPEG
  EXPECT_NE(std::string(fm_last_error()).find("image:"), std::string::npos) << fm_last_error();
  EXPECT_EQ(fm_pipeline_track_pixels(p, rgba.data(), image.width, image.height, 4,
                                     image.width * 4, NAN),
            nullptr);
  fm_pipeline_free(p);
  EXPECT_EQ(fm_pipeline_create(jpg.data(), jpg.size(), nullptr, 0, -1.f, 1), nullptr);
  EXPECT_NE(std::string(fm_last_error()).find("detector model: bad magic"), std::string::npos)
      << fm_last_error();
}

}  // namespace
}  // namespace fm
