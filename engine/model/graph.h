// graph.h - the in-memory model: tensors (activations and constant weights), nodes in execution
// order, graph inputs/outputs and free-form metadata (preprocessing, labels).
//
// Conventions, shared by every op and both backends:
//   - activations are float32, NHWC (batch, height, width, channels), row-major;
//   - conv2d weights are [out_channels, kernel_h, kernel_w, in_channels] (OHWI);
//   - depthwise conv2d weights are [1, kernel_h, kernel_w, channels * depth_multiplier];
//   - fully_connected weights are [out_features, in_features];
//   - every node has exactly one output tensor.
// Graph::Validate() is the single place that checks a graph (from a file or built in code) before
// anything runs it: it resolves op names, checks attributes and inputs, infers every shape and
// compares it with the declared one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "status.h"

namespace fm {

constexpr int kMaxRank = 6;
constexpr int kMaxNodeInputs = 16;
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxTensorElements = int64_t(1) << 26;  // 256 MiB of float32
constexpr int32_t kNoTensor = -1;

using Shape = std::vector<int64_t>;

int64_t NumElements(const Shape& shape);  // 0 for an empty shape list; assumes validated dims
std::string ShapeToString(const Shape& shape);
// Checks rank and every dimension against the limits above.
Status CheckShape(const Shape& shape);

enum class TensorKind : uint8_t { kActivation = 0, kConstant = 1 };

struct Tensor {
  std::string name;
  Shape shape;
  TensorKind kind = TensorKind::kActivation;
  std::vector<float> data;  // constants only: NumElements(shape) values
  bool store_fp16 = false;  // serialisation hint: store as float16 (dense, or sparse if shorter)
  // Serialisation hint: store as symmetric int8 with one scale per index of this axis (per-channel
  // weights, `facemask quantize`); -1 = not int8. It takes precedence over store_fp16. A constant
  // read from int8 storage has data = q x scale and its scales in int8_scales, so writing it again
  // gives the same bytes; when int8_scales is empty the writer derives them (max |w| / 127).
  int int8_axis = -1;
  std::vector<float> int8_scales;
};

struct Attr {
  enum Type : uint8_t { kInts = 1, kFloats = 2 };
  Type type = kInts;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  static Attr Ints(std::vector<int64_t> v) { return Attr{kInts, std::move(v), {}}; }
  static Attr Floats(std::vector<float> v) { return Attr{kFloats, {}, std::move(v)}; }
};

struct OpDef;

struct Node {
  std::string op;
  std::string name;
  std::vector<int32_t> inputs;  // tensor indices; kNoTensor for an absent optional input
  int32_t output = kNoTensor;
  std::map<std::string, Attr> attrs;
  const OpDef* def = nullptr;  // set by Graph::Validate

  bool Has(const std::string& key) const { return attrs.count(key) != 0; }
  // Accessors for validated attributes (the op's schema guarantees type and count).
  int64_t Int(const std::string& key, int64_t fallback) const;
  std::vector<int64_t> Ints(const std::string& key, std::vector<int64_t> fallback) const;
  float Float(const std::string& key, float fallback) const;
  std::vector<float> Floats(const std::string& key, std::vector<float> fallback) const;
};

struct Graph {
  std::map<std::string, std::string> metadata;
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;
  std::vector<int32_t> inputs;
  std::vector<int32_t> outputs;

  // Checks the whole graph; after success every node has its OpDef and every shape is consistent.
  Status Validate();
  bool validated() const { return validated_; }

  int FindTensor(const std::string& name) const;    // -1 when absent
  std::string DescribeNode(size_t index) const;     // "node 3 (conv2d 'conv1')"
  std::string DescribeTensor(int32_t index) const;  // "tensor 5 ('conv1/weights')"
  const Shape& ShapeOf(int32_t tensor) const { return tensors[static_cast<size_t>(tensor)].shape; }

 private:
  bool validated_ = false;
};

}  // namespace fm
