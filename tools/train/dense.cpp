// dense.cpp - Dense: y[N, out] = x[N, in] * w[out, in]^T + b over the flattened NHWC sample (the
// engine's reshape + fully_connected). Forward and dx split the batch rows across threads; dw
// splits the output rows, so no reduction is ever divided between threads.
#include <cmath>

#include "layers.h"

namespace fm::train {

Dense::Dense(int in_, int out_, Rng* rng) : in(in_), out(out_) {
  w.name = "weights";
  w.value.resize(size_t(in) * size_t(out));
  w.grad.assign(w.value.size(), 0.f);
  const float sd = std::sqrt(1.f / float(in));  // Glorot-like for the logits layer
  for (float& v : w.value) v = rng->Normal() * sd;
  b.name = "bias";
  b.value.assign(size_t(out), 0.f);
  b.grad.assign(size_t(out), 0.f);
  b.decay = false;
}

void Dense::Forward(const Tensor& x, Tensor* y, bool) {
  y->Resize(x.n, 1, 1, out);
  ParallelFor(x.n, [&](int begin, int end, int) {
    if (end <= begin) return;
    float* ys = y->data() + size_t(begin) * size_t(out);
    for (int s = begin; s < end; ++s)
      std::copy(b.value.begin(), b.value.end(), y->data() + size_t(s) * size_t(out));
    Gemm(false, true, end - begin, out, in, 1.f, x.data() + size_t(begin) * size_t(in), in,
         w.value.data(), in, 1.f, ys, out);
  });
}

void Dense::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  dx->Resize(x.n, x.h, x.w, x.c);
  ParallelFor(x.n, [&](int begin, int end, int) {
    if (end <= begin) return;
    Gemm(false, false, end - begin, in, out, 1.f, dy.data() + size_t(begin) * size_t(out), out,
         w.value.data(), in, 0.f, dx->data() + size_t(begin) * size_t(in), in);
  });
  ParallelFor(out, [&](int begin, int end, int) {
    if (end <= begin) return;
    Gemm(true, false, end - begin, in, x.n, 1.f, dy.data() + begin, out, x.data(), in, 0.f,
         w.grad.data() + size_t(begin) * size_t(in), in);
    for (int o = begin; o < end; ++o) {
      float acc = 0.f;
      for (int s = 0; s < x.n; ++s) acc += dy.v[size_t(s) * size_t(out) + size_t(o)];
      b.grad[size_t(o)] = acc;
    }
  });
}

}  // namespace fm::train
