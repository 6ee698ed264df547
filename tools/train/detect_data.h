// detect_data.h - training views for the detector from the annotated street scenes
// (../shared/data/scenes, train split only: the dev split is never read here).
//
// A view is what the pipeline feeds the detector (engine/vision/pipeline.cpp): either the whole photo
// letterboxed into the square input, or a square tile of the photo (the pipeline's smallest tiles
// are 0.75 inputs wide, magnified 1.33x), here at a random scale and place, mirrored at random.
// Then photometric changes (brightness, contrast, saturation, low light) and mask recolouring (a
// worn mask's region turned brown, skin-coloured, black, white or another colour: the original
// model's known misses). Faces become GtBox in input pixels: faces under min_face_px or mostly
// outside the view are ignore regions; faces 14-48 px wide in the photo weigh small_face_weight.
// Copy-paste: faces cut from the one-face photos of ../shared/data/faces (real masks of many
// colours, and bare faces) are blended into some views at 7-48 input px, where nothing is
// annotated.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "detect_loss.h"
#include "model/graph.h"
#include "scenes.h"
#include "status.h"
#include "vision/image.h"

namespace fm::train {

struct Scene {
  std::string stem;
  Image image;
  std::vector<VocBox> boxes;
};

enum class SceneSplit { kFit, kVal, kDev };
// kFit + kVal = the scenes train split (kVal: one photo in eight of it, by FNV-1a of the stem
// with a salt, for choosing thresholds); kDev = the dev split (measuring only).
SceneSplit SplitOf(const std::string& stem);

// Loads every photo of `split` under dir (stem.jpg or .png + stem.xml), sorted by stem.
Status LoadScenes(const std::string& dir, SceneSplit split, std::vector<Scene>* out);

// A face to paste: its photo at 1, 1/2, 1/4, ... size (levels[0] the photo), its box in the
// photo drawn the way the scenes' people draw theirs, and whether it wears a mask.
struct PasteFace {
  std::vector<Image> levels;
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool masked = false;
};

// Up to `count` faces from DIR/with_mask and DIR/without_mask (half each, in a fixed shuffled
// order of their names). `detector` (the converted BlazeFace) finds the face: photos where it finds
// none or several (score >= 0.6, whole photo) or a face under 40 px are skipped. Its box is moved
// to the human convention by the median offset measured between the two conventions on the scenes
// (model/README.md, crop_box 0.953, -0.017, -0.103).
Status LoadPasteFaces(const std::string& dir, std::shared_ptr<const Graph> detector, int count,
                      std::vector<PasteFace>* out);

struct ViewOptions {
  int size = 192;            // detector input
  float whole_prob = 0.35f;  // whole photo vs tile
  float tile = 144.f;        // the pipeline's smallest tile side (0.75 inputs)
  // log-uniform in tile x [min, max]: 115-432 px, magnified 1.67x to shrunk 0.44x
  float tile_scale_min = 0.8f, tile_scale_max = 3.f;
  float flip_prob = 0.5f;
  bool photometric = true;
  float recolour_prob = 0.35f;  // per masked face
  float min_face_px = 3.f;      // in input pixels
  float min_visible = 0.6f;     // fraction of a face's box inside the view
  float small_face_weight = 2.f;
  float paste_prob = 0.4f;  // views that get 1..max_pastes pasted faces (when there are any)
  int max_pastes = 3;
  float paste_min_px = 7.f, paste_max_px = 48.f;  // pasted face width, log-uniform, input px
};

// Writes the view as a [size, size, 3] tensor normalised like BlazeFace (pixel / 127.5 - 1,
// padding 0) and its faces in input pixels.
void SampleView(const Scene& scene, const std::vector<PasteFace>& pastes, const ViewOptions& o,
                Rng* rng, float* tensor, std::vector<GtBox>* gts);

}  // namespace fm::train
