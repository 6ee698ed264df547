// model_format.h - reading and writing .fmm model files (the format is documented in
// model/FORMAT.md). The reader trusts nothing: every count, offset, length, name and shape is
// checked before use and the first problem is reported with where it was found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph.h"
#include "status.h"

namespace fm {

constexpr char kModelMagic[8] = {'F', 'M', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr uint32_t kModelVersion = 1;
constexpr uint64_t kModelHeaderSize = 64;
constexpr uint64_t kModelMaxFileSize = uint64_t(512) << 20;  // 512 MiB

// Parses and validates a model. On success *graph is validated and ready to run.
Status ReadModel(const uint8_t* data, size_t size, Graph* graph);
Status ReadModelFile(const std::string& path, Graph* graph);

// Serialises a validated graph (constants marked store_fp16 are written as float16).
Status WriteModel(const Graph& graph, std::vector<uint8_t>* bytes);
Status WriteModelFile(const Graph& graph, const std::string& path);

// IEEE half <-> float conversion (round to nearest even), used for fp16 storage.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);

}  // namespace fm
