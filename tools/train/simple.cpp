// simple.cpp - the parameter-free layers: Activation (clamp to [lo, hi]: relu, relu6), Dropout
// (inverted: scaled by 1 / keep in training, identity in eval), MaxPool / AvgPool (SAME padding;
// padded positions never win a max and are not counted in an average, as the engine does) and
// GlobalAvgPool.
#include <algorithm>
#include <limits>

#include "layers.h"

namespace fm::train {

void Activation::Forward(const Tensor& x, Tensor* y, bool) {
  y->Reshape(x.n, x.h, x.w, x.c);
  const size_t per = x.PerSample();
  ParallelFor(x.n, [&](int b, int e, int) {
    const float* xv = x.data();
    float* yv = y->data();
    for (size_t i = size_t(b) * per; i < size_t(e) * per; ++i)
      yv[i] = std::min(std::max(xv[i], lo), hi);
  });
}

void Activation::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  dx->Reshape(x.n, x.h, x.w, x.c);
  const size_t per = x.PerSample();
  ParallelFor(x.n, [&](int b, int e, int) {
    const float* xv = x.data();
    const float* dv = dy.data();
    float* out = dx->data();
    for (size_t i = size_t(b) * per; i < size_t(e) * per; ++i)
      out[i] = (xv[i] > lo && xv[i] < hi) ? dv[i] : 0.f;
  });
}

void Dropout::Forward(const Tensor& x, Tensor* y, bool train) {
  y->Resize(x.n, x.h, x.w, x.c);
  if (!train || rate <= 0.f) {
    y->v = x.v;
    mask_.assign(x.v.size(), 1.f);
    return;
  }
  const float keep = 1.f - rate;
  mask_.resize(x.v.size());
  for (size_t i = 0; i < x.v.size(); ++i) {
    mask_[i] = rng_.Uniform() < keep ? 1.f / keep : 0.f;
    y->v[i] = x.v[i] * mask_[i];
  }
}

void Dropout::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  dx->Resize(x.n, x.h, x.w, x.c);
  for (size_t i = 0; i < x.v.size(); ++i) dx->v[i] = dy.v[i] * mask_[i];
}

// The input rows (or columns) [begin, end) under output position `o`'s window, clipped to the
// input (SAME padding contributes nothing).
std::pair<int, int> Pool2D::Clip(int o, const SamePad& pad, int size) const {
  const int start = o * stride - pad.before;
  return {std::max(start, 0), std::min(start + k, size)};
}

void Pool2D::Forward(const Tensor& x, Tensor* y, bool) {
  const SamePad py = ComputeSame(x.h, k, stride), px = ComputeSame(x.w, k, stride);
  y->Resize(x.n, py.out, px.out, x.c);
  if (max) argmax_.assign(y->Size(), 0);
  const size_t C = size_t(x.c);
  ParallelFor(x.n, [&](int sb, int se, int) {
    for (int s = sb; s < se; ++s) {
      const float* xs = x.data() + size_t(s) * x.PerSample();
      float* ys = y->data() + size_t(s) * y->PerSample();
      int32_t* am = max ? argmax_.data() + size_t(s) * y->PerSample() : nullptr;
      for (int oy = 0; oy < py.out; ++oy)
        for (int ox = 0; ox < px.out; ++ox) {
          const size_t o = (size_t(oy) * size_t(px.out) + size_t(ox)) * C;
          const auto [y0, y1] = Clip(oy, py, x.h);
          const auto [x0, x1] = Clip(ox, px, x.w);
          for (size_t ch = 0; ch < C; ++ch) {
            float acc = max ? -std::numeric_limits<float>::infinity() : 0.f;
            int32_t best = 0;
            for (int iy = y0; iy < y1; ++iy)
              for (int ix = x0; ix < x1; ++ix) {
                const int32_t at = int32_t((size_t(iy) * size_t(x.w) + size_t(ix)) * C + ch);
                const float v = xs[at];
                if (!max) {
                  acc += v;
                } else if (v > acc) {
                  acc = v;
                  best = at;
                }
              }
            if (max) {
              ys[o + ch] = acc;
              am[o + ch] = best;
            } else {
              ys[o + ch] = acc / float((y1 - y0) * (x1 - x0));
            }
          }
        }
    }
  });
}

void Pool2D::Backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
  dx->Resize(x.n, x.h, x.w, x.c);
  const SamePad py = ComputeSame(x.h, k, stride), px = ComputeSame(x.w, k, stride);
  const size_t C = size_t(x.c);
  ParallelFor(x.n, [&](int sb, int se, int) {
    for (int s = sb; s < se; ++s) {
      const float* dys = dy.data() + size_t(s) * y.PerSample();
      float* dxs = dx->data() + size_t(s) * x.PerSample();
      if (max) {
        const int32_t* am = argmax_.data() + size_t(s) * y.PerSample();
        for (size_t o = 0; o < y.PerSample(); ++o) dxs[am[o]] += dys[o];
        continue;
      }
      for (int oy = 0; oy < py.out; ++oy)
        for (int ox = 0; ox < px.out; ++ox) {
          const size_t o = (size_t(oy) * size_t(px.out) + size_t(ox)) * C;
          const auto [y0, y1] = Clip(oy, py, x.h);
          const auto [x0, x1] = Clip(ox, px, x.w);
          const float inv = 1.f / float((y1 - y0) * (x1 - x0));
          for (int iy = y0; iy < y1; ++iy)
            for (int ix = x0; ix < x1; ++ix) {
              float* d = dxs + (size_t(iy) * size_t(x.w) + size_t(ix)) * C;
              for (size_t ch = 0; ch < C; ++ch) d[ch] += dys[o + ch] * inv;
            }
        }
    }
  });
}

void GlobalAvgPool::Forward(const Tensor& x, Tensor* y, bool) {
  y->Resize(x.n, 1, 1, x.c);
  const size_t hw = size_t(x.h) * size_t(x.w), C = size_t(x.c);
  ParallelFor(x.n, [&](int sb, int se, int) {
    for (int s = sb; s < se; ++s) {
      const float* xs = x.data() + size_t(s) * x.PerSample();
      float* ys = y->data() + size_t(s) * C;
      for (size_t i = 0; i < hw; ++i)
        for (size_t ch = 0; ch < C; ++ch) ys[ch] += xs[i * C + ch];
      for (size_t ch = 0; ch < C; ++ch) ys[ch] /= float(hw);
    }
  });
}

void GlobalAvgPool::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  dx->Resize(x.n, x.h, x.w, x.c);
  const size_t hw = size_t(x.h) * size_t(x.w), C = size_t(x.c);
  ParallelFor(x.n, [&](int sb, int se, int) {
    for (int s = sb; s < se; ++s) {
      const float* d = dy.data() + size_t(s) * C;
      float* dxs = dx->data() + size_t(s) * x.PerSample();
      for (size_t i = 0; i < hw; ++i)
        for (size_t ch = 0; ch < C; ++ch) dxs[i * C + ch] = d[ch] / float(hw);
    }
  });
}

}  // namespace fm::train
