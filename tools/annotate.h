// annotate.h - draws detection results onto an image for the CLI's --annotate: a box per face
// coloured by label, and a text tag (label and confidence) so colour is never the only cue.
#pragma once

#include <string>
#include <vector>

#include "vision/image.h"
#include "vision/pipeline.h"

namespace fm {

// Labels are drawn in printable ASCII: other bytes as '?' (a UTF-8 character as one '?').
void AnnotateFaces(Image* image, const std::vector<Face>& faces,
                   const std::vector<std::string>& labels);

// Encodes as JPEG (quality 90) and writes `path` atomically: into TempPathFor(path), then renamed
// over `path`, so a failed or interrupted write never leaves a partial file there.
Status WriteJpeg(const Image& image, const std::string& path);
// DIR/.NAME.tmp for DIR/NAME.
std::string TempPathFor(const std::string& path);
// RGB pixels as a JPEG "data:image/jpeg;base64,..." URI, for pictures inside SVG reports; empty
// if the encoder fails.
std::string JpegDataUri(const uint8_t* rgb, int width, int height, int quality);

}  // namespace fm
