// detect_data.cpp - see detect_data.h.
#include "detect_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace fm::train {

namespace fs = std::filesystem;

SceneSplit SplitOf(const std::string& stem) {
  if (IsScenesDevPhoto(stem)) return SceneSplit::kDev;
  return Fnv1a(stem + "#detector-val") % 8 == 0 ? SceneSplit::kVal : SceneSplit::kFit;
}

Status LoadScenes(const std::string& dir, SceneSplit split, std::vector<Scene>* out) {
  out->clear();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Errorf("scenes: '", dir, "' is not a directory");
  std::vector<std::string> stems;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".xml") stems.push_back(e.path().stem().string());
  std::sort(stems.begin(), stems.end());
  for (const std::string& stem : stems) {
    if (SplitOf(stem) != split) continue;
    Scene s;
    s.stem = stem;
    const fs::path jpg = fs::path(dir) / (stem + ".jpg"), png = fs::path(dir) / (stem + ".png");
    FM_RETURN_IF_ERROR(DecodeImageFile(fs::exists(jpg) ? jpg.string() : png.string(), &s.image));
    s.boxes = ReadVocBoxes((fs::path(dir) / (stem + ".xml")).string());
    out->push_back(std::move(s));
  }
  if (out->empty()) return Errorf("scenes: no annotated photos of that split in '", dir, "'");
  return Status::Ok();
}

namespace {

// Photometric changes in [0, 1] pixel space; padding (exactly 0 in all three channels) is kept.
void Photometric(Rng* rng, int size, float* t) {
  const float bright = rng->Uniform(-0.12f, 0.12f), contrast = rng->Uniform(0.7f, 1.3f);
  const float sat = rng->Uniform(0.6f, 1.4f);
  const bool dark = rng->Chance(0.15f);
  const float dim = dark ? rng->Uniform(0.25f, 0.6f) : 1.f;
  for (int i = 0; i < size * size; ++i) {
    float* p = t + size_t(i) * 3;
    if (p[0] == 0.f && p[1] == 0.f && p[2] == 0.f) continue;
    float c[3];
    for (int k = 0; k < 3; ++k) c[k] = (p[k] + 1.f) * 0.5f;
    const float grey = 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2];
    for (int k = 0; k < 3; ++k) {
      float v = grey + (c[k] - grey) * sat;
      v = (v - 0.5f) * contrast + 0.5f + bright;
      v *= dim;
      p[k] = std::min(std::max(v, 0.f), 1.f) * 2.f - 1.f;
    }
  }
}

// Gives the lower part of a masked face (where the mask is) another colour, keeping its shading.
void Recolour(const GtBox& b, Rng* rng, int size, float* t) {
  static const float kTints[][3] = {{0.55f, 0.38f, 0.25f},
                                    {0.85f, 0.66f, 0.52f},
                                    {0.12f, 0.12f, 0.13f},
                                    {0.92f, 0.92f, 0.92f},
                                    {0.70f, 0.52f, 0.40f}};
  float tint[3];
  const int pick = rng->Int(0, 5);
  for (int k = 0; k < 3; ++k) tint[k] = pick < 5 ? kTints[pick][k] : rng->Uniform(0.1f, 0.9f);
  const float w = b.x1 - b.x0, h = b.y1 - b.y0;
  const int x0 = std::max(0, int(b.x0 + 0.12f * w)), x1 = std::min(size, int(b.x1 - 0.12f * w));
  const int y0 = std::max(0, int(b.y0 + 0.5f * h)), y1 = std::min(size, int(b.y1 - 0.04f * h));
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      float* p = t + (size_t(y) * size_t(size) + size_t(x)) * 3;
      const float grey = (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] + 1.f) * 0.5f;
      for (int k = 0; k < 3; ++k) {
        const float v = std::min(1.f, tint[k] * (0.55f + 0.9f * grey));
        p[k] = v * 2.f - 1.f;
      }
    }
}

}  // namespace

void SampleView(const Scene& scene, const ViewOptions& o, Rng* rng, float* tensor,
                std::vector<GtBox>* gts) {
  const float W = float(scene.image.width), H = float(scene.image.height);
  float side, cx, cy;
  if (rng->Chance(o.whole_prob)) {
    side = std::max(W, H) * rng->Uniform(0.92f, 1.12f);
    cx = W * 0.5f + rng->Uniform(-0.04f, 0.04f) * side;
    cy = H * 0.5f + rng->Uniform(-0.04f, 0.04f) * side;
  } else {
    const float lo = std::log(o.tile_scale_min), hi = std::log(o.tile_scale_max);
    side = std::min(o.tile * std::exp(rng->Uniform(lo, hi)), std::max(W, H) * 1.1f);
    auto centre = [&](float extent) {
      if (extent <= side) return extent * 0.5f + rng->Uniform(-0.1f, 0.1f) * side;
      return rng->Uniform(side * 0.4f, extent - side * 0.4f);
    };
    cx = centre(W);
    cy = centre(H);
  }
  const float x0 = cx - side * 0.5f, y0 = cy - side * 0.5f;
  const int S = o.size;
  Affine map = CropMap(x0, y0, x0 + side, y0 + side, S, S);
  const bool flip = rng->Chance(o.flip_prob);
  if (flip) {
    map.m[2] += map.m[0] * float(S);
    map.m[0] = -map.m[0];
  }
  Normalization norm;
  for (int k = 0; k < 3; ++k) norm.scale[k] = 1.f / 127.5f, norm.offset[k] = -1.f;
  norm.pad = 0.f;
  WarpToTensor(scene.image, map, S, S, norm, tensor);

  const float k = float(S) / side;
  gts->clear();
  std::vector<bool> masked;
  for (const VocBox& v : scene.boxes) {
    GtBox b;
    b.x0 = (v.x0 - x0) * k;
    b.x1 = (v.x1 - x0) * k;
    b.y0 = (v.y0 - y0) * k;
    b.y1 = (v.y1 - y0) * k;
    if (flip) {
      const float a = float(S) - b.x1, c = float(S) - b.x0;
      b.x0 = a, b.x1 = c;
    }
    const float area = (b.x1 - b.x0) * (b.y1 - b.y0);
    if (area <= 0.f) continue;
    const float vx = std::min(b.x1, float(S)) - std::max(b.x0, 0.f);
    const float vy = std::min(b.y1, float(S)) - std::max(b.y0, 0.f);
    if (vx <= 0.f || vy <= 0.f) continue;
    const float visible = vx * vy / area;
    const float photo_w = v.x1 - v.x0;
    b.ignore = (b.x1 - b.x0) < o.min_face_px || visible < o.min_visible;
    b.weight = photo_w >= 14.f && photo_w <= 48.f ? o.small_face_weight : 1.f;
    gts->push_back(b);
    masked.push_back(v.label == "with_mask");
  }
  for (size_t i = 0; i < gts->size(); ++i)
    if (masked[i] && !(*gts)[i].ignore && rng->Chance(o.recolour_prob))
      Recolour((*gts)[i], rng, S, tensor);
  if (o.photometric) Photometric(rng, S, tensor);
}

}  // namespace fm::train
