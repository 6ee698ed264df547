// common.h - the trainer's basic types: a float32 NHWC tensor, a portable seeded PRNG (the same
// stream on every machine, unlike <random>'s distributions), a fixed-partition parallel-for over
// the batch, and the BLAS product every heavy layer uses.
//
// Determinism: ParallelFor splits [0, n) into `Threads()` equal contiguous chunks, so each chunk's
// reductions run in a fixed order and per-thread partial sums are added in thread order. The
// chunks run on a persistent pool (no thread creation per call); OpenBLAS is kept single-threaded
// (each worker calls it on its own chunk), so its results do not depend on scheduling; they may
// depend on the CPU kernel OpenBLAS picks (DYNAMIC_ARCH), so bit-exact reruns are promised on the
// same machine and thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fm::train {

// NHWC float tensor; dense layers see [N, 1, 1, features].
struct Tensor {
  int n = 0, h = 0, w = 0, c = 0;
  std::vector<float> v;
  Tensor() = default;
  Tensor(int n_, int h_, int w_, int c_) : n(n_), h(h_), w(w_), c(c_), v(Size(), 0.f) {}
  size_t Size() const { return size_t(n) * size_t(h) * size_t(w) * size_t(c); }
  void Resize(int n_, int h_, int w_, int c_) {
    n = n_, h = h_, w = w_, c = c_;
    v.assign(Size(), 0.f);
  }
  // Same shape change without zeroing: for outputs every element of which the caller overwrites.
  void Reshape(int n_, int h_, int w_, int c_) {
    n = n_, h = h_, w = w_, c = c_;
    v.resize(Size());
  }
  float* data() { return v.data(); }
  const float* data() const { return v.data(); }
  size_t PerSample() const { return size_t(h) * size_t(w) * size_t(c); }
};

class Rng {
 public:
  explicit Rng(uint64_t seed = 1) : state_(seed) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform(float lo = 0.f, float hi = 1.f) {
    return lo + (hi - lo) * float(Next() >> 40) / float(1 << 24);
  }
  int Int(int lo, int hi) { return lo + int(Next() % uint64_t(hi - lo + 1)); }  // inclusive
  bool Chance(float p) { return Uniform() < p; }
  float Normal();  // Box-Muller, standard normal
  template <typename T>
  void Shuffle(std::vector<T>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[Next() % i]);
  }

 private:
  uint64_t state_;
};

// Number of worker threads for ParallelFor (default 2); set once at start-up. Also sets OpenBLAS
// to one thread.
void SetThreads(int threads);
int Threads();
// Calls fn(begin, end, chunk) for Threads() contiguous chunks of [0, n), concurrently on a
// persistent pool; a ParallelFor inside fn runs its chunks in order on the calling thread.
void ParallelFor(int n, const std::function<void(int, int, int)>& fn);

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major (cblas_sgemm).
void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

// FNV-1a 32-bit: file-name hashes for deterministic splits (shared with tools/eval_scenes.cpp).
uint32_t Fnv1a(const std::string& s);

}  // namespace fm::train
