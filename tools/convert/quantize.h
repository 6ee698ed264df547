// quantize.h - weight quantization of a model (`facemask quantize`): the weights of every conv2d,
// depthwise_conv2d and fully_connected node are marked for symmetric per-output-channel int8
// storage (model/FORMAT.md, storage kinds 4 and 5) and replaced by their quantized values
// (q x scale), so the returned graph computes exactly what the written file will. Activations,
// biases and every other constant are left as they are. Only weights change, so both backends
// run the quantized file in float with the same speed; what it buys is a smaller download.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

struct QuantizedTensor {
  std::string name;
  int64_t elements = 0;
  int axis = 0;
  float max_abs_error = 0.f;  // largest |w - q x scale|
  float max_abs_weight = 0.f;
};

struct QuantizeOptions {
  int64_t min_elements = 64;  // smaller weight tensors stay as they are
  // The weights of the output layers (from each graph output back to the nearest conv2d or
  // fully_connected, that one included: a detector's box and score heads, a classifier's last
  // dense layer) stay as they are: their rounding goes
  // straight into boxes and scores, and they are a small share of the bytes. On the scenes train
  // split, quantizing the detector's heads too cost 0.015 mAP and 0.04 false boxes per photo.
  bool keep_output_layers = true;
  std::vector<std::string> keep_float;  // more weight tensors, by name, to leave as they are
};

// Quantizes `graph` (validated) in place and lists what it changed. Refuses graphs whose weights
// are already int8 and `keep_float` names that are not weights it would quantize.
Status QuantizeWeights(Graph* graph, const QuantizeOptions& options,
                       std::vector<QuantizedTensor>* report);

}  // namespace fm
