// detect_data.h - training views for the detector from the annotated street scenes
// (../shared/data/scenes, train split only: the dev split is never read here).
//
// A view is what the pipeline feeds the detector (engine/pipeline.cpp): either the whole photo
// letterboxed into the square input, or a square tile of the photo (the pipeline's tiles are 1.25
// inputs wide), here at a random scale and place, mirrored at random. Then photometric changes
// (brightness, contrast, saturation, low light) and mask recolouring (a worn mask's region turned
// brown, skin-coloured, black, white or another colour: the original model's known misses).
// Faces become GtBox in input pixels: faces under min_face_px or mostly outside the view are
// ignore regions; faces 14-48 px wide in the photo weigh small_face_weight.
#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "detect_loss.h"
#include "image.h"
#include "scenes.h"
#include "status.h"

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

struct ViewOptions {
  int size = 192;            // detector input
  float whole_prob = 0.35f;  // whole photo vs tile
  float tile = 240.f;        // the pipeline's tile side (1.25 inputs)
  float tile_scale_min = 0.6f, tile_scale_max = 1.8f;
  float flip_prob = 0.5f;
  bool photometric = true;
  float recolour_prob = 0.35f;  // per masked face
  float min_face_px = 3.f;      // in input pixels
  float min_visible = 0.6f;     // fraction of a face's box inside the view
  float small_face_weight = 2.f;
};

// Writes the view as a [size, size, 3] tensor normalised like BlazeFace (pixel / 127.5 - 1,
// padding 0) and its faces in input pixels.
void SampleView(const Scene& scene, const ViewOptions& o, Rng* rng, float* tensor,
                std::vector<GtBox>* gts);

}  // namespace fm::train
