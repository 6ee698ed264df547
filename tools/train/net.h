// net.h - a sequential network of layers, the two architectures the issue asks for, and the
// export to the engine's graph (batch-norm folded into the preceding convolution, activations
// fused as the op's clamp, dropout dropped, softmax appended), so the engine computes exactly the
// trainer's eval-mode forward.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers.h"
#include "model/graph.h"
#include "status.h"

namespace fm::train {

class Net {
 public:
  Net(int h, int w, int c) : in_h(h), in_w(w), in_c(c) {}
  void Add(std::unique_ptr<Layer> layer) { layers.push_back(std::move(layer)); }
  // Runs all layers; Output() is the logits [N, 1, 1, classes].
  void Forward(const Tensor& x, bool train);
  const Tensor& Output() const { return acts_.back(); }
  // Back-propagates d loss / d logits; parameter gradients end up in Params()' grads.
  void Backward(const Tensor& dlogits);
  std::vector<Param*> Params();
  int64_t NumParams();
  int64_t Macs();  // multiply-accumulates for one sample
  // All parameters and buffers, for keeping the best epoch.
  std::vector<std::vector<float>> Snapshot();
  void Restore(const std::vector<std::vector<float>>& snapshot);

  int in_h, in_w, in_c;
  std::vector<std::unique_ptr<Layer>> layers;

 private:
  std::vector<Tensor> acts_;  // acts_[0] = input, acts_[i + 1] = output of layer i
  Tensor grad_a_, grad_b_;
};

// MobileNet-style: 3x3 stride-2 stem, depthwise-separable blocks (dw 3x3 + BN + relu6, pw 1x1 +
// BN + relu6), global average pool, dropout, dense. `width` scales every channel count.
std::unique_ptr<Net> BuildMobile(int size, float width, int classes, float dropout, uint64_t seed);
// Approach (b): a frozen pretrained feature extractor (frozen.h; its input size is the net's),
// then dropout, an optional hidden dense layer (relu) and the classifying dense layer.
Status BuildFrozenHead(std::shared_ptr<const Graph> extractor, int hidden, int classes,
                       float dropout, uint64_t seed, std::unique_ptr<Net>* out);
// The original project's Keras CNN: conv 32/64/128 (3x3, relu, 2x2 max pool), dense 128, dropout
// 0.5, dense; no batch-norm.
std::unique_ptr<Net> BuildOriginal(int size, int classes, uint64_t seed);

struct ExportOptions {
  std::vector<std::string> labels = {"with_mask", "without_mask", "mask_worn_incorrectly"};
  float norm_scale = 1.f / 127.5f;
  std::vector<float> norm_offset = {-1.f};  // one value, or one per channel
  float crop_margin = 1.3f;
  bool fp16 = false;  // store weights as float16 (halves the file)
  std::vector<std::pair<std::string, std::string>> extra_metadata;
};

Status ExportGraph(Net& net, const ExportOptions& options, Graph* graph);

}  // namespace fm::train
