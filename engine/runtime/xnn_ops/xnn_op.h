// xnn_op.h - how an op becomes a node of an XNNPACK subgraph. Each op of ops/ has one file here
// (runtime/xnn_ops/<name>.cpp) that defines one XnnOpDef, found by the op's name; registry.cpp
// lists them. Only the XNNPACK runtime (runtime/xnnpack.cpp) links this library: the model format,
// the ops' shape rules and reference kernels, and the converters build without XNNPACK.
#pragma once

#include <xnnpack.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/graph.h"
#include "ops/op.h"
#include "status.h"

namespace fm {

// What an XNNPACK definition sees: XNNPACK value ids for each input (XNN_INVALID_VALUE_ID when an
// optional input is absent) and for the output. The node has been validated (Graph::Validate).
struct XnnArgs {
  xnn_subgraph_t subgraph = nullptr;
  const Graph* graph = nullptr;
  const Node* node = nullptr;
  uint32_t in[kMaxNodeInputs] = {};
  uint32_t out = 0;
};

struct XnnOpDef {
  const char* name;  // the OpDef's name
  // Adds the node to an XNNPACK subgraph.
  Status (*define)(const XnnArgs& args);
};

// The XNNPACK definition of an op, or nullptr when it has none.
const XnnOpDef* FindXnnOp(const std::string& name);
const std::vector<const XnnOpDef*>& AllXnnOps();

// ---- helpers shared by several definitions (xnn_ops/common.cpp) ----
Status XnnCheck(enum xnn_status status, const char* what);
// A broadcasting binary op with the node's fused clamp.
Status DefineXnnBinary(const XnnArgs& args, enum xnn_binary_operator type, const char* what);
Status DefineXnnUnary(const XnnArgs& args, enum xnn_unary_operator type,
                      const union xnn_unary_params* params, const char* what);

}  // namespace fm
