// test_bad_images.cpp - what each kind of awkward or hostile picture gets, through the same path
// as the CLI (decode -> pipeline): a clear error, or the three faces of the fixture where they are.
// The fixtures in tests/fixtures/bad/ were made from tests/fixtures/three_faces_*.jpg with
// ImageMagick (formats, colour spaces, progressive, 16-bit, palette + alpha, half size) and by
// hand (EXIF orientation tags added to rotated copies, a PNG header claiming 30000 x 30000).
#include <gtest/gtest.h>

#include <filesystem>

#include "model/model_format.h"
#include "vision/pipeline.h"

namespace fm {
namespace {

struct Case {
  const char* file;
  const char* error;  // expected substring of the error, or nullptr for a picture
  int width, height;  // displayed size
  float scale;        // face positions relative to the full-size fixture
};

// Face centres (x) in the 412x215 fixture, left to right.
constexpr float kCentres[3] = {69, 226, 340};

const Case kCases[] = {
    {"empty.jpg", "image: the file is empty", 0, 0, 0},
    {"truncated.jpg", "image: cannot decode", 0, 0, 0},
    {"text_named_as.png", "image: not a supported image", 0, 0, 0},
    // found by fuzz_image: stb 2.27 wrote past its Huffman table (UBSan: index 257 of [257]);
    // the build applies stb 2.28's fix (CMakeLists.txt). The second starts with a fill byte.
    {"jpeg-huffman-overflow.jpg", "image: cannot decode (bad DHT header)", 0, 0, 0},
    {"jpeg-huffman-overflow-fill.jpg", "image: cannot decode (bad DHT header)", 0, 0, 0},
    // found by fuzz_image: an 88-byte PNG whose IDAT claims 640 MB, which stb reserved first
    {"png-chunk-bomb.png", "image: corrupt PNG (a chunk of 671088675 bytes at byte 33", 0, 0, 0},
    {"huge_dimensions.png", "image: 30000x30000 exceeds the limit of 40000000 pixels", 0, 0, 0},
    {"1x1.png", nullptr, 1, 1, 0},
    {"png_named_as.jpg", nullptr, 206, 108, 0.5f},
    {"progressive.jpg", nullptr, 412, 215, 1},
    {"cmyk.jpg", nullptr, 412, 215, 1},
    {"grey.jpg", nullptr, 412, 215, 1},
    {"16bit.png", nullptr, 206, 108, 0.5f},
    {"palette_alpha.png", nullptr, 206, 108, 0.5f},
    {"gif.gif", nullptr, 206, 108, 0.5f},
    {"bmp.bmp", nullptr, 206, 108, 0.5f},
    {"exif_orientation_6.jpg", nullptr, 412, 215, 1},  // stored 215x412, turned by its EXIF tag
    {"exif_orientation_3.jpg", nullptr, 412, 215, 1},  // stored upside down
};

TEST(BadImages, EachGetsAnErrorOrTheRightFaces) {
  auto graph = std::make_shared<Graph>();
  ASSERT_TRUE(
      ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", graph.get()).ok());
  std::unique_ptr<Pipeline> pipeline;
  ASSERT_TRUE(Pipeline::Create(graph, nullptr, {}, &pipeline).ok());
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.file);
    Image image;
    Status s = DecodeImageFile(std::string(FM_TEST_FIXTURES_DIR) + "/bad/" + c.file, &image);
    if (c.error) {
      ASSERT_FALSE(s.ok());
      EXPECT_NE(s.message().find(c.error), std::string::npos) << s.message();
      EXPECT_TRUE(image.rgb.empty());
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(image.width, c.width);
    EXPECT_EQ(image.height, c.height);
    std::vector<Face> faces;
    ASSERT_TRUE(pipeline->Run(image, &faces).ok());
    if (c.scale == 0) {
      EXPECT_TRUE(faces.empty());
      continue;
    }
    ASSERT_EQ(faces.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      const Detection& d = faces[size_t(i)].det;
      EXPECT_NEAR((d.x0 + d.x1) / 2, kCentres[i] * c.scale, 8 * c.scale);
      EXPECT_LT(d.keypoints[0][1], d.keypoints[3][1]);  // upright: eyes above the mouth
    }
  }
}

TEST(BadImages, LargePhonePhoto) {
  const std::string path = std::string(FM_SHARED_DATA_DIR) + "/demo/seed_test_nomask.jpg";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  Image image;
  ASSERT_TRUE(DecodeImageFile(path, &image).ok());
  EXPECT_EQ(image.width, 1458);
  EXPECT_EQ(image.height, 2592);
  auto graph = std::make_shared<Graph>();
  ASSERT_TRUE(
      ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", graph.get()).ok());
  std::unique_ptr<Pipeline> pipeline;
  ASSERT_TRUE(Pipeline::Create(graph, nullptr, {}, &pipeline).ok());
  std::vector<Face> faces;
  ASSERT_TRUE(pipeline->Run(image, &faces).ok());
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_NEAR((faces[0].det.x0 + faces[0].det.x1) / 2, 711, 40);
}

}  // namespace
}  // namespace fm
