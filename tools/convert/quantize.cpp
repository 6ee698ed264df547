// quantize.cpp - per-channel int8 weights (see quantize.h).
#include "quantize.h"

#include <algorithm>
#include <cmath>

namespace fm {
namespace {

// The axis of a weight tensor that indexes output channels, or -1 when the op has none we quantize.
int OutputChannelAxis(const Node& n) {
  if (n.op == "conv2d" || n.op == "fully_connected") return 0;  // [out, ...]
  if (n.op == "depthwise_conv2d") return 3;                     // [1, kh, kw, channels]
  return -1;
}

// Marks the output layers: walking back from each graph output through unweighted nodes (reshape,
// concatenate, activations...) and depthwise convolutions (BlazeFace's heads end in one) to the
// first conv2d or fully_connected, every weight met on the way.
void MarkOutputLayers(const Graph& g, std::vector<int>* axis_of) {
  std::vector<int32_t> producer(g.tensors.size(), -1);
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (g.nodes[k].output != kNoTensor) producer[size_t(g.nodes[k].output)] = int32_t(k);
  std::vector<bool> seen(g.tensors.size(), false);
  std::vector<int32_t> stack(g.outputs.begin(), g.outputs.end());
  while (!stack.empty()) {
    const int32_t t = stack.back();
    stack.pop_back();
    if (t == kNoTensor || seen[size_t(t)] || producer[size_t(t)] < 0) continue;
    seen[size_t(t)] = true;
    const Node& n = g.nodes[size_t(producer[size_t(t)])];
    const bool weighted = OutputChannelAxis(n) >= 0 && n.inputs.size() >= 2;
    if (weighted && n.inputs[1] != kNoTensor) (*axis_of)[size_t(n.inputs[1])] = -1;
    if (weighted && n.op != "depthwise_conv2d") continue;  // a full layer ends the walk
    stack.insert(stack.end(), n.inputs.begin(), n.inputs.end());
  }
}

}  // namespace

Status QuantizeWeights(Graph* graph, const QuantizeOptions& options,
                       std::vector<QuantizedTensor>* report) {
  const int64_t min_elements = options.min_elements;
  report->clear();
  if (!graph->validated()) return Errorf("quantize: the graph has not been validated");
  if (min_elements < 1) return Errorf("quantize: min_elements ", min_elements, " must be >= 1");
  for (size_t i = 0; i < graph->tensors.size(); ++i)
    if (graph->tensors[i].int8_axis >= 0)
      return Errorf("quantize: ", graph->DescribeTensor(int32_t(i)),
                    " is already int8; quantize the float model instead");
  std::vector<int> axis_of(graph->tensors.size(), -1);
  for (size_t k = 0; k < graph->nodes.size(); ++k) {
    const Node& n = graph->nodes[k];
    const int axis = OutputChannelAxis(n);
    if (axis < 0 || n.inputs.size() < 2 || n.inputs[1] == kNoTensor) continue;
    const size_t w = size_t(n.inputs[1]);
    if (axis_of[w] >= 0 && axis_of[w] != axis)
      return Errorf("quantize: ", graph->DescribeTensor(int32_t(w)),
                    " is the weights of nodes with different channel axes (", axis_of[w], ", ",
                    axis, " at ", graph->DescribeNode(k), ")");
    axis_of[w] = axis;
  }
  for (const std::string& name : options.keep_float) {
    const int32_t w = graph->FindTensor(name);
    if (w < 0 || axis_of[size_t(w)] < 0 || graph->tensors[size_t(w)].kind != TensorKind::kConstant)
      return Errorf("quantize: '", name, "' (to keep in float) is not the weights of a conv2d, ",
                    "depthwise_conv2d or fully_connected node");
    axis_of[size_t(w)] = -1;
  }
  if (options.keep_output_layers) MarkOutputLayers(*graph, &axis_of);
  for (size_t w = 0; w < graph->tensors.size(); ++w) {
    Tensor& t = graph->tensors[w];
    if (axis_of[w] < 0 || t.kind != TensorKind::kConstant) continue;
    const int64_t count = int64_t(t.data.size());
    if (count < min_elements) continue;
    const size_t axis = size_t(axis_of[w]);
    const int64_t channels = t.shape[axis];
    int64_t inner = 1;
    for (size_t d = axis + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
    std::vector<float> scales(size_t(channels), 0.f);
    for (int64_t i = 0; i < count; ++i) {
      const float v = t.data[size_t(i)];
      if (!std::isfinite(v))
        return Errorf("quantize: ", graph->DescribeTensor(int32_t(w)), " element ", i,
                      " is not finite");
      float& s = scales[size_t(i / inner % channels)];
      s = std::max(s, std::fabs(v));
    }
    QuantizedTensor q;
    q.name = t.name;
    q.elements = count;
    q.axis = int(axis);
    for (float& s : scales) {
      q.max_abs_weight = std::max(q.max_abs_weight, s);
      s = s > 0.f ? s / 127.f : 1.f;
    }
    for (int64_t i = 0; i < count; ++i) {
      const float s = scales[size_t(i / inner % channels)];
      const float v = std::min(127.f, std::max(-127.f, std::nearbyint(t.data[size_t(i)] / s)));
      const float back = v * s;
      q.max_abs_error = std::max(q.max_abs_error, std::fabs(back - t.data[size_t(i)]));
      t.data[size_t(i)] = back;
    }
    t.int8_axis = int(axis);
    t.int8_scales = std::move(scales);
    t.store_fp16 = false;
    report->push_back(q);
  }
  return Status::Ok();
}

}  // namespace fm
