// xnnpack.cpp - the fast backend: the graph is defined once as an XNNPACK subgraph (each op's
// runtime/xnn_ops/<name>.cpp adds its node), XNNPACK packs the weights when the runtime is
// created, shapes are fixed and the external buffers are bound once, so Run() is a single
// xnn_invoke_runtime.
#include <pthreadpool.h>
#include <xnnpack.h>

#include <mutex>

#include "runtime/runtime.h"
#include "runtime/xnn_ops/xnn_op.h"

namespace fm {
namespace {

Status InitializeXnnpack() {
  static std::once_flag once;
  static enum xnn_status status = xnn_status_uninitialized;
  std::call_once(once, [] { status = xnn_initialize(/*allocator=*/nullptr); });
  if (status != xnn_status_success)
    return Errorf("XNNPACK failed to initialise (status ", int(status),
                  "): this CPU may lack the instructions it needs");
  return Status::Ok();
}

struct SubgraphDeleter {
  void operator()(xnn_subgraph_t s) const { xnn_delete_subgraph(s); }
};
struct RuntimeDeleter {
  void operator()(xnn_runtime_t r) const { xnn_delete_runtime(r); }
};
struct PoolDeleter {
  void operator()(pthreadpool_t p) const { pthreadpool_destroy(p); }
};

class XnnpackRuntime final : public Runtime {
 public:
  explicit XnnpackRuntime(std::shared_ptr<const Graph> graph) : Runtime(std::move(graph)) {}

  Status Build(const RuntimeOptions& options) {
    FM_RETURN_IF_ERROR(InitializeXnnpack());
    const Graph& g = *graph_;
    const uint32_t num_external = uint32_t(g.inputs.size() + g.outputs.size());
    xnn_subgraph_t raw = nullptr;
    FM_RETURN_IF_ERROR(XnnCheck(xnn_create_subgraph(num_external, 0, &raw), "the subgraph"));
    std::unique_ptr<xnn_subgraph, SubgraphDeleter> subgraph(raw);

    std::vector<uint32_t> ids(g.tensors.size(), XNN_INVALID_VALUE_ID);
    for (size_t t = 0; t < g.tensors.size(); ++t) {
      const Tensor& tensor = g.tensors[t];
      uint32_t external = XNN_INVALID_VALUE_ID, flags = 0;
      for (size_t i = 0; i < g.inputs.size(); ++i)
        if (g.inputs[i] == int32_t(t))
          external = uint32_t(i), flags = XNN_VALUE_FLAG_EXTERNAL_INPUT;
      for (size_t i = 0; i < g.outputs.size(); ++i)
        if (g.outputs[i] == int32_t(t))
          external = uint32_t(g.inputs.size() + i), flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
      size_t dims[XNN_MAX_TENSOR_DIMS] = {};
      for (size_t d = 0; d < tensor.shape.size(); ++d) dims[d] = size_t(tensor.shape[d]);
      const void* data = tensor.kind == TensorKind::kConstant ? tensor.data.data() : nullptr;
      Status s =
          XnnCheck(xnn_define_tensor_value(subgraph.get(), xnn_datatype_fp32, tensor.shape.size(),
                                           dims, data, external, flags, &ids[t]),
                   "a tensor");
      if (!s.ok()) return s.Prefix(g.DescribeTensor(int32_t(t)) + ": ");
    }
    for (size_t n = 0; n < g.nodes.size(); ++n) {
      const Node& node = g.nodes[n];
      XnnArgs args;
      args.subgraph = subgraph.get();
      args.graph = &g;
      args.node = &node;
      for (size_t i = 0; i < kMaxNodeInputs; ++i) args.in[i] = XNN_INVALID_VALUE_ID;
      for (size_t i = 0; i < node.inputs.size(); ++i)
        if (node.inputs[i] != kNoTensor) args.in[i] = ids[size_t(node.inputs[i])];
      args.out = ids[size_t(node.output)];
      const XnnOpDef* def = FindXnnOp(node.op);
      Status s = def ? def->define(args)
                     : Errorf("op '", node.op, "' has no XNNPACK definition (runtime/xnn_ops/)");
      if (!s.ok()) return s.Prefix(g.DescribeNode(n) + ": ");
    }

    if (options.threads > 1) {
      pool_.reset(pthreadpool_create(size_t(options.threads)));
      if (!pool_) return Errorf("runtime: cannot create a pool of ", options.threads, " threads");
    }
    // With a pool, its workers sleep once an inference ends instead of spinning (pthreadpool spins
    // up to a million iterations waiting for more work): between inferences the caller decodes,
    // warps and runs the other model's pool, and spinning workers took the CPU from it (pipeline
    // with 2 threads on the scenes, native: 19 -> 23 photos/s; 1 thread does 33).
    const uint32_t flags = (options.sparse_hint ? XNN_FLAG_HINT_SPARSE_INFERENCE : 0u) |
                           (pool_ ? XNN_FLAG_YIELD_WORKERS : 0u) |
                           (options.profile ? XNN_FLAG_BASIC_PROFILING : 0u);
    xnn_runtime_t rt = nullptr;
    FM_RETURN_IF_ERROR(XnnCheck(xnn_create_runtime_v2(subgraph.get(), pool_.get(), flags, &rt),
                                "the runtime (weight packing)"));
    runtime_.reset(rt);
    FM_RETURN_IF_ERROR(XnnCheck(xnn_reshape_runtime(runtime_.get()), "the runtime shapes"));
    std::vector<xnn_external_value> external;
    for (size_t i = 0; i < g.inputs.size(); ++i)
      external.push_back({uint32_t(i), inputs_[i].data()});
    for (size_t i = 0; i < g.outputs.size(); ++i)
      external.push_back({uint32_t(g.inputs.size() + i), outputs_[i].data()});
    return XnnCheck(xnn_setup_runtime_v2(runtime_.get(), external.size(), external.data()),
                    "the runtime buffers");
  }

