// augment.h - turns a cached crop into one model input (normalised float RGB, size x size),
// with or without augmentation. Augmentation targets the original project's known failures:
//   geometry   flip; scale / shift / rotation jitter like the detector's box and eye-line jitter,
//              resampled from the larger context crop (outside the photo stays black, as in the
//              pipeline);
//   masks      (with_mask only) the lower-face region's non-skin pixels recoloured to brown,
//              beige, black, navy, a random hue or the face's own skin tone, optionally patterned
//              (stripes, checks, dots), keeping the original shading;
//   lowered    a synthetic "worn incorrectly" face from two real ones: a bare face with another
//              photo's real mask laid lower (under the nose, or on the chin), see LowerMask;
//   hand       (without_mask only) a skin-toned hand with finger lines over the mouth: covering the
//              mouth with something skin-coloured is not a mask;
//   photometry brightness / contrast / gamma (low light), hue and saturation shifts, coloured
//              light (per-channel gains), greyscale,
//              blur, sensor noise, JPEG re-compression, partial occlusion away from the mouth.
// Each sample draws from its own Rng (seeded from the run seed, epoch and index), so results do
// not depend on threads.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "dataset.h"

namespace fm::train {

struct AugmentOptions {
  bool enabled = true;
  float flip = 0.5f;
  float shift = 0.08f;      // of the crop side, each axis
  float scale = 0.12f;      // +- relative
  float rotate_deg = 12.f;  // +-
  float recolor = 0.5f;     // with_mask
  float hand = 0.12f;       // without_mask
  float photometric = 0.8f;
  float hue = 0.3f;
  float cast = 0.f;  // coloured light: per-channel gains (exp(+-0.4))
  float grey = 0.08f;
  float blur = 0.15f;
  float noise = 0.15f;
  float jpeg = 0.15f;
  float occlude = 0.15f;
  float lower_min = 0.08f, lower_max = 0.2f;  // LowerMask shift, of the crop side
};

// tensor = pixel * scale + offset[channel]
struct InputNorm {
  float scale = 1.f / 127.5f;
  float offset[3] = {-1.f, -1.f, -1.f};
};

// Writes set.size^2 * 3 floats. Without augmentation this is the exact (pipeline) crop.
// partner >= 0: sample `index` (a bare face) with partner's mask lowered onto it (LowerMask, a
// shift drawn from aug.lower_min..lower_max), then augmented as an incorrectly worn mask.
void MakeInput(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
               const InputNorm& norm, float* out, long partner = -1);

// The augmented crop as 8-bit RGB (for looking at what the trainer sees).
void MakeAugmentedRgb(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
                      uint8_t* out, long partner = -1);

// Writes a context crop (set.ctx_size^2 RGB): the bare face of sample `bare` wearing the mask of
// sample `masked` `shift` crop sides lower, the nose (or nose and mouth) showing above it. Both
// crops are cut the pipeline's way (upright, centred on the face box), so the faces line up.
// The mask is the non-skin part of the masked face's lower-face ellipse, cut off where the bare
// face's chin ends.
void LowerMask(const CropSet& set, size_t bare, size_t masked, float shift, uint8_t* out);

// The partners LowerMask draws from, among `indices`: real bare and real masked faces (not
// MaskedFace-Net's template masks) at least 24 px wide, enough to show a nose.
void LowerMaskPools(const CropSet& set, const std::vector<size_t>& indices,
                    std::vector<size_t>* bare, std::vector<size_t>* masked);

}  // namespace fm::train
