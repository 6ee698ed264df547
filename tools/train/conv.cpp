// conv.cpp - Conv2D and DepthwiseConv2D (SAME padding, square kernels). Conv2D lowers a block of
// samples to one im2col matrix [samples * out_h * out_w, k * k * cin] and multiplies it by the OHWI
// weights with a single OpenBLAS sgemm; 1x1 stride-1 convolutions use the input directly. The
// batch is split across the persistent worker threads (OpenBLAS single-threaded in each); weight
// gradients are summed per thread, then over threads in a fixed order (deterministic).
#include <algorithm>
#include <cmath>

#include "layers.h"

namespace fm::train {
namespace {

void InitHe(Param* p, size_t n, int fan_in, Rng* rng) {
  p->value.resize(n);
  p->grad.assign(n, 0.f);
  const float sd = std::sqrt(2.f / float(fan_in));
  for (float& v : p->value) v = rng->Normal() * sd;
}

void InitZero(Param* p, size_t n, const std::string& name) {
  p->name = name;
  p->value.assign(n, 0.f);
  p->grad.assign(n, 0.f);
  p->decay = false;
}

// Sums per-thread partial gradients (each `n` long) into `out` in thread order.
void ReducePartials(const std::vector<std::vector<float>>& partials, std::vector<float>* out) {
  std::fill(out->begin(), out->end(), 0.f);
  for (const auto& p : partials)
    if (!p.empty())
      for (size_t i = 0; i < out->size(); ++i) (*out)[i] += p[i];
}

}  // namespace

SamePad ComputeSame(int in, int kernel, int stride) {
  SamePad p;
  p.out = (in + stride - 1) / stride;
  const int total = std::max((p.out - 1) * stride + kernel - in, 0);
  p.before = total / 2;
  p.after = total - p.before;
  return p;
}

// ---------------------------------------------------------------- Conv2D

Conv2D::Conv2D(int cin_, int cout_, int kernel, int stride_, bool bias, Rng* rng)
    : cin(cin_), cout(cout_), k(kernel), stride(stride_), has_bias(bias) {
  w.name = "weights";
  InitHe(&w, size_t(cout) * size_t(k * k * cin), k * k * cin, rng);
  InitZero(&b, has_bias ? size_t(cout) : 0, "bias");
}

std::vector<Param*> Conv2D::Params() {
  if (has_bias) return {&w, &b};
  return {&w};
}

namespace {

struct ConvGeom {
  int h, w, c, oh, ow, k, stride, pad_t, pad_l;
  bool direct;  // 1x1, stride 1: the input is its own im2col matrix
};

void Im2Col(const float* x, const ConvGeom& g, float* col) {
  const int kk = g.k * g.k * g.c;
  for (int oy = 0; oy < g.oh; ++oy)
    for (int ox = 0; ox < g.ow; ++ox) {
      float* row = col + (size_t(oy) * size_t(g.ow) + size_t(ox)) * size_t(kk);
      for (int ky = 0; ky < g.k; ++ky) {
        const int iy = oy * g.stride - g.pad_t + ky;
        for (int kx = 0; kx < g.k; ++kx) {
          const int ix = ox * g.stride - g.pad_l + kx;
          float* dst = row + size_t(ky * g.k + kx) * size_t(g.c);
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
            std::fill(dst, dst + g.c, 0.f);
          } else {
            const float* src = x + (size_t(iy) * size_t(g.w) + size_t(ix)) * size_t(g.c);
            std::copy(src, src + g.c, dst);
          }
        }
      }
    }
}

void Col2Im(const float* col, const ConvGeom& g, float* x) {
  const int kk = g.k * g.k * g.c;
  std::fill(x, x + size_t(g.h) * size_t(g.w) * size_t(g.c), 0.f);
  for (int oy = 0; oy < g.oh; ++oy)
    for (int ox = 0; ox < g.ow; ++ox) {
      const float* row = col + (size_t(oy) * size_t(g.ow) + size_t(ox)) * size_t(kk);
      for (int ky = 0; ky < g.k; ++ky) {
        const int iy = oy * g.stride - g.pad_t + ky;
        if (iy < 0 || iy >= g.h) continue;
        for (int kx = 0; kx < g.k; ++kx) {
          const int ix = ox * g.stride - g.pad_l + kx;
          if (ix < 0 || ix >= g.w) continue;
          const float* src = row + size_t(ky * g.k + kx) * size_t(g.c);
          float* dst = x + (size_t(iy) * size_t(g.w) + size_t(ix)) * size_t(g.c);
          for (int c = 0; c < g.c; ++c) dst[c] += src[c];
        }
      }
    }
}

// pad[0] < 0: TensorFlow SAME; else explicit top, left, bottom, right padding.
ConvGeom Geometry(const Tensor& x, int k, int stride, const int pad[4]) {
  const bool direct =
      k == 1 && stride == 1 && pad[0] <= 0 && pad[1] <= 0 && pad[2] <= 0 && pad[3] <= 0;
  if (pad[0] < 0) {
    const SamePad py = ComputeSame(x.h, k, stride), px = ComputeSame(x.w, k, stride);
    return ConvGeom{x.h, x.w, x.c, py.out, px.out, k, stride, py.before, px.before, direct};
  }
  const int oh = (x.h + pad[0] + pad[2] - k) / stride + 1;
  const int ow = (x.w + pad[1] + pad[3] - k) / stride + 1;
  return ConvGeom{x.h, x.w, x.c, oh, ow, k, stride, pad[0], pad[1], direct};
}

}  // namespace

