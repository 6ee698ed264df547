// keras_layers.h - converts a Keras model (its model_config JSON plus the weight arrays of each
// layer) into an engine graph. Shared by the two Keras containers: the HDF5 .h5 file
// (keras_h5.h) and the TensorFlow.js LAYERS model (model.json + shards, tfjs_layers.h).
//
// Supported: Sequential models (config as a list, Keras 2.1, or as a dict) and functional models
// whose layers are each called once; channels_last only. Layers: InputLayer, Reshape, Conv2D,
// DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
// ZeroPadding2D, Flatten, Dense, Activation (relu, relu6, sigmoid, softmax, tanh, linear), ReLU,
// LeakyReLU, Softmax, Dropout (dropped), BatchNormalization (folded into the preceding
// Conv2D/DepthwiseConv2D/SeparableConv2D/Dense when that layer has no activation and no other
// consumer, else multiply + add), Add, Concatenate. Anything else is refused with the layer's name
// and type; nothing is half-converted.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

struct KerasArray {
  std::string name;  // as stored, e.g. "conv2d/kernel:0" or "sequential_4/conv2d_12/kernel"
  Shape shape;
  std::vector<float> data;
};

struct KerasModelSource {
  std::string config_json;  // model_config: {"class_name": ..., "config": ...}
  // Weights by layer name, in the layer's own order.
  std::map<std::string, std::vector<KerasArray>> weights;
};

struct KerasConvertOptions {
  // Input shape; empty = from the InputLayer or the first layer (batch becomes 1).
  Shape input_shape;
  // Copied into the graph's metadata.
  std::map<std::string, std::string> metadata;
};

Status ConvertKerasModel(const KerasModelSource& source, const KerasConvertOptions& options,
                         Graph* out);

}  // namespace fm
