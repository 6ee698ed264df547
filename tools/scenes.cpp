// scenes.cpp - see scenes.h.
#include "scenes.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fm {
namespace {

std::string Tag(const std::string& xml, const std::string& tag, size_t from, size_t* end) {
  const size_t a = xml.find("<" + tag + ">", from);
  if (a == std::string::npos) return "";
  const size_t b = xml.find("</" + tag + ">", a);
  if (b == std::string::npos) return "";
  if (end) *end = b;
  return xml.substr(a + tag.size() + 2, b - a - tag.size() - 2);
}

float Number(const std::string& obj, const char* tag) {
  return std::strtof(Tag(obj, tag, 0, nullptr).c_str(), nullptr);
}

}  // namespace

std::vector<VocBox> ReadVocBoxes(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  std::vector<VocBox> out;
  size_t at = 0;
  for (;;) {
    size_t end = 0;
    const std::string obj = Tag(xml, "object", at, &end);
    if (obj.empty()) break;
    at = end;
    out.push_back({Tag(obj, "name", 0, nullptr), Number(obj, "xmin"), Number(obj, "ymin"),
                   Number(obj, "xmax"), Number(obj, "ymax")});
  }
  return out;
}

namespace {
uint32_t Fnv1a32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}
}  // namespace

bool IsScenesDevPhoto(const std::string& stem) {
  return Fnv1a32(stem) % 4 == 0;
}

bool IsScenesDetectorValPhoto(const std::string& stem) {
  return !IsScenesDevPhoto(stem) && Fnv1a32(stem + "#detector-val") % 8 == 0;
}

const char* ScenesSplitOf(const std::string& stem) {
  return IsScenesDevPhoto(stem) ? "dev" : IsScenesDetectorValPhoto(stem) ? "val" : "fit";
}

float BoxIoU(const VocBox& t, const Detection& d) {
  Detection box{};
  box.x0 = t.x0, box.y0 = t.y0, box.x1 = t.x1, box.y1 = t.y1;
  return IoU(box, d);
}

}  // namespace fm
