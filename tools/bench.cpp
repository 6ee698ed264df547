// bench.cpp - times inference of the original project's Keras CNN (random weights):
// 224x224x3 -> conv3x3 32 relu -> maxpool2 -> conv3x3 64 relu -> maxpool2 -> conv3x3 128 relu ->
// maxpool2 -> flatten -> dense 128 relu -> dense 2 softmax. Prints median and p90 ms per
// inference and a JSON line for scripts. Same source natively and under node (wasm).
// `--load MODEL.fmm` instead times loading a model file (ReadModel on its bytes: parsing, float16
// expansion, validation); `--profile MODEL.fmm` times each XNNPACK operator of a model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "model/graph_builder.h"
#include "model/model_format.h"
#include "runtime/runtime.h"

namespace {

using namespace fm;

// Deterministic He-style uniform weights.
std::vector<float> Weights(uint64_t& state, int64_t n, int64_t fan_in) {
  const float limit = std::sqrt(6.f / float(fan_in));
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = (float(state >> 40) / float(1 << 24) * 2.f - 1.f) * limit;
  }
  return v;
}

Status BuildOriginalCnn(Graph* out) {
  uint64_t seed = 1;
  GraphBuilder b;
  const Attr relu = Attr::Floats({0.f, INFINITY});
  int32_t t = b.Input("image", {1, 224, 224, 3});
  int64_t c = 3;
  int index = 1;
  for (int64_t oc : {32, 64, 128}) {
    const std::string name = "conv" + std::to_string(index);
    const int32_t w = b.Constant(name + "/w", {oc, 3, 3, c}, Weights(seed, oc * 9 * c, 9 * c));
    const int32_t bias = b.Constant(name + "/b", {oc}, std::vector<float>(size_t(oc), 0.01f));
    t = b.Op("conv2d", name, {t, w, bias}, {{"clamp", relu}});
    t = b.Op("max_pool2d", "pool" + std::to_string(index), {t},
             {{"kernel", Attr::Ints({2, 2})}, {"stride", Attr::Ints({2, 2})}});
    c = oc;
    ++index;
  }
  const Shape s = b.ShapeOf(t);
  const int64_t flat = s[1] * s[2] * s[3];
  t = b.Op("reshape", "flatten", {t}, {{"shape", Attr::Ints({1, flat})}});
  t = b.Op("fully_connected", "dense1",
           {t, b.Constant("dense1/w", {128, flat}, Weights(seed, 128 * flat, flat)),
            b.Constant("dense1/b", {128}, std::vector<float>(128, 0.f))},
           {{"clamp", relu}});
  t = b.Op("fully_connected", "dense2",
           {t, b.Constant("dense2/w", {2, 128}, Weights(seed, 256, 128)),
            b.Constant("dense2/b", {2}, std::vector<float>(2, 0.f))});
  t = b.Op("softmax", "probs", {t});
  return b.Finish({t}, out);
}

void CountWork(const Graph& g, int64_t* params, int64_t* macs) {
  *params = 0;
  *macs = 0;
  for (const Tensor& t : g.tensors)
    if (t.kind == TensorKind::kConstant) *params += NumElements(t.shape);
  for (const Node& n : g.nodes) {
    if (n.op == "conv2d" || n.op == "depthwise_conv2d" || n.op == "fully_connected") {
      const Shape& w = g.ShapeOf(n.inputs[1]);
      const int64_t per_output = n.op == "conv2d"             ? w[1] * w[2] * w[3]
                                 : n.op == "depthwise_conv2d" ? w[1] * w[2]
                                                              : w[1];
      *macs += NumElements(g.ShapeOf(n.output)) * per_output;
    }
  }
}

int Usage() {
  std::fprintf(stderr,
               "usage: fm_bench [--runs N] [--warmup N] [--threads N] [--backend xnnpack|reference]"
               " [--label TEXT] [--load MODEL.fmm | --profile MODEL.fmm]\n");
  return 2;
}

// Times ReadModel on the bytes of `path` (the file is read once, outside the timing).
int BenchLoad(const std::string& path, int runs, int warmup, const std::string& label) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    std::fprintf(stderr, "fm_bench: cannot read '%s'\n", path.c_str());
    return 1;
  }
  using Clock = std::chrono::steady_clock;
  std::vector<double> ms;
  for (int i = 0; i < warmup + runs; ++i) {
    Graph g;
    const auto a = Clock::now();
    const Status s = ReadModel(bytes.data(), bytes.size(), &g);
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
    if (!s.ok()) {
      std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
      return 1;
    }
    if (i >= warmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p90 = ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.9))];
  std::printf("load %s (%zu bytes) [%s]: median %.2f ms, p90 %.2f ms, min %.2f ms over %d runs\n",
              path.c_str(), bytes.size(), label.c_str(), median, p90, ms[0], runs);
  std::printf(
      "{\"bench\": \"load\", \"file\": \"%s\", \"bytes\": %zu, \"build\": \"%s\", "
      "\"median_ms\": %.3f, \"p90_ms\": %.3f, \"min_ms\": %.3f, \"runs\": %d}\n",
      path.c_str(), bytes.size(), label.c_str(), median, p90, ms[0], runs);
  return 0;
}

