// results_json.cpp - see results_json.h.
#include "results_json.h"

#include <cmath>
#include <cstdio>

namespace fm {
namespace {

void Number(std::string* out, float v, int decimals) {
  char buf[32];
  if (!(v - v == 0.f)) v = 0.f;  // never emit NaN/inf (invalid JSON)
  std::snprintf(buf, sizeof buf, "%.*f", decimals, double(v));
  *out += buf;
}

}  // namespace

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

std::string FacesJson(const std::vector<Face>& faces, const std::vector<std::string>& labels,
                      const std::vector<int>* ids) {
  std::string out = "[";
  for (size_t i = 0; i < faces.size(); ++i) {
    const Face& f = faces[i];
    if (i) out += ", ";
    out += "{\"box\": [";
    const float box[4] = {f.det.x0, f.det.y0, f.det.x1, f.det.y1};
    for (int k = 0; k < 4; ++k) {
      if (k) out += ", ";
      Number(&out, box[k], 1);
    }
    out += "], \"score\": ";
    Number(&out, f.det.score, 4);
    out += ", \"keypoints\": [";
    for (int k = 0; k < kNumKeypoints; ++k) {
      if (k) out += ", ";
      out += "[";
      Number(&out, f.det.keypoints[k][0], 1);
      out += ", ";
      Number(&out, f.det.keypoints[k][1], 1);
      out += "]";
    }
    out += "]";
    if (f.label >= 0 && size_t(f.label) < labels.size() && f.probs.size() == labels.size()) {
      out += ", \"label\": " + JsonString(labels[size_t(f.label)]) + ", \"probs\": {";
      for (size_t l = 0; l < labels.size(); ++l) {
        if (l) out += ", ";
        out += JsonString(labels[l]) + ": ";
        Number(&out, f.probs[l], 4);
      }
      out += "}, \"confident\": ";
      out += f.confident ? "true" : "false";
    }
    if (ids && i < ids->size()) out += ", \"id\": " + std::to_string((*ids)[i]);
    out += "}";
  }
  return out + "]";
}

}  // namespace fm
