// test_image.cpp - decoding, pixel import and the sampling conventions documented in image.h,
// checked against values worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

#include "rng.h"
#include "vision/image.h"

namespace fm {
namespace {

Image Gradient(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[size_t((y * w + x) * 3)];
      p[0] = uint8_t(x * 10);
      p[1] = uint8_t(y * 10);
      p[2] = uint8_t(200);
    }
  return img;
}

void Collect(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

TEST(Image, PngRoundTripIsExact) {
  const Image img = Gradient(13, 7);
  std::vector<uint8_t> png;
  ASSERT_TRUE(stbi_write_png_to_func(Collect, &png, 13, 7, 3, img.rgb.data(), 13 * 3));
  Image back;
  Status s = DecodeImage(png.data(), png.size(), &back);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(back.width, 13);
  EXPECT_EQ(back.height, 7);
  EXPECT_EQ(back.rgb, img.rgb);
}

TEST(Image, GreyAndAlphaBecomeRgb) {
  const uint8_t grey[4] = {0, 100, 200, 255};
  std::vector<uint8_t> png;
  ASSERT_TRUE(stbi_write_png_to_func(Collect, &png, 2, 2, 1, grey, 2));
  Image back;
  ASSERT_TRUE(DecodeImage(png.data(), png.size(), &back).ok());
  EXPECT_EQ(back.rgb, (std::vector<uint8_t>{0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255}));
  const uint8_t rgba[8] = {10, 20, 30, 0, 40, 50, 60, 128};
  png.clear();
  ASSERT_TRUE(stbi_write_png_to_func(Collect, &png, 2, 1, 4, rgba, 8));
  ASSERT_TRUE(DecodeImage(png.data(), png.size(), &back).ok());
  EXPECT_EQ(back.rgb, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
}

TEST(Image, BadBytesGetClearErrors) {
  Image img;
  EXPECT_EQ(DecodeImage(nullptr, 0, &img).message(), "image: the file is empty");
  const uint8_t junk[] = "this is not an image at all";
  EXPECT_NE(DecodeImage(junk, sizeof junk, &img).message().find("not a supported image"),
            std::string::npos);
  // PNGs whose headers claim 20000 x 20000 and 9000 x 9000 pixels: refused before decoding.
  std::vector<uint8_t> png;
  const Image small = Gradient(4, 4);
  ASSERT_TRUE(stbi_write_png_to_func(Collect, &png, 4, 4, 3, small.rgb.data(), 12));
  const uint8_t big[8] = {0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20};  // IHDR width/height, big-endian
  std::copy(big, big + 8, png.begin() + 16);
  Status s = DecodeImage(png.data(), png.size(), &img);
  EXPECT_NE(s.message().find("20000x20000 exceeds the limit of 40000000 pixels"), std::string::npos)
      << s.message();
  const uint8_t nine[8] = {0, 0, 0x23, 0x28, 0, 0, 0x23, 0x28};
  std::copy(nine, nine + 8, png.begin() + 16);
  s = DecodeImage(png.data(), png.size(), &img);
  EXPECT_NE(s.message().find("9000x9000 exceeds the limit"), std::string::npos) << s.message();
  // Truncated PNG.
  ASSERT_TRUE(DecodeImage(png.data(), 30, &img).message().size() > 0);
  EXPECT_TRUE(img.rgb.empty());
}

TEST(Image, PixelsFromRgbaWithStride) {
  const uint8_t rgba[2 * 12] = {1, 2, 3, 9, 4,  5,  6,  9, 0, 0, 0, 0,  // row 0 + 4 bytes slack
                                7, 8, 9, 9, 10, 11, 12, 9, 0, 0, 0, 0};
  ImageView view;
  ASSERT_TRUE(ViewPixels(rgba, 2, 2, 4, 12, &view).ok());
  EXPECT_EQ(view.pixels, rgba);  // read in place, not copied
  EXPECT_EQ(view.Row(1), rgba + 12);
  EXPECT_EQ(Downscale(view, 1).rgb, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(ViewPixels(rgba, 2, 2, 4, 7, &view).message(),
            "pixels: stride 7 is less than width * channels = 8");
  EXPECT_TRUE(view.empty());
  EXPECT_EQ(ViewPixels(rgba, 0, 2, 4, 12, &view).message().rfind("pixels: size 0x2", 0), 0u);
  EXPECT_EQ(ViewPixels(rgba, 2, 2, 2, 12, &view).message(),
            "pixels: channels must be 3 or 4, got 2");
  EXPECT_EQ(ViewPixels(nullptr, 2, 2, 4, 12, &view).message(), "pixels: null pointer");
}

// Large photos are box-filtered into a buffer the pipeline keeps: the same size again reuses it
// (no allocation per frame).
TEST(Image, DownscaleReusesItsBuffer) {
  std::vector<uint8_t> rgba(size_t(640) * 480 * 4, 7);
  ImageView view;
  ASSERT_TRUE(ViewPixels(rgba.data(), 640, 480, 4, 640 * 4, &view).ok());
  Image out;
  Downscale(view, 2, &out);
  const uint8_t* first = out.rgb.data();
  rgba[0] = 200;
  Downscale(view, 2, &out);
  EXPECT_EQ(out.rgb.data(), first);
  EXPECT_EQ(out.width, 320);
  EXPECT_EQ(out.rgb[0], (200 + 7 * 3 + 2) / 4);  // the new frame's pixels, rounded mean
}

TEST(Image, IdentityWarpCopiesPixels) {
  const Image img = Gradient(5, 4);
  std::vector<float> t(5 * 4 * 3);
  WarpToTensor(img, Affine(), 5, 4, Normalization(), t.data());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(t[i], float(img.rgb[i]));
}

TEST(Image, NormalizationAndBgr) {
  const Image img = Gradient(2, 1);  // pixels (0,0,200), (10,0,200)
  Normalization n;
  for (int c = 0; c < 3; ++c) {
    n.scale[c] = 2.f / 255.f;
    n.offset[c] = -1.f;
  }
  n.bgr = true;
  std::vector<float> t(6);
  WarpToTensor(img, Affine(), 2, 1, n, t.data());
  EXPECT_FLOAT_EQ(t[0], 200.f * 2.f / 255.f - 1.f);  // B first
  EXPECT_FLOAT_EQ(t[2], -1.f);                       // R = 0
  EXPECT_FLOAT_EQ(t[5], 10.f * 2.f / 255.f - 1.f);
}

TEST(Image, HalfPixelUpscaleByTwo) {
  // A 2x1 image [0, 100] doubled: centres map to -0.25, 0.25, 0.75, 1.25 in index space ->
  // clamped 0, 25, 75, 100.
  Image img;
  img.width = 2;
  img.height = 1;
  img.rgb = {0, 0, 0, 100, 100, 100};
  std::vector<float> t(4 * 1 * 3);
  WarpToTensor(img, CropMap(0, 0, 2, 1, 4, 1), 4, 1, Normalization(), t.data());
  EXPECT_FLOAT_EQ(t[0], 0.f);
  EXPECT_FLOAT_EQ(t[3], 25.f);
  EXPECT_FLOAT_EQ(t[6], 75.f);
  EXPECT_FLOAT_EQ(t[9], 100.f);
}

TEST(Image, LetterboxCentresAndPads) {
  const Image img = Gradient(20, 10);
  const Letterbox lb = ComputeLetterbox(20, 10, 8, 8);
  EXPECT_FLOAT_EQ(lb.scale, 0.4f);
  EXPECT_FLOAT_EQ(lb.pad_x, 0.f);
  EXPECT_FLOAT_EQ(lb.pad_y, 2.f);
  EXPECT_FLOAT_EQ(lb.ToSourceX(4.f), 10.f);
  EXPECT_FLOAT_EQ(lb.ToSourceY(2.f), 0.f);
  Normalization n;
  n.pad = -7.f;
  std::vector<float> t(8 * 8 * 3);
  WarpToTensor(img, lb.map, 8, 8, n, t.data());
  for (int x = 0; x < 8; ++x) {
    EXPECT_EQ(t[size_t((0 * 8 + x) * 3)], -7.f);  // rows 0-1 and 6-7 are padding
    EXPECT_EQ(t[size_t((7 * 8 + x) * 3)], -7.f);
    EXPECT_NE(t[size_t((3 * 8 + x) * 3 + 2)], -7.f);
    EXPECT_FLOAT_EQ(t[size_t((3 * 8 + x) * 3 + 2)], 200.f);  // blue is constant inside
  }
  // Row 3's centre (3.5) maps to source y = (3.5 - 2) / 0.4 = 3.75 -> index 3.25 -> 32.5.
  EXPECT_FLOAT_EQ(t[size_t((3 * 8 + 0) * 3 + 1)], 32.5f);
}

// The axis-aligned fast path (letterbox, tiles, crops) and the general path (rotated crops) vs a
// plain double-precision bilinear sampler, over random images, scales, offsets and flips that
// reach outside the picture.
double NaiveSample(const Image& img, const Affine& a, int x, int y, int k, const Normalization& n) {
  const double cx = x + 0.5, cy = y + 0.5;
  const double u = a.m[0] * cx + a.m[1] * cy + a.m[2] - 0.5;
  const double v = a.m[3] * cx + a.m[4] * cy + a.m[5] - 0.5;
  if (u < -0.5 || v < -0.5 || u > img.width - 0.5 || v > img.height - 0.5) return n.pad;
  const double uc = std::min(std::max(u, 0.0), double(img.width - 1));
  const double vc = std::min(std::max(v, 0.0), double(img.height - 1));
  const int x0 = int(uc), y0 = int(vc);
  const int x1 = std::min(x0 + 1, img.width - 1), y1 = std::min(y0 + 1, img.height - 1);
  const int c = n.bgr ? 2 - k : k;
  auto px = [&](int xx, int yy) { return double(img.rgb[size_t((yy * img.width + xx) * 3 + c)]); };
  const double fx = uc - x0, fy = vc - y0;
  const double top = px(x0, y0) * (1 - fx) + px(x1, y0) * fx;
  const double bot = px(x0, y1) * (1 - fx) + px(x1, y1) * fx;
  return (top * (1 - fy) + bot * fy) * n.scale[k] + n.offset[k];
}

TEST(Image, WarpMatchesNaiveBilinear) {
  test::Rng rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    Image img;
    img.width = rng.Int(1, 40);
    img.height = rng.Int(1, 40);
    img.rgb.resize(size_t(img.width * img.height * 3));
    for (auto& p : img.rgb) p = uint8_t(rng.Int(0, 255));
    const int w = rng.Int(1, 50), h = rng.Int(1, 50);
    Affine a;
    const float angle = trial % 3 == 0 ? rng.Uniform(-1.f, 1.f) : 0.f;
    const float sx = rng.Uniform(0.1f, 3.f) * (rng.Chance(20) ? -1.f : 1.f);
    const float sy = rng.Uniform(0.1f, 3.f);
    a.m[0] = sx * std::cos(angle);
    a.m[1] = angle == 0.f ? 0.f : -sy * std::sin(angle);
    a.m[3] = angle == 0.f ? 0.f : sx * std::sin(angle);
    a.m[4] = sy * std::cos(angle);
    a.m[2] = rng.Uniform(-20.f, float(img.width));
    a.m[5] = rng.Uniform(-20.f, float(img.height));
    Normalization n;
    n.bgr = rng.Chance(50);
    n.pad = -3.f;
    for (int k = 0; k < 3; ++k) {
      n.scale[k] = rng.Uniform(0.001f, 1.f);
      n.offset[k] = rng.Uniform(-1.f, 1.f);
    }
    std::vector<float> t(size_t(w * h * 3));
    WarpToTensor(img, a, w, h, n, t.data());
    int edge = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < 3; ++k) {
          const double want = NaiveSample(img, a, x, y, k, n);
          const float got = t[size_t((y * w + x) * 3 + k)];
          // Pixels whose centre lands within float rounding of the picture's edge may go either
          // way.
          if ((want == n.pad) != (got == n.pad)) {
            ++edge;
            continue;
          }
          ASSERT_NEAR(got, want, 1e-3 * std::max(1.0, std::abs(want)))
              << "trial " << trial << " at " << x << "," << y << "," << k;
        }
    EXPECT_LE(edge, 3 * (w + h)) << "trial " << trial;  // at most an edge row or column
  }
}

TEST(Image, BoxDownscaleAverages) {
  Image img;
  img.width = 3;
  img.height = 2;
  img.rgb = {0, 0, 0, 10, 10, 10, 50, 50, 50, 20, 20, 20, 30, 30, 30, 70, 70, 70};
  const Image d = Downscale(img, 2);
  EXPECT_EQ(d.width, 2);
  EXPECT_EQ(d.height, 1);
  EXPECT_EQ(d.rgb, (std::vector<uint8_t>{15, 15, 15, 60, 60, 60}));
}

// Camera frames are read in place: an RGBA view with slack at the end of each row gives the same
// tensors, bit for bit, as its RGB copy (axis-aligned and rotated maps), and the same downscale.
TEST(Image, RgbaViewReadsLikeItsRgbCopy) {
  test::Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const int w = rng.Int(1, 60), h = rng.Int(1, 60), slack = rng.Int(0, 9);
    const int stride = w * 4 + slack;
    std::vector<uint8_t> rgba(size_t(stride) * size_t(h));
    for (auto& p : rgba) p = uint8_t(rng.Int(0, 255));
    ImageView view;
    ASSERT_TRUE(ViewPixels(rgba.data(), w, h, 4, stride, &view).ok());
    Image copy;  // the oracle: the RGB bytes copied out by hand
    copy.width = w;
    copy.height = h;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c)
          copy.rgb.push_back(rgba[size_t(y) * size_t(stride) + size_t(x) * 4 + size_t(c)]);
    Affine a;
    const float angle = trial % 2 ? rng.Uniform(-1.f, 1.f) : 0.f;
    const float sc = rng.Uniform(0.2f, 3.f);
    a.m[0] = sc * std::cos(angle);
    a.m[1] = -sc * std::sin(angle);
    a.m[3] = sc * std::sin(angle);
    a.m[4] = sc * std::cos(angle);
    a.m[2] = rng.Uniform(-10.f, float(w));
    a.m[5] = rng.Uniform(-10.f, float(h));
    Normalization n;
    n.bgr = rng.Chance(50);
    n.scale[0] = n.scale[1] = n.scale[2] = 1.f / 255.f;
    const int dw = rng.Int(1, 40), dh = rng.Int(1, 40);
    std::vector<float> from_view(size_t(dw * dh * 3)), from_copy(from_view.size());
    WarpToTensor(view, a, dw, dh, n, from_view.data());
    WarpToTensor(copy, a, dw, dh, n, from_copy.data());
    ASSERT_EQ(from_view, from_copy) << "trial " << trial;
    const int factor = rng.Int(1, 4);
    const Image dv = Downscale(view, factor), dc = Downscale(copy, factor);
    EXPECT_EQ(dv.width, dc.width);
    EXPECT_EQ(dv.rgb, dc.rgb) << "trial " << trial;
  }
  ImageView view;
  const uint8_t px[4] = {1, 2, 3, 4};
  EXPECT_EQ(ViewPixels(px, 1, 1, 4, 3, &view).message(),
            "pixels: stride 3 is less than width * channels = 4");
  EXPECT_TRUE(view.empty());
  Image broken;  // an Image whose buffer does not match its size reads as empty
  broken.width = broken.height = 2;
  EXPECT_TRUE(ImageView(broken).empty());
}

