// fuzz_model.cpp - libFuzzer target: arbitrary bytes as a .fmm model. The loader must refuse bad
// files with a message; a file it accepts must survive a write/read round trip unchanged and run
// on the reference backend when small.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "model/model_format.h"
#include "runtime/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fm::Graph g;
  fm::Status s = fm::ReadModel(data, size, &g);
  if (!s.ok()) {
    if (s.message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  std::vector<uint8_t> again;
  if (!fm::WriteModel(g, &again).ok()) std::abort();
  fm::Graph g2;
  if (!fm::ReadModel(again.data(), again.size(), &g2).ok()) std::abort();
  int64_t work = 0;
  for (const fm::Tensor& t : g.tensors) work += fm::NumElements(t.shape);
  if (work > (1 << 18)) return 0;  // keep executions fast
  auto graph = std::make_shared<fm::Graph>(std::move(g));
  std::unique_ptr<fm::Runtime> rt;
  fm::RuntimeOptions options;
  options.backend = fm::Backend::kReference;
  if (fm::Runtime::Create(graph, options, &rt).ok()) (void)rt->Run();
  return 0;
}
