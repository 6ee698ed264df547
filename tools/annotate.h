// annotate.h - draws detection results onto an image for the CLI's --annotate: a box per face
// coloured by label, and a text tag (label and confidence) so colour is never the only cue.
#pragma once

#include <string>
#include <vector>

#include "image.h"
#include "pipeline.h"

namespace fm {

void AnnotateFaces(Image* image, const std::vector<Face>& faces,
                   const std::vector<std::string>& labels);

// Encodes as JPEG (quality 90) and writes the file.
Status WriteJpeg(const Image& image, const std::string& path);

}  // namespace fm
