// image.cpp - decoding (stb_image, compiled in stb_image_impl.cpp), raw pixel import, box downscale
// and affine sampling.
#include "vision/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#define STBI_NO_STDIO
#include <stb/stb_image.h>

namespace fm {

bool StbTakeOutOfMemory();  // stb_image_impl.cpp: did an stb allocation fail since the last call?

namespace {

// stb_image reserves a PNG chunk's declared length before reading it: an 88-byte PNG whose IDAT
// claims 640 MB made it allocate that much (found by fuzz_image under -malloc_limit_mb; in the
// browser the wasm memory would grow for good). Every chunk must fit in the file.
Status CheckPngChunks(const uint8_t* d, size_t n) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 8 || std::memcmp(d, kPng, 8) != 0) return Status::Ok();
  for (size_t i = 8; i + 8 <= n;) {
    const uint64_t length =
        uint64_t(d[i]) << 24 | uint64_t(d[i + 1]) << 16 | uint64_t(d[i + 2]) << 8 | d[i + 3];
    const std::string type(reinterpret_cast<const char*>(d + i + 4), 4);
    if (i + 12 + length > n)
      return Errorf("image: corrupt PNG (a chunk of ", length, " bytes at byte ", i,
                    " runs past the end of the ", n, "-byte file)");
    if (type == "IEND") break;
    i += 12 + size_t(length);
  }
  return Status::Ok();
}

Status DecodeInto(const uint8_t* data, size_t size, Image* out) {
  if (data == nullptr || size == 0) return Errorf("image: the file is empty");
  if (size > size_t(INT32_MAX)) return Errorf("image: the file is larger than 2 GiB");
  int w = 0, h = 0, n = 0;
  // PNG headers are read here: stb refuses huge ones with a generic message.
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 24 && std::memcmp(data, kPng, 8) == 0 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [](const uint8_t* p) {
      return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
    };
    const uint32_t pw = be32(data + 16), ph = be32(data + 20);
    if (pw > uint32_t(kMaxImageSide) || ph > uint32_t(kMaxImageSide) ||
        uint64_t(pw) * ph > uint64_t(kMaxImagePixels))
      return Errorf("image: ", pw, "x", ph, " exceeds the limit of ", kMaxImagePixels,
                    " pixels and ", kMaxImageSide, " per side");
  }
  FM_RETURN_IF_ERROR(CheckPngChunks(data, size));
  if (!stbi_info_from_memory(data, int(size), &w, &h, &n))
    return Errorf("image: not a supported image (JPEG, PNG, BMP, GIF, PNM, TGA) or corrupt (",
                  stbi_failure_reason() ? stbi_failure_reason() : "unknown", ")");
  if (w < 1 || h < 1 || w > kMaxImageSide || h > kMaxImageSide ||
      int64_t(w) * int64_t(h) > kMaxImagePixels)
    return Errorf("image: ", w, "x", h, " exceeds the limit of ", kMaxImagePixels, " pixels and ",
                  kMaxImageSide, " per side");
#ifdef FM_HAVE_TURBOJPEG
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF &&
      TurboDecodeJpeg(data, size, w, h, out)) {
    const int orientation = JpegExifOrientation(data, size);
    if (orientation != 1) *out = ApplyOrientation(*out, orientation);
    return Status::Ok();
  }
#endif
  StbTakeOutOfMemory();
  stbi_uc* pixels = stbi_load_from_memory(data, int(size), &w, &h, &n, 3);
  if (!pixels && StbTakeOutOfMemory())
    return Errorf("image: out of memory decoding ", w, "x", h, " pixels");
  if (!pixels) return Errorf("image: cannot decode (", stbi_failure_reason(), ")");
  out->width = w;
  out->height = h;
  out->rgb.assign(pixels, pixels + size_t(w) * size_t(h) * 3);
  stbi_image_free(pixels);
  const int orientation = JpegExifOrientation(data, size);
  if (orientation != 1) *out = ApplyOrientation(*out, orientation);
  return Status::Ok();
}

}  // namespace

Status DecodeImage(const uint8_t* data, size_t size, Image* out) {
  // The pixel buffer keeps its size and capacity while decoding: a loop over photos neither
  // faults in fresh pages nor zero-fills each picture before the decoder writes it.
  out->width = out->height = 0;
  Status s = DecodeInto(data, size, out);
  if (!s.ok()) {
    out->width = out->height = 0;
    out->rgb.clear();
  }
  return s;
}

Status DecodeImageFile(const std::string& path, Image* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errorf("cannot open '", path, "'");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return Errorf("cannot read '", path, "'");
  if (size > (std::streamoff(1) << 30)) return Errorf("'", path, "' is larger than 1 GiB");
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    return Errorf("cannot read '", path, "'");
  Status s = DecodeImage(bytes.data(), bytes.size(), out);
  if (!s.ok()) return s.Prefix(path + ": ");
  return Status::Ok();
}

