// graph_net.h - trains an engine graph as it is: a validated fm::Graph (branches, residual adds,
// several heads, concatenation) becomes a net whose forward computes exactly what the engine
// computes and whose backward gives the gradient of every constant of its convolutions. This is
// how the detector is fine-tuned from the converted BlazeFace weights and how any graph-shaped
// model is trained: the graph is the architecture, `Export` writes the trained weights back into
// the same graph, so trainer == engine by construction (tests/test_train_graph.cpp checks it).
//
// Supported ops (one small step function each in graph_net.cpp, listed in its op table):
//   conv2d, depthwise_conv2d (square kernels, dilation 1, multiplier 1, explicit or SAME
//   padding, optional clamp), add (equal shapes, two activations, optional clamp), clamp,
//   resize_bilinear (all three modes), depth_to_space, reshape, concatenate (last axis), pad
//   (zero value).
// Activations are batched: graph shapes have batch 1; the net runs N samples at once. A rank-4
// tensor [1, H, W, C] is Tensor{N, H, W, C}; rank 3 [1, A, C] is {N, 1, A, C}; rank 2 [1, C] is
// {N, 1, 1, C}.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers.h"
#include "model/graph.h"
#include "status.h"

namespace fm::train {

class GraphNet {
 public:
  // `graph` must be validated, with one input [1, H, W, C]. keep_zeros: weights that are exactly
  // zero stay zero (their gradient is masked), so a pruned (sparse) model stays sparse and keeps
  // XNNPACK's sparse path and its small file.
  static Status Create(const Graph& graph, bool keep_zeros, std::unique_ptr<GraphNet>* out);
  ~GraphNet();

  // x: [N, H, W, C] in the graph's input layout.
  void Forward(const Tensor& x, bool train);
  // Output i of the graph (after Forward).
  const Tensor& Output(size_t i) const;
  size_t NumOutputs() const;
  // d loss / d output i, one per graph output (an empty Tensor = no gradient from that output).
  // Parameter gradients end up in Params()' grads (overwritten, not accumulated). With
  // want_input_grad the input's gradient is computed too (InputGrad(); gradient checks).
  void Backward(const std::vector<Tensor>& doutputs, bool want_input_grad = false);
  const Tensor& InputGrad() const;
  std::vector<Param*> Params();
  int64_t NumParams();
  int64_t Macs() const;  // per sample
  // Fresh weights (He normal over each convolution's fan-in, zero biases): training from
  // scratch with the same architecture. Forgets kept zeros.
  void Reinitialize(uint64_t seed);
  // Zeroes the gradient of every kept zero (call before the optimizer step).
  void MaskGradients();
  // A copy of the graph with the current weights (float16 storage when fp16).
  Status Export(bool fp16, Graph* out) const;
  std::vector<std::vector<float>> Snapshot();
  void Restore(const std::vector<std::vector<float>>& snapshot);

  struct Impl;
  GraphNet() = default;  // use Create()

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fm::train
