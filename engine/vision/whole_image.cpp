// whole_image.cpp - see whole_image.h.
#include "vision/whole_image.h"

#include <algorithm>

#include "vision/pipeline.h"

namespace fm {

Status WholeImageClassifier::Load(std::shared_ptr<const Graph> graph, int threads) {
  if (!graph || !graph->validated()) return Errorf("classifier: no validated model");
  if (graph->inputs.size() != 1 || graph->outputs.size() != 1)
    return Errorf("classifier: a classifier has one input and one output");
  const Shape& in = graph->ShapeOf(graph->inputs[0]);
  const bool rank3 = in.size() == 3;  // [1, H, W]: greyscale without a channel axis
  if ((in.size() != 4 && !rank3) || in[0] != 1 || in[1] > 4096 || in[2] > 4096 ||
      (!rank3 && in[3] != 1 && in[3] != 3))
    return Errorf("classifier: input ", ShapeToString(in),
                  " is not an image [1, H, W, 1 or 3] or [1, H, W]");
  labels_.clear();
  h_ = int(in[1]);
  w_ = int(in[2]);
  c_ = rank3 ? 1 : int(in[3]);
  labels_ = ReadLabels(*graph);
  const Shape& out = graph->ShapeOf(graph->outputs[0]);
  const int64_t n = out.size() == 2 && out[0] == 1 ? out[1] : 0;
  if (n == 1 && labels_.size() == 2) {
    sigmoid_ = true;
  } else if (n < 1 || int64_t(labels_.size()) != n) {
    return Errorf("classifier: output ", ShapeToString(out), " does not match ", labels_.size(),
                  " labels");
  }
  FM_RETURN_IF_ERROR(ReadNormalization(*graph, &norm_).Prefix("classifier: "));
  if (c_ == 1) {  // greyscale: luma; outside the picture black
    norm_.grey = true;
    norm_.pad = norm_.offset[0];
  }
  RuntimeOptions ro;
  ro.threads = threads;
  return Runtime::Create(graph, ro, &runtime_).Prefix("classifier: ");
}

Status WholeImageClassifier::Run(const ImageView& image, std::vector<float>* probs) {
  if (!runtime_) return Errorf("classifier: not loaded");
  if (image.empty()) return Errorf("classifier: empty or inconsistent image");
  ImageView src = image;
  const int factor = std::min(image.width / w_, image.height / h_);
  if (factor >= 2) {
    Downscale(image, factor, &small_);
    src = small_;
  }
  const Affine map = CropMap(0, 0, float(src.width), float(src.height), w_, h_);
  WarpToTensor(src, map, w_, h_, norm_, runtime_->input(0));
  FM_RETURN_IF_ERROR(runtime_->Run());
  const float* out = runtime_->output(0);
  if (sigmoid_)
    *probs = {1.f - out[0], out[0]};
  else
    probs->assign(out, out + labels_.size());
  return Status::Ok();
}

}  // namespace fm
