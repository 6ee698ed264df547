// crosscheck.cpp - runs one fixed model on one fixed input (both from the portable PRNG) with the
// XNNPACK and reference backends. `--write FILE` stores the outputs (native build); `--compare
// FILE` checks this build's outputs against a stored file (wasm builds vs native). Prints the
// largest differences; exits 1 when a bound is exceeded.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "runtime/runtime.h"
#include "test_models.h"

namespace {

constexpr float kTolerance = 1e-4f;

int Fail(const std::string& message) {
  std::fprintf(stderr, "crosscheck: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fm;
  if (argc != 3 || (std::strcmp(argv[1], "--write") != 0 && std::strcmp(argv[1], "--compare") != 0))
    return Fail("usage: fm_crosscheck --write FILE | --compare FILE");
  auto graph = std::make_shared<Graph>();
  Status s = test::BuildSmallCnn(2024, graph.get());
  if (!s.ok()) return Fail(s.message());
  test::Rng rng(77);
  std::vector<float> input = rng.Data(33 * 29 * 3);

  std::vector<float> outputs[2];
  for (int b = 0; b < 2; ++b) {
    RuntimeOptions options;
    options.backend = b == 0 ? Backend::kXnnpack : Backend::kReference;
    std::unique_ptr<Runtime> rt;
    s = Runtime::Create(graph, options, &rt);
    if (!s.ok()) return Fail(s.message());
    std::copy(input.begin(), input.end(), rt->input(0));
    s = rt->Run();
    if (!s.ok()) return Fail(s.message());
    for (size_t o = 0; o < rt->num_outputs(); ++o)
      outputs[b].insert(outputs[b].end(), rt->output(o),
                        rt->output(o) + NumElements(rt->output_shape(o)));
  }
  float diff = 0;
  for (size_t i = 0; i < outputs[0].size(); ++i)
    diff = std::max(diff, std::fabs(outputs[0][i] - outputs[1][i]));
  std::printf("xnnpack vs reference (this build): max abs diff %.3g over %zu values\n",
              double(diff), outputs[0].size());
  if (!(diff <= kTolerance)) return Fail("xnnpack and reference disagree");

  const std::string path = argv[2];
  if (std::strcmp(argv[1], "--write") == 0) {
    std::ofstream out(path, std::ios::binary);
    for (int b = 0; b < 2; ++b)
      out.write(reinterpret_cast<const char*>(outputs[b].data()),
                std::streamsize(outputs[b].size() * sizeof(float)));
    if (!out) return Fail("cannot write " + path);
    std::printf("wrote %s\n", path.c_str());
    return 0;
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<float> native[2];
  for (int b = 0; b < 2; ++b) {
    native[b].resize(outputs[b].size());
    in.read(reinterpret_cast<char*>(native[b].data()),
            std::streamsize(native[b].size() * sizeof(float)));
  }
  if (!in) return Fail("cannot read " + path + " (run the native build's tests first)");
  const char* names[2] = {"xnnpack", "reference"};
  bool ok = true;
  for (int b = 0; b < 2; ++b) {
    float d = 0;
    for (size_t i = 0; i < native[b].size(); ++i)
      d = std::max(d, std::fabs(native[b][i] - outputs[b][i]));
    std::printf("%s: this build vs native: max abs diff %.3g\n", names[b], double(d));
    ok = ok && d <= kTolerance;
  }
  return ok ? 0 : Fail("this build's numbers differ from the native build's");
}
