// test_quantize.cpp - `facemask quantize` (tools/convert/quantize.h): int8 weights, per output
// channel. Checked on the small op graph and on the shipped models: which tensors change, that
// each weight moves by at most half a step of its channel's scale, that the in-memory result is
// exactly what the written file decodes to, that both backends agree on the quantized model as on
// any float model, how far the outputs move from the float model's, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "model/model_format.h"
#include "quantize.h"
#include "rng.h"
#include "runtime/runtime.h"
#include "test_models.h"
#include "test_util.h"

namespace fm {
namespace {

using test::Rng;

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.f;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

QuantizeOptions Opts(int64_t min_elements, std::vector<std::string> keep_float = {}) {
  QuantizeOptions o;
  o.min_elements = min_elements;
  o.keep_float = std::move(keep_float);
  return o;
}

// Quantizes `float_graph` and checks everything that does not depend on the model; returns the
// quantized graph as read back from its bytes, and the byte sizes. `output_layers`: the weights
// the default options must leave float, as known from the model's architecture.
std::shared_ptr<Graph> QuantizeAndCheck(const Graph& float_graph,
                                        const std::set<std::string>& output_layers,
                                        size_t* float_bytes, size_t* int8_bytes) {
  auto q = std::make_shared<Graph>(float_graph);
  std::vector<QuantizedTensor> report;
  Status s = QuantizeWeights(q.get(), QuantizeOptions(), &report);
  EXPECT_TRUE(s.ok()) << s.message();
  // Exactly the weights of conv2d, depthwise_conv2d and fully_connected with >= 64 elements,
  // but for the output layers.
  std::vector<std::string> expect;
  for (const Node& n : float_graph.nodes) {
    if (n.op != "conv2d" && n.op != "depthwise_conv2d" && n.op != "fully_connected") continue;
    const Tensor& w = float_graph.tensors[size_t(n.inputs[1])];
    if (w.data.size() >= 64 && output_layers.count(w.name) == 0) expect.push_back(w.name);
  }
  std::vector<std::string> got;
  for (const QuantizedTensor& r : report) got.push_back(r.name);
  std::sort(expect.begin(), expect.end());
  expect.erase(std::unique(expect.begin(), expect.end()), expect.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expect);
  for (size_t i = 0; i < q->tensors.size(); ++i) {
    const Tensor &a = float_graph.tensors[i], &b = q->tensors[i];
    if (b.int8_axis < 0) {
      EXPECT_EQ(a.data, b.data) << a.name << " changed but is not int8";
      continue;
    }
    const size_t axis = size_t(b.int8_axis);
    int64_t inner = 1;
    for (size_t d = axis + 1; d < b.shape.size(); ++d) inner *= b.shape[d];
    for (size_t k = 0; k < b.data.size(); ++k) {
      const float s = b.int8_scales[size_t(int64_t(k) / inner % b.shape[axis])];
      EXPECT_LE(std::fabs(b.data[k] - a.data[k]), 0.5f * s * 1.0001f) << a.name << " " << k;
    }
  }
  std::vector<uint8_t> fb, qb;
  EXPECT_TRUE(WriteModel(float_graph, &fb).ok());
  s = WriteModel(*q, &qb);
  EXPECT_TRUE(s.ok()) << s.message();
  *float_bytes = fb.size();
  *int8_bytes = qb.size();
  auto back = std::make_shared<Graph>();
  s = ReadModel(qb.data(), qb.size(), back.get());
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return nullptr;
  for (size_t i = 0; i < q->tensors.size(); ++i)
    EXPECT_EQ(back->tensors[i].data, q->tensors[i].data) << q->tensors[i].name;
  // Quantizing twice is refused: the scales would be a second rounding.
  Graph again = *back;
  s = QuantizeWeights(&again, QuantizeOptions(), &report);
  EXPECT_NE(s.message().find("is already int8; quantize the float model instead"),
            std::string::npos)
      << s.message();
  return back;
}

TEST(Quantize, SmallCnnBackendsAgreeAndOutputsMoveLittle) {
  Graph g;
  ASSERT_TRUE(test::BuildSmallCnn(42, &g).ok());
  size_t fb = 0, qb = 0;
  auto q = QuantizeAndCheck(g, {"fc1/w"}, &fb, &qb);
  ASSERT_TRUE(q);
  EXPECT_LT(qb, fb);
  auto f = std::make_shared<const Graph>(g);
  Rng rng(5);
  const std::vector<float> x = rng.Data(NumElements(g.ShapeOf(g.inputs[0])), -1.f, 1.f);
  const auto ref = test::RunGraph(q, Backend::kReference, x),
             xnn = test::RunGraph(q, Backend::kXnnpack, x);
  const auto flt = test::RunGraph(f, Backend::kReference, x);
  ASSERT_EQ(ref.size(), 2u);
  for (size_t o = 0; o < ref.size(); ++o) {
    EXPECT_LE(MaxAbsDiff(ref[o], xnn[o]), 1e-4f) << "output " << o;
    EXPECT_LE(MaxAbsDiff(ref[o], flt[o]), 0.02f) << "output " << o;
    EXPECT_GT(MaxAbsDiff(ref[o], flt[o]), 0.f)
        << "output " << o << ": quantization changed nothing";
  }
}

TEST(Quantize, ShippedModelsShrinkAndKeepTheirOutputs) {
  struct Case {
    const char* name;
    std::set<std::string> output_layers;  // from the architecture (model/README.md)
    double max_ratio;                     // int8 file / float16 file
    float max_change;  // largest output change on random input, relative to the largest output
  };
  const std::vector<Case> cases = {
      {"classifier", {"l47_fully_connected/weights"}, 0.55, 0.02f},
      {"detector",
       {"classifier_face_4_NO_PRUNING/BiasAdd/weights", "depthwise_conv2d_40/depthwise/weights",
        "regressor_face_4_NO_PRUNING/BiasAdd/weights", "depthwise_conv2d_41/depthwise/weights"},
       0.7,
       0.08f},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = std::string(FM_DEFAULT_MODEL_DIR) + "/";
    auto g = std::make_shared<Graph>();
    Status s = ReadModelFile(dir + c.name + ".fmm", g.get());
    ASSERT_TRUE(s.ok()) << s.message();
    size_t fb = 0, qb = 0;
    auto q = QuantizeAndCheck(*g, c.output_layers, &fb, &qb);
    ASSERT_TRUE(q);
    // The shipped int8 file is what `facemask quantize` makes of the shipped float file today.
    std::vector<uint8_t> made, shipped;
    ASSERT_TRUE(WriteModel(*q, &made).ok());
    std::FILE* f = std::fopen((dir + c.name + "-int8.fmm").c_str(), "rb");
    ASSERT_NE(f, nullptr) << dir << c.name << "-int8.fmm: run facemask quantize (model/README.md)";
    for (int ch; (ch = std::fgetc(f)) != EOF;) shipped.push_back(uint8_t(ch));
    std::fclose(f);
    EXPECT_TRUE(made == shipped) << c.name << "-int8.fmm is stale: " << shipped.size()
                                 << " bytes, quantize makes " << made.size();
    std::printf("%s: %zu -> %zu bytes (%.1f%%)\n", c.name, fb, qb, 100.0 * double(qb) / double(fb));
    EXPECT_LE(double(qb), c.max_ratio * double(fb));
    Rng rng(9);
    const std::vector<float> x = rng.Data(NumElements(g->ShapeOf(g->inputs[0])), -1.f, 1.f);
    const auto ref = test::RunGraph(q, Backend::kReference, x),
               xnn = test::RunGraph(q, Backend::kXnnpack, x);
    const auto flt = test::RunGraph(g, Backend::kXnnpack, x);
    for (size_t o = 0; o < ref.size(); ++o) {
      float scale = 0.f;
      for (float v : ref[o]) scale = std::max(scale, std::fabs(v));
      EXPECT_LE(MaxAbsDiff(ref[o], xnn[o]), 1e-4f * std::max(1.f, scale)) << "output " << o;
      const float d = MaxAbsDiff(xnn[o], flt[o]);
      std::printf("  output %zu: largest change %.4g (largest value %.4g)\n", o, double(d),
                  double(scale));
      EXPECT_LE(d, c.max_change * scale) << "output " << o;
    }
  }
}

TEST(Quantize, RefusesWhatItCannotDo) {
  Graph g;
  ASSERT_TRUE(test::BuildSmallCnn(42, &g).ok());
  std::vector<QuantizedTensor> report;
  Status s = QuantizeWeights(&g, Opts(0), &report);
  EXPECT_NE(s.message().find("min_elements 0 must be >= 1"), std::string::npos) << s.message();
  Graph unvalidated;
  unvalidated.tensors = g.tensors;
  s = QuantizeWeights(&unvalidated, QuantizeOptions(), &report);
  EXPECT_NE(s.message().find("has not been validated"), std::string::npos) << s.message();
  // A tensor under min_elements stays float: conv1/w has 8 x 3 x 3 x 3 = 216 elements.
  ASSERT_TRUE(QuantizeWeights(&g, Opts(217), &report).ok());
  for (const QuantizedTensor& r : report) EXPECT_GE(r.elements, 217) << r.name;
  EXPECT_EQ(g.tensors[size_t(g.FindTensor("conv1/w"))].int8_axis, -1);
  // Named tensors stay float; a name that is not a quantizable weight is refused.
  Graph k;
  ASSERT_TRUE(test::BuildSmallCnn(42, &k).ok());
  ASSERT_TRUE(QuantizeWeights(&k, Opts(1, {"conv1/w"}), &report).ok());
  EXPECT_EQ(k.tensors[size_t(k.FindTensor("conv1/w"))].int8_axis, -1);
  EXPECT_FALSE(report.empty());
  for (const QuantizedTensor& r : report) EXPECT_NE(r.name, "conv1/w");
  Graph u;
  ASSERT_TRUE(test::BuildSmallCnn(42, &u).ok());
  for (const char* bad : {"no/such/tensor", "conv1/b"}) {
    s = QuantizeWeights(&u, Opts(1, {bad}), &report);
    EXPECT_NE(s.message().find(std::string("'") + bad + "' (to keep in float) is not the weights"),
              std::string::npos)
        << s.message();
  }
}

}  // namespace
}  // namespace fm
