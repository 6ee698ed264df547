// augment.cpp - see augment.h.
#include "augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vision/image.h"

#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

namespace fm::train {
namespace {

constexpr float kPi = 3.14159265f;

float Luma(const float* p) {
  return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

bool IsSkin(const float* p) {
  const float cb = 128.f - 0.168736f * p[0] - 0.331264f * p[1] + 0.5f * p[2];
  const float cr = 128.f + 0.5f * p[0] - 0.418688f * p[1] - 0.081312f * p[2];
  return cb >= 77.f && cb <= 127.f && cr >= 133.f && cr <= 173.f;
}

// Soft elliptical region weight: 1 inside, fading to 0 over `soft` of the normalised radius.
float Ellipse(float x, float y, float cx, float cy, float rx, float ry, float soft = 0.3f) {
  const float dx = (x - cx) / rx, dy = (y - cy) / ry;
  const float e = std::sqrt(dx * dx + dy * dy);
  return std::min(1.f, std::max(0.f, (1.f - e) / soft));
}

void SkinTone(const std::vector<float>& img, int s, Rng* rng, float out[3]) {
  double sum[3] = {0, 0, 0};
  int n = 0;
  for (int y = s / 4; y < s / 2; ++y)
    for (int x = s * 3 / 10; x < s * 7 / 10; ++x) {
      const float* p = &img[(size_t(y) * size_t(s) + size_t(x)) * 3];
      if (!IsSkin(p)) continue;
      for (int c = 0; c < 3; ++c) sum[c] += p[c];
      ++n;
    }
  if (n >= s * s / 50) {
    for (int c = 0; c < 3; ++c) out[c] = float(sum[c] / n);
    return;
  }
  static const float palette[][3] = {
      {240, 200, 170}, {225, 175, 140}, {195, 145, 105}, {160, 110, 75}, {110, 75, 50}};
  const auto& p = palette[rng->Int(0, 4)];
  for (int c = 0; c < 3; ++c) out[c] = p[c];
}

float Pattern(int kind, float x, float y, float period, float angle) {
  const float u = x * std::cos(angle) + y * std::sin(angle);
  const float v = -x * std::sin(angle) + y * std::cos(angle);
  switch (kind) {
    case 1:  // stripes
      return std::sin(2 * kPi * u / period) > 0 ? 1.15f : 0.8f;
    case 2:  // checks
      return (int(std::floor(u / period)) + int(std::floor(v / period))) % 2 ? 1.15f : 0.8f;
    case 3: {  // dots
      const float fu = u / period - std::floor(u / period) - 0.5f;
      const float fv = v / period - std::floor(v / period) - 0.5f;
      return fu * fu + fv * fv < 0.06f ? 0.55f : 1.05f;
    }
    default:
      return 1.f;
  }
}

// Recolours the non-skin pixels of the lower face (where a mask sits).
void RecolorMask(std::vector<float>* img, int s, int label, Rng* rng) {
  float target[3];
  const int choice = rng->Int(0, 6);
  static const float fixed[][3] = {
      {115, 80, 55}, {215, 190, 160}, {28, 28, 30}, {35, 45, 80}, {150, 150, 150}};
  if (choice <= 4) {
    for (int c = 0; c < 3; ++c) target[c] = fixed[choice][c] * rng->Uniform(0.85f, 1.15f);
  } else if (choice == 5) {
    SkinTone(*img, s, rng, target);  // skin-toned mask
    for (int c = 0; c < 3; ++c) target[c] *= rng->Uniform(0.92f, 1.08f);
  } else {
    const float h = rng->Uniform(0, 2 * kPi), sat = rng->Uniform(40, 110),
                l = rng->Uniform(60, 200);
    target[0] = l + sat * std::cos(h);
    target[1] = l + sat * std::cos(h - 2.094f);
    target[2] = l + sat * std::cos(h + 2.094f);
  }
  const int pattern = rng->Chance(0.3f) ? rng->Int(1, 3) : 0;
  const float period = rng->Uniform(0.05f, 0.15f) * float(s), angle = rng->Uniform(0, kPi);
  const float cy = label == kIncorrect ? 0.78f : 0.70f, ry = label == kIncorrect ? 0.17f : 0.22f;
  std::vector<float> weight(size_t(s) * size_t(s));
  double lsum = 0, wsum = 0;
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const size_t i = size_t(y) * size_t(s) + size_t(x);
      const float* p = &(*img)[i * 3];
      const float r =
          Ellipse((float(x) + 0.5f) / float(s), (float(y) + 0.5f) / float(s), 0.5f, cy, 0.34f, ry);
      weight[i] = IsSkin(p) ? 0.f : r;
      lsum += weight[i] * Luma(p);
      wsum += weight[i];
    }
  if (wsum < 1) return;
  const float mean_l = std::max(float(lsum / wsum), 10.f);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const size_t i = size_t(y) * size_t(s) + size_t(x);
      if (weight[i] <= 0) continue;
      float* p = &(*img)[i * 3];
      const float shade = std::min(1.6f, std::max(0.3f, Luma(p) / mean_l)) *
                          Pattern(pattern, float(x), float(y), period, angle);
      for (int c = 0; c < 3; ++c) p[c] = (1 - weight[i]) * p[c] + weight[i] * target[c] * shade;
    }
}

// A skin-toned hand over the mouth: an ellipse with finger lines and shading.
void HandOverMouth(std::vector<float>* img, int s, Rng* rng) {
  float tone[3];
  SkinTone(*img, s, rng, tone);
  const float cx = 0.5f + rng->Uniform(-0.08f, 0.08f), cy = 0.74f + rng->Uniform(-0.03f, 0.05f);
  const float rx = rng->Uniform(0.2f, 0.3f), ry = rng->Uniform(0.1f, 0.15f);
  const float angle =
      rng->Chance(0.5f) ? rng->Uniform(-0.3f, 0.3f) : kPi / 2 + rng->Uniform(-0.3f, 0.3f);
  const float period = rng->Uniform(0.05f, 0.08f);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      const float fx = (float(x) + 0.5f) / float(s), fy = (float(y) + 0.5f) / float(s);
      const float w = Ellipse(fx, fy, cx, cy, rx, ry, 0.15f);
      if (w <= 0) continue;
      const float v = (fx - cx) * -std::sin(angle) + (fy - cy) * std::cos(angle);
      const float finger = 0.8f + 0.2f * std::fabs(std::sin(kPi * v / period));
      const float shade = finger * (1.05f - 0.5f * (fy - cy + ry) / (2 * ry) * 0.4f);
      float* p = &(*img)[(size_t(y) * size_t(s) + size_t(x)) * 3];
      for (int c = 0; c < 3; ++c) p[c] = (1 - w) * p[c] + w * tone[c] * shade;
    }
}

