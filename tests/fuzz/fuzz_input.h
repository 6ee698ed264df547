// fuzz_input.h - splits a fuzzer's byte string into typed values (clang's FuzzedDataProvider is not
// available to the gcc replay build, so this is a minimal stand-in).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fm::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  // An integer in [lo, hi] from the next bytes (lo when exhausted).
  int64_t Int(int64_t lo, int64_t hi) {
    uint64_t v = 0;
    for (int i = 0; i < 8 && pos_ < size_; ++i) v = v << 8 | data_[pos_++];
    const uint64_t span = uint64_t(hi - lo) + 1;
    return lo + int64_t(span ? v % span : v);
  }
  float Float() {
    uint32_t u = 0;
    if (size_ - pos_ >= 4) {
      std::memcpy(&u, data_ + pos_, 4);
      pos_ += 4;
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const uint8_t* Rest(size_t* n) {
    *n = size_ - pos_;
    return data_ + pos_;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace fm::fuzz
