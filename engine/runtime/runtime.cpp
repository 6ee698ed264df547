// runtime.cpp - backend selection and the buffers both backends share.
#include "runtime/runtime.h"

#include <xnnpack.h>

namespace fm {

Runtime::Runtime(std::shared_ptr<const Graph> graph) : graph_(std::move(graph)) {
  const size_t slack = (XNN_EXTRA_BYTES + sizeof(float) - 1) / sizeof(float);
  for (int32_t t : graph_->inputs)
    inputs_.emplace_back(size_t(NumElements(graph_->ShapeOf(t))) + slack, 0.f);
  for (int32_t t : graph_->outputs)
    outputs_.emplace_back(size_t(NumElements(graph_->ShapeOf(t))) + slack, 0.f);
}

Status Runtime::Profile(std::vector<OpTiming>* ops) const {
  ops->clear();
  return Errorf("runtime: profiles come from the XNNPACK backend created with profile = true");
}

Status Runtime::Create(std::shared_ptr<const Graph> graph, const RuntimeOptions& options,
                       std::unique_ptr<Runtime>* out) {
  if (!graph || !graph->validated()) return Errorf("runtime: the graph has not been validated");
  if (options.threads < 1 || options.threads > 64)
    return Errorf("runtime: threads must be 1..64, got ", options.threads);
  switch (options.backend) {
    case Backend::kReference:
      return CreateReferenceRuntime(std::move(graph), out);
    case Backend::kXnnpack:
      return CreateXnnpackRuntime(std::move(graph), options, out);
  }
  return Errorf("runtime: unknown backend ", int(options.backend));
}

}  // namespace fm