void Occlude(std::vector<float>* img, int s, Rng* rng) {
  const int w = int(float(s) * rng->Uniform(0.15f, 0.35f)),
            h = int(float(s) * rng->Uniform(0.15f, 0.35f));
  int x0, y0;
  if (rng->Chance(0.5f)) {  // upper half
    x0 = rng->Int(0, s - w);
    y0 = rng->Int(0, std::max(0, s * 45 / 100 - h));
  } else {  // a side
    x0 = rng->Chance(0.5f) ? rng->Int(0, s / 8) : s - w - rng->Int(0, s / 8);
    y0 = rng->Int(0, s - h);
  }
  const bool noise = rng->Chance(0.5f);
  const float col[3] = {rng->Uniform(0, 255), rng->Uniform(0, 255), rng->Uniform(0, 255)};
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x)
      for (int c = 0; c < 3; ++c)
        (*img)[(size_t(y) * size_t(s) + size_t(x)) * 3 + size_t(c)] =
            noise ? rng->Uniform(0, 255) : col[c];
}

void Photometric(std::vector<float>* img, const AugmentOptions& a, Rng* rng) {
  if (rng->Chance(a.photometric)) {
    const float contrast = rng->Uniform(0.6f, 1.4f), bright = rng->Uniform(0.45f, 1.3f);
    const float gamma = std::exp(rng->Uniform(std::log(0.7f), std::log(1.8f)));
    double mean = 0;
    for (float v : *img) mean += v;
    mean /= double(img->size());
    for (float& v : *img) {
      float x = (float(mean) + (v - float(mean)) * contrast) * bright / 255.f;
      x = std::pow(std::min(std::max(x, 0.f), 1.f), gamma);
      v = x * 255.f;
    }
  }
  if (rng->Chance(a.hue)) {  // hue rotation and saturation in YIQ
    const float t = rng->Uniform(-0.45f, 0.45f), sat = rng->Uniform(0.35f, 1.4f);
    const float c = std::cos(t) * sat, s = std::sin(t) * sat;
    for (size_t i = 0; i < img->size(); i += 3) {
      float* p = &(*img)[i];
      const float yv = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
      const float iv = 0.596f * p[0] - 0.274f * p[1] - 0.322f * p[2];
      const float qv = 0.211f * p[0] - 0.523f * p[1] + 0.312f * p[2];
      const float i2 = c * iv - s * qv, q2 = s * iv + c * qv;
      p[0] = yv + 0.956f * i2 + 0.621f * q2;
      p[1] = yv - 0.272f * i2 - 0.647f * q2;
      p[2] = yv - 1.106f * i2 + 1.703f * q2;
    }
  }
  if (rng->Chance(a.cast)) {  // coloured light (stage, neon, screens): per-channel gains
    float gain[3];
    for (float& g : gain) g = std::exp(rng->Uniform(-0.4f, 0.4f));
    for (size_t i = 0; i < img->size(); ++i) (*img)[i] *= gain[i % 3];
  }
  if (rng->Chance(a.grey))
    for (size_t i = 0; i < img->size(); i += 3) {
      const float l = Luma(&(*img)[i]);
      (*img)[i] = (*img)[i + 1] = (*img)[i + 2] = l;
    }
}

