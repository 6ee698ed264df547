// annotate.cpp - see annotate.h. Text comes from stb_easy_font (quads), scaled with the image.
#include "annotate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#define STBI_WRITE_NO_STDIO
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fm {
namespace {

struct Rgb {
  uint8_t r, g, b;
};

Rgb ColourFor(const std::string& label) {
  if (label == "with_mask") return {0, 200, 0};
  if (label == "without_mask") return {230, 20, 20};
  if (label == "mask_worn_incorrectly") return {255, 160, 0};
  return {40, 140, 255};  // no classifier / other labels
}

void FillRect(Image* img, int x0, int y0, int x1, int y1, Rgb c) {
  x0 = std::max(0, x0);
  y0 = std::max(0, y0);
  x1 = std::min(img->width, x1);
  y1 = std::min(img->height, y1);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &img->rgb[(size_t(y) * size_t(img->width) + size_t(x)) * 3];
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
}

void DrawText(Image* img, int x, int y, int scale, const std::string& text, Rgb c) {
  std::string s = text.substr(0, 200);
  std::vector<char> buffer(s.size() * 300 + 64);  // stb_easy_font needs ~270 bytes a character
  const int quads = stb_easy_font_print(0, 0, &s[0], nullptr, buffer.data(), int(buffer.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v = reinterpret_cast<const float*>(buffer.data() + q * 4 * 16);
    // Vertices 0 and 2 are opposite corners; each vertex is 16 bytes (x, y, z, colour).
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + (q * 4 + 2) * 16);
    FillRect(img, x + int(v[0]) * scale, y + int(v[1]) * scale, x + int(v2[0]) * scale,
             y + int(v2[1]) * scale, c);
  }
}

// stb_easy_font draws ASCII 32..126 only (it indexes its tables with c - 32): any other byte
// becomes '?', and a UTF-8 sequence one '?' for its whole character.
std::string Drawable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c >= 32 && c <= 126 ? char(c) : '?';
    if (c < 0xc0) continue;  // ASCII, or not the start of a UTF-8 sequence
    while (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xc0) == 0x80) ++i;
  }
  return out;
}

void Collect(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

}  // namespace

void AnnotateFaces(Image* image, const std::vector<Face>& faces,
                   const std::vector<std::string>& labels) {
  const int line = std::max(2, std::min(image->width, image->height) / 250);
  const int scale = std::max(1, std::min(image->width, image->height) / 300);
  for (const Face& f : faces) {
    const std::string label = f.label >= 0 ? Drawable(labels[size_t(f.label)]) : "face";
    const float conf = f.label >= 0 ? f.probs[size_t(f.label)] : f.det.score;
    // A guess (probability under the classifier's unsure_below) gets its own colour and words.
    const Rgb c = f.confident ? ColourFor(label) : Rgb{120, 90, 170};
    const int x0 = int(std::lround(f.det.x0)), y0 = int(std::lround(f.det.y0));
    const int x1 = int(std::lround(f.det.x1)), y1 = int(std::lround(f.det.y1));
    FillRect(image, x0, y0, x1, y0 + line, c);
    FillRect(image, x0, y1 - line, x1, y1, c);
    FillRect(image, x0, y0, x0 + line, y1, c);
    FillRect(image, x1 - line, y0, x1, y1, c);
    char text[160];
    std::snprintf(text, sizeof text, f.confident ? "%s %.0f%%" : "unsure: %s? %.0f%%",
                  label.c_str(), double(conf) * 100.0);
    std::string t = text;
    for (char& ch : t)
      if (ch == '_') ch = ' ';
    const int tw = stb_easy_font_width(&t[0]) * scale, th = 12 * scale;
    const int ty = y0 - th - line >= 0 ? y0 - th - line : y1 + line;
    // The tag stays inside the photo (as the page does): a face at the right edge gets its tag
    // moved left rather than cut.
    const int tx = std::max(0, std::min(x0, image->width - tw - 4 * scale));
    FillRect(image, tx, ty, tx + tw + 4 * scale, ty + th, c);
    DrawText(image, tx + 2 * scale, ty + 2 * scale, scale, t, {255, 255, 255});
  }
}

std::string TempPathFor(const std::string& path) {
  const std::filesystem::path p(path);
  return (p.parent_path() / ("." + p.filename().string() + ".tmp")).string();
}

std::string JpegDataUri(const uint8_t* rgb, int width, int height, int quality) {
  std::vector<uint8_t> jpg;
  if (!stbi_write_jpg_to_func(Collect, &jpg, width, height, 3, rgb, quality)) return "";
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc = "data:image/jpeg;base64,";
  for (size_t i = 0; i < jpg.size(); i += 3) {
    const uint32_t v = uint32_t(jpg[i]) << 16 |
                       (i + 1 < jpg.size() ? uint32_t(jpg[i + 1]) << 8 : 0u) |
                       (i + 2 < jpg.size() ? uint32_t(jpg[i + 2]) : 0u);
    enc += b64[v >> 18 & 63];
    enc += b64[v >> 12 & 63];
    enc += i + 1 < jpg.size() ? b64[v >> 6 & 63] : '=';
    enc += i + 2 < jpg.size() ? b64[v & 63] : '=';
  }
  return enc;
}

Status WriteJpeg(const Image& image, const std::string& path) {
  std::vector<uint8_t> bytes;
  if (!stbi_write_jpg_to_func(Collect, &bytes, image.width, image.height, 3, image.rgb.data(), 90))
    return Errorf("cannot encode '", path, "'");
  const std::string tmp = TempPathFor(path);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  out.close();
  std::error_code ec;
  if (out) std::filesystem::rename(tmp, path, ec);
  if (out && !ec) return Status::Ok();
  std::filesystem::remove(tmp, ec);
  return Errorf("cannot write '", path, "'");
}

}  // namespace fm
