// fuzz_tfjs.cpp - libFuzzer target: arbitrary text as a TensorFlow.js model.json, with a fixed
// directory of weight shards (zeros: one sized for the seed, one larger). The
// converter must answer every malformed JSON, field, shape or manifest with a message.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tfjs_convert.h"

namespace {

std::string ShardDir() {
  static const std::string dir = [] {
    const std::string d =
        (std::filesystem::temp_directory_path() / ("fm-fuzz-tfjs-" + std::to_string(getpid())))
            .string();
    std::filesystem::create_directories(d);
    const std::vector<char> zeros(1 << 16, 0);
    for (const char* name : {"group1-shard1of1.bin", "weights.bin"})
      std::ofstream(d + "/" + name, std::ios::binary)
          .write(zeros.data(), std::streamsize(zeros.size()));
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fm::Graph graph;
  fm::Status s = fm::ConvertTfjsGraphFromText(text, ShardDir(), {}, &graph);
  if (!s.ok() && s.message().empty()) std::abort();  // every refusal says why
  if (s.ok() && !graph.validated()) std::abort();    // what it returns is a checked graph
  return 0;
}