  Status Run() override { return XnnCheck(xnn_invoke_runtime(runtime_.get()), "the inference"); }

  Status Profile(std::vector<OpTiming>* ops) const override {
    ops->clear();
    size_t n = 0, size = 0;
    FM_RETURN_IF_ERROR(
        XnnCheck(xnn_get_runtime_profiling_info(runtime_.get(), xnn_profile_info_num_operators,
                                                sizeof(n), &n, &size),
                 "the profile (was the runtime created with profile = true?)"));
    size_t names_size = 0;  // asked first: the names are NUL-separated
    xnn_get_runtime_profiling_info(runtime_.get(), xnn_profile_info_operator_name, 0, nullptr,
                                   &names_size);
    std::string names(names_size, '\0');
    std::vector<uint64_t> us(n);
    FM_RETURN_IF_ERROR(
        XnnCheck(xnn_get_runtime_profiling_info(runtime_.get(), xnn_profile_info_operator_name,
                                                names.size(), names.data(), &size),
                 "the profile's operator names"));
    FM_RETURN_IF_ERROR(
        XnnCheck(xnn_get_runtime_profiling_info(runtime_.get(), xnn_profile_info_operator_timing,
                                                us.size() * sizeof(uint64_t), us.data(), &size),
                 "the profile's operator times"));
    size_t pos = 0;
    for (size_t i = 0; i < n && pos < names.size(); ++i) {
      const size_t end = names.find('\0', pos);
      ops->push_back({names.substr(pos, end - pos), double(us[i]) / 1000.0});
      pos = end == std::string::npos ? names.size() : end + 1;
    }
    return Status::Ok();
  }

 private:
  // Declared before runtime_ so the runtime is deleted first.
  std::unique_ptr<pthreadpool, PoolDeleter> pool_;
  std::unique_ptr<xnn_runtime, RuntimeDeleter> runtime_;
};

}  // namespace

Status CreateXnnpackRuntime(std::shared_ptr<const Graph> graph, const RuntimeOptions& options,
                            std::unique_ptr<Runtime>* out) {
  auto rt = std::make_unique<XnnpackRuntime>(std::move(graph));
  FM_RETURN_IF_ERROR(rt->Build(options));
  *out = std::move(rt);
  return Status::Ok();
}

}  // namespace fm
