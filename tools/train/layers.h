// layers.h - the trainer's layers: forward (train or eval mode) and backward over NHWC float32
// batches. Backward gets the layer's forward input x and output y and the output gradient dy; it
// writes dx and overwrites (not accumulates) its parameters' gradients. Padding is TensorFlow
// SAME (output = ceil(input / stride), extra padding at the bottom/right), written explicitly at
// export so the engine computes the identical function.
//
//   conv.cpp        Conv2D (im2col over each thread's block of samples + one OpenBLAS sgemm),
//                   DepthwiseConv2D (direct loops, batch split over threads)
//   batchnorm.cpp   BatchNorm (batch statistics in training, running statistics in eval; threaded)
//   simple.cpp      Activation (relu / relu6), Dropout, MaxPool, AvgPool, GlobalAvgPool
//   dense.cpp       Dense (fully connected over the flattened NHWC sample)
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace fm::train {

struct Param {
  std::string name;
  std::vector<float> value, grad;
  bool decay = true;  // weight decay applies (weights yes, biases and BN no)
};

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string Name() const = 0;
  virtual void Forward(const Tensor& x, Tensor* y, bool train) = 0;
  virtual void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;
  virtual std::vector<Param*> Params() { return {}; }
  // Non-trained state saved with checkpoints (BN running statistics).
  virtual std::vector<std::vector<float>*> Buffers() { return {}; }
  virtual int64_t Macs(const Tensor& x) const {
    (void)x;
    return 0;
  }
};

// SAME padding along one axis: output size and the padding before (after = total - before).
struct SamePad {
  int out, before, after;
};
SamePad ComputeSame(int in, int kernel, int stride);

class Conv2D : public Layer {
 public:
  Conv2D(int cin, int cout, int kernel, int stride, bool bias, Rng* rng);
  std::string Name() const override { return "conv2d"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  std::vector<Param*> Params() override;
  int64_t Macs(const Tensor& x) const override;
  int cin, cout, k, stride;
  bool has_bias;
  Param w, b;  // w: [cout, k, k, cin] (OHWI, as the engine)
  // Explicit padding (top, left, bottom, right) instead of SAME, for graphs from the engine
  // (GraphNet); pad[0] < 0 = SAME.
  int pad[4] = {-1, -1, -1, -1};
};

class DepthwiseConv2D : public Layer {
 public:
  DepthwiseConv2D(int channels, int kernel, int stride, bool bias, Rng* rng);
  std::string Name() const override { return "depthwise_conv2d"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  std::vector<Param*> Params() override;
  int64_t Macs(const Tensor& x) const override;
  int c, k, stride;
  bool has_bias;
  Param w, b;                     // w: [k, k, c] (the engine's [1, k, k, c])
  int pad[4] = {-1, -1, -1, -1};  // as Conv2D::pad
};

class BatchNorm : public Layer {
 public:
  explicit BatchNorm(int channels, float momentum = 0.9f, float eps = 1e-3f);
  std::string Name() const override { return "batch_norm"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  std::vector<Param*> Params() override { return {&gamma, &beta}; }
  std::vector<std::vector<float>*> Buffers() override { return {&running_mean, &running_var}; }
  int c;
  float momentum, eps;
  Param gamma, beta;
  std::vector<float> running_mean, running_var;

 private:
  std::vector<float> mean_, invstd_;  // of the last forward
  bool last_train_ = true;
};

class Activation : public Layer {
 public:
  explicit Activation(float hi) : lo(0.f), hi(hi) {}  // relu: hi = inf, relu6: hi = 6
  std::string Name() const override { return "clamp"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  float lo, hi;
};

class Dropout : public Layer {
 public:
  Dropout(float rate, uint64_t seed) : rate(rate), rng_(seed) {}
  std::string Name() const override { return "dropout"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  float rate;

 private:
  Rng rng_;
  std::vector<float> mask_;
};

class Pool2D : public Layer {
 public:
  Pool2D(bool max, int kernel, int stride) : max(max), k(kernel), stride(stride) {}
  std::string Name() const override { return max ? "max_pool2d" : "avg_pool2d"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  bool max;
  int k, stride;

 private:
  std::pair<int, int> Clip(int o, const SamePad& pad, int size) const;
  std::vector<int32_t> argmax_;  // max pool: input index (within the sample) of each output
};

class GlobalAvgPool : public Layer {
 public:
  std::string Name() const override { return "global_avg_pool"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
};

class Dense : public Layer {
 public:
  Dense(int in, int out, Rng* rng);
  std::string Name() const override { return "fully_connected"; }
  void Forward(const Tensor& x, Tensor* y, bool train) override;
  void Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
  std::vector<Param*> Params() override { return {&w, &b}; }
  int64_t Macs(const Tensor& x) const override {
    (void)x;
    return int64_t(in) * out;
  }
  int in, out;
  Param w, b;  // w: [out, in]
};

}  // namespace fm::train
