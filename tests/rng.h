// rng.h - a portable PRNG for tests and tools: identical streams natively and in wasm (unlike
// <random>'s distributions, whose results differ between standard libraries).
#pragma once

#include <cstdint>
#include <vector>

namespace fm::test {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform(float lo, float hi) {
    return lo + (hi - lo) * float(Next() >> 40) / float(1 << 24);
  }
  int Int(int lo, int hi) { return lo + int(Next() % uint64_t(hi - lo + 1)); }  // inclusive
  bool Chance(int percent) { return Int(1, 100) <= percent; }
  std::vector<float> Data(int64_t n, float lo = -1.f, float hi = 1.f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = Uniform(lo, hi);
    return v;
  }

 private:
  uint64_t state_;
};

}  // namespace fm::test
