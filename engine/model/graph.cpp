// graph.cpp - the graph in memory: shapes, attributes, names (see graph.h; checks in validate.cpp).
#include "model/graph.h"

namespace fm {

int64_t NumElements(const Shape& shape) {
  if (shape.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status CheckShape(const Shape& shape) {
  if (shape.empty() || shape.size() > static_cast<size_t>(kMaxRank))
    return Errorf("rank ", shape.size(), " is outside 1..", kMaxRank);
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1 || shape[i] > kMaxDim)
      return Errorf("dimension ", i, " is ", shape[i], " (must be 1..", kMaxDim, ")");
    n *= shape[i];
    if (n > kMaxTensorElements)
      return Errorf("shape ", ShapeToString(shape), " has more than ", kMaxTensorElements,
                    " elements");
  }
  return Status::Ok();
}

int64_t Node::Int(const std::string& key, int64_t fallback) const {
  auto it = attrs.find(key);
  return it == attrs.end() || it->second.ints.empty() ? fallback : it->second.ints[0];
}
std::vector<int64_t> Node::Ints(const std::string& key, std::vector<int64_t> fallback) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? fallback : it->second.ints;
}
float Node::Float(const std::string& key, float fallback) const {
  auto it = attrs.find(key);
  return it == attrs.end() || it->second.floats.empty() ? fallback : it->second.floats[0];
}
std::vector<float> Node::Floats(const std::string& key, std::vector<float> fallback) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? fallback : it->second.floats;
}

int Graph::FindTensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string Graph::DescribeNode(size_t index) const {
  const Node& n = nodes[index];
  return "node " + std::to_string(index) + " (" + n.op + " '" + n.name + "')";
}

std::string Graph::DescribeTensor(int32_t index) const {
  return "tensor " + std::to_string(index) + " ('" + tensors[static_cast<size_t>(index)].name +
         "')";
}

}  // namespace fm
