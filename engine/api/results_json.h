// results_json.h - the one definition of the result shape shared by the CLI (--json) and the
// page's JS API:
//   {"width": int, "height": int, "faces": [{"box": [x0, y0, x1, y1], "score": float,
//    "keypoints": [[x, y] x6], "label": str, "probs": {label: float}, "confident": bool}]}
// (label/probs/confident only with a classifier; confident is false when the label's probability
// is under the classifier's unsure_below: the label is then only the most likely guess).
// Coordinates are image pixels, 0.1 px resolution.
#pragma once

#include <string>
#include <vector>

#include "vision/pipeline.h"

namespace fm {

std::string JsonString(const std::string& s);  // quoted and escaped
// `ids` (optional, one per face) adds "id": n to each face (video tracking).
std::string FacesJson(const std::vector<Face>& faces, const std::vector<std::string>& labels,
                      const std::vector<int>* ids = nullptr);

// The index of the most likely of n classes (0 when n is 0); NaN or infinite probabilities count
// as 0.
size_t BestLabel(const float* probs, size_t n);

// Extra members of a result object, written in order ("file" before, "ms" after).
struct JsonMembers {
  std::string file;  // "file": ... when not empty (the CLI, fm_eval_scenes)
  double ms = -1;    // "ms": ... (2 decimals) when >= 0
};

// The one writer of a photo's or frame's result, used by the C API (the page), the CLI and
// fm_eval_scenes: {["file": str, ]"width": int, "height": int, "faces": [...][, "ms": float]}.
std::string FacesResultJson(int width, int height, const std::vector<Face>& faces,
                            const std::vector<std::string>& labels,
                            const std::vector<int>* ids = nullptr, const JsonMembers& extra = {});

// A whole-image classifier's answer, the same way: {["file": str, ]["width": int, "height": int, ]
// "label": str, "probs": {label: float}} (probabilities with 4 decimals, as for faces); width and
// height when > 0.
std::string ImageLabelJson(int width, int height, const std::vector<std::string>& labels,
                           const std::vector<float>& probs, const JsonMembers& extra = {});

// An input that gave no result: {"file": str, "error": str} (the CLI's --json, one per line).
std::string ErrorResultJson(const std::string& file, const std::string& message);

}  // namespace fm