// Greyscale models: one luma channel per pixel, the BT.601 mix of the RGB warp's (unnormalised)
// values then scale[0] / offset[0], whatever the channel order; padding as given.
TEST(Image, GreyWarpIsTheLumaOfTheRgbWarp) {
  test::Rng rng(5);
  for (int trial = 0; trial < 30; ++trial) {
    const int w = rng.Int(1, 40), h = rng.Int(1, 40);
    std::vector<uint8_t> rgba(size_t(w) * size_t(h) * 4);
    for (auto& p : rgba) p = uint8_t(rng.Int(0, 255));
    ImageView view;
    ASSERT_TRUE(ViewPixels(rgba.data(), w, h, 4, w * 4, &view).ok());
    Affine a;
    const float angle = trial % 2 ? rng.Uniform(-1.f, 1.f) : 0.f;
    a.m[0] = a.m[4] = std::cos(angle) * rng.Uniform(0.3f, 2.f);
    a.m[1] = angle == 0.f ? 0.f : -std::sin(angle);
    a.m[3] = angle == 0.f ? 0.f : std::sin(angle);
    a.m[2] = rng.Uniform(-8.f, float(w));
    a.m[5] = rng.Uniform(-8.f, float(h));
    const int dw = rng.Int(1, 30), dh = rng.Int(1, 30);
    std::vector<float> rgb(size_t(dw * dh * 3)), grey(size_t(dw * dh));
    WarpToTensor(view, a, dw, dh, Normalization(), rgb.data());
    Normalization g;
    g.grey = true;
    g.bgr = rng.Chance(50);  // ignored for luma
    g.scale[0] = rng.Uniform(0.001f, 1.f);
    g.offset[0] = rng.Uniform(-1.f, 1.f);
    g.pad = -7.f;
    WarpToTensor(view, a, dw, dh, g, grey.data());
    for (size_t i = 0; i < grey.size(); ++i) {
      const float* p = &rgb[i * 3];
      // Outside the picture the RGB warp pads with 0 and the grey one with g.pad.
      const bool pad = grey[i] == g.pad && p[0] == 0.f && p[1] == 0.f && p[2] == 0.f;
      if (pad) continue;
      ASSERT_EQ(grey[i], (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) * g.scale[0] + g.offset[0])
          << "trial " << trial << " pixel " << i;
    }
  }
}

}  // namespace
}  // namespace fm
