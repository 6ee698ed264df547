// tfjs_layers.h - converts a TensorFlow.js LAYERS model (model.json with modelTopology, the Keras
// model config, and weightsManifest, as tensorflowjs_converter writes from a Keras model) into
// an engine graph through the shared Keras layer converter (keras_layers.h). Weights are
// float32, float16 or uint8/uint16 affine-quantised; each is given to the layer its name names
// ("conv2d/kernel" -> layer "conv2d").
//
// model.json and the shards are untrusted: every malformed field, unsafe shard path, missing or
// short shard becomes a Status naming what and where.
#pragma once

#include <string>
#include <vector>

#include "keras_layers.h"
#include "model/graph.h"
#include "status.h"

namespace fm {

// Reads model.json and its shards (relative to model.json's directory).
Status ReadTfjsLayers(const std::string& model_json_path, KerasModelSource* out);

// Reads a bare weights manifest (a JSON list of {paths, weights} groups, the way face-api.js
// ships its models) and its shards, relative to the manifest's directory; arrays in manifest order.
Status ReadWeightsManifest(const std::string& manifest_path, std::vector<KerasArray>* out);

// ReadTfjsLayers + ConvertKerasModel.
Status ConvertTfjsLayers(const std::string& model_json_path, const KerasConvertOptions& options,
                         Graph* out);

}  // namespace fm
