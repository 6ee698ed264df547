// image.h - pictures in, model tensors out.
//
// Conventions (every helper follows them):
//   - an Image is 8-bit RGB, interleaved, rows top to bottom, no padding between rows;
//   - pixel (x, y) covers the square [x, x+1) x [y, y+1); its centre is (x + 0.5, y + 0.5);
//   - geometry is an affine map from destination pixel centres to source coordinates; a source
//     point is sampled bilinearly from the four nearest pixel centres, clamped to the edge pixels
//     inside the image; points more than half a pixel outside the image get the pad value;
//   - normalisation: tensor value = pixel * scale[c] + offset[c], c in the tensor's channel order
//     (RGB, or BGR when requested), NHWC with N = 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace fm {

// Images larger than this are refused before any pixel memory is allocated (decompression bombs).
constexpr int64_t kMaxImagePixels = 40'000'000;
constexpr int kMaxImageSide = 16384;

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
};

// Pixels to read without owning or copying them: 8-bit RGB or RGBA (alpha ignored), rows `stride`
// bytes apart. Everything that only reads a picture (resizing, warping, the pipeline) takes a
// view, so a camera frame (RGBA, as a canvas hands it over) goes straight into the tensors. Every
// Image is readable as a view (an inconsistent one as an empty view).
struct ImageView {
  const uint8_t* pixels = nullptr;
  int width = 0;
  int height = 0;
  int channels = 3;   // 3 (RGB) or 4 (RGBA)
  size_t stride = 0;  // bytes per row, >= width * channels
  ImageView() = default;
  ImageView(const Image& image);  // NOLINT(google-explicit-constructor): every Image is a view
  bool empty() const { return pixels == nullptr || width < 1 || height < 1; }
  const uint8_t* Row(int y) const { return pixels + size_t(y) * stride; }
};

// Decodes JPEG, PNG, BMP, GIF (first frame), PNM or TGA bytes. Greyscale, palette, 16-bit and alpha
// sources become 8-bit RGB (alpha is dropped). A JPEG's EXIF orientation is applied, so the result
// is upright as a viewer shows it.
Status DecodeImage(const uint8_t* data, size_t size, Image* out);
Status DecodeImageFile(const std::string& path, Image* out);
#ifdef FM_HAVE_TURBOJPEG
// jpeg_turbo.cpp: decodes a JPEG whose header says width x height into `out` (RGB); false on any
// failure or warning (the caller falls back to stb_image).
bool TurboDecodeJpeg(const uint8_t* data, size_t size, int width, int height, Image* out);
#endif

// Checks raw pixels (what a browser canvas hands over) and views them, no copy: channels 3 (RGB)
// or 4 (RGBA, alpha ignored); stride is bytes per row (>= width * channels). The view is valid as
// long as the caller's pixels are.
Status ViewPixels(const uint8_t* pixels, int width, int height, int channels, int stride,
                  ImageView* out);

// Box-filter downscale by an integer factor (each output pixel is the mean of factor x factor
// source pixels; the right/bottom remainder is averaged over what exists). Factor 1 is a plain RGB
// copy of the view.
Image Downscale(const ImageView& src, int factor);
// The same into `out`, reusing its pixel buffer (no allocation when it is large enough).
void Downscale(const ImageView& src, int factor, Image* out);

struct Normalization {
  float scale[3] = {1.f, 1.f, 1.f};
  float offset[3] = {0.f, 0.f, 0.f};
  bool bgr = false;  // write channels as B, G, R
  // One channel instead of three: luma 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601) of the sampled
  // pixel, then * scale[0] + offset[0] (greyscale models).
  bool grey = false;
  float pad = 0.f;  // tensor value for points outside the source image
};

// dst -> src affine map: src_x = m[0] * x + m[1] * y + m[2], src_y = m[3] * x + m[4] * y + m[5],
// applied to destination pixel centres.
struct Affine {
  float m[6] = {1, 0, 0, 0, 1, 0};
};

// Samples the source through `map` into a dst_w x dst_h x 3 float tensor (x 1 with norm.grey).
void WarpToTensor(const ImageView& src, const Affine& map, int dst_w, int dst_h,
                  const Normalization& norm, float* out);

// Keeps the aspect ratio and centres the picture in dst_w x dst_h; the rest is padding.
struct Letterbox {
  float scale = 1.f;  // destination pixels per source pixel
  float pad_x = 0.f;  // left padding in destination pixels
  float pad_y = 0.f;  // top padding in destination pixels
  Affine map;
  // Back from destination (tensor) coordinates to source image coordinates.
  float ToSourceX(float x) const { return (x - pad_x) / scale; }
  float ToSourceY(float y) const { return (y - pad_y) / scale; }
};
Letterbox ComputeLetterbox(int src_w, int src_h, int dst_w, int dst_h);

// Crop of the rectangle [x0, x1) x [y0, y1) (source coordinates, may extend past the image)
// stretched to dst_w x dst_h.
Affine CropMap(float x0, float y0, float x1, float y1, int dst_w, int dst_h);

}  // namespace fm

namespace fm {

// EXIF orientation (1..8) of a JPEG, 1 when absent or unreadable. Reads only the APP1 segment,
// bounds-checked.
int JpegExifOrientation(const uint8_t* data, size_t size);
// The image as it should be displayed for an EXIF orientation (2..8 flip and/or rotate).
Image ApplyOrientation(const Image& src, int orientation);

}  // namespace fm