int64_t Conv2D::Macs(const Tensor& x) const {
  const ConvGeom g = Geometry(x, k, stride, pad);
  return int64_t(g.oh) * g.ow * k * k * cin * cout;
}

namespace {

// Samples per im2col block: keeps a thread's im2col matrix near 4 M floats (16 MB).
int BlockSamples(const ConvGeom& g, int kk) {
  const int64_t per = int64_t(g.oh) * g.ow * kk;
  return int(std::max<int64_t>(1, (int64_t(4) << 20) / std::max<int64_t>(per, 1)));
}

// Per-thread scratch, reused across calls (no allocation per layer call once warm).
std::vector<float>& Scratch(int which) {
  thread_local std::vector<float> buf[2];
  return buf[which];
}

}  // namespace

// Each thread lowers its contiguous block of samples to one im2col matrix [block * m, kk] and
// makes a single sgemm of it (1x1 stride-1 convolutions use the NHWC input rows directly).
void Conv2D::Forward(const Tensor& x, Tensor* y, bool) {
  const ConvGeom g = Geometry(x, k, stride, pad);
  y->Reshape(x.n, g.oh, g.ow, cout);  // the sgemm (beta 0) writes every element
  const int m = g.oh * g.ow, kk = k * k * cin;
  const int block = BlockSamples(g, kk);
  ParallelFor(x.n, [&](int begin, int end, int) {
    std::vector<float>& col = Scratch(0);
    for (int s0 = begin; s0 < end; s0 += block) {
      const int ns = std::min(block, end - s0);
      const size_t rows = size_t(ns) * size_t(m);
      const float* a = x.data() + size_t(s0) * x.PerSample();
      if (!g.direct) {
        if (col.size() < rows * size_t(kk)) col.resize(rows * size_t(kk));
        for (int s = 0; s < ns; ++s)
          Im2Col(a + size_t(s) * x.PerSample(), g, col.data() + size_t(s) * size_t(m) * size_t(kk));
        a = col.data();
      }
      float* ys = y->data() + size_t(s0) * y->PerSample();
      Gemm(false, true, int(rows), cout, kk, 1.f, a, kk, w.value.data(), kk, 0.f, ys, cout);
      if (has_bias)
        for (size_t i = 0; i < rows; ++i)
          for (int o = 0; o < cout; ++o) ys[i * size_t(cout) + size_t(o)] += b.value[size_t(o)];
    }
  });
}

void Conv2D::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  const ConvGeom g = Geometry(x, k, stride, pad);
  dx->Resize(x.n, x.h, x.w, x.c);
  const int m = g.oh * g.ow, kk = k * k * cin;
  const int block = BlockSamples(g, kk);
  std::vector<std::vector<float>> dw_part(static_cast<size_t>(Threads()));
  std::vector<std::vector<float>> db_part(static_cast<size_t>(Threads()));
  ParallelFor(x.n, [&](int begin, int end, int t) {
    std::vector<float>& dw = dw_part[size_t(t)];
    std::vector<float>& db = db_part[size_t(t)];
    dw.assign(w.value.size(), 0.f);
    db.assign(size_t(cout), 0.f);
    std::vector<float>& col = Scratch(0);
    std::vector<float>& dcol = Scratch(1);
    for (int s0 = begin; s0 < end; s0 += block) {
      const int ns = std::min(block, end - s0);
      const size_t rows = size_t(ns) * size_t(m);
      const float* a = x.data() + size_t(s0) * x.PerSample();
      const float* dys = dy.data() + size_t(s0) * dy.PerSample();
      float* dxs = dx->data() + size_t(s0) * dx->PerSample();
      if (!g.direct) {
        if (col.size() < rows * size_t(kk)) col.resize(rows * size_t(kk));
        if (dcol.size() < rows * size_t(kk)) dcol.resize(rows * size_t(kk));
        for (int s = 0; s < ns; ++s)
          Im2Col(a + size_t(s) * x.PerSample(), g, col.data() + size_t(s) * size_t(m) * size_t(kk));
        a = col.data();
      }
      Gemm(true, false, cout, kk, int(rows), 1.f, dys, cout, a, kk, 1.f, dw.data(), kk);
      if (has_bias)
        for (size_t i = 0; i < rows; ++i)
          for (int o = 0; o < cout; ++o) db[size_t(o)] += dys[i * size_t(cout) + size_t(o)];
      float* dc = g.direct ? dxs : dcol.data();
      Gemm(false, false, int(rows), kk, cout, 1.f, dys, cout, w.value.data(), kk, 0.f, dc, kk);
      if (!g.direct)
        for (int s = 0; s < ns; ++s)
          Col2Im(dcol.data() + size_t(s) * size_t(m) * size_t(kk), g,
                 dxs + size_t(s) * dx->PerSample());
    }
  });
  ReducePartials(dw_part, &w.grad);
  if (has_bias) ReducePartials(db_part, &b.grad);
}