// Runs MODEL.fmm with XNNPACK's per-operator timer (RuntimeOptions::profile) and prints the mean
// time of each operator over the runs, slowest first, and the totals per operator type.
int BenchProfile(const std::string& path, int runs, int warmup, int threads) {
  auto graph = std::make_shared<Graph>();
  Status s = ReadModelFile(path, graph.get());
  std::unique_ptr<Runtime> rt;
  RuntimeOptions options;
  options.threads = threads;
  options.sparse_hint = true;
  options.profile = true;
  if (s.ok()) s = Runtime::Create(graph, options, &rt);
  if (!s.ok()) {
    std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
    return 1;
  }
  uint64_t state = 7;
  for (size_t i = 0; i < rt->num_inputs(); ++i) {
    const std::vector<float> x = Weights(state, NumElements(rt->input_shape(i)), 3);
    std::copy(x.begin(), x.end(), rt->input(i));
  }
  std::vector<OpTiming> sum, ops;
  for (int i = 0; i < warmup + runs; ++i) {
    s = rt->Run();
    if (s.ok()) s = rt->Profile(&ops);
    if (!s.ok()) {
      std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
      return 1;
    }
    if (i < warmup) continue;
    if (sum.empty()) sum.assign(ops.size(), {});
    for (size_t k = 0; k < ops.size() && k < sum.size(); ++k) {
      sum[k].name = ops[k].name;
      sum[k].ms += ops[k].ms / runs;
    }
  }
  std::map<std::string, std::pair<int, double>> by_type;
  double total = 0;
  for (const OpTiming& o : sum) {
    by_type[o.name].first += 1;
    by_type[o.name].second += o.ms;
    total += o.ms;
  }
  std::printf("profile %s: %zu XNNPACK operators, %.3f ms per run (mean of %d runs)\n",
              path.c_str(), sum.size(), total, runs);
  std::vector<std::pair<double, std::string>> types;
  for (const auto& kv : by_type) types.push_back({kv.second.second, kv.first});
  std::sort(types.rbegin(), types.rend());
  for (const auto& t : types)
    std::printf("  %-40s x%-3d %7.3f ms  %5.1f%%\n", t.second.c_str(), by_type[t.second].first,
                t.first, 100.0 * t.first / std::max(total, 1e-9));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 100, warmup = 10, threads = 1;
  std::string backend = "xnnpack", label, load, profile;
#if defined(__EMSCRIPTEN__)
  label = "wasm";
#else
  label = "native";
#endif
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string value = argv[++i];
    if (arg == "--runs")
      runs = std::atoi(value.c_str());
    else if (arg == "--warmup")
      warmup = std::atoi(value.c_str());
    else if (arg == "--threads")
      threads = std::atoi(value.c_str());
    else if (arg == "--backend")
      backend = value;
    else if (arg == "--label")
      label = value;
    else if (arg == "--load")
      load = value;
    else if (arg == "--profile")
      profile = value;
    else
      return Usage();
  }
  if (runs < 1 || runs > 100000 || warmup < 0 || (backend != "xnnpack" && backend != "reference"))
    return Usage();
  if (!load.empty()) return BenchLoad(load, runs, warmup, label);
  if (!profile.empty()) return BenchProfile(profile, runs, warmup, threads);

  auto graph = std::make_shared<Graph>();
  Status s = BuildOriginalCnn(graph.get());
  if (!s.ok()) {
    std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
    return 1;
  }
  int64_t params, macs;
  CountWork(*graph, &params, &macs);
  RuntimeOptions options;
  options.backend = backend == "xnnpack" ? Backend::kXnnpack : Backend::kReference;
  options.threads = threads;
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  std::unique_ptr<Runtime> rt;
  s = Runtime::Create(graph, options, &rt);
  if (!s.ok()) {
    std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
    return 1;
  }
  const double setup_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  for (int i = 0; i < 224 * 224 * 3; ++i) rt->input(0)[i] = float(i % 251) / 251.f;
  for (int i = 0; i < warmup; ++i) (void)rt->Run();
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto a = Clock::now();
    s = rt->Run();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    if (!s.ok()) {
      std::fprintf(stderr, "fm_bench: %s\n", s.message().c_str());
      return 1;
    }
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double p90 = ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.9))];
  std::printf(
      "original CNN 224x224x3 (%.1fM params, %.0fM MACs) [%s, %s, %d thread%s]: median %.2f ms, "
      "p90 %.2f ms over %d runs; setup (weight packing) %.1f ms; output [%.4f, %.4f]\n",
      double(params) / 1e6, double(macs) / 1e6, label.c_str(), backend.c_str(), threads,
      threads == 1 ? "" : "s", median, p90, runs, setup_ms, double(rt->output(0)[0]),
      double(rt->output(0)[1]));
  std::printf(
      "{\"bench\": \"original_cnn\", \"build\": \"%s\", \"backend\": \"%s\", \"threads\": %d, "
      "\"median_ms\": %.3f, \"p90_ms\": %.3f, \"runs\": %d, \"setup_ms\": %.1f, \"params\": %lld, "
      "\"macs\": %lld}\n",
      label.c_str(), backend.c_str(), threads, median, p90, runs, setup_ms, (long long)params,
      (long long)macs);
  return 0;
}