void Blur(std::vector<float>* img, int s, int passes) {
  std::vector<float> tmp(img->size());
  for (int p = 0; p < passes; ++p)
    for (int dir = 0; dir < 2; ++dir) {
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          for (int c = 0; c < 3; ++c) {
            auto at = [&](int xx, int yy) {
              xx = std::min(std::max(xx, 0), s - 1), yy = std::min(std::max(yy, 0), s - 1);
              return (*img)[(size_t(yy) * size_t(s) + size_t(xx)) * 3 + size_t(c)];
            };
            tmp[(size_t(y) * size_t(s) + size_t(x)) * 3 + size_t(c)] =
                dir == 0 ? 0.25f * at(x - 1, y) + 0.5f * at(x, y) + 0.25f * at(x + 1, y)
                         : 0.25f * at(x, y - 1) + 0.5f * at(x, y) + 0.25f * at(x, y + 1);
          }
      img->swap(tmp);
    }
}

void Jpeg(std::vector<float>* img, int s, int quality) {
  std::vector<uint8_t> rgb(img->size());
  for (size_t i = 0; i < rgb.size(); ++i)
    rgb[i] = uint8_t(std::lround(std::min(255.f, std::max(0.f, (*img)[i]))));
  std::vector<uint8_t> bytes;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &bytes, s, s, 3, rgb.data(), quality);
  Image decoded;
  if (!DecodeImage(bytes.data(), bytes.size(), &decoded).ok() || decoded.width != s ||
      decoded.height != s)
    return;
  for (size_t i = 0; i < img->size(); ++i) (*img)[i] = decoded.rgb[i];
}

}  // namespace

void LowerMask(const CropSet& set, size_t bare, size_t masked, float shift, uint8_t* out) {
  const int n = set.ctx_size;
  const float region = float(n) / set.context, off = (float(n) - region) * 0.5f;
  const uint8_t* b = set.Context(bare);
  const uint8_t* m = set.Context(masked);
  // Where the mask is in `masked`: the non-skin pixels of the lower face, smoothed.
  std::vector<float> w(size_t(n) * size_t(n)), tmp(w.size());
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const size_t i = size_t(y) * size_t(n) + size_t(x);
      const float px[3] = {float(m[i * 3]), float(m[i * 3 + 1]), float(m[i * 3 + 2])};
      const float u = (float(x) + 0.5f - off) / region, v = (float(y) + 0.5f - off) / region;
      w[i] = IsSkin(px) ? 0.f : Ellipse(u, v, 0.5f, 0.70f, 0.34f, 0.24f, 0.25f);
    }
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float sum = 0;
      int cnt = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= n || yy >= n) continue;
          sum += w[size_t(yy) * size_t(n) + size_t(xx)];
          ++cnt;
        }
      tmp[size_t(y) * size_t(n) + size_t(x)] = sum / float(cnt);
    }
  // `masked`'s mask, `shift` crop sides lower, over `bare`; cut where the face ends.
  const int dy = int(std::lround(shift * region));
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const size_t i = size_t(y) * size_t(n) + size_t(x);
      const int sy = y - dy;
      const float u = (float(x) + 0.5f - off) / region, v = (float(y) + 0.5f - off) / region;
      float a = sy >= 0 ? tmp[size_t(sy) * size_t(n) + size_t(x)] : 0.f;
      a *= Ellipse(u, v, 0.5f, 0.55f, 0.44f, 0.47f, 0.15f);
      for (int c = 0; c < 3; ++c) {
        const float mv =
            sy >= 0 ? float(m[(size_t(sy) * size_t(n) + size_t(x)) * 3 + size_t(c)]) : 0.f;
        out[i * 3 + size_t(c)] =
            uint8_t(std::lround((1 - a) * float(b[i * 3 + size_t(c)]) + a * mv));
      }
    }
}

