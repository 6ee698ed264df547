// frozen.h - a pretrained engine graph as the net's frozen first layer (issue 4, approach (b): a
// new head on face-api.js's face feature extractor, converted by `facemask convert --features`).
// Forward runs the graph through the engine (XNNPACK, one runtime per trainer thread, weights
// packed once) on each sample: [N, S, S, 3] -> [N, 1, 1, features]. Nothing in it is trained and
// no gradient goes through it, so it must be the first layer (the net's input gradient is never
// used). Export copies the graph's nodes and weights in front of the head, so the shipped .fmm
// computes exactly what the trainer saw.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers.h"
#include "model/graph.h"
#include "runtime/runtime.h"
#include "status.h"

namespace fm::train {

class Frozen : public Layer {
 public:
  // `graph`: validated, one [1, S, S, 3] input, one [1, F] or [1, 1, 1, F] output. One runtime is
  // created per trainer thread (Threads() must already be set).
  static Status Create(std::shared_ptr<const Graph> graph, std::unique_ptr<Frozen>* out);
  std::string Name() const override { return "frozen"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  int64_t Macs(const Tensor& x) const override;
  // The first engine error of any Forward so far (a failed sample's features are NaN).
  const Status& status() const { return status_; }

  std::shared_ptr<const Graph> graph;
  int size = 0, features = 0;

 private:
  std::vector<std::unique_ptr<Runtime>> runtimes_;
  std::vector<Status> errors_;  // per thread, merged into status_ after each Forward
  Status status_;
  int64_t macs_ = 0;
};

}  // namespace fm::train
