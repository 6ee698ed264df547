// face_api.h - converts a face-api.js FaceExpressionNet (npm @vladmandic/face-api, MIT:
// model/face_expression_model-weights_manifest.json + .bin) into an engine graph.
//
// face-api.js defines the architecture in code and ships only a weights manifest, so the graph is
// written here, following its FaceFeatureExtractor: input RGB 0..255, (x - [122.782, 117.001,
// 104.298]) / 255 (stored as the model's per-channel normalisation metadata, not as ops), four
// dense blocks (dense0 32, dense1 64, dense2 128, dense3 256 channels), each
//   out1 = relu(conv0(x, stride 2))        conv0: 3x3 conv (dense0) or separable conv
//   out2 = sep(out1);  out3 = sep(relu(out1 + out2));  out4 = sep(relu(out1 + out2 + out3))
//   y    = relu(out1 + out2 + out3 + out4)
// (sep = depthwise 3x3 + pointwise 1x1 + bias, TensorFlow SAME padding), then the average over
// the final 7x7 map (a global average pool: for inputs other than 112 px it averages the whole
// map), and FaceExpressionNet's fully connected layer + softmax over its seven expressions.
//
// Options cut the network for reuse as a pretrained feature extractor (issue 4, approach (b)):
// `blocks` < 4 stops after that many dense blocks, `features_only` drops the fully connected layer
// and outputs the pooled features [1, channels].
#pragma once

#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

struct FaceApiOptions {
  int input_size = 112;  // 32..448; face-api uses 112
  int blocks = 4;        // dense blocks kept, 1..4 (< 4 requires features_only)
  bool features_only = false;
  bool force_fp32 = false;  // else constants are stored as float16 (the source is 8-bit)
};

// face-api.js's expression labels, in output order.
const std::vector<std::string>& FaceApiExpressionLabels();

// True when the JSON text looks like a face-api.js weights manifest (a list of groups whose
// weights are named dense0/conv0/...).
bool LooksLikeFaceApiManifest(const std::string& json_text);

Status ConvertFaceApi(const std::string& manifest_path, const FaceApiOptions& options, Graph* out);

}  // namespace fm
