// scenes.h - the annotated street scenes (../shared/data/scenes): their PASCAL VOC boxes and the
// one deterministic photo split shared by the trainer (never trains on dev) and fm_eval_scenes.
#pragma once

#include <string>
#include <vector>

#include "vision/detection.h"

namespace fm {

struct VocBox {
  std::string label;  // with_mask, without_mask, mask_weared_incorrect
  float x0, y0, x1, y1;
};

// The <object> boxes of a VOC annotation file; missing or unreadable fields read as 0.
std::vector<VocBox> ReadVocBoxes(const std::string& path);
// Dev photos: FNV-1a of the file stem, one in four.
bool IsScenesDevPhoto(const std::string& stem);
// The detector's held-out part of the train photos (thresholds and every other choice): FNV-1a of
// stem + "#detector-val", one in eight of the non-dev photos. The rest of train is "fit".
bool IsScenesDetectorValPhoto(const std::string& stem);
// "dev", "val" or "fit" for a photo's stem.
const char* ScenesSplitOf(const std::string& stem);
float BoxIoU(const VocBox& box, const Detection& det);

}  // namespace fm
