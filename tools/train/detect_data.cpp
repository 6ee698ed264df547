// detect_data.cpp - see detect_data.h.
#include "detect_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "vision/pipeline.h"

namespace fm::train {

namespace fs = std::filesystem;

SceneSplit SplitOf(const std::string& stem) {
  if (IsScenesDevPhoto(stem)) return SceneSplit::kDev;
  return IsScenesDetectorValPhoto(stem) ? SceneSplit::kVal : SceneSplit::kFit;
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

Status LoadPasteFaces(const std::string& dir, std::shared_ptr<const Graph> detector, int count,
                      std::vector<PasteFace>* out) {
  out->clear();
  PipelineOptions po;
  po.tiling = PipelineOptions::Tiling::kOff;
  po.min_score = 0.6f;
  std::unique_ptr<Pipeline> p;
  FM_RETURN_IF_ERROR(Pipeline::Create(detector, nullptr, po, &p));
  int skipped = 0;
  for (const char* cls : {"with_mask", "without_mask"}) {
    const fs::path sub = fs::path(dir) / cls;
    std::error_code ec;
    if (!fs::is_directory(sub, ec))
      return Errorf("paste faces: '", sub.string(), "' is not a directory");
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(sub, ec)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    Rng order(7);  // a fixed sample, the same for every seed
    order.Shuffle(&files);
    const size_t want = size_t(count / 2);
    size_t taken = 0;
    for (size_t i = 0; i < files.size() && taken < want; ++i) {
      PasteFace f;
      f.levels.emplace_back();
      if (!DecodeImageFile(files[i], &f.levels[0]).ok()) {
        ++skipped;
        continue;
      }
      std::vector<Detection> dets;
      FM_RETURN_IF_ERROR(p->Detect(f.levels[0], &dets, /*allow_tiles=*/false));
      if (dets.size() != 1 || dets[0].x1 - dets[0].x0 < 40.f) {
        ++skipped;
        continue;
      }
      // BlazeFace's box -> the scenes' (human) convention: larger and lower (crop_box inverse).
      const Detection& d = dets[0];
      const float side = std::max(d.x1 - d.x0, d.y1 - d.y0) / 0.953f;
      const float cx = (d.x0 + d.x1) * 0.5f + 0.017f * side;
      const float cy = (d.y0 + d.y1) * 0.5f + 0.103f * side;
      const float hw = (d.x1 - d.x0) * 0.5f / 0.953f, hh = (d.y1 - d.y0) * 0.5f / 0.953f;
      f.x0 = cx - hw, f.x1 = cx + hw, f.y0 = cy - hh, f.y1 = cy + hh;
      f.masked = std::string(cls) == "with_mask";
      while (std::min(f.levels.back().width, f.levels.back().height) >= 32)
        f.levels.push_back(Downscale(f.levels.back(), 2));
      out->push_back(std::move(f));
      ++taken;
    }
  }
  std::printf("paste faces: %zu from %s (%d photos skipped: no single face >= 40 px)\n",
              out->size(), dir.c_str(), skipped);
  if (out->empty()) return Errorf("paste faces: none found in '", dir, "'");
  return Status::Ok();
}

namespace {

// Bilinear sample of an RGB image at (x, y) (pixel centres at +0.5); false outside it.
bool Sample(const Image& im, float x, float y, float rgb[3]) {
  x -= 0.5f, y -= 0.5f;
  if (!(x >= 0.f && y >= 0.f && x <= float(im.width - 1) && y <= float(im.height - 1)))
    return false;
  const int x0 = std::min(int(x), im.width - 2 < 0 ? 0 : im.width - 2);
  const int y0 = std::min(int(y), im.height - 2 < 0 ? 0 : im.height - 2);
  const int x1 = std::min(x0 + 1, im.width - 1), y1 = std::min(y0 + 1, im.height - 1);
  const float fx = x - float(x0), fy = y - float(y0);
  auto at = [&](int xx, int yy, int c) {
    return float(im.rgb[(size_t(yy) * size_t(im.width) + size_t(xx)) * 3 + size_t(c)]);
  };
  for (int c = 0; c < 3; ++c)
    rgb[c] = (at(x0, y0, c) * (1.f - fx) + at(x1, y0, c) * fx) * (1.f - fy) +
             (at(x0, y1, c) * (1.f - fx) + at(x1, y1, c) * fx) * fy;
  return true;
}

// Blends 1..max_pastes faces into the view where nothing is annotated and the view is not
// padding: a square 1.8x the face around it, opaque out to 0.6 of its half side and fading to
// nothing at its edge, so the face keeps some of its own surroundings.
void PasteInto(const std::vector<PasteFace>& pastes, const ViewOptions& o, Rng* rng, float* t,
               std::vector<GtBox>* gts, std::vector<bool>* masked) {
  const int S = o.size, n = rng->Int(1, o.max_pastes);
  for (int i = 0; i < n; ++i) {
    const PasteFace& f = pastes[rng->Next() % pastes.size()];
    const float bw = f.x1 - f.x0, bh = f.y1 - f.y0;
    const float fw = std::exp(rng->Uniform(std::log(o.paste_min_px), std::log(o.paste_max_px)));
    const float k = fw / bw, fh = bh * k;  // view px per photo px
    const float side = 1.8f * std::max(fw, fh);
    const bool flip = rng->Chance(0.5f);
    if (side >= float(S)) continue;
    const float px0 = rng->Uniform(0.f, float(S) - side), py0 = rng->Uniform(0.f, float(S) - side);
    GtBox b;
    b.x0 = px0 + (side - fw) * 0.5f, b.x1 = b.x0 + fw;
    b.y0 = py0 + (side - fh) * 0.5f, b.y1 = b.y0 + fh;
    bool free = true;
    for (const GtBox& g : *gts)
      free = free && (g.x1 < px0 || g.x0 > px0 + side || g.y1 < py0 || g.y0 > py0 + side);
    const float* centre =
        t + (size_t(int(b.y0 + fh * 0.5f)) * size_t(S) + size_t(int(b.x0 + fw * 0.5f))) * 3;
    if (!free || (centre[0] == 0.f && centre[1] == 0.f && centre[2] == 0.f)) continue;
    // The pyramid level closest above the view's scale, so bilinear sampling does not alias.
    size_t level = 0;
    float kl = k;
    while (level + 1 < f.levels.size() && kl < 0.5f) ++level, kl *= 2.f;
    const Image& im = f.levels[level];
    // level px per photo px: k / kl (= 2^-level); view px per level px: kl.
    const float fcx = (f.x0 + f.x1) * 0.5f * k / kl, fcy = (f.y0 + f.y1) * 0.5f * k / kl;
    const int xa = std::max(0, int(px0)), xb = std::min(S, int(std::ceil(px0 + side)));
    const int ya = std::max(0, int(py0)), yb = std::min(S, int(std::ceil(py0 + side)));
    for (int y = ya; y < yb; ++y)
      for (int x = xa; x < xb; ++x) {
        const float u = (float(x) + 0.5f - px0) / side - 0.5f,
                    v = (float(y) + 0.5f - py0) / side - 0.5f;
        const float r = 2.f * std::sqrt(u * u + v * v);
        const float alpha = std::min(1.f, std::max(0.f, (1.f - r) / 0.4f));
        if (alpha <= 0.f) continue;
        float rgb[3];
        const float sx = fcx + (flip ? -u : u) * side / kl, sy = fcy + v * side / kl;
        if (!Sample(im, sx, sy, rgb)) continue;
        float* p = t + (size_t(y) * size_t(S) + size_t(x)) * 3;
        if (p[0] == 0.f && p[1] == 0.f && p[2] == 0.f) continue;  // letterbox padding stays
        for (int c = 0; c < 3; ++c) p[c] += alpha * (rgb[c] / 127.5f - 1.f - p[c]);
      }
    b.weight = o.small_face_weight;
    gts->push_back(b);
    masked->push_back(f.masked);
  }
}

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

void SampleView(const Scene& scene, const std::vector<PasteFace>& pastes, const ViewOptions& o,
                Rng* rng, float* tensor, std::vector<GtBox>* gts) {
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
  if (!pastes.empty() && rng->Chance(o.paste_prob)) PasteInto(pastes, o, rng, tensor, gts, &masked);
  for (size_t i = 0; i < gts->size(); ++i)
    if (masked[i] && !(*gts)[i].ignore && rng->Chance(o.recolour_prob))
      Recolour((*gts)[i], rng, S, tensor);
  if (o.photometric) Photometric(rng, S, tensor);
}

}  // namespace fm::train