// ---------------------------------------------------------------- DepthwiseConv2D

DepthwiseConv2D::DepthwiseConv2D(int channels, int kernel, int stride_, bool bias, Rng* rng)
    : c(channels), k(kernel), stride(stride_), has_bias(bias) {
  w.name = "weights";
  InitHe(&w, size_t(k * k * c), k * k, rng);
  InitZero(&b, has_bias ? size_t(c) : 0, "bias");
}

std::vector<Param*> DepthwiseConv2D::Params() {
  if (has_bias) return {&w, &b};
  return {&w};
}

int64_t DepthwiseConv2D::Macs(const Tensor& x) const {
  const ConvGeom g = Geometry(x, k, stride, pad);
  return int64_t(g.oh) * g.ow * k * k * c;
}

void DepthwiseConv2D::Forward(const Tensor& x, Tensor* y, bool) {
  const ConvGeom g = Geometry(x, k, stride, pad);
  y->Reshape(x.n, g.oh, g.ow, c);  // every output is initialised below
  ParallelFor(x.n, [&](int begin, int end, int) {
    for (int s = begin; s < end; ++s) {
      const float* xs = x.data() + size_t(s) * x.PerSample();
      float* ys = y->data() + size_t(s) * y->PerSample();
      for (int oy = 0; oy < g.oh; ++oy)
        for (int ox = 0; ox < g.ow; ++ox) {
          float* out = ys + (size_t(oy) * size_t(g.ow) + size_t(ox)) * size_t(c);
          for (int ch = 0; ch < c; ++ch) out[ch] = has_bias ? b.value[size_t(ch)] : 0.f;
          for (int ky = 0; ky < k; ++ky) {
            const int iy = oy * stride - g.pad_t + ky;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < k; ++kx) {
              const int ix = ox * stride - g.pad_l + kx;
              if (ix < 0 || ix >= g.w) continue;
              const float* in = xs + (size_t(iy) * size_t(g.w) + size_t(ix)) * size_t(c);
              const float* wk = w.value.data() + size_t(ky * k + kx) * size_t(c);
              for (int ch = 0; ch < c; ++ch) out[ch] += in[ch] * wk[ch];
            }
          }
        }
    }
  });
}

void DepthwiseConv2D::Backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
  const ConvGeom g = Geometry(x, k, stride, pad);
  dx->Resize(x.n, x.h, x.w, x.c);
  std::vector<std::vector<float>> dw_part(static_cast<size_t>(Threads()));
  std::vector<std::vector<float>> db_part(static_cast<size_t>(Threads()));
  ParallelFor(x.n, [&](int begin, int end, int t) {
    std::vector<float>& dw = dw_part[size_t(t)];
    std::vector<float>& db = db_part[size_t(t)];
    dw.assign(w.value.size(), 0.f);
    db.assign(size_t(c), 0.f);
    for (int s = begin; s < end; ++s) {
      const float* xs = x.data() + size_t(s) * x.PerSample();
      const float* dys = dy.data() + size_t(s) * dy.PerSample();
      float* dxs = dx->data() + size_t(s) * dx->PerSample();
      for (int oy = 0; oy < g.oh; ++oy)
        for (int ox = 0; ox < g.ow; ++ox) {
          const float* d = dys + (size_t(oy) * size_t(g.ow) + size_t(ox)) * size_t(c);
          for (int ch = 0; ch < c; ++ch) db[size_t(ch)] += d[ch];
          for (int ky = 0; ky < k; ++ky) {
            const int iy = oy * stride - g.pad_t + ky;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < k; ++kx) {
              const int ix = ox * stride - g.pad_l + kx;
              if (ix < 0 || ix >= g.w) continue;
              const size_t at = (size_t(iy) * size_t(g.w) + size_t(ix)) * size_t(c);
              const float* wk = w.value.data() + size_t(ky * k + kx) * size_t(c);
              float* dwk = dw.data() + size_t(ky * k + kx) * size_t(c);
              for (int ch = 0; ch < c; ++ch) {
                dxs[at + size_t(ch)] += d[ch] * wk[ch];
                dwk[ch] += d[ch] * xs[at + size_t(ch)];
              }
            }
          }
        }
    }
  });
  ReducePartials(dw_part, &w.grad);
  if (has_bias) ReducePartials(db_part, &b.grad);
}

}  // namespace fm::train
