// fm_convert.cpp - command-line TensorFlow.js graph-model converter:
//   fm_convert MODEL.json -o OUT.fmm [--output NAME]... [--metadata key=value]...
//              [--input-shape 1,H,W,C] [--strip-prefix PREFIX] [--fp32] [--quiet]
// Converts, validates and writes the model (through a temporary file, so a failed run never
// leaves a half-written OUT.fmm), then prints its parameters, MACs and op counts.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "convert_util.h"
#include "model/model_format.h"
#include "tfjs_convert.h"

namespace {

int Usage() {
  std::fprintf(
      stderr,
      "usage: fm_convert MODEL.json -o OUT.fmm [--output NAME]... "
      "[--metadata key=value]... [--input-shape 1,H,W,C] [--strip-prefix P] [--fp32] [--quiet]\n");
  return 2;
}

bool ParseShape(const std::string& text, fm::Shape* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > (1 << 24)) return false;
    out->push_back(v);
    pos = comma + 1;
  }
  return !out->empty() && out->size() <= 6;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, output;
  bool quiet = false;
  fm::TfjsConvertOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "-o") {
      const char* v = value();
      if (!v) return Usage();
      output = v;
    } else if (a == "--output") {
      const char* v = value();
      if (!v) return Usage();
      options.outputs.push_back(v);
    } else if (a == "--metadata") {
      const char* v = value();
      const std::string kv = v ? v : "";
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return Usage();
      options.metadata[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (a == "--input-shape") {
      const char* v = value();
      if (!v || !ParseShape(v, &options.input_shape)) return Usage();
    } else if (a == "--strip-prefix") {
      const char* v = value();
      if (!v) return Usage();
      options.strip_prefix = v;
    } else if (a == "--fp32") {
      options.force_fp32 = true;
    } else if (a == "--quiet") {
      quiet = true;
    } else if (!a.empty() && a[0] != '-' && model.empty()) {
      model = a;
    } else {
      return Usage();
    }
  }
  if (model.empty() || output.empty()) return Usage();

  const auto t0 = std::chrono::steady_clock::now();
  fm::Graph graph;
  fm::Status s = fm::ConvertTfjsGraph(model, options, &graph);
  if (s.ok())
    s = fm::convert_util::WriteAtomically(
        output, [&](const std::string& tmp) { return fm::WriteModelFile(graph, tmp); });
  if (!s.ok()) {
    std::fprintf(stderr, "fm_convert: %s\n", s.message().c_str());
    return 1;
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet) {
    const fm::GraphStats st = fm::ComputeGraphStats(graph);
    std::string ops;
    for (const auto& [op, count] : st.op_counts)
      ops += (ops.empty() ? "" : ", ") + op + " " + std::to_string(count);
    std::printf("%s: %zu nodes, %lld params, %.1fM MACs, %.0f ms\n  ops: %s\n", output.c_str(),
                graph.nodes.size(), static_cast<long long>(st.params), double(st.macs) / 1e6, ms,
                ops.c_str());
    for (int32_t o : graph.outputs)
      std::printf("  output '%s' %s\n", graph.tensors[size_t(o)].name.c_str(),
                  fm::ShapeToString(graph.ShapeOf(o)).c_str());
  }
  return 0;
}
