// runtime.h - runs a validated graph. Two backends share one interface:
//   - kXnnpack: the graph becomes an XNNPACK subgraph; weights are packed once, at Create();
//   - kReference: plain C++ loops from each op's file, the oracle the tests compare against.
// All buffers are allocated in Create(); Run() allocates nothing. Input and output buffers stay
// at the same address for the runtime's life, so callers may keep the pointers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

enum class Backend { kXnnpack = 0, kReference = 1 };

struct RuntimeOptions {
  Backend backend = Backend::kXnnpack;
  int threads = 1;  // XNNPACK worker threads (1 = run on the caller's thread)
  // Lets XNNPACK run the graph in NCHW with sparse 1x1 convolutions (XNN_FLAG_HINT_SPARSE_
  // INFERENCE). XNNPACK only does so when the pattern fits (a 3x3 stride-2 first convolution on 3
  // channels, depthwise and 1x1 convolutions, ending in depth-to-space or a mean) and at least 2/3
  // of the 1x1 weights are zero, and never on x86 CPUs with AVX; elsewhere it changes nothing.
  // The full-range BlazeFace detector qualifies: in Chromium 9.3 -> 5.2 ms (README "Numbers").
  bool sparse_hint = false;
  // XNNPACK only: time every operator of each Run() (XNN_FLAG_BASIC_PROFILING; costs a timer read
  // per operator), read with Runtime::Profile(). For tools/bench, not for production.
  bool profile = false;
};

// One XNNPACK operator of the last Run(): XNNPACK's name for it and its time.
struct OpTiming {
  std::string name;
  double ms = 0;
};

class Runtime {
 public:
  // `graph` must be validated; it is shared because XNNPACK refers to its constants.
  static Status Create(std::shared_ptr<const Graph> graph, const RuntimeOptions& options,
                       std::unique_ptr<Runtime>* out);
  virtual ~Runtime() = default;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  virtual Status Run() = 0;
  // The operators of the last Run() with their times (RuntimeOptions::profile, XNNPACK backend).
  virtual Status Profile(std::vector<OpTiming>* ops) const;

  const Graph& graph() const { return *graph_; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  float* input(size_t i) { return inputs_[i].data(); }
  const float* output(size_t i) const { return outputs_[i].data(); }
  const Shape& input_shape(size_t i) const { return graph_->ShapeOf(graph_->inputs[i]); }
  const Shape& output_shape(size_t i) const { return graph_->ShapeOf(graph_->outputs[i]); }

 protected:
  explicit Runtime(std::shared_ptr<const Graph> graph);
  std::shared_ptr<const Graph> graph_;
  // Graph input and output buffers, with XNN_EXTRA_BYTES of slack that XNNPACK may read past the
  // end of an input.
  std::vector<std::vector<float>> inputs_;
  std::vector<std::vector<float>> outputs_;
};

Status CreateReferenceRuntime(std::shared_ptr<const Graph> graph, std::unique_ptr<Runtime>* out);
Status CreateXnnpackRuntime(std::shared_ptr<const Graph> graph, const RuntimeOptions& options,
                            std::unique_ptr<Runtime>* out);

}  // namespace fm
