// export_tfjs.h - writes an engine graph as a TensorFlow.js graph model: model.json (format
// "graph-model", a TensorFlow GraphDef in JSON, a signature naming the inputs and outputs) plus one
// float32 weight shard, loadable with tf.loadGraphModel and by our own tfjs converter. Activations
// stay NHWC; weights are re-laid out for TensorFlow (conv HWIO, depthwise [kh, kw, C, M], dense
// [in, out]). Ops and attribute combinations TensorFlow.js cannot express exactly are refused with
// a message naming the node; nothing is approximated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

constexpr char kTfjsShardName[] = "group1-shard1of1.bin";

struct TfjsExport {
  std::string model_json;        // model.json text
  std::vector<uint8_t> weights;  // the shard named kTfjsShardName
  // TensorFlow node names of the graph's inputs and outputs (in the graph's order); also in
  // model.json's signature and userDefinedMetadata.
  std::vector<std::string> input_names, output_names;
};

// Exports a validated graph into memory.
Status ExportTfjs(const Graph& graph, TfjsExport* out);

// Exports and writes dir/model.json and dir/group1-shard1of1.bin (dir is created when missing).
// The files go through temporaries renamed at the end: on any error nothing is left behind.
Status ExportTfjsToDir(const Graph& graph, const std::string& dir);

}  // namespace fm
