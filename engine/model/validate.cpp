// validate.cpp - Graph::Validate, the one checkpoint every graph passes before it runs: tensors,
// nodes against their op's schema (ops/op.h), shape inference in order, outputs.
#include <set>

#include "model/graph.h"
#include "ops/op.h"

namespace fm {

Status CheckNodeAttrs(const OpDef& def, const Node& node) {
  for (const auto& [key, attr] : node.attrs) {
    const AttrSpec* spec = nullptr;
    for (const AttrSpec& s : def.attrs)
      if (key == s.name) spec = &s;
    if (!spec) return Errorf("unknown attribute '", key, "'");
    if (attr.type != spec->type)
      return Errorf("attribute '", key, "' must be ",
                    spec->type == Attr::kInts ? "ints" : "floats");
    const size_t count = attr.type == Attr::kInts ? attr.ints.size() : attr.floats.size();
    if (count < static_cast<size_t>(spec->min_count) ||
        count > static_cast<size_t>(spec->max_count))
      return Errorf(
          "attribute '", key, "' has ", count, " values (expected ", spec->min_count,
          spec->min_count == spec->max_count ? "" : ".." + std::to_string(spec->max_count), ")");
    for (float f : attr.floats)
      if (f != f) return Errorf("attribute '", key, "' contains NaN");
  }
  for (const AttrSpec& s : def.attrs)
    if (s.required && !node.Has(s.name)) return Errorf("missing attribute '", s.name, "'");
  return Status::Ok();
}

Status Graph::Validate() {
  validated_ = false;
  // Tensors.
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    const std::string where = DescribeTensor(static_cast<int32_t>(i)) + ": ";
    if (t.name.empty()) return Errorf(where, "empty name");
    if (!names.insert(t.name).second) return Errorf(where, "name is used twice");
    Status s = CheckShape(t.shape);
    if (!s.ok()) return s.Prefix(where);
    if (t.kind == TensorKind::kConstant) {
      if (static_cast<int64_t>(t.data.size()) != NumElements(t.shape))
        return Errorf(where, "constant has ", t.data.size(), " values, shape ",
                      ShapeToString(t.shape), " needs ", NumElements(t.shape));
      for (float v : t.data)
        if (!(v == v) || v - v != 0.0f) return Errorf(where, "constant contains NaN or infinity");
    } else if (!t.data.empty()) {
      return Errorf(where, "activation tensor carries data");
    }
  }
  const int32_t count = static_cast<int32_t>(tensors.size());
  auto valid = [&](int32_t t) { return t >= 0 && t < count; };

  // Which activations exist so far: graph inputs, then each node's output in order.
  std::vector<char> defined(tensors.size(), 0);
  if (inputs.empty()) return Errorf("graph has no inputs");
  if (outputs.empty()) return Errorf("graph has no outputs");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int32_t t = inputs[i];
    if (!valid(t)) return Errorf("graph input ", i, " refers to tensor ", t, " of ", count);
    if (tensors[static_cast<size_t>(t)].kind != TensorKind::kActivation)
      return Errorf("graph input ", i, " (", DescribeTensor(t), ") is a constant");
    if (defined[static_cast<size_t>(t)]) return Errorf("graph input ", i, " is listed twice");
    defined[static_cast<size_t>(t)] = 1;
  }

  for (size_t n = 0; n < nodes.size(); ++n) {
    Node& node = nodes[n];
    const std::string where = DescribeNode(n) + ": ";
    node.def = FindOp(node.op);
    if (!node.def) return Errorf(where, "unknown op '", node.op, "'");
    const OpDef& def = *node.def;
    const size_t fixed = def.inputs.size();
    if (def.variadic ? node.inputs.size() < fixed : node.inputs.size() > fixed)
      return Errorf(where, "has ", node.inputs.size(), " inputs, op takes ",
                    def.variadic ? "at least " : "at most ", fixed);
    if (node.inputs.size() > static_cast<size_t>(kMaxNodeInputs))
      return Errorf(where, "has ", node.inputs.size(), " inputs (limit ", kMaxNodeInputs, ")");
    for (size_t i = 0; i < std::max(node.inputs.size(), fixed); ++i) {
      const InputSpec& spec = def.inputs[std::min(i, fixed - 1)];
      const int32_t t = i < node.inputs.size() ? node.inputs[i] : kNoTensor;
      if (t == kNoTensor) {
        if (spec.role == InputRole::kOptionalConst) continue;
        return Errorf(where, "input ", i, " ('", spec.name, "') is missing");
      }
      if (!valid(t)) return Errorf(where, "input ", i, " refers to tensor ", t, " of ", count);
      const bool is_const = tensors[static_cast<size_t>(t)].kind == TensorKind::kConstant;
      if (!is_const && !defined[static_cast<size_t>(t)])
        return Errorf(where, "input ", i, " (", DescribeTensor(t),
                      ") is used before any node produces it");
      if (spec.role == InputRole::kActivation && is_const)
        return Errorf(where, "input ", i, " ('", spec.name, "') must not be a constant");
      if ((spec.role == InputRole::kConstant || spec.role == InputRole::kOptionalConst) &&
          !is_const)
        return Errorf(where, "input ", i, " ('", spec.name, "') must be a constant");
    }
    if (!valid(node.output)) return Errorf(where, "output refers to tensor ", node.output);
    Tensor& out = tensors[static_cast<size_t>(node.output)];
    if (out.kind != TensorKind::kActivation)
      return Errorf(where, "output ", DescribeTensor(node.output), " is a constant");
    if (defined[static_cast<size_t>(node.output)])
      return Errorf(where, "output ", DescribeTensor(node.output), " is already defined");
    Status s = CheckNodeAttrs(def, node);
    if (!s.ok()) return s.Prefix(where);
    Shape inferred;
    s = def.infer(*this, node, &inferred);
    if (!s.ok()) return s.Prefix(where);
    s = CheckShape(inferred);
    if (!s.ok()) return s.Prefix(where + "output ");
    if (inferred != out.shape)
      return Errorf(where, "output ", DescribeTensor(node.output), " is declared ",
                    ShapeToString(out.shape), " but the op produces ", ShapeToString(inferred));
    defined[static_cast<size_t>(node.output)] = 1;
  }

  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].kind == TensorKind::kActivation && !defined[i])
      return Errorf(DescribeTensor(static_cast<int32_t>(i)),
                    " is neither a graph input nor produced by any node");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const int32_t t = outputs[i];
    if (!valid(t)) return Errorf("graph output ", i, " refers to tensor ", t, " of ", count);
    if (tensors[static_cast<size_t>(t)].kind != TensorKind::kActivation ||
        !defined[static_cast<size_t>(t)])
      return Errorf("graph output ", i, " (", DescribeTensor(t), ") is not produced by any node");
    for (int32_t in : inputs)
      if (in == t) return Errorf("graph output ", i, " (", DescribeTensor(t), ") is a graph input");
    for (size_t j = 0; j < i; ++j)
      if (outputs[j] == t) return Errorf("graph output ", i, " is listed twice");
  }
  validated_ = true;
  return Status::Ok();
}

}  // namespace fm
