// exif.cpp - the EXIF orientation tag of JPEG files (phone photos are stored sideways with a tag
// saying how to turn them) and the flips/rotations it asks for.
#include <cstring>

#include "vision/image.h"

namespace fm {
namespace {

struct Tiff {
  const uint8_t* p;
  size_t size;
  bool big_endian;
  bool U16(size_t at, uint32_t* v) const {
    if (at > size || size - at < 2) return false;
    *v = big_endian ? uint32_t(p[at] << 8 | p[at + 1]) : uint32_t(p[at + 1] << 8 | p[at]);
    return true;
  }
  bool U32(size_t at, uint32_t* v) const {
    uint32_t hi = 0, lo = 0;
    if (!U16(at, big_endian ? &hi : &lo) || !U16(at + 2, big_endian ? &lo : &hi)) return false;
    *v = hi << 16 | lo;
    return true;
  }
};

int OrientationFromTiff(const uint8_t* p, size_t size) {
  if (size < 8) return 1;
  Tiff t{p, size, false};
  if (p[0] == 'M' && p[1] == 'M')
    t.big_endian = true;
  else if (!(p[0] == 'I' && p[1] == 'I'))
    return 1;
  uint32_t magic = 0, ifd = 0, count = 0;
  if (!t.U16(2, &magic) || magic != 42 || !t.U32(4, &ifd) || !t.U16(ifd, &count)) return 1;
  for (uint32_t i = 0; i < count && i < 1000; ++i) {
    const size_t entry = size_t(ifd) + 2 + 12 * size_t(i);
    uint32_t tag = 0, type = 0, value = 0;
    if (!t.U16(entry, &tag) || !t.U16(entry + 2, &type)) return 1;
    if (tag != 0x0112) continue;
    if (type != 3 || !t.U16(entry + 8, &value)) return 1;
    return value >= 1 && value <= 8 ? int(value) : 1;
  }
  return 1;
}

}  // namespace

int JpegExifOrientation(const uint8_t* data, size_t size) {
  if (!data || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
  size_t at = 2;
  while (at + 4 <= size) {
    if (data[at] != 0xFF) return 1;
    const uint8_t marker = data[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // image data starts: no EXIF before it
    const size_t length = size_t(data[at + 2]) << 8 | data[at + 3];
    if (length < 2 || length > size - at - 2) return 1;
    const uint8_t* body = data + at + 4;
    const size_t body_size = length - 2;
    if (marker == 0xE1 && body_size >= 6 && std::memcmp(body, "Exif\0\0", 6) == 0)
      return OrientationFromTiff(body + 6, body_size - 6);
    at += 2 + length;
  }
  return 1;
}

Image ApplyOrientation(const Image& src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  const int w = src.width, h = src.height;
  const bool swap = orientation >= 5;
  Image dst;
  dst.width = swap ? h : w;
  dst.height = swap ? w : h;
  dst.rgb.resize(src.rgb.size());
  for (int dy = 0; dy < dst.height; ++dy)
    for (int dx = 0; dx < dst.width; ++dx) {
      int sx = dx, sy = dy;
      switch (orientation) {
        case 2:
          sx = w - 1 - dx;
          break;  // mirror horizontally
        case 3:
          sx = w - 1 - dx;
          sy = h - 1 - dy;
          break;  // rotate 180
        case 4:
          sy = h - 1 - dy;
          break;  // mirror vertically
        case 5:
          sx = dy;
          sy = dx;
          break;  // transpose
        case 6:
          sx = dy;
          sy = h - 1 - dx;
          break;  // rotate 90 clockwise
        case 7:
          sx = w - 1 - dy;
          sy = h - 1 - dx;
          break;  // transverse
        case 8:
          sx = w - 1 - dy;
          sy = dx;
          break;  // rotate 90 counter-clockwise
      }
      std::memcpy(&dst.rgb[(size_t(dy) * size_t(dst.width) + size_t(dx)) * 3],
                  &src.rgb[(size_t(sy) * size_t(w) + size_t(sx)) * 3], 3);
    }
  return dst;
}

}  // namespace fm
