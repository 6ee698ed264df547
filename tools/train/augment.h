// augment.h - turns a cached crop into one model input (normalised float RGB, size x size),
// with or without augmentation. Augmentation targets the original project's known failures:
//   geometry   flip; scale / shift / rotation jitter like the detector's box and eye-line jitter,
//              resampled from the larger context crop (outside the photo stays black, as in the
//              pipeline);
//   masks      (with_mask only) the lower-face region's non-skin pixels recoloured to brown,
//              beige, black, navy, a random hue or the face's own skin tone, optionally patterned
//              (stripes, checks, dots), keeping the original shading;
//   hand       (without_mask only) a skin-toned hand with finger lines over the mouth: covering the
//              mouth with something skin-coloured is not a mask;
//   photometry brightness / contrast / gamma (low light), hue and saturation shifts, greyscale,
//              blur, sensor noise, JPEG re-compression, partial occlusion away from the mouth.
// Each sample draws from its own Rng (seeded from the run seed, epoch and index), so results do
// not depend on threads.
#pragma once

#include <cstdint>

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
  float grey = 0.08f;
  float blur = 0.15f;
  float noise = 0.15f;
  float jpeg = 0.15f;
  float occlude = 0.15f;
};

// tensor = pixel * scale + offset[channel]
struct InputNorm {
  float scale = 1.f / 127.5f;
  float offset[3] = {-1.f, -1.f, -1.f};
};

// Writes set.size^2 * 3 floats. Without augmentation this is the exact (pipeline) crop.
void MakeInput(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
               const InputNorm& norm, float* out);

// The augmented crop as 8-bit RGB (for looking at what the trainer sees).
void MakeAugmentedRgb(const CropSet& set, size_t index, const AugmentOptions& aug, uint64_t seed,
                      uint8_t* out);

}  // namespace fm::train
