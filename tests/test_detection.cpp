// test_detection.cpp - BlazeFace post-processing against values worked out by hand: anchor
// layouts of both MediaPipe configurations, box/keypoint decoding, weighted NMS, the upright crop
// and EXIF orientation.
#include <gtest/gtest.h>

#include <cmath>

#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

#include "vision/detection.h"
#include "vision/image.h"
#include "vision/pipeline.h"
#include "vision/tracker.h"

namespace fm {
namespace {

TEST(Detection, ShortRangeAnchors) {
  const std::vector<Anchor> a = GenerateAnchors(AnchorOptions());
  ASSERT_EQ(a.size(), 896u);  // 16x16x2 + 8x8x6
  EXPECT_FLOAT_EQ(a[0].x_center, 0.5f / 16);
  EXPECT_FLOAT_EQ(a[1].x_center, 0.5f / 16);  // two anchors per cell at stride 8
  EXPECT_FLOAT_EQ(a[2].x_center, 1.5f / 16);
  EXPECT_FLOAT_EQ(a[511].x_center, 15.5f / 16);
  EXPECT_FLOAT_EQ(a[511].y_center, 15.5f / 16);
  EXPECT_FLOAT_EQ(a[512].x_center, 0.5f / 8);  // stride-16 layers: six per cell
  EXPECT_FLOAT_EQ(a[517].x_center, 0.5f / 8);
  EXPECT_FLOAT_EQ(a[518].x_center, 1.5f / 8);
  EXPECT_FLOAT_EQ(a[895].y_center, 7.5f / 8);
}

TEST(Detection, FullRangeAnchors) {
  AnchorOptions o;
  o.input_size = 192;
  o.strides = {4};
  o.interpolated_scale_aspect_ratio = 0;
  const std::vector<Anchor> a = GenerateAnchors(o);
  ASSERT_EQ(a.size(), 2304u);  // 48x48x1
  EXPECT_FLOAT_EQ(a[49].x_center, 1.5f / 48);
  EXPECT_FLOAT_EQ(a[49].y_center, 1.5f / 48);
}

TEST(Detection, DecodeOneBox) {
  const std::vector<Anchor> anchors = GenerateAnchors(AnchorOptions());
  std::vector<float> raw(896 * 17, 0.f);
  for (int i = 0; i < 896; ++i) raw[size_t(i) * 17 + 16] = -10.f;  // all below threshold
  float* r = &raw[600 * 17];
  r[0] = 4;   // x offset in input pixels
  r[1] = -2;  // y offset
  r[2] = 20;  // width
  r[3] = 30;  // height
  r[4] = -6;  // right eye x offset
  r[5] = -5;
  r[16] = 2.f;  // logit
  const std::vector<Detection> d = DecodeBlazeFace(raw.data(), 17, 16, 0, anchors, 128, {});
  ASSERT_EQ(d.size(), 1u);
  const float ax = anchors[600].x_center * 128, ay = anchors[600].y_center * 128;
  EXPECT_NEAR(d[0].x0, ax + 4 - 10, 1e-4);
  EXPECT_NEAR(d[0].x1, ax + 4 + 10, 1e-4);
  EXPECT_NEAR(d[0].y0, ay - 2 - 15, 1e-4);
  EXPECT_NEAR(d[0].y1, ay - 2 + 15, 1e-4);
  EXPECT_NEAR(d[0].keypoints[0][0], ax - 6, 1e-4);
  EXPECT_NEAR(d[0].keypoints[0][1], ay - 5, 1e-4);
  EXPECT_NEAR(d[0].score, 1.f / (1.f + std::exp(-2.f)), 1e-6);
  DecodeOptions strict;
  strict.min_score = 0.9f;  // sigmoid(2) = 0.881
  EXPECT_TRUE(DecodeBlazeFace(raw.data(), 17, 16, 0, anchors, 128, strict).empty());
}

Detection Box(float x0, float y0, float x1, float y1, float score) {
  Detection d{};
  d.x0 = x0;
  d.y0 = y0;
  d.x1 = x1;
  d.y1 = y1;
  d.score = score;
  for (auto& k : d.keypoints) k[0] = x0, k[1] = y0;
  return d;
}

TEST(Detection, WeightedNmsMergesOverlapsByScore) {
  // a and b overlap with IoU 0.6; c is elsewhere.
  const Detection a = Box(0, 0, 10, 10, 0.9f), b = Box(2, 0, 12, 10, 0.6f);
  const Detection c = Box(50, 50, 60, 60, 0.7f);
  EXPECT_NEAR(IoU(a, b), 80.f / 120.f, 1e-6);
  const std::vector<Detection> out = WeightedNms({b, c, a}, 0.3f);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // the top score survives
  EXPECT_NEAR(out[0].x0, (0.9f * 0 + 0.6f * 2) / 1.5f, 1e-5);
  EXPECT_NEAR(out[0].x1, (0.9f * 10 + 0.6f * 12) / 1.5f, 1e-5);
  EXPECT_NEAR(out[0].keypoints[0][0], 0.8f, 1e-5);
  EXPECT_FLOAT_EQ(out[1].x0, 50.f);
  // Below the IoU threshold nothing merges.
  EXPECT_EQ(WeightedNms({a, b}, 0.7f).size(), 2u);
}

TEST(Detection, UprightCropFollowsTheEyes) {
  Detection d = Box(100, 200, 140, 240, 0.9f);       // centre (120, 220), side 40
  d.keypoints[0][0] = 110, d.keypoints[0][1] = 210;  // right eye (image left)
  d.keypoints[1][0] = 130, d.keypoints[1][1] = 210;  // left eye: level
  Affine m = Pipeline::UprightCrop(d, 64, 1.5f);
  // Crop centre (32, 32) -> face centre; crop spans 60 px.
  EXPECT_NEAR(m.m[0] * 32 + m.m[1] * 32 + m.m[2], 120.f, 1e-4);
  EXPECT_NEAR(m.m[3] * 32 + m.m[4] * 32 + m.m[5], 220.f, 1e-4);
  EXPECT_NEAR(m.m[0], 60.f / 64, 1e-6);
  EXPECT_NEAR(m.m[1], 0.f, 1e-6);
  // Head turned 90 degrees (left eye straight below the right): crop x runs down the image.
  d.keypoints[1][0] = 110, d.keypoints[1][1] = 230;
  m = Pipeline::UprightCrop(d, 64, 1.5f);
  EXPECT_NEAR(m.m[0], 0.f, 1e-6);
  EXPECT_NEAR(m.m[3], 60.f / 64, 1e-6);
  EXPECT_NEAR(m.m[0] * 32 + m.m[1] * 32 + m.m[2], 120.f, 1e-4);
}

// A classifier of input H x W gets a crop at one scale on both axes, its shorter side spanning the
// box side x margin, centred on the face.
TEST(Detection, UprightCropOfANonSquareClassifierIsCentred) {
  Detection d = Box(100, 200, 140, 240, 0.9f);  // centre (120, 220), side 40
  d.keypoints[0][0] = 110, d.keypoints[0][1] = 210;
  d.keypoints[1][0] = 130, d.keypoints[1][1] = 210;
  for (const auto& wh : {std::make_pair(32, 64), std::make_pair(64, 32)}) {
    const Affine m = Pipeline::UprightCrop(d, wh.first, wh.second, 1.5f);
    const float cx = float(wh.first) / 2, cy = float(wh.second) / 2;
    EXPECT_NEAR(m.m[0] * cx + m.m[1] * cy + m.m[2], 120.f, 1e-4);
    EXPECT_NEAR(m.m[3] * cx + m.m[4] * cy + m.m[5], 220.f, 1e-4);
    EXPECT_NEAR(m.m[0], 60.f / 32, 1e-6);
    EXPECT_NEAR(m.m[4], 60.f / 32, 1e-6);
  }
}

// CountAnchors counts what GenerateAnchors makes: shared feature maps, interpolated anchors.
TEST(Detection, CountAnchorsMatchesGenerateAnchors) {
  AnchorOptions o;
  for (const auto& strides : std::vector<std::vector<int>>{
           {8, 16, 16, 16}, {4}, {1, 2, 1, 2}, {16, 16, 8, 16}, {3, 7}, {128}})
    for (float interpolated : {0.f, 1.f})
      for (int size : {128, 192, 100}) {
        o.strides = strides;
        o.interpolated_scale_aspect_ratio = interpolated;
        o.input_size = size;
        EXPECT_EQ(CountAnchors(o), int64_t(GenerateAnchors(o).size())) << size;
      }
}

void Collect(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

// A 16x8 JPEG, left half black and right half white, with an EXIF orientation tag.
std::vector<uint8_t> JpegWithOrientation(int orientation, bool big_endian) {
  std::vector<uint8_t> rgb(16 * 8 * 3);
  for (int y = 0; y < 8; ++y)
    for (int x = 8; x < 16; ++x)
      for (int c = 0; c < 3; ++c) rgb[size_t((y * 16 + x) * 3 + c)] = 255;
  std::vector<uint8_t> jpg;
  stbi_write_jpg_to_func(Collect, &jpg, 16, 8, 3, rgb.data(), 95);
  const uint8_t o = uint8_t(orientation);
  std::vector<uint8_t> tiff =
      big_endian ? std::vector<uint8_t>{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
                                        0,   0,   0, 1,  0, o, 0, 0, 0, 0, 0,    0,    0}
                 : std::vector<uint8_t>{'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3,
                                        0,   1,   0,  0, 0, o, 0, 0, 0, 0, 0,    0,    0};
  std::vector<uint8_t> app1 = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  app1.insert(app1.end(), tiff.begin(), tiff.end());
  const size_t len = app1.size() - 2;
  app1[2] = uint8_t(len >> 8);
  app1[3] = uint8_t(len);
  jpg.insert(jpg.begin() + 2, app1.begin(), app1.end());
  return jpg;
}

TEST(Exif, OrientationIsReadAndApplied) {
  for (bool be : {false, true}) {
    const std::vector<uint8_t> jpg = JpegWithOrientation(6, be);
    EXPECT_EQ(JpegExifOrientation(jpg.data(), jpg.size()), 6);
    Image img;
    ASSERT_TRUE(DecodeImage(jpg.data(), jpg.size(), &img).ok());
    // Rotated 90 degrees clockwise: 8 wide, 16 tall, the stored left (black) half on top.
    ASSERT_EQ(img.width, 8);
    ASSERT_EQ(img.height, 16);
    EXPECT_LT(img.rgb[(2 * 8 + 4) * 3], 40);
    EXPECT_GT(img.rgb[(13 * 8 + 4) * 3], 215);
  }
  const std::vector<uint8_t> eight = JpegWithOrientation(8, false);
  Image img;
  ASSERT_TRUE(DecodeImage(eight.data(), eight.size(), &img).ok());
  EXPECT_EQ(img.height, 16);
  EXPECT_GT(img.rgb[(2 * 8 + 4) * 3], 215);  // counter-clockwise: white half on top
  const std::vector<uint8_t> three = JpegWithOrientation(3, false);
  ASSERT_TRUE(DecodeImage(three.data(), three.size(), &img).ok());
  EXPECT_EQ(img.width, 16);
  EXPECT_GT(img.rgb[(4 * 16 + 2) * 3], 215);  // rotated 180: white half on the left
}

TEST(Exif, HostileHeadersAreIgnored) {
  std::vector<uint8_t> jpg = JpegWithOrientation(6, false);
  // Every truncation and a few corruptions: never out of bounds, orientation 1 or 6.
  for (size_t n = 0; n <= 60 && n <= jpg.size(); ++n) {
    const int o = JpegExifOrientation(jpg.data(), n);
    EXPECT_TRUE(o == 1 || o == 6) << n;
  }
  std::vector<uint8_t> bad = jpg;
  bad[4] = 0xFF;  // segment length beyond the file
  bad[5] = 0xFF;
  EXPECT_EQ(JpegExifOrientation(bad.data(), bad.size()), 1);
  bad = jpg;
  bad[18] = 0xFF;  // IFD offset far away
  EXPECT_EQ(JpegExifOrientation(bad.data(), bad.size()), 1);
  EXPECT_EQ(JpegExifOrientation(nullptr, 0), 1);
}

Face TrackedFace(float x, float y, float p_mask) {
  Face f;
  f.det = Box(x, y, x + 40, y + 40, 0.9f);
  f.probs = {p_mask, 1.f - p_mask, 0.f};
  f.label = p_mask >= 0.5f ? 0 : 1;
  return f;
}

TEST(Tracker, IdsFollowMovingFacesAndLabelsStopFlickering) {
  Tracker tracker;
  std::vector<int> ids;
  int raw_flips = 0, smoothed_flips = 0, last_raw = -1, last_smoothed = -1;
  for (int frame = 0; frame < 60; ++frame) {
    // Face A drifts right; its raw mask probability wobbles around 0.55 (raw labels flicker).
    const float p = frame % 2 ? 0.45f : 0.65f;
    std::vector<Face> faces = {TrackedFace(100.f + 2.f * float(frame), 50, p),
                               TrackedFace(300, 60, 0.1f)};
    const int raw = faces[0].label;
    tracker.Update(frame * 33.0, &faces, &ids);
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], 1) << frame;
    EXPECT_EQ(ids[1], 2) << frame;
    raw_flips += last_raw >= 0 && raw != last_raw;
    smoothed_flips += last_smoothed >= 0 && faces[0].label != last_smoothed;
    last_raw = raw;
    last_smoothed = faces[0].label;
    EXPECT_EQ(faces[1].label, 1);
  }
  EXPECT_EQ(raw_flips, 59);
  EXPECT_EQ(smoothed_flips, 0);
  // A face that appears far away gets a new id; one unseen for long is forgotten.
  std::vector<Face> faces = {TrackedFace(600, 400, 0.9f)};
  tracker.Update(60 * 33.0, &faces, &ids);
  EXPECT_EQ(ids[0], 3);
  faces = {TrackedFace(300, 60, 0.1f)};
  tracker.Update(60 * 33.0 + 5000.0, &faces, &ids);
  EXPECT_EQ(ids[0], 4);
}

TEST(Tracker, ClearChangeOfClassGoesThrough) {
  Tracker tracker;
  std::vector<int> ids;
  std::vector<Face> faces;
  for (int frame = 0; frame < 10; ++frame) {
    faces = {TrackedFace(100, 100, 0.95f)};
    tracker.Update(frame * 33.0, &faces, &ids);
  }
  EXPECT_EQ(faces[0].label, 0);
  for (int frame = 10; frame < 40; ++frame) {  // the mask comes off
    faces = {TrackedFace(100, 100, 0.02f)};
    tracker.Update(frame * 33.0, &faces, &ids);
  }
  EXPECT_EQ(faces[0].label, 1);
  EXPECT_LT(faces[0].probs[0], 0.1f);
}

// Confidence follows the smoothed probabilities: a face wobbling around 0.55 stays a guess under
// the default unsure_below (0.6) although each raw frame alternates 0.45 / 0.65; a steady one
// is sure.
TEST(Tracker, ConfidenceIsTheSmoothedLabels) {
  Tracker tracker;
  std::vector<int> ids;
  std::vector<Face> faces;
  for (int frame = 0; frame < 30; ++frame) {
    faces = {TrackedFace(100, 100, frame % 2 ? 0.45f : 0.65f), TrackedFace(300, 100, 0.95f)};
    tracker.Update(frame * 33.0, &faces, &ids);
    if (frame < 5) continue;
    EXPECT_FALSE(faces[0].confident) << frame << ": p " << faces[0].probs[0];
    EXPECT_TRUE(faces[1].confident) << frame;
  }
}

}  // namespace
}  // namespace fm
