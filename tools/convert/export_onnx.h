// export_onnx.h - writes an engine graph as an ONNX model (IR version 8, opset 13), encoded by a
// small protobuf writer of our own (no protobuf library). The graph's inputs and outputs keep the
// engine's names, shapes and NHWC layout; inside, 4-D activations run channel-first as ONNX wants
// (NCHW), with a Transpose wherever a layout-dependent op (reshape, concatenate, dense, an output)
// needs the NHWC order back. Weights become float32 initializers (conv OIHW, depthwise as a group
// convolution [C*M, 1, kh, kw], dense as Gemm with transB). Ops and attribute combinations ONNX
// cannot express exactly are refused with a message naming the node.
#pragma once

#include <string>

#include "model/graph.h"
#include "status.h"

namespace fm {

// Exports a validated graph into memory (the serialised ModelProto).
Status ExportOnnx(const Graph& graph, std::string* bytes);

// Exports and writes `path` through a temporary file: on any error nothing is left behind.
Status ExportOnnxFile(const Graph& graph, const std::string& path);

}  // namespace fm