ImageView::ImageView(const Image& image) {
  if (image.width < 1 || image.height < 1 ||
      image.rgb.size() != size_t(image.width) * size_t(image.height) * 3)
    return;  // empty: the readers refuse it
  pixels = image.rgb.data();
  width = image.width;
  height = image.height;
  stride = size_t(image.width) * 3;
}

Status ViewPixels(const uint8_t* pixels, int width, int height, int channels, int stride,
                  ImageView* out) {
  *out = ImageView();
  if (!pixels) return Errorf("pixels: null pointer");
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide ||
      int64_t(width) * height > kMaxImagePixels)
    return Errorf("pixels: size ", width, "x", height, " is outside 1..", kMaxImageSide,
                  " per side or over ", kMaxImagePixels, " pixels");
  if (channels != 3 && channels != 4)
    return Errorf("pixels: channels must be 3 or 4, got ", channels);
  if (stride < width * channels)
    return Errorf("pixels: stride ", stride, " is less than width * channels = ", width * channels);
  out->pixels = pixels;
  out->width = width;
  out->height = height;
  out->channels = channels;
  out->stride = size_t(stride);
  return Status::Ok();
}

Image Downscale(const ImageView& src, int factor) {
  Image dst;
  Downscale(src, factor, &dst);
  return dst;
}

void Downscale(const ImageView& src, int factor, Image* out) {
  factor = std::max(factor, 1);  // 1: a plain RGB copy
  Image& dst = *out;             // its buffer is reused: every pixel is written below
  dst.width = src.empty() ? 0 : (src.width + factor - 1) / factor;
  dst.height = src.empty() ? 0 : (src.height + factor - 1) / factor;
  dst.rgb.resize(size_t(dst.width) * size_t(dst.height) * 3);
  const size_t ch = size_t(src.channels);
  for (int y = 0; y < dst.height; ++y)
    for (int x = 0; x < dst.width; ++x) {
      const int y1 = std::min(src.height, (y + 1) * factor);
      const int x1 = std::min(src.width, (x + 1) * factor);
      uint32_t sum[3] = {0, 0, 0};
      uint32_t count = 0;
      for (int sy = y * factor; sy < y1; ++sy)
        for (int sx = x * factor; sx < x1; ++sx) {
          const uint8_t* p = src.Row(sy) + size_t(sx) * ch;
          sum[0] += p[0];
          sum[1] += p[1];
          sum[2] += p[2];
          ++count;
        }
      uint8_t* d = &dst.rgb[(size_t(y) * size_t(dst.width) + size_t(x)) * 3];
      for (int c = 0; c < 3; ++c) d[c] = uint8_t((sum[c] + count / 2) / count);
    }
}

namespace {

constexpr int kSeparableMaxWidth = 1024;

// One output pixel from its four source pixels (fx, fy: the bilinear weights): three normalised
// channels in `order`, or with norm.grey one luma value.
inline void Store(const uint8_t* p00, const uint8_t* p01, const uint8_t* p10, const uint8_t* p11,
                  float fx, float fy, const Normalization& norm, const int order[3], float* o) {
  float v[3];
  for (int k = 0; k < 3; ++k) {
    const int ch = order[k];
    const float top = float(p00[ch]) + (float(p01[ch]) - float(p00[ch])) * fx;
    const float bot = float(p10[ch]) + (float(p11[ch]) - float(p10[ch])) * fx;
    v[k] = top + (bot - top) * fy;
  }
  if (norm.grey) {
    o[0] = (0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2]) * norm.scale[0] + norm.offset[0];
    return;
  }
  for (int k = 0; k < 3; ++k) o[k] = v[k] * norm.scale[k] + norm.offset[k];
}

