// results_json.cpp - see results_json.h.
#include "api/results_json.h"

#include <algorithm>
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

namespace {

// The optional members around a result: "file" first, "ms" last.
void OpenResult(std::string* out, const JsonMembers& extra) {
  *out = "{";
  if (!extra.file.empty()) *out += "\"file\": " + JsonString(extra.file) + ", ";
}

std::string CloseResult(std::string out, const JsonMembers& extra) {
  if (extra.ms >= 0) {
    char buf[48];
    std::snprintf(buf, sizeof buf, ", \"ms\": %.2f", extra.ms);
    out += buf;
  }
  return out + "}";
}

}  // namespace

size_t BestLabel(const float* probs, size_t n) {
  // A NaN or infinite probability (a broken model) counts as 0, as the JSON writes it.
  auto value = [&](size_t k) { return probs[k] - probs[k] == 0.f ? probs[k] : 0.f; };
  size_t best = 0;
  for (size_t k = 1; k < n; ++k) {
    if (value(k) > value(best)) best = k;
  }
  return best;
}

std::string FacesResultJson(int width, int height, const std::vector<Face>& faces,
                            const std::vector<std::string>& labels, const std::vector<int>* ids,
                            const JsonMembers& extra) {
  std::string out;
  OpenResult(&out, extra);
  out += "\"width\": " + std::to_string(width) + ", \"height\": " + std::to_string(height) +
         ", \"faces\": " + FacesJson(faces, labels, ids);
  return CloseResult(std::move(out), extra);
}

std::string ImageLabelJson(int width, int height, const std::vector<std::string>& labels,
                           const std::vector<float>& probs, const JsonMembers& extra) {
  std::string out;
  OpenResult(&out, extra);
  if (width > 0 && height > 0) {
    out += "\"width\": " + std::to_string(width) + ", \"height\": " + std::to_string(height) + ", ";
  }
  const size_t n = std::min(labels.size(), probs.size());
  out +=
      "\"label\": " + (n ? JsonString(labels[BestLabel(probs.data(), n)]) : std::string("null")) +
      ", \"probs\": {";
  for (size_t k = 0; k < n; ++k) {
    if (k) out += ", ";
    out += JsonString(labels[k]) + ": ";
    Number(&out, probs[k], 4);
  }
  return CloseResult(std::move(out) + "}", extra);
}

std::string ErrorResultJson(const std::string& file, const std::string& message) {
  std::string out;
  JsonMembers extra;
  extra.file = file;
  OpenResult(&out, extra);
  return out + "\"error\": " + JsonString(message) + "}";
}

}  // namespace fm
