// test_graph.cpp - whole graphs: a CNN built here, saved, reloaded and run on both backends;
// graph validation messages for malformed graphs.
#include "model/model_format.h"
#include "ops/op.h"
#include "test_models.h"
#include "test_util.h"

namespace fm::test {
namespace {

TEST(Graph, SmallCnnSavedReloadedAgreesOnBothBackends) {
  Graph built;
  Status s = BuildSmallCnn(7, &built);
  ASSERT_TRUE(s.ok()) << s.message();
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(built, &bytes).ok());
  auto loaded = std::make_shared<Graph>();
  s = ReadModel(bytes.data(), bytes.size(), loaded.get());
  ASSERT_TRUE(s.ok()) << s.message();
  Rng rng(99);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<std::vector<float>> outputs;
    const Agreement a = RunBoth(loaded, {rng.Data(1 * 33 * 29 * 3)}, "small cnn", &outputs);
    EXPECT_LE(a.max_abs_diff, 1e-4f) << "max |ref| " << a.max_abs_ref;
    ASSERT_EQ(outputs.size(), 2u);
    float sum = 0;
    for (float p : outputs[0]) sum += p;
    EXPECT_NEAR(sum, 1.f, 1e-5f);  // softmax output
    // The net is not degenerate: its outputs depend on the input.
    EXPECT_GT(a.max_abs_ref, 1e-3f);
  }
}

TEST(Graph, RunIsRepeatableAndBuffersStayPut) {
  auto g = std::make_shared<Graph>();
  ASSERT_TRUE(BuildSmallCnn(3, g.get()).ok());
  std::unique_ptr<Runtime> rt;
  ASSERT_TRUE(Runtime::Create(g, {}, &rt).ok());
  Rng rng(5);
  const std::vector<float> in = rng.Data(33 * 29 * 3);
  float* input = rt->input(0);
  const float* output = rt->output(0);
  std::copy(in.begin(), in.end(), input);
  ASSERT_TRUE(rt->Run().ok());
  const std::vector<float> first(output, output + 10);
  ASSERT_TRUE(rt->Run().ok());
  EXPECT_EQ(rt->input(0), input);
  EXPECT_EQ(rt->output(0), output);
  EXPECT_EQ(std::vector<float>(output, output + 10), first);
}

// tools/bench --profile: XNNPACK's per-operator times, and the same outputs as without profiling.
TEST(Graph, ProfiledRuntimeListsItsOperators) {
  auto g = std::make_shared<Graph>();
  ASSERT_TRUE(BuildSmallCnn(3, g.get()).ok());
  RuntimeOptions options;
  std::unique_ptr<Runtime> plain, profiled, reference;
  ASSERT_TRUE(Runtime::Create(g, options, &plain).ok());
  options.profile = true;
  ASSERT_TRUE(Runtime::Create(g, options, &profiled).ok());
  Rng rng(5);
  const std::vector<float> in = rng.Data(33 * 29 * 3);
  std::copy(in.begin(), in.end(), plain->input(0));
  std::copy(in.begin(), in.end(), profiled->input(0));
  ASSERT_TRUE(plain->Run().ok());
  ASSERT_TRUE(profiled->Run().ok());
  EXPECT_EQ(std::vector<float>(plain->output(0), plain->output(0) + 10),
            std::vector<float>(profiled->output(0), profiled->output(0) + 10));
  std::vector<OpTiming> ops;
  ASSERT_TRUE(profiled->Profile(&ops).ok());
  ASSERT_GE(ops.size(), 3u);  // at least the convolutions and the dense layer
  bool conv = false;
  for (const OpTiming& o : ops) {
    EXPECT_FALSE(o.name.empty());
    EXPECT_GE(o.ms, 0.0);
    conv = conv || o.name.find("Convolution") != std::string::npos;
  }
  EXPECT_TRUE(conv);
  EXPECT_FALSE(plain->Profile(&ops).ok());  // not created with profile
  options.backend = Backend::kReference;
  ASSERT_TRUE(Runtime::Create(g, options, &reference).ok());
  const Status s = reference->Profile(&ops);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("XNNPACK"), std::string::npos) << s.message();
}

TEST(Graph, ThreadedRuntimeMatches) {
  auto g = std::make_shared<Graph>();
  ASSERT_TRUE(BuildSmallCnn(11, g.get()).ok());
  std::unique_ptr<Runtime> one, two;
  RuntimeOptions options;
  ASSERT_TRUE(Runtime::Create(g, options, &one).ok());
  options.threads = 2;
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  // A wasm build without threads says so instead of pretending.
  Status no_threads = Runtime::Create(g, options, &two);
  EXPECT_EQ(no_threads.message(), "runtime: cannot create a pool of 2 threads");
  options.threads = 1;
#endif
  ASSERT_TRUE(Runtime::Create(g, options, &two).ok());
  Rng rng(6);
  const std::vector<float> in = rng.Data(33 * 29 * 3);
  std::copy(in.begin(), in.end(), one->input(0));
  std::copy(in.begin(), in.end(), two->input(0));
  ASSERT_TRUE(one->Run().ok());
  ASSERT_TRUE(two->Run().ok());
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(one->output(0)[i], two->output(0)[i], 1e-6f);
  options.threads = 0;
  std::unique_ptr<Runtime> none;
  Status s = Runtime::Create(g, options, &none);
  EXPECT_NE(s.message().find("threads must be 1..64"), std::string::npos) << s.message();
}

