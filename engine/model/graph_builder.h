// graph_builder.h - builds graphs in code (tests, converters, the trainer's export): each Op()
// call infers its output shape with the op's own shape inference, so a builder cannot produce a
// graph whose declared shapes disagree with its ops. The first error sticks and is returned by
// Finish().
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

class GraphBuilder {
 public:
  int32_t Input(const std::string& name, const Shape& shape);
  int32_t Constant(const std::string& name, const Shape& shape, std::vector<float> data,
                   bool store_fp16 = false);
  // Adds a node whose single output is a new tensor named after the node.
  int32_t Op(const std::string& op, const std::string& name, const std::vector<int32_t>& inputs,
             std::map<std::string, Attr> attrs = {});
  void Metadata(const std::string& key, const std::string& value) { graph_.metadata[key] = value; }
  const Shape& ShapeOf(int32_t tensor) const { return graph_.ShapeOf(tensor); }
  const Status& status() const { return status_; }

  // Marks the outputs, validates the whole graph and moves it out.
  Status Finish(const std::vector<int32_t>& outputs, Graph* out);

 private:
  int32_t AddTensor(Tensor t);
  Graph graph_;
  Status status_;
};

}  // namespace fm
