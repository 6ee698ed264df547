// reference.cpp - the oracle backend: every node runs its op's plain C++ kernel over
// buffers allocated once.
#include "ops/op.h"
#include "runtime/runtime.h"

namespace fm {
namespace {

class ReferenceRuntime final : public Runtime {
 public:
  explicit ReferenceRuntime(std::shared_ptr<const Graph> graph) : Runtime(std::move(graph)) {
    const Graph& g = *graph_;
    std::vector<float*> data(g.tensors.size(), nullptr);
    buffers_.resize(g.tensors.size());
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      const Tensor& tensor = g.tensors[t];
      if (tensor.kind == TensorKind::kConstant) continue;
      buffers_[t].resize(size_t(NumElements(tensor.shape)));
      data[t] = buffers_[t].data();
    }
    for (size_t i = 0; i < g.inputs.size(); ++i) data[size_t(g.inputs[i])] = inputs_[i].data();
    for (size_t i = 0; i < g.outputs.size(); ++i) data[size_t(g.outputs[i])] = outputs_[i].data();
    for (const Node& node : g.nodes) {
      KernelArgs args;
      args.node = &node;
      args.num_inputs = int(node.inputs.size());
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        const int32_t t = node.inputs[i];
        if (t == kNoTensor) continue;
        const Tensor& tensor = g.tensors[size_t(t)];
        args.in[i] = tensor.kind == TensorKind::kConstant ? tensor.data.data() : data[size_t(t)];
        args.in_shape[i] = &tensor.shape;
      }
      args.out = data[size_t(node.output)];
      args.out_shape = &g.ShapeOf(node.output);
      steps_.push_back(args);
    }
  }

  Status Run() override {
    for (const KernelArgs& args : steps_) args.node->def->reference(args);
    return Status::Ok();
  }

 private:
  std::vector<std::vector<float>> buffers_;
  std::vector<KernelArgs> steps_;
};

}  // namespace

Status CreateReferenceRuntime(std::shared_ptr<const Graph> graph, std::unique_ptr<Runtime>* out) {
  *out = std::make_unique<ReferenceRuntime>(std::move(graph));
  return Status::Ok();
}

}  // namespace fm