// A tiny graph to break in different ways: x [1,4,4,2] -> conv 3x3 (3 out) -> y.
Graph TinyGraph() {
  Graph g;
  g.tensors.push_back({"x", {1, 4, 4, 2}, TensorKind::kActivation, {}, false});
  g.tensors.push_back(
      {"w", {3, 3, 3, 2}, TensorKind::kConstant, std::vector<float>(54, 0.1f), false});
  g.tensors.push_back({"y", {1, 2, 2, 3}, TensorKind::kActivation, {}, false});
  Node n;
  n.op = "conv2d";
  n.name = "conv";
  n.inputs = {0, 1};
  n.output = 2;
  g.nodes.push_back(n);
  g.inputs = {0};
  g.outputs = {2};
  return g;
}

std::string ValidateError(Graph g) {
  Status s = g.Validate();
  return s.ok() ? "" : s.message();
}

TEST(Graph, ValidationMessages) {
  EXPECT_EQ(ValidateError(TinyGraph()), "");
  Graph g = TinyGraph();
  g.tensors[2].shape = {1, 3, 3, 3};
  EXPECT_EQ(ValidateError(g),
            "node 0 (conv2d 'conv'): output tensor 2 ('y') is declared [1, 3, 3, 3] but the op "
            "produces [1, 2, 2, 3]");
  g = TinyGraph();
  g.tensors[1].shape = {3, 3, 3, 5};
  g.tensors[1].data.resize(135);
  EXPECT_EQ(ValidateError(g),
            "node 0 (conv2d 'conv'): weights [3, 3, 3, 5] expect 5 input channels, input has 2");
  g = TinyGraph();
  g.nodes[0].attrs["stride"] = Attr::Ints({1});
  EXPECT_EQ(ValidateError(g),
            "node 0 (conv2d 'conv'): attribute 'stride' has 1 values (expected 2)");
  g = TinyGraph();
  g.nodes[0].attrs["strides"] = Attr::Ints({1, 1});
  EXPECT_EQ(ValidateError(g), "node 0 (conv2d 'conv'): unknown attribute 'strides'");
  g = TinyGraph();
  g.nodes[0].attrs["clamp"] = Attr::Floats({1.f, 0.f});
  EXPECT_EQ(ValidateError(g), "node 0 (conv2d 'conv'): clamp range [1, 0] is empty");
  g = TinyGraph();
  g.nodes[0].inputs = {1, 0};
  EXPECT_EQ(ValidateError(g), "node 0 (conv2d 'conv'): input 0 ('input') must not be a constant");
  g = TinyGraph();
  g.nodes[0].inputs = {0, 7};
  EXPECT_EQ(ValidateError(g), "node 0 (conv2d 'conv'): input 1 refers to tensor 7 of 3");
  g = TinyGraph();
  g.inputs = {};
  EXPECT_EQ(ValidateError(g), "graph has no inputs");
  g = TinyGraph();
  g.outputs = {0};
  EXPECT_EQ(ValidateError(g), "graph output 0 (tensor 0 ('x')) is a graph input");
  g = TinyGraph();
  g.tensors[1].data[5] = NAN;
  EXPECT_EQ(ValidateError(g), "tensor 1 ('w'): constant contains NaN or infinity");
  g = TinyGraph();
  g.tensors.push_back({"orphan", {1}, TensorKind::kActivation, {}, false});
  EXPECT_EQ(ValidateError(g),
            "tensor 3 ('orphan') is neither a graph input nor produced by any node");
  g = TinyGraph();
  g.nodes[0].attrs["padding"] = Attr::Ints({0, 0, 0, 0});
  g.nodes[0].attrs["same"] = Attr::Ints({1});
  EXPECT_EQ(ValidateError(g),
            "node 0 (conv2d 'conv'): 'padding' and 'same' are mutually exclusive");
}

TEST(Graph, BuilderReportsTheFirstError) {
  GraphBuilder b;
  const int32_t x = b.Input("x", {1, 4, 4, 3});
  const int32_t bad = b.Op("max_pool2d", "pool", {x}, {{"kernel", Attr::Ints({1, 1})}});
  EXPECT_EQ(bad, kNoTensor);
  b.Op("softmax", "later", {x});
  Graph g;
  Status s = b.Finish({bad}, &g);
  EXPECT_EQ(s.message(), "node 'pool' (max_pool2d): kernel 1x1 must cover 2 or more pixels");
  GraphBuilder huge;  // found by fuzzing: the kernel area overflowed int64 before the check
  huge.Op("avg_pool2d", "pool", {huge.Input("x", {1, 4, 4, 3})},
          {{"kernel", Attr::Ints({int64_t(1) << 62, 4})}});
  EXPECT_EQ(huge.status().message(),
            "node 'pool' (avg_pool2d): kernel 4611686018427387904x4 is outside 1..1024");
  GraphBuilder b2;
  b2.Op("max_pool2d", "pool", {b2.Input("x", {1, 4, 4, 3})},
        {{"kernel", Attr::Ints({2, 2})}, {"stride", Attr::Ints({3, 3})}});
  EXPECT_EQ(b2.status().message(),
            "node 'pool' (max_pool2d): stride 3x3 is larger than the kernel 2x2 (pixels would be "
            "skipped)");
}

}  // namespace
}  // namespace fm::test
