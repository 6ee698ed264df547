// test_export.cpp - the exporters of tools/convert (export_tfjs, export_onnx). Round trip: each
// shipped model, and a small graph that uses every op and attribute form the exporters handle, is
// exported to a TensorFlow.js graph model, read back with our tfjs converter and run by the engine
// next to the original on the same random input: the outputs must agree within 1e-4. Refusals:
// graphs the exporters cannot express exactly give a message naming the node and write nothing.
// The ONNX files are checked against onnxruntime-web by tests/parity/export_parity.mjs (ctest
// ExportParity), which also runs the op graph written here (FM_EXPORT_OPS_MODEL).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "export_onnx.h"
#include "export_tfjs.h"
#include "model/graph_builder.h"
#include "model/model_format.h"
#include "rng.h"
#include "runtime/runtime.h"
#include "test_util.h"
#include "tfjs_convert.h"

namespace fm {
namespace {

namespace fs = std::filesystem;
constexpr float kInf = INFINITY;

fs::path TempDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("fm_export_" + name);
  fs::remove_all(dir);
  return dir;
}

// Exports `graph` to tfjs, converts it back and compares names, shapes and outputs on `backends`.
void RoundTrip(const Graph& graph, const std::string& what, std::vector<Backend> backends) {
  const fs::path dir = TempDir(what);
  Status s = ExportTfjsToDir(graph, dir.string());
  ASSERT_TRUE(s.ok()) << what << ": " << s.message();
  // The signature is a JSON object (unordered): the outputs' order is in userDefinedMetadata.
  std::ifstream f(dir / "model.json");
  const nlohmann::json model = nlohmann::json::parse(f);
  TfjsConvertOptions options;
  options.outputs = model.at("userDefinedMetadata").at("outputs").get<std::vector<std::string>>();
  auto back = std::make_shared<Graph>();
  s = ConvertTfjsGraph((dir / "model.json").string(), options, back.get());
  ASSERT_TRUE(s.ok()) << what << ": " << s.message();
  ASSERT_EQ(back->inputs.size(), 1u);
  EXPECT_EQ(back->ShapeOf(back->inputs[0]), graph.ShapeOf(graph.inputs[0])) << what;
  ASSERT_EQ(back->outputs.size(), graph.outputs.size()) << what;
  for (size_t o = 0; o < graph.outputs.size(); ++o) {
    EXPECT_EQ(back->tensors[size_t(back->outputs[o])].name,
              graph.tensors[size_t(graph.outputs[o])].name);
    EXPECT_EQ(back->ShapeOf(back->outputs[o]), graph.ShapeOf(graph.outputs[o])) << what;
  }
  auto original = std::make_shared<Graph>(graph);
  test::Rng rng(7);
  const std::vector<float> input = rng.Data(NumElements(graph.ShapeOf(graph.inputs[0])));
  for (Backend backend : backends) {
    const auto a = test::RunGraph(original, backend, input),
               b = test::RunGraph(back, backend, input);
    ASSERT_EQ(a.size(), b.size());
    float worst = 0, scale = 0;
    for (size_t o = 0; o < a.size(); ++o) {
      ASSERT_EQ(a[o].size(), b[o].size());
      for (size_t k = 0; k < a[o].size(); ++k) {
        const float d = std::fabs(a[o][k] - b[o][k]);
        if (!(d <= worst)) worst = std::isnan(d) ? kInf : d;
        scale = std::max(scale, std::fabs(a[o][k]));
      }
    }
    EXPECT_LE(worst, 1e-4f) << what << (backend == Backend::kReference ? " (reference)" : "");
    std::printf("[ export ] %s %s: tfjs round trip max abs diff %.3g (|outputs| <= %.3g)\n",
                what.c_str(), backend == Backend::kReference ? "reference" : "xnnpack",
                double(worst), double(scale));
  }
  fs::remove_all(dir);
}

TEST(Export, ShippedModelsRoundTripThroughTfjs) {
  for (const char* name : {"blazeface-short", "blazeface-full", "classifier"}) {
    Graph g;
    const std::string path = std::string(FM_SOURCE_DIR) + "/model/" + name + ".fmm";
    const Status s = ReadModelFile(path, &g);
    ASSERT_TRUE(s.ok()) << s.message();
    RoundTrip(g, name, {Backend::kXnnpack});
  }
}

// Every op of the registry, each attribute form the exporters map differently (explicit, SAME and
// VALID padding, every clamp shape, dilation, depth multiplier, bias or none, resize modes), 4-D
// outputs and activations going through reshapes, so both layouts meet in the ONNX export.
Graph OpsGraph() {
  test::Rng rng(3);
  GraphBuilder b;
  auto w = [&](const std::string& name, const Shape& s, float scale = 0.5f) {
    return b.Constant(name, s, rng.Data(NumElements(s), -scale, scale));
  };
  auto ints = [](std::vector<int64_t> v) { return Attr::Ints(std::move(v)); };
  auto floats = [](std::vector<float> v) { return Attr::Floats(std::move(v)); };
  const int32_t x = b.Input("image", {1, 12, 12, 3});
  const int32_t c1 = b.Op(
      "conv2d", "conv_explicit", {x, w("c1/w", {8, 3, 3, 3}), w("c1/b", {8})},
      {{"stride", ints({2, 2})}, {"padding", ints({1, 1, 1, 1})}, {"clamp", floats({-1.f, 1.f})}});
  const int32_t d1 =
      b.Op("depthwise_conv2d", "dw_dilated_mult2", {c1, w("d1/w", {1, 3, 3, 16})},
           {{"same", ints({1})}, {"dilation", ints({2, 2})}, {"clamp", floats({0, 6})}});
  const int32_t c2 = b.Op("conv2d", "conv_nobias", {d1, w("c2/w", {8, 1, 1, 16})},
                          {{"clamp", floats({0.1f, kInf})}});
  const int32_t ap =
      b.Op("avg_pool2d", "avg_same", {c2},
           {{"kernel", ints({3, 3})}, {"same", ints({1})}, {"clamp", floats({-kInf, 0.5f})}});
  const int32_t mp =
      b.Op("max_pool2d", "max_valid", {ap}, {{"kernel", ints({2, 2})}, {"stride", ints({2, 2})}});
  const int32_t mu = b.Op("multiply", "mul_const", {mp, w("scale", {8}, 2.f)});
  const int32_t ad =
      b.Op("add", "add_const_relu", {mu, w("shift", {1, 1, 1, 8})}, {{"clamp", floats({0, kInf})}});
  const int32_t lr = b.Op("leaky_relu", "leaky", {ad}, {{"alpha", floats({0.1f})}});
  const int32_t pd = b.Op("pad", "pad_value", {lr},
                          {{"pads", ints({0, 1, 0, 0, 0, 0, 1, 2})}, {"value", floats({0.5f})}});
  const int32_t rs1 =
      b.Op("resize_bilinear", "resize_align", {pd}, {{"size", ints({7, 5})}, {"mode", ints({1})}});
  const int32_t pr = b.Op("prelu", "prelu", {c1, w("slope", {8})});
  const int32_t th = b.Op("tanh", "tanh", {pr});
  const int32_t rs2 =
      b.Op("resize_bilinear", "resize_asym", {th}, {{"size", ints({9, 9})}, {"mode", ints({2})}});
  const int32_t rs0 = b.Op("resize_bilinear", "resize_half", {th}, {{"size", ints({11, 13})}});
  const int32_t d2s = b.Op("depth_to_space", "d2s", {d1}, {{"block", ints({2})}});
  const int32_t sg = b.Op("sigmoid", "sigmoid", {d2s});
  const int32_t ap2 = b.Op("avg_pool2d", "avg_explicit_as_same", {sg},
                           {{"kernel", ints({3, 3})}, {"padding", ints({1, 1, 1, 1})}});
  const int32_t cat = b.Op("concatenate", "concat_channels", {th, c2}, {{"axis", ints({-1})}});
  const int32_t gap = b.Op("global_avg_pool", "gap", {cat});
  const int32_t flat = b.Op("reshape", "flatten", {gap}, {{"shape", ints({1, 16})}});
  const int32_t fc1 =
      b.Op("fully_connected", "fc_relu6", {flat, w("fc1/w", {12, 16}), w("fc1/b", {12})},
           {{"clamp", floats({0, 6})}});
  const int32_t fc2 = b.Op("fully_connected", "fc_nobias_clip", {fc1, w("fc2/w", {5, 12})},
                           {{"clamp", floats({-2, 2})}});
  const int32_t sm = b.Op("softmax", "probs", {fc2});
  const int32_t r3 = b.Op("reshape", "to_rank3", {rs1}, {{"shape", ints({1, 35, 10})}});
  const int32_t r4 = b.Op("reshape", "back_to_rank4", {r3}, {{"shape", ints({1, 7, 5, 10})}});
  const int32_t mix = b.Op("add", "add_mixed_layouts", {r4, rs1});
  const int32_t cl = b.Op("clamp", "clamp_both", {mix}, {{"clamp", floats({-0.5f, 0.5f})}});
  const int32_t f0 = b.Op("reshape", "rows_a", {rs0}, {{"shape", ints({1, 143, 8})}});
  const int32_t f1 = b.Op("reshape", "rows_b", {ap2}, {{"shape", ints({1, 72, 8})}});
  const int32_t rows = b.Op("concatenate", "rows", {f0, f1}, {{"axis", ints({1})}});
  const int32_t sm4 = b.Op("softmax", "softmax_4d", {rs2});
  b.Metadata("kind", "test");
  Graph g;
  const Status s = b.Finish({sm, cl, rows, sm4}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  return g;
}

TEST(Export, OpsGraphRoundTripsAndExportsToOnnx) {
  const Graph g = OpsGraph();
  ASSERT_TRUE(g.validated());
  RoundTrip(g, "ops", {Backend::kReference, Backend::kXnnpack});
  std::string onnx;
  const Status s = ExportOnnx(g, &onnx);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_GT(onnx.size(), 8u);
  EXPECT_EQ(onnx.substr(0, 2), std::string("\x08\x08"));  // ModelProto.ir_version = 8
  // For tests/parity/export_parity.mjs (ctest ExportParity runs after this test).
  const Status w = WriteModelFile(g, FM_EXPORT_OPS_MODEL);
  EXPECT_TRUE(w.ok()) << w.message();
}

// A one-node graph: input [1, 9, 9, 4] -> op.
Graph OneNode(const std::string& op, std::map<std::string, Attr> attrs, bool with_weights = false) {
  GraphBuilder b;
  const int32_t x = b.Input("x", {1, 9, 9, 4});
  std::vector<int32_t> in = {x};
  if (with_weights) in.push_back(b.Constant("w", {4, 3, 3, 4}, std::vector<float>(144, 0.1f)));
  const int32_t y = b.Op(op, "refused_node", in, std::move(attrs));
  Graph g;
  const Status s = b.Finish({y}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  return g;
}

void ExpectRefused(const Graph& g, bool tfjs, bool onnx, const std::string& needle) {
  const fs::path dir = TempDir("refused");
  const fs::path file = dir.string() + ".onnx";
  fs::remove(file);
  const Status t = ExportTfjsToDir(g, dir.string());
  const Status o = ExportOnnxFile(g, file.string());
  EXPECT_EQ(t.ok(), !tfjs) << t.message();
  EXPECT_EQ(o.ok(), !onnx) << o.message();
  if (tfjs) {
    EXPECT_NE(t.message().find("refused_node"), std::string::npos) << t.message();
    EXPECT_NE(t.message().find(needle), std::string::npos) << t.message();
    EXPECT_FALSE(fs::exists(dir)) << "a refused tfjs export left " << dir;
  }
  if (onnx) {
    EXPECT_NE(o.message().find("refused_node"), std::string::npos) << o.message();
    EXPECT_NE(o.message().find(needle), std::string::npos) << o.message();
    EXPECT_FALSE(fs::exists(file)) << "a refused ONNX export left " << file;
    EXPECT_FALSE(fs::exists(file.string() + ".tmp"));
  }
  std::printf("[ export ] refused: %s | %s\n", t.message().c_str(), o.message().c_str());
  fs::remove_all(dir);
  fs::remove(file);
}

TEST(Export, RefusesWhatItCannotExpressAndWritesNothing) {
  // Dilated max pooling: neither TensorFlow.js nor our ONNX mapping.
  ExpectRefused(
      OneNode("max_pool2d", {{"kernel", Attr::Ints({2, 2})}, {"dilation", Attr::Ints({2, 2})}}),
      true, true, "dilated pooling");
  // An average pool padded on one side only, which is neither SAME nor VALID: ONNX is fine.
  ExpectRefused(OneNode("avg_pool2d",
                        {{"kernel", Attr::Ints({3, 3})}, {"padding", Attr::Ints({2, 0, 0, 0})}}),
                true, false, "neither TensorFlow's SAME nor VALID");
  // Stride and dilation both above 1 (TensorFlow.js refuses such convolutions).
  ExpectRefused(
      OneNode("conv2d", {{"stride", Attr::Ints({2, 2})}, {"dilation", Attr::Ints({2, 2})}}, true),
      true, false, "dilation and stride");
  // A graph that was never validated (e.g. an op the engine does not know).
  Graph raw;
  raw.tensors.push_back({"x", {1, 4}, TensorKind::kActivation, {}, false});
  raw.tensors.push_back({"y", {1, 4}, TensorKind::kActivation, {}, false});
  raw.inputs = {0};
  raw.outputs = {1};
  raw.nodes.push_back({"gelu", "refused_node", {0}, 1, {}, nullptr});
  EXPECT_FALSE(raw.Validate().ok());
  TfjsExport t;
  std::string o;
  EXPECT_NE(ExportTfjs(raw, &t).message().find("not validated"), std::string::npos);
  EXPECT_NE(ExportOnnx(raw, &o).message().find("not validated"), std::string::npos);
}

}  // namespace
}  // namespace fm
