// tfjs_convert.h - converts a TensorFlow.js graph model (model.json + binary weight shards) into
// an engine graph. Shape arithmetic (Shape, StridedSlice, Pack, Cast, ...) is folded to constants
// with static shapes; batch-norm, bias and activation chains are folded into the preceding
// convolution; zero Pads in front of VALID convolutions become the convolution's padding; only
// the nodes the requested outputs need are kept. Weights stay float16 in the .fmm when the source
// stored them with 16 bits or fewer (float16 or uint8/uint16 affine quantisation), unless
// force_fp32 is set.
//
// The model.json and the shards are untrusted input: every malformed field, missing shard, wrong
// byte count or unsupported op becomes a Status naming what and where; nothing is half-converted.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

struct TfjsConvertOptions {
  // Output node names ("Identity" or "Identity:0"); empty = the signature's outputs.
  std::vector<std::string> outputs;
  // Input shape; empty = from the signature / Placeholder, where -1 (batch) becomes 1.
  Shape input_shape;
  // Store every constant as float32 even when the source weights had 16 bits or fewer.
  bool force_fp32 = false;
  // Removed from the start of every tensor name (e.g. "StatefulPartitionedCall/model/").
  std::string strip_prefix;
  // Copied into the graph's metadata.
  std::map<std::string, std::string> metadata;
};

// Reads model_json_path and the shards its weightsManifest names (relative to its directory).
Status ConvertTfjsGraph(const std::string& model_json_path, const TfjsConvertOptions& options,
                        Graph* out);

// Same, from model.json text; shard paths are resolved against weights_dir.
Status ConvertTfjsGraphFromText(const std::string& json_text, const std::string& weights_dir,
                                const TfjsConvertOptions& options, Graph* out);

// Model statistics for reports: parameters (constant elements), multiply-accumulates per
// inference (conv, depthwise, fully connected) and node counts per op.
struct GraphStats {
  int64_t params = 0;
  int64_t macs = 0;
  std::map<std::string, int> op_counts;
};
GraphStats ComputeGraphStats(const Graph& graph);

}  // namespace fm
