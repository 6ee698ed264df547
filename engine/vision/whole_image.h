// whole_image.h - a classifier run on whole pictures (models like the original project's, which
// label a whole photo): the picture is box-filtered and resized to the model's input, greyscale for
// one-channel models ([1, H, W, 1] or [1, H, W]), normalised as its metadata says; a single
// sigmoid output with two labels gives (1 - p, p). Used by `facemask classify` and the page.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/graph.h"
#include "runtime/runtime.h"
#include "status.h"
#include "vision/image.h"

namespace fm {

class WholeImageClassifier {
 public:
  Status Load(std::shared_ptr<const Graph> graph, int threads);
  Status Run(const ImageView& image, std::vector<float>* probs);
  const std::vector<std::string>& labels() const { return labels_; }

 private:
  std::unique_ptr<Runtime> runtime_;
  Normalization norm_;
  std::vector<std::string> labels_;
  Image small_;  // reused box-filtered copy of large pictures
  int w_ = 0, h_ = 0, c_ = 3;
  bool sigmoid_ = false;
};

}  // namespace fm
