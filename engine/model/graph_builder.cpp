// graph_builder.cpp - see graph_builder.h.
#include "model/graph_builder.h"

#include "ops/op.h"

namespace fm {

int32_t GraphBuilder::AddTensor(Tensor t) {
  if (!status_.ok()) return kNoTensor;
  Status s = CheckShape(t.shape);
  if (!s.ok()) {
    status_ = s.Prefix("tensor '" + t.name + "': ");
    return kNoTensor;
  }
  graph_.tensors.push_back(std::move(t));
  return int32_t(graph_.tensors.size() - 1);
}

int32_t GraphBuilder::Input(const std::string& name, const Shape& shape) {
  Tensor t;
  t.name = name;
  t.shape = shape;
  const int32_t id = AddTensor(std::move(t));
  if (id != kNoTensor) graph_.inputs.push_back(id);
  return id;
}

int32_t GraphBuilder::Constant(const std::string& name, const Shape& shape, std::vector<float> data,
                               bool store_fp16) {
  Tensor t;
  t.name = name;
  t.shape = shape;
  t.kind = TensorKind::kConstant;
  t.data = std::move(data);
  t.store_fp16 = store_fp16;
  if (status_.ok() && int64_t(t.data.size()) != NumElements(shape)) {
    status_ = Errorf("constant '", name, "': ", t.data.size(), " values for shape ",
                     ShapeToString(shape));
    return kNoTensor;
  }
  return AddTensor(std::move(t));
}

int32_t GraphBuilder::Op(const std::string& op, const std::string& name,
                         const std::vector<int32_t>& inputs, std::map<std::string, Attr> attrs) {
  if (!status_.ok()) return kNoTensor;
  Node node;
  node.op = op;
  node.name = name;
  node.inputs = inputs;
  node.attrs = std::move(attrs);
  const std::string where = "node '" + name + "' (" + op + "): ";
  node.def = FindOp(op);
  if (!node.def) {
    status_ = Errorf(where, "unknown op");
    return kNoTensor;
  }
  for (int32_t t : inputs)
    if (t != kNoTensor && (t < 0 || size_t(t) >= graph_.tensors.size())) {
      status_ = Errorf(where, "input tensor ", t, " does not exist");
      return kNoTensor;
    }
  // Shape inference needs the required inputs and well-formed attributes; Validate() repeats
  // every check in context.
  const OpDef& def = *node.def;
  bool missing = def.variadic && inputs.size() < def.inputs.size();
  for (size_t i = 0; i < def.inputs.size(); ++i)
    if (def.inputs[i].role != InputRole::kOptionalConst &&
        (i >= inputs.size() || inputs[i] == kNoTensor))
      missing = true;
  if (missing || (!def.variadic && inputs.size() > def.inputs.size())) {
    status_ = Errorf(where, "takes ", def.inputs.size(), def.variadic ? " or more" : "",
                     " inputs, got ", inputs.size());
    return kNoTensor;
  }
  Status attrs_ok = CheckNodeAttrs(def, node);
  if (!attrs_ok.ok()) {
    status_ = attrs_ok.Prefix(where);
    return kNoTensor;
  }
  Shape shape;
  Status s = def.infer(graph_, node, &shape);
  if (!s.ok()) {
    status_ = s.Prefix(where);
    return kNoTensor;
  }
  Tensor t;
  t.name = name;
  t.shape = shape;
  const int32_t out = AddTensor(std::move(t));
  if (out == kNoTensor) return kNoTensor;
  node.output = out;
  graph_.nodes.push_back(std::move(node));
  return out;
}

Status GraphBuilder::Finish(const std::vector<int32_t>& outputs, Graph* out) {
  if (!status_.ok()) return status_;
  graph_.outputs = outputs;
  FM_RETURN_IF_ERROR(graph_.Validate());
  *out = std::move(graph_);
  graph_ = Graph();
  return Status::Ok();
}

}  // namespace fm