void LowerMaskPools(const CropSet& set, const std::vector<size_t>& indices,
                    std::vector<size_t>* bare, std::vector<size_t>* masked) {
  bare->clear();
  masked->clear();
  for (size_t i : indices) {
    const Sample& s = set.samples[i];
    if (s.source == kMaskedFaceNet || s.face_px < 24) continue;
    if (s.label == kWithoutMask) bare->push_back(i);
    if (s.label == kWithMask) masked->push_back(i);
  }
}

namespace {

// The augmented (or exact) crop in 0..255 floats; partner >= 0: `index` is a bare face that gets
// `partner`'s mask lowered onto it (label incorrect).
void MakeCrop(const CropSet& set, size_t index, long partner, const AugmentOptions& a,
              uint64_t seed, std::vector<float>* img) {
  const int s = set.size;
  img->resize(size_t(s) * size_t(s) * 3);
  if (!a.enabled && partner < 0) {
    const uint8_t* e = set.Exact(index);
    for (size_t i = 0; i < img->size(); ++i) (*img)[i] = e[i];
    return;
  }
  Rng rng(seed);
  const int label = partner >= 0 ? int(kIncorrect) : int(set.samples[index].label);
  // Geometry: the pipeline's crop inside the context crop, jittered.
  Image ctx;
  ctx.width = ctx.height = set.ctx_size;
  if (partner >= 0) {
    ctx.rgb.resize(size_t(set.ctx_size) * size_t(set.ctx_size) * 3);
    LowerMask(set, index, size_t(partner), rng.Uniform(a.lower_min, a.lower_max), ctx.rgb.data());
  } else {
    ctx.rgb.assign(set.Context(index),
                   set.Context(index) + size_t(set.ctx_size) * size_t(set.ctx_size) * 3);
  }
  const float region = float(set.ctx_size) / set.context;  // pipeline crop side in ctx pixels
  const float f = region / float(s) * (1.f + rng.Uniform(-a.scale, a.scale));
  const float th = rng.Uniform(-a.rotate_deg, a.rotate_deg) * kPi / 180.f;
  const float fl = rng.Chance(a.flip) ? -1.f : 1.f;
  const float cx = float(set.ctx_size) * 0.5f + rng.Uniform(-a.shift, a.shift) * region;
  const float cy = float(set.ctx_size) * 0.5f + rng.Uniform(-a.shift, a.shift) * region;
  const float c = std::cos(th) * f, sn = std::sin(th) * f, h = float(s) * 0.5f;
  Affine m;
  m.m[0] = c * fl;
  m.m[1] = -sn;
  m.m[2] = cx - c * fl * h + sn * h;
  m.m[3] = sn * fl;
  m.m[4] = c;
  m.m[5] = cy - sn * fl * h - c * h;
  WarpToTensor(ctx, m, s, s, Normalization(), img->data());
  if (label != kWithoutMask && partner < 0 && rng.Chance(a.recolor))
    RecolorMask(img, s, label, &rng);
  if (label == kWithoutMask && rng.Chance(a.hand)) HandOverMouth(img, s, &rng);
  if (rng.Chance(a.occlude)) Occlude(img, s, &rng);
  Photometric(img, a, &rng);
  if (rng.Chance(a.blur)) Blur(img, s, rng.Int(1, 2));
  if (rng.Chance(a.jpeg)) Jpeg(img, s, rng.Int(15, 60));
  if (rng.Chance(a.noise)) {
    const float sigma = rng.Uniform(2.f, 10.f);
    for (float& v : *img) v += rng.Normal() * sigma;
  }
  for (float& v : *img) v = std::min(255.f, std::max(0.f, v));
}

}  // namespace

void MakeInput(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
               const InputNorm& norm, float* out, long partner) {
  std::vector<float> img;
  MakeCrop(set, index, partner, aug, seed, &img);
  for (size_t i = 0; i < img.size(); ++i) out[i] = img[i] * norm.scale + norm.offset[i % 3];
}

void MakeAugmentedRgb(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
                      uint8_t* out, long partner) {
  std::vector<float> img;
  MakeCrop(set, index, partner, aug, seed, &img);
  for (size_t i = 0; i < img.size(); ++i) out[i] = uint8_t(std::lround(img[i]));
}

}  // namespace fm::train
