// model_format.h - reading and writing .fmm model files (the format is documented in
// model/FORMAT.md). The reader trusts nothing: every count, offset, length, name and shape is
// checked before use and the first problem is reported with where it was found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/graph.h"
#include "status.h"

namespace fm {

constexpr char kModelMagic[8] = {'F', 'M', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr uint32_t kModelVersion = 1;
constexpr uint64_t kModelHeaderSize = 64;
constexpr uint64_t kModelMaxFileSize = uint64_t(512) << 20;  // 512 MiB
// All constants of a model together, decoded to float32, checked from the records before any
// allocation (a float16 sparse blob of a few bytes can describe 2^26 zeros).
constexpr uint64_t kModelMaxDecodedBytes = uint64_t(256) << 20;  // 256 MiB

// Parses and validates a model. On success *graph is validated and ready to run.
Status ReadModel(const uint8_t* data, size_t size, Graph* graph);
Status ReadModelFile(const std::string& path, Graph* graph);

// How constants marked store_fp16 are laid out: float16 sparse (storage kind 3) when that is
// shorter than dense float16 (kind 2), or always one of them (kDense: files that engines from
// before kind 3 can read; kSparse: tests). The reader gets the same float16 bits back either way.
enum class Fp16Layout : uint8_t { kSmaller, kDense, kSparse };

struct WriteOptions {
  Fp16Layout fp16_layout = Fp16Layout::kSmaller;
};

// Serialises a validated graph (constants marked store_fp16 are written as float16).
Status WriteModel(const Graph& graph, std::vector<uint8_t>* bytes,
                  const WriteOptions& options = WriteOptions());
Status WriteModelFile(const Graph& graph, const std::string& path,
                      const WriteOptions& options = WriteOptions());

// IEEE half <-> float conversion (round to nearest even), used for fp16 storage.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

}  // namespace fm
