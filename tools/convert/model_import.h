// model_import.h - one entry point for `facemask convert`: recognises the input (a Keras .h5, a
// TensorFlow.js graph model or a TensorFlow.js layers model), converts it and stores what the
// engine needs to use it as a classifier in the model's metadata: kind=classifier, labels,
// norm_scale / norm_offset (tensor = pixel * scale - mean) and channel_order.
// A model with one sigmoid-like output [1, 1] gets two labels (default "no,yes") and its output
// becomes [1, 2] = (1 - p, p), so the CLI, the pipeline and the page treat it like any other
// two-class model.
#pragma once

#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

enum class ModelFormat { kKerasH5, kTfjsGraph, kTfjsLayers, kFaceApi };
const char* ModelFormatName(ModelFormat f);

// Looks at the file's first bytes (and, for JSON, its "format" / modelTopology).
Status DetectModelFormat(const std::string& path, ModelFormat* format);

struct ImportOptions {
  std::vector<std::string> labels;  // empty = "0".."n-1" ("no,yes" for a [1, 1] output)
  float scale = 1.f;                // tensor = pixel * scale - mean
  float mean = 0.f;
  bool bgr = false;
  // face-api.js manifests only (their preprocessing is fixed; scale/mean/bgr must stay default):
  int input_size = 0;      // 0 = 112
  bool fp32 = false;       // keep float32 weights (default float16: the source is 8-bit)
  int feature_blocks = 0;  // 1..4: the pretrained feature extractor cut after that many dense
                           // blocks, output [1, channels], kind=features; 0 = the whole
                           // expression classifier
};

Status ImportModel(const std::string& path, const ImportOptions& options, Graph* out,
                   ModelFormat* format = nullptr);

// Appends (1 - p, p) for a graph whose single output is [1, 1]; re-validates.
Status ExpandSigmoidOutput(Graph* graph);

}  // namespace fm