// WarpToTensor for maps without rotation or shear (letterbox, tiles, crops): the source column of
// every destination column is computed once instead of per pixel. Same expressions as the general
// path, so the same values bit for bit.
void WarpAxisAligned(const ImageView& src, const float* m, int dst_w, int dst_h,
                     const Normalization& norm, const int order[3], float* out) {
  const int oc = norm.grey ? 1 : 3;  // output channels
  struct Column {
    size_t x0, x1;  // byte offsets of the two source pixels in a row
    float fx;
    bool inside;
  };
  Column cols[kSeparableMaxWidth];
  for (int x = 0; x < dst_w; ++x) {
    const float cx = float(x) + 0.5f;
    const float u = m[0] * cx + m[1] * 0.5f + m[2] - 0.5f;  // m[1] is 0: no row dependence
    Column& c = cols[x];
    c.inside = u >= -0.5f && u <= float(src.width) - 0.5f;
    const float uc = std::min(std::max(u, 0.f), float(src.width - 1));
    const int x0 = c.inside ? int(uc) : 0;
    c.x0 = size_t(x0) * size_t(src.channels);
    c.x1 = size_t(std::min(x0 + 1, src.width - 1)) * size_t(src.channels);
    c.fx = uc - float(x0);
  }
  for (int y = 0; y < dst_h; ++y) {
    const float cy = float(y) + 0.5f;
    const float v = m[3] * 0.5f + m[4] * cy + m[5] - 0.5f;  // m[3] is 0
    float* o = out + size_t(y) * size_t(dst_w) * size_t(oc);
    if (!(v >= -0.5f && v <= float(src.height) - 0.5f)) {
      std::fill(o, o + size_t(dst_w) * size_t(oc), norm.pad);
      continue;
    }
    const float vc = std::min(std::max(v, 0.f), float(src.height - 1));
    const int y0 = int(vc), y1 = std::min(y0 + 1, src.height - 1);
    const float fy = vc - float(y0);
    const uint8_t* r0 = src.Row(y0);
    const uint8_t* r1 = src.Row(y1);
    for (int x = 0; x < dst_w; ++x, o += oc) {
      const Column& c = cols[x];
      if (!c.inside) {
        std::fill(o, o + oc, norm.pad);
        continue;
      }
      Store(r0 + c.x0, r0 + c.x1, r1 + c.x0, r1 + c.x1, c.fx, fy, norm, order, o);
    }
  }
}

}  // namespace

void WarpToTensor(const ImageView& src, const Affine& map, int dst_w, int dst_h,
                  const Normalization& norm, float* out) {
  const int oc = norm.grey ? 1 : 3;  // output channels
  if (src.empty()) {                 // nothing to sample: all padding
    std::fill(out, out + size_t(dst_w) * size_t(dst_h) * size_t(oc), norm.pad);
    return;
  }
  const float* m = map.m;
  // Grey: luma needs R, G, B in that order whatever the model's channel order.
  const int order[3] = {norm.bgr && !norm.grey ? 2 : 0, 1, norm.bgr && !norm.grey ? 0 : 2};
  if (m[1] == 0.f && m[3] == 0.f && dst_w <= kSeparableMaxWidth) {
    WarpAxisAligned(src, m, dst_w, dst_h, norm, order, out);
    return;
  }
  for (int y = 0; y < dst_h; ++y)
    for (int x = 0; x < dst_w; ++x) {
      const float cx = float(x) + 0.5f, cy = float(y) + 0.5f;
      // Index space: pixel i's centre is at i.
      const float u = m[0] * cx + m[1] * cy + m[2] - 0.5f;
      const float v = m[3] * cx + m[4] * cy + m[5] - 0.5f;
      float* o = out + (size_t(y) * size_t(dst_w) + size_t(x)) * size_t(oc);
      if (!(u >= -0.5f && v >= -0.5f && u <= float(src.width) - 0.5f &&
            v <= float(src.height) - 0.5f)) {
        std::fill(o, o + oc, norm.pad);
        continue;
      }
      const float uc = std::min(std::max(u, 0.f), float(src.width - 1));
      const float vc = std::min(std::max(v, 0.f), float(src.height - 1));
      const int x0 = int(uc), y0 = int(vc);
      const int x1 = std::min(x0 + 1, src.width - 1), y1 = std::min(y0 + 1, src.height - 1);
      const float fx = uc - float(x0), fy = vc - float(y0);
      const size_t ch = size_t(src.channels);
      const uint8_t* p00 = src.Row(y0) + size_t(x0) * ch;
      const uint8_t* p01 = src.Row(y0) + size_t(x1) * ch;
      const uint8_t* p10 = src.Row(y1) + size_t(x0) * ch;
      const uint8_t* p11 = src.Row(y1) + size_t(x1) * ch;
      Store(p00, p01, p10, p11, fx, fy, norm, order, o);
    }
}

Letterbox ComputeLetterbox(int src_w, int src_h, int dst_w, int dst_h) {
  Letterbox lb;
  lb.scale = std::min(float(dst_w) / float(src_w), float(dst_h) / float(src_h));
  lb.pad_x = (float(dst_w) - float(src_w) * lb.scale) * 0.5f;
  lb.pad_y = (float(dst_h) - float(src_h) * lb.scale) * 0.5f;
  const float inv = 1.f / lb.scale;
  lb.map.m[0] = inv;
  lb.map.m[1] = 0;
  lb.map.m[2] = -lb.pad_x * inv;
  lb.map.m[3] = 0;
  lb.map.m[4] = inv;
  lb.map.m[5] = -lb.pad_y * inv;
  return lb;
}

Affine CropMap(float x0, float y0, float x1, float y1, int dst_w, int dst_h) {
  Affine a;
  a.m[0] = (x1 - x0) / float(dst_w);
  a.m[1] = 0;
  a.m[2] = x0;
  a.m[3] = 0;
  a.m[4] = (y1 - y0) / float(dst_h);
  a.m[5] = y0;
  return a;
}

}  // namespace fm
