// batchnorm.cpp - BatchNorm over N*H*W per channel. Training normalises with the batch's mean and
// biased variance and updates the running statistics (running = momentum * running +
// (1 - momentum) * batch, unbiased variance); eval uses the running statistics, which is what the
// export folds into the preceding convolution. Sums run in double: per thread over its contiguous
// block of samples, then over threads in thread order (deterministic for a given thread count).
#include <cmath>

#include "layers.h"

namespace fm::train {

BatchNorm::BatchNorm(int channels, float momentum_, float eps_)
    : c(channels), momentum(momentum_), eps(eps_) {
  gamma.name = "gamma";
  gamma.value.assign(size_t(c), 1.f);
  gamma.grad.assign(size_t(c), 0.f);
  gamma.decay = false;
  beta.name = "beta";
  beta.value.assign(size_t(c), 0.f);
  beta.grad.assign(size_t(c), 0.f);
  beta.decay = false;
  running_mean.assign(size_t(c), 0.f);
  running_var.assign(size_t(c), 1.f);
}

namespace {

// Per-thread double partial sums of two per-channel quantities over a block of rows, summed in
// thread order afterwards: deterministic for a given thread count.
struct Partials {
  explicit Partials(size_t c) : a(size_t(Threads()), std::vector<double>(c, 0.0)), b(a) {}
  void Reduce(std::vector<double>* sa, std::vector<double>* sb) const {
    sa->assign(a[0].size(), 0.0);
    sb->assign(a[0].size(), 0.0);
    for (size_t t = 0; t < a.size(); ++t)
      for (size_t ch = 0; ch < a[t].size(); ++ch) {
        (*sa)[ch] += a[t][ch];
        (*sb)[ch] += b[t][ch];
      }
  }
  std::vector<std::vector<double>> a, b;
};

}  // namespace

void BatchNorm::Forward(const Tensor& x, Tensor* y, bool train) {
  y->Reshape(x.n, x.h, x.w, x.c);
  const size_t m = x.Size() / size_t(c), C = size_t(c), hw = size_t(x.h) * size_t(x.w);
  mean_.assign(C, 0.f);
  invstd_.assign(C, 0.f);
  last_train_ = train;
  if (train) {
    std::vector<double> sum, sq;
    {
      Partials part(C);
      ParallelFor(x.n, [&](int b, int e, int t) {
        double* acc = part.a[size_t(t)].data();
        const float* xv = x.data();
        for (size_t i = size_t(b) * hw; i < size_t(e) * hw; ++i)
          for (size_t ch = 0; ch < C; ++ch) acc[ch] += xv[i * C + ch];
      });
      part.Reduce(&sum, &sq);
    }
    for (size_t ch = 0; ch < C; ++ch) sum[ch] /= double(m);
    {
      Partials part(C);
      ParallelFor(x.n, [&](int b, int e, int t) {
        double* acc = part.a[size_t(t)].data();
        const float* xv = x.data();
        for (size_t i = size_t(b) * hw; i < size_t(e) * hw; ++i)
          for (size_t ch = 0; ch < C; ++ch) {
            const double d = xv[i * C + ch] - sum[ch];
            acc[ch] += d * d;
          }
      });
      std::vector<double> unused;
      part.Reduce(&sq, &unused);
    }
    for (size_t ch = 0; ch < C; ++ch) {
      const double var = sq[ch] / double(m);
      mean_[ch] = float(sum[ch]);
      invstd_[ch] = float(1.0 / std::sqrt(var + eps));
      const double unbiased = m > 1 ? sq[ch] / double(m - 1) : var;
      running_mean[ch] = float(momentum * running_mean[ch] + (1.0 - momentum) * sum[ch]);
      running_var[ch] = float(momentum * running_var[ch] + (1.0 - momentum) * unbiased);
    }
  } else {
    for (size_t ch = 0; ch < C; ++ch) {
      mean_[ch] = running_mean[ch];
      invstd_[ch] = float(1.0 / std::sqrt(double(running_var[ch]) + eps));
    }
  }
  // y = x * scale + shift, scale = invstd * gamma, shift = beta - mean * scale.
  std::vector<float> scale(C), shift(C);
  for (size_t ch = 0; ch < C; ++ch) {
    scale[ch] = invstd_[ch] * gamma.value[ch];
    shift[ch] = beta.value[ch] - mean_[ch] * scale[ch];
  }
  ParallelFor(x.n, [&](int b, int e, int) {
    const float* xv = x.data();
    float* yv = y->data();
    for (size_t i = size_t(b) * hw; i < size_t(e) * hw; ++i)
      for (size_t ch = 0; ch < C; ++ch) yv[i * C + ch] = xv[i * C + ch] * scale[ch] + shift[ch];
  });
}

void BatchNorm::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  dx->Reshape(x.n, x.h, x.w, x.c);
  const size_t m = x.Size() / size_t(c), C = size_t(c), hw = size_t(x.h) * size_t(x.w);
  std::vector<double> dgamma, dbeta;
  {
    Partials part(C);
    ParallelFor(x.n, [&](int b, int e, int t) {
      double* dg = part.a[size_t(t)].data();
      double* db = part.b[size_t(t)].data();
      const float* xv = x.data();
      const float* dv = dy.data();
      for (size_t i = size_t(b) * hw; i < size_t(e) * hw; ++i)
        for (size_t ch = 0; ch < C; ++ch) {
          const float xhat = (xv[i * C + ch] - mean_[ch]) * invstd_[ch];
          dg[ch] += double(dv[i * C + ch] * xhat);
          db[ch] += double(dv[i * C + ch]);
        }
    });
    part.Reduce(&dgamma, &dbeta);
  }
  for (size_t ch = 0; ch < C; ++ch) {
    gamma.grad[ch] = float(dgamma[ch]);
    beta.grad[ch] = float(dbeta[ch]);
  }
  // dx = k1 * dy + k2 * x + k0 per channel (train mode); eval mode: dx = k1 * dy.
  std::vector<float> k0(C, 0.f), k1(C), k2(C, 0.f);
  for (size_t ch = 0; ch < C; ++ch) {
    const float gi = gamma.value[ch] * invstd_[ch];
    if (!last_train_) {
      k1[ch] = gi;
      continue;
    }
    const float inv_m = 1.f / float(m);
    k1[ch] = gi;
    const float a = -gi * inv_m * float(dgamma[ch]) * invstd_[ch];  // times xhat's x
    k2[ch] = a;
    k0[ch] = -gi * inv_m * float(dbeta[ch]) - a * mean_[ch];
  }
  ParallelFor(x.n, [&](int b, int e, int) {
    const float* xv = x.data();
    const float* dv = dy.data();
    float* out = dx->data();
    for (size_t i = size_t(b) * hw; i < size_t(e) * hw; ++i)
      for (size_t ch = 0; ch < C; ++ch)
        out[i * C + ch] = k1[ch] * dv[i * C + ch] + k2[ch] * xv[i * C + ch] + k0[ch];
  });
}

}  // namespace fm::train
