// test_util.h - shared GoogleTest helpers: running a graph on one backend, or on both.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/graph.h"
#include "rng.h"
#include "runtime/runtime.h"

namespace fm::test {

// Runs `graph` on `backend` with one input; returns every output (empty, and the test failed,
// if the runtime cannot be created or run).
inline std::vector<std::vector<float>> RunGraph(const std::shared_ptr<const Graph>& graph,
                                                Backend backend, const std::vector<float>& input) {
  RuntimeOptions options;
  options.backend = backend;
  std::unique_ptr<Runtime> rt;
  Status s = Runtime::Create(graph, options, &rt);
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return {};
  std::copy(input.begin(), input.end(), rt->input(0));
  s = rt->Run();
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<std::vector<float>> out;
  for (size_t o = 0; o < rt->num_outputs(); ++o)
    out.emplace_back(rt->output(o), rt->output(o) + NumElements(rt->output_shape(o)));
  return out;
}

struct Agreement {
  float max_abs_diff = 0;
  float max_abs_ref = 0;
};

// Runs `graph` with the given input data on the reference and XNNPACK backends and compares every
// output. Fails the test (with `what` in the message) if a runtime cannot be created or run.
inline Agreement RunBoth(std::shared_ptr<const Graph> graph,
                         const std::vector<std::vector<float>>& inputs, const std::string& what,
                         std::vector<std::vector<float>>* ref_outputs = nullptr) {
  Agreement a;
  std::unique_ptr<Runtime> ref, xnn;
  RuntimeOptions options;
  options.backend = Backend::kReference;
  Status s = Runtime::Create(graph, options, &ref);
  EXPECT_TRUE(s.ok()) << what << ": " << s.message();
  options.backend = Backend::kXnnpack;
  if (s.ok()) s = Runtime::Create(graph, options, &xnn);
  EXPECT_TRUE(s.ok()) << what << ": " << s.message();
  if (!s.ok()) return a;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::copy(inputs[i].begin(), inputs[i].end(), ref->input(i));
    std::copy(inputs[i].begin(), inputs[i].end(), xnn->input(i));
  }
  s = ref->Run();
  EXPECT_TRUE(s.ok()) << what << ": " << s.message();
  s = xnn->Run();
  EXPECT_TRUE(s.ok()) << what << ": " << s.message();
  if (ref_outputs) ref_outputs->clear();
  for (size_t o = 0; o < ref->num_outputs(); ++o) {
    const int64_t n = NumElements(ref->output_shape(o));
    for (int64_t k = 0; k < n; ++k) {
      const float r = ref->output(o)[k], x = xnn->output(o)[k];
      if (!(std::fabs(r - x) <= a.max_abs_diff)) a.max_abs_diff = std::fabs(r - x);
      if (x != x) a.max_abs_diff = INFINITY;
      a.max_abs_ref = std::max(a.max_abs_ref, std::fabs(r));
    }
    if (ref_outputs) ref_outputs->emplace_back(ref->output(o), ref->output(o) + n);
  }
  return a;
}

}  // namespace fm::test
