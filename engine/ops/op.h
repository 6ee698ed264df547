// op.h - what an operation is made of. Every op lives in one file (ops/<name>.cpp) that defines
// one OpDef: its inputs, its attribute schema, shape inference with parameter checks and a plain
// reference kernel (the oracle); ops/registry.cpp lists them. This library knows nothing of
// XNNPACK: each op's XNNPACK definition is runtime/xnn_ops/<name>.cpp, linked only by the XNNPACK
// runtime. A new op is one file and one line in each of the two registries.
#pragma once

#include <cstdint>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

enum class InputRole : uint8_t {
  kActivation,     // produced at run time (a graph input or another node's output)
  kConstant,       // weights stored in the model
  kOptionalConst,  // a constant that may be absent (kNoTensor)
  kAny,            // either an activation or a constant
};

struct InputSpec {
  const char* name;
  InputRole role;
};

struct AttrSpec {
  const char* name;
  Attr::Type type;
  int min_count;
  int max_count;
  bool required;
};

// What a reference kernel sees: input data and shapes, the output buffer and its shape.
struct KernelArgs {
  const Node* node = nullptr;
  int num_inputs = 0;
  const float* in[kMaxNodeInputs] = {};
  const Shape* in_shape[kMaxNodeInputs] = {};
  float* out = nullptr;
  const Shape* out_shape = nullptr;
};

struct OpDef {
  const char* name;
  std::vector<InputSpec> inputs;
  bool variadic;  // the last InputSpec may repeat (concatenate)
  std::vector<AttrSpec> attrs;
  // Checks the node's attributes against its input shapes and computes the output shape.
  Status (*infer)(const Graph& graph, const Node& node, Shape* out);
  // Computes the output with plain loops.
  void (*reference)(const KernelArgs& args);
};

const OpDef* FindOp(const std::string& name);
// Checks a node's attributes against the op's schema: names, types and value counts.
Status CheckNodeAttrs(const OpDef& def, const Node& node);
const std::vector<const OpDef*>& AllOps();

// ---- helpers shared by several ops (ops/common.cpp) ----

// Spatial window of a conv or pool: kernel, stride, dilation and the resolved padding.
struct Window {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t out_h = 0, out_w = 0;
};

// Reads 'stride', 'dilation', 'padding' ([top, left, bottom, right]) or 'same' (TF SAME:
// out = ceil(in / stride), the odd pixel of padding goes bottom/right) and checks them against the
// input size; kh/kw must be set by the caller.
Status ResolveWindow(const Node& node, int64_t in_h, int64_t in_w, Window* w);
Status InputRank(const Graph& graph, const Node& node, int input, size_t rank);
// Fused output clamp from the optional 'clamp' attribute [min, max].
void ClampRange(const Node& node, float* lo, float* hi);
Status CheckClamp(const Node& node);
inline float ApplyClamp(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace fm

namespace fm {
// Numpy broadcasting of two shapes (aligned from the right; a dimension of 1 stretches).
Status BroadcastShapes(const Shape& a, const Shape& b, Shape* out);
// Elementwise reference for two broadcast inputs: out = clamp(fn(a, b)).
void ReferenceBinary(const KernelArgs& args, float (*fn)(float, float));
// Reference for an elementwise unary function.
void ReferenceUnary(const KernelArgs& args, float (*fn)(float, const Node&));
// Shape inference for ops whose output has the input's shape.
Status InferSameShape(const Graph& graph, const Node& node, Shape* out);
}  // namespace fm

namespace fm {
// Shape inference shared by the broadcasting binary ops.
Status InferBinary(const Graph& graph, const Node& node, Shape* out);
}  // namespace fm

namespace fm {
// Resolved attributes that an op's XNNPACK definition needs as its shape rule computed them.
Status ResolveAvgPool2dWindow(const Node& node, const Shape& input, Window* window);
Status ResolveMaxPool2dWindow(const Node& node, const Shape& input, Window* window);
int64_t ConcatenateAxis(const Node& node, size_t rank);
}  // namespace fm
