// test_convert.cpp - the TensorFlow.js graph-model converter (tools/convert). Each test writes a
// small hand-made model.json + weight shard into a temporary directory, converts it and compares
// the converted graph's output (reference and XNNPACK backends) with a naive computation written
// here from TensorFlow's definitions. Then the error cases (every malformed input must give a
// clear Status, never a crash), and the committed detectors re-converted from the npm package.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert_util.h"
#include "model/model_format.h"
#include "runtime/runtime.h"
#include "tfjs_convert.h"

namespace fm {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ---- building tfjs fixtures ----

using convert_util::Base64;

json S(const std::string& s) {
  return {{"s", Base64(s)}};
}
json I(int64_t v) {
  return {{"i", std::to_string(v)}};
}
json B(bool v) {
  return {{"b", v}};
}
json F(float v) {
  return {{"f", v}};
}
json Ints(const std::vector<int64_t>& v) {
  json l = json::array();
  for (int64_t x : v) l.push_back(std::to_string(x));
  return {{"list", {{"i", l}}}};
}
json Strs(const std::vector<std::string>& v) {
  json l = json::array();
  for (const std::string& x : v) l.push_back(Base64(x));
  return {{"list", {{"s", l}}}};
}

class Fixture {
 public:
  explicit Fixture(Shape input_shape) : input_shape_(std::move(input_shape)) {
    json dims = json::array();
    for (size_t k = 0; k < input_shape_.size(); ++k)
      dims.push_back({{"size", k == 0 ? "-1" : std::to_string(input_shape_[k])}});
    nodes_.push_back(
        {{"name", "input"},
         {"op", "Placeholder"},
         {"attr", {{"dtype", {{"type", "DT_FLOAT"}}}, {"shape", {{"shape", {{"dim", dims}}}}}}}});
  }

  // Float constants: stored as float32, float16 or uint8-quantised; returns what tfjs decodes.
  std::vector<float> ConstF32(const std::string& name, const Shape& shape, std::vector<float> v) {
    AddWeight(name, shape, "float32", json());
    for (float f : v) Append(&f, 4);
    return v;
  }
  std::vector<float> ConstF16(const std::string& name, const Shape& shape, std::vector<float> v) {
    AddWeight(name, shape, "float32", {{"dtype", "float16"}, {"original_dtype", "float32"}});
    for (float& f : v) {
      const uint16_t h = FloatToHalf(f);
      Append(&h, 2);
      f = HalfToFloat(h);
    }
    return v;
  }
  std::vector<float> ConstU8(const std::string& name, const Shape& shape, std::vector<float> v) {
    const float lo = *std::min_element(v.begin(), v.end());
    const float hi = *std::max_element(v.begin(), v.end());
    const double scale = (hi - lo) / 255.0;
    AddWeight(name, shape, "float32",
              {{"dtype", "uint8"}, {"scale", scale}, {"min", lo}, {"original_dtype", "float32"}});
    for (float& f : v) {
      const uint8_t q = uint8_t(std::lround((f - lo) / scale));
      Append(&q, 1);
      f = float(q * scale + lo);
    }
    return v;
  }
  std::vector<float> ConstU16(const std::string& name, const Shape& shape,
                              const std::vector<uint16_t>& codes, double scale, double lo) {
    AddWeight(name, shape, "float32",
              {{"dtype", "uint16"}, {"scale", scale}, {"min", lo}, {"original_dtype", "float32"}});
    std::vector<float> v;
    for (uint16_t q : codes) {
      Append(&q, 2);
      v.push_back(float(q * scale + lo));
    }
    return v;
  }
  void ConstI32(const std::string& name, const Shape& shape, const std::vector<int32_t>& v) {
    AddWeight(name, shape, "int32", json());
    for (int32_t i : v) Append(&i, 4);
  }
  void Op(const std::string& name, const std::string& op, const std::vector<std::string>& inputs,
          json attr = json::object()) {
    nodes_.push_back({{"name", name}, {"op", op}, {"input", inputs}, {"attr", attr}});
  }

  json Model(const std::vector<std::string>& outputs) const {
    json dims = json::array();
    for (size_t k = 0; k < input_shape_.size(); ++k)
      dims.push_back({{"size", k == 0 ? "-1" : std::to_string(input_shape_[k])}});
    json outs = json::object();
    for (const std::string& o : outputs)
      outs[o + ":0"] = {{"name", o + ":0"}, {"dtype", "DT_FLOAT"}};
    return {{"format", "graph-model"},
            {"generatedBy", "test"},
            {"signature",
             {{"inputs", {{"input", {{"name", "input:0"}, {"tensorShape", {{"dim", dims}}}}}}},
              {"outputs", outs}}},
            {"modelTopology", {{"node", nodes_}, {"versions", json::object()}}},
            {"weightsManifest", {{{"paths", {"shard.bin"}}, {"weights", weights_}}}}};
  }

  // Writes model.json and shard.bin into a fresh directory; returns the model.json path.
  std::string WriteJson(const std::string& test, const json& model) const {
    const fs::path dir = fs::path(::testing::TempDir()) / ("fm_convert_" + test);
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "model.json") << model.dump();
    std::ofstream(dir / "shard.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(shard_.data()), std::streamsize(shard_.size()));
    return (dir / "model.json").string();
  }
  std::string Write(const std::string& test, const std::vector<std::string>& outputs) const {
    return WriteJson(test, Model(outputs));
  }
  const std::vector<uint8_t>& shard() const { return shard_; }

 private:
  void AddWeight(const std::string& name, const Shape& shape, const std::string& dtype,
                 const json& quant) {
    json w = {{"name", name}, {"shape", shape}, {"dtype", dtype}};
    if (!quant.is_null()) w["quantization"] = quant;
    weights_.push_back(w);
    json dims = json::array();
    for (int64_t d : shape) dims.push_back({{"size", std::to_string(d)}});
    nodes_.push_back({{"name", name},
                      {"op", "Const"},
                      {"attr",
                       {{"value",
                         {{"tensor",
                           {{"dtype", dtype == "int32" ? "DT_INT32" : "DT_FLOAT"},
                            {"tensorShape", {{"dim", dims}}}}}}},
                        {"dtype", {{"type", dtype == "int32" ? "DT_INT32" : "DT_FLOAT"}}}}}});
  }
  void Append(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    shard_.insert(shard_.end(), b, b + n);
  }
  Shape input_shape_;
  json nodes_ = json::array();
  json weights_ = json::array();
  std::vector<uint8_t> shard_;
};

// ---- naive TensorFlow semantics ----

std::vector<float> Pattern(size_t n, float phase = 0.f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = std::sin(0.37f * float(i) + phase) * (1.f + float(i % 5) * 0.1f);
  return v;
}

// TensorFlow SAME: total padding, the odd pixel after.
void SamePad(int64_t in, int64_t k, int64_t s, int64_t d, int64_t* before, int64_t* after) {
  const int64_t out = (in + s - 1) / s, eff = (k - 1) * d + 1;
  const int64_t total = std::max<int64_t>((out - 1) * s + eff - in, 0);
  *before = total / 2;
  *after = total - *before;
}

struct ConvSpec {
  int64_t kh, kw, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  bool depthwise = false;
};

// NHWC input, HWIO (conv) or HWCM (depthwise) filter.
std::vector<float> NaiveConv(const std::vector<float>& x, const Shape& xs,
                             const std::vector<float>& w, int64_t O, const ConvSpec& c, Shape* ys) {
  const int64_t H = xs[1], W = xs[2], C = xs[3];
  const int64_t oh = (H + c.pt + c.pb - ((c.kh - 1) * c.dh + 1)) / c.sh + 1;
  const int64_t ow = (W + c.pl + c.pr - ((c.kw - 1) * c.dw + 1)) / c.sw + 1;
  const int64_t OC = c.depthwise ? C * O : O;
  *ys = {1, oh, ow, OC};
  std::vector<float> y(size_t(oh * ow * OC), 0.f);
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox)
      for (int64_t oc = 0; oc < OC; ++oc) {
        double sum = 0;
        for (int64_t ky = 0; ky < c.kh; ++ky)
          for (int64_t kx = 0; kx < c.kw; ++kx) {
            const int64_t iy = oy * c.sh - c.pt + ky * c.dh, ix = ox * c.sw - c.pl + kx * c.dw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            if (c.depthwise) {
              const int64_t ch = oc / O, m = oc % O;
              sum += double(x[size_t((iy * W + ix) * C + ch)]) *
                     w[size_t(((ky * c.kw + kx) * C + ch) * O + m)];
            } else {
              for (int64_t i = 0; i < C; ++i)
                sum += double(x[size_t((iy * W + ix) * C + i)]) *
                       w[size_t(((ky * c.kw + kx) * C + i) * O + oc)];
            }
          }
        y[size_t((oy * ow + ox) * OC + oc)] = float(sum);
      }
  return y;
}

std::vector<float> NaivePool(const std::vector<float>& x, const Shape& xs, int64_t k, int64_t s,
                             bool same, bool max, Shape* ys) {
  const int64_t H = xs[1], W = xs[2], C = xs[3];
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  if (same) SamePad(H, k, s, 1, &pt, &pb), SamePad(W, k, s, 1, &pl, &pr);
  const int64_t oh = (H + pt + pb - k) / s + 1, ow = (W + pl + pr - k) / s + 1;
  *ys = {1, oh, ow, C};
  std::vector<float> y;
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox)
      for (int64_t c = 0; c < C; ++c) {
        double acc = max ? -1e30 : 0;
        int n = 0;
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx) {
            const int64_t iy = oy * s - pt + ky, ix = ox * s - pl + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const double v = x[size_t((iy * W + ix) * C + c)];
            acc = max ? std::max(acc, v) : acc + v;
            ++n;
          }
        y.push_back(float(max ? acc : acc / n));
      }
  return y;
}

// ---- running converted graphs ----

std::vector<std::vector<float>> Run(const Graph& g, const std::vector<float>& input,
                                    Backend backend) {
  auto shared = std::make_shared<Graph>(g);
  RuntimeOptions o;
  o.backend = backend;
  std::unique_ptr<Runtime> rt;
  Status s = Runtime::Create(shared, o, &rt);
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return {};
  EXPECT_EQ(size_t(NumElements(rt->input_shape(0))), input.size());
  std::copy(input.begin(), input.end(), rt->input(0));
  s = rt->Run();
  EXPECT_TRUE(s.ok()) << s.message();
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < rt->num_outputs(); ++i)
    out.emplace_back(rt->output(i), rt->output(i) + NumElements(rt->output_shape(i)));
  return out;
}

// Converts, then checks both backends against `expected` (relative tolerance).
Graph ConvertAndCheck(const std::string& path, const std::vector<float>& input,
                      const std::vector<std::vector<float>>& expected,
                      const TfjsConvertOptions& options = {}) {
  Graph g;
  Status s = ConvertTfjsGraph(path, options, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return g;
  for (Backend b : {Backend::kReference, Backend::kXnnpack}) {
    const auto out = Run(g, input, b);
    EXPECT_EQ(out.size(), expected.size());
    for (size_t o = 0; o < std::min(out.size(), expected.size()); ++o) {
      EXPECT_EQ(out[o].size(), expected[o].size()) << "output " << o;
      if (out[o].size() != expected[o].size()) continue;
      for (size_t i = 0; i < out[o].size(); ++i) {
        const float tol = 1e-4f * std::max(1.f, std::fabs(expected[o][i]));
        EXPECT_NEAR(out[o][i], expected[o][i], tol)
            << "output " << o << " element " << i
            << (b == Backend::kXnnpack ? " (xnnpack)" : " (reference)");
        if (!(std::fabs(out[o][i] - expected[o][i]) <= tol)) break;  // one report per output
      }
    }
  }
  return g;
}

int CountOps(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op == op;
  return n;
}

const Tensor* FindTensor(const Graph& g, const std::string& name) {
  const int i = g.FindTensor(name);
  return i < 0 ? nullptr : &g.tensors[size_t(i)];
}

// ---- op coverage ----

TEST(Convert, FusedConvSameStride2BiasRelu6) {
  // 7x9 input: SAME with stride 2 pads asymmetrically (the odd pixel bottom/right).
  const Shape xs = {1, 7, 9, 3};
  Fixture f(xs);
  std::vector<float> w = Pattern(108, 0.5f);
  for (float& v : w) v *= 3.f;  // make Relu6 clip
  f.ConstF32("w", {3, 3, 3, 4}, w);
  const std::vector<float> b = f.ConstF32("b", {4}, {0.5f, -0.25f, 2.f, 0.f});
  f.Op("conv", "_FusedConv2D", {"input", "w", "b"},
       {{"padding", S("SAME")},
        {"strides", Ints({1, 2, 2, 1})},
        {"data_format", S("NHWC")},
        {"dilations", Ints({1, 1, 1, 1})},
        {"fused_ops", Strs({"BiasAdd", "Relu6"})},
        {"num_args", I(1)},
        {"explicit_paddings", Ints({})}});
  f.Op("Identity", "Identity", {"conv"});
  const std::vector<float> x = Pattern(size_t(NumElements(xs)));
  ConvSpec c{3, 3, 2, 2};
  SamePad(7, 3, 2, 1, &c.pt, &c.pb);
  SamePad(9, 3, 2, 1, &c.pl, &c.pr);
  Shape ys;
  std::vector<float> y = NaiveConv(x, xs, w, 4, c, &ys);
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::min(std::max(y[i] + b[i % 4], 0.f), 6.f);
  const Graph g = ConvertAndCheck(f.Write("conv_same", {"Identity"}), x, {y});
  EXPECT_EQ(ys, (Shape{1, 4, 5, 4}));
  EXPECT_EQ(g.nodes.size(), 1u);  // bias and Relu6 fused into the convolution
  EXPECT_EQ(g.tensors[size_t(g.outputs[0])].name, "Identity");
}

TEST(Convert, Fp16DepthwiseWithPadBiasAddRelu) {
  // Pad + VALID depthwise (multiplier 2) + BiasAdd + Relu: fp16 weights, pad folded.
  const Shape xs = {1, 6, 6, 3};
  Fixture f(xs);
  f.ConstI32("pads", {4, 2}, {0, 0, 1, 1, 1, 1, 0, 0});
  const std::vector<float> w = f.ConstF16("dw", {3, 3, 3, 2}, Pattern(54, 1.f));
  const std::vector<float> b = f.ConstF16("bias", {6}, {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f});
  f.Op("pad", "Pad", {"input", "pads"});
  f.Op("dwconv", "DepthwiseConv2dNative", {"pad", "dw"},
       {{"padding", S("VALID")},
        {"strides", Ints({1, 2, 2, 1})},
        {"dilations", Ints({1, 1, 1, 1})}});
  f.Op("biasadd", "BiasAdd", {"dwconv", "bias"}, {{"data_format", S("NHWC")}});
  f.Op("relu", "Relu", {"biasadd"});
  const std::vector<float> x = Pattern(size_t(NumElements(xs)), 0.3f);
  ConvSpec c{3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true};
  Shape ys;
  std::vector<float> y = NaiveConv(x, xs, w, 2, c, &ys);
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(y[i] + b[i % 6], 0.f);
  const Graph g = ConvertAndCheck(f.Write("dw_fp16", {"relu"}), x, {y});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "depthwise_conv2d");
  EXPECT_EQ(g.nodes[0].Ints("padding", {}), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_TRUE(g.tensors[size_t(g.nodes[0].inputs[1])].store_fp16);
  EXPECT_TRUE(g.tensors[size_t(g.nodes[0].inputs[2])].store_fp16);

  // --fp32 keeps every constant float32.
  TfjsConvertOptions o;
  o.force_fp32 = true;
  Graph g32;
  ASSERT_TRUE(ConvertTfjsGraph(f.Write("dw_fp32", {"relu"}), o, &g32).ok());
  for (const Tensor& t : g32.tensors) EXPECT_FALSE(t.store_fp16 && t.kind == TensorKind::kConstant);
}

TEST(Convert, Uint8ConvWithBatchNormFolded) {
  const Shape xs = {1, 5, 5, 4};
  Fixture f(xs);
  const std::vector<float> w = f.ConstU8("w", {1, 1, 4, 3}, Pattern(12, 2.f));
  const std::vector<float> scale = f.ConstF32("bn/gamma", {3}, {1.5f, 0.5f, -1.f});
  const std::vector<float> offset = f.ConstF32("bn/beta", {3}, {0.1f, 0.2f, 0.3f});
  const std::vector<float> mean = f.ConstF32("bn/mean", {3}, {0.05f, -0.1f, 0.2f});
  const std::vector<float> var = f.ConstF32("bn/var", {3}, {0.9f, 1.1f, 0.25f});
  f.Op("conv", "Conv2D", {"input", "w"},
       {{"padding", S("VALID")}, {"strides", Ints({1, 1, 1, 1})}});
  f.Op("bn", "FusedBatchNormV3", {"conv", "bn/gamma", "bn/beta", "bn/mean", "bn/var"},
       {{"epsilon", F(0.001f)}, {"is_training", B(false)}});
  f.Op("relu6", "Relu6", {"bn"});
  const std::vector<float> x = Pattern(size_t(NumElements(xs)), 0.7f);
  Shape ys;
  std::vector<float> y = NaiveConv(x, xs, w, 3, ConvSpec{1, 1}, &ys);
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = i % 3;
    const float v = (y[i] - mean[c]) / std::sqrt(var[c] + 0.001f) * scale[c] + offset[c];
    y[i] = std::min(std::max(v, 0.f), 6.f);
  }
  const Graph g = ConvertAndCheck(f.Write("u8_bn", {"relu6"}), x, {y});
  EXPECT_EQ(g.nodes.size(), 1u);  // batch norm and Relu6 folded into the convolution
  EXPECT_EQ(CountOps(g, "conv2d"), 1);
}

TEST(Convert, Uint16WeightsExplicitPaddingDilationAndMulAdd) {
  const Shape xs = {1, 8, 8, 2};
  Fixture f(xs);
  std::vector<uint16_t> codes;
  for (uint16_t i = 0; i < 36; ++i) codes.push_back(uint16_t(i * 97 % 2000));
  const std::vector<float> w = f.ConstU16("w", {3, 3, 2, 2}, codes, 0.001, -1.0);
  f.ConstF32("m", {1, 1, 1, 2}, {2.f, -0.5f});
  f.ConstF32("a", {2}, {0.25f, 1.f});
  f.Op("conv", "_FusedConv2D", {"input", "w"},
       {{"padding", S("EXPLICIT")},
        {"explicit_paddings", Ints({0, 0, 2, 1, 0, 3, 0, 0})},
        {"strides", Ints({1, 1, 2, 1})},
        {"dilations", Ints({1, 2, 2, 1})},
        {"fused_ops", Strs({})},
        {"num_args", I(0)}});
  f.Op("mul", "Mul", {"conv", "m"});
  f.Op("add", "AddV2", {"mul", "a"});
  const std::vector<float> x = Pattern(size_t(NumElements(xs)), 0.9f);
  ConvSpec c{3, 3, 1, 2, 2, 2, 2, 0, 1, 3};
  Shape ys;
  std::vector<float> y = NaiveConv(x, xs, w, 2, c, &ys);
  for (size_t i = 0; i < y.size(); ++i) y[i] = y[i] * (i % 2 ? -0.5f : 2.f) + (i % 2 ? 1.f : 0.25f);
  const Graph g = ConvertAndCheck(f.Write("u16", {"add"}), x, {y});
  EXPECT_EQ(g.nodes.size(), 1u);  // Mul and AddV2 folded into weights and bias
  // The float32 multiplier folded into them makes the 16-bit weights float32.
  EXPECT_FALSE(g.tensors[size_t(g.nodes[0].inputs[1])].store_fp16);
}

TEST(Convert, ShapeArithmeticReshapeConcatAndActivations) {
  // Shape -> StridedSlice -> Pack -> Reshape, as Keras emits for Reshape layers.
  const Shape xs = {1, 2, 3, 4};
  Fixture f(xs);
  f.ConstI32("begin", {1}, {0});
  f.ConstI32("end", {1}, {1});
  f.ConstI32("strides", {1}, {1});
  f.ConstI32("minus1", {}, {-1});
  f.ConstI32("four", {}, {4});
  f.ConstI32("axis", {}, {2});
  f.ConstI32("three", {}, {3});
  f.ConstF32("slope", {4}, {0.1f, 0.2f, -0.3f, 0.5f});
  f.Op("shape", "Shape", {"input"}, {{"out_type", {{"type", "DT_INT32"}}}});
  f.Op("batch", "StridedSlice", {"shape", "begin", "end", "strides"},
       {{"shrink_axis_mask", I(1)}, {"begin_mask", I(0)}, {"end_mask", I(0)}});
  f.Op("cast", "Cast", {"four"}, {{"DstT", {{"type", "DT_INT32"}}}});
  f.Op("newshape", "Pack", {"batch", "minus1", "cast"}, {{"axis", I(0)}, {"N", I(3)}});
  f.Op("reshape", "Reshape", {"input", "newshape"});  // [1, 6, 4]
  f.Op("sig", "Sigmoid", {"reshape"});
  f.Op("tanh", "Tanh", {"reshape"});
  f.Op("prelu", "Prelu", {"reshape", "slope"});
  f.Op("leaky", "LeakyRelu", {"reshape"}, {{"alpha", F(0.3f)}});
  f.Op("concat", "ConcatV2", {"sig", "tanh", "prelu", "leaky", "axis"}, {{"N", I(4)}});  // [1,6,16]
  f.Op("softmax", "Softmax", {"concat"});
  const std::vector<float> x = Pattern(24, 0.2f);
  std::vector<float> y;
  for (int64_t r = 0; r < 6; ++r) {
    std::vector<float> row;
    for (int k = 0; k < 4; ++k) row.push_back(1.f / (1.f + std::exp(-x[size_t(r * 4 + k)])));
    for (int k = 0; k < 4; ++k) row.push_back(std::tanh(x[size_t(r * 4 + k)]));
    const float sl[4] = {0.1f, 0.2f, -0.3f, 0.5f};
    for (int k = 0; k < 4; ++k) {
      const float v = x[size_t(r * 4 + k)];
      row.push_back(v > 0 ? v : v * sl[k]);
    }
    for (int k = 0; k < 4; ++k) {
      const float v = x[size_t(r * 4 + k)];
      row.push_back(v > 0 ? v : v * 0.3f);
    }
    double mx = -1e30, sum = 0;
    for (float v : row) mx = std::max(mx, double(v));
    for (float v : row) sum += std::exp(v - mx);
    for (float v : row) y.push_back(float(std::exp(v - mx) / sum));
  }
  const Graph g = ConvertAndCheck(f.Write("shape_arith", {"softmax"}), x, {y});
  EXPECT_EQ(g.ShapeOf(g.outputs[0]), (Shape{1, 6, 16}));
  EXPECT_EQ(CountOps(g, "reshape"), 1);
}

std::vector<float> NaiveResize(const std::vector<float>& x, const Shape& xs, int64_t oh, int64_t ow,
                               bool align) {
  const int64_t H = xs[1], W = xs[2], C = xs[3];
  auto src = [&](int64_t i, int64_t in, int64_t out) {
    if (align) return out > 1 ? double(i) * double(in - 1) / double(out - 1) : 0.0;
    return std::max(0.0, (double(i) + 0.5) * double(in) / double(out) - 0.5);
  };
  std::vector<float> y;
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox)
      for (int64_t c = 0; c < C; ++c) {
        const double sy = src(oy, H, oh), sx = src(ox, W, ow);
        const int64_t y0 = std::min<int64_t>(int64_t(sy), H - 1),
                      x0 = std::min<int64_t>(int64_t(sx), W - 1);
        const int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
        const double fy = sy - double(y0), fx = sx - double(x0);
        auto at = [&](int64_t yy, int64_t xx) { return double(x[size_t((yy * W + xx) * C + c)]); };
        y.push_back(float((at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) +
                          (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy));
      }
  return y;
}

TEST(Convert, PoolsResizeDepthToSpaceMeanMatMul) {
  const Shape xs = {1, 6, 6, 4};
  Fixture f(xs);
  f.ConstI32("size", {2}, {4, 4});
  f.ConstI32("size2", {2}, {3, 5});
  f.ConstI32("axes", {2}, {1, 2});
  const std::vector<float> wm = f.ConstF32("wm", {4, 3}, Pattern(12, 1.3f));
  const std::vector<float> bm = f.ConstF32("bm", {3}, {0.1f, 0.2f, 0.3f});
  f.Op("max", "MaxPool", {"input"},
       {{"ksize", Ints({1, 3, 3, 1})},
        {"strides", Ints({1, 2, 2, 1})},
        {"padding", S("SAME")},
        {"data_format", S("NHWC")}});
  f.Op("avg", "AvgPool", {"max"},
       {{"ksize", Ints({1, 2, 2, 1})}, {"strides", Ints({1, 1, 1, 1})}, {"padding", S("VALID")}});
  f.Op("resize", "ResizeBilinear", {"avg", "size"},
       {{"half_pixel_centers", B(true)}, {"align_corners", B(false)}});
  f.Op("d2s", "DepthToSpace", {"resize"}, {{"block_size", I(2)}, {"data_format", S("NHWC")}});
  f.Op("mean", "Mean", {"resize", "axes"}, {{"keep_dims", B(false)}});
  f.Op("matmul", "MatMul", {"mean", "wm"}, {{"transpose_a", B(false)}, {"transpose_b", B(false)}});
  f.Op("fc", "BiasAdd", {"matmul", "bm"});
  f.Op("fc_relu", "Relu", {"fc"});
  f.Op("resize_ac", "ResizeBilinear", {"avg", "size2"}, {{"align_corners", B(true)}});
  const std::vector<float> x = Pattern(size_t(NumElements(xs)), 0.4f);
  Shape s1, s2;
  const std::vector<float> mx = NaivePool(x, xs, 3, 2, true, true, &s1);
  const std::vector<float> av = NaivePool(mx, s1, 2, 1, false, false, &s2);
  const std::vector<float> rs = NaiveResize(av, s2, 4, 4, false);
  std::vector<float> d2s(64);
  for (int64_t yy = 0; yy < 8; ++yy)
    for (int64_t xx = 0; xx < 8; ++xx)
      d2s[size_t(yy * 8 + xx)] = rs[size_t(((yy / 2) * 4 + xx / 2) * 4 + (yy % 2) * 2 + xx % 2)];
  std::vector<float> fc(3);
  for (int o = 0; o < 3; ++o) {
    double sum = bm[size_t(o)];
    for (int c = 0; c < 4; ++c) {
      double m = 0;
      for (int p = 0; p < 16; ++p) m += rs[size_t(p * 4 + c)];
      sum += m / 16 * wm[size_t(c * 3 + o)];
    }
    fc[size_t(o)] = std::max(float(sum), 0.f);
  }
  const std::vector<float> ac = NaiveResize(av, s2, 3, 5, true);
  const Graph g =
      ConvertAndCheck(f.Write("pools", {"d2s", "fc_relu", "resize_ac"}), x, {d2s, fc, ac});
  EXPECT_EQ(CountOps(g, "fully_connected"), 1);
  EXPECT_EQ(CountOps(g, "clamp"), 0);  // bias and Relu fused into fully_connected
  EXPECT_EQ(g.ShapeOf(g.outputs[1]), (Shape{1, 3}));
}

TEST(Convert, KeepsOnlyWhatTheRequestedOutputsNeed) {
  const Shape xs = {1, 4, 4, 2};
  Fixture f(xs);
  f.ConstF32("k", {2}, {2.f, 3.f});
  f.Op("a", "Mul", {"input", "k"});
  f.Op("b", "Erf", {"input"});       // unsupported, but nothing requested needs it
  f.Op("c", "Sub", {"a", "input"});  // 1x and 2x the input
  const std::vector<float> x = Pattern(32);
  std::vector<float> y(32);
  for (size_t i = 0; i < 32; ++i) y[i] = x[i] * (i % 2 ? 3.f : 2.f) - x[i];
  TfjsConvertOptions o;
  o.outputs = {"c:0"};
  const std::string path = f.Write("keep", {"c", "b"});
  const Graph g = ConvertAndCheck(path, x, {y}, o);
  EXPECT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(FindTensor(g, "b"), nullptr);
  // The signature's outputs include 'b', which is not convertible.
  Graph g2;
  const Status s = ConvertTfjsGraph(path, {}, &g2);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unsupported op 'Erf' at node 'b'"), std::string::npos) << s.message();
}

// ---- malformed input ----

// A valid one-conv model; each error case breaks one thing.
Fixture SmallModel() {
  Fixture f({1, 4, 4, 3});
  f.ConstF16("w", {1, 1, 3, 2}, Pattern(6));
  f.Op("conv", "Conv2D", {"input", "w"},
       {{"padding", S("VALID")}, {"strides", Ints({1, 1, 1, 1})}});
  return f;
}

std::string ConvertError(const std::string& test, const json& model,
                         const std::function<void(const fs::path&)>& damage = nullptr) {
  const std::string path = SmallModel().WriteJson(test, model);
  if (damage) damage(fs::path(path).parent_path());
  Graph g;
  const Status s = ConvertTfjsGraph(path, {}, &g);
  EXPECT_FALSE(s.ok()) << test << ": converted a broken model";
  return s.message();
}

#define EXPECT_MESSAGE(msg, part) \
  EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg) << "\nexpected: " << (part)

TEST(ConvertErrors, ValidBaseModelConverts) {
  Graph g;
  const Status s = ConvertTfjsGraph(SmallModel().Write("base", {"conv"}), {}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST(ConvertErrors, UnsupportedOpNamesItsNode) {
  Fixture f = SmallModel();
  f.Op("weird", "Cumsum", {"conv"});
  Graph g;
  const Status s = ConvertTfjsGraph(f.Write("unsupported", {"weird"}), {}, &g);
  ASSERT_FALSE(s.ok());
  EXPECT_MESSAGE(s.message(), "unsupported op 'Cumsum' at node 'weird'");
}

TEST(ConvertErrors, MissingTruncatedAndOversizedShards) {
  const json model = SmallModel().Model({"conv"});
  EXPECT_MESSAGE(
      ConvertError("noshard", model, [](const fs::path& d) { fs::remove(d / "shard.bin"); }),
      "cannot open weight shard");
  EXPECT_MESSAGE(ConvertError("truncated", model,
                              [](const fs::path& d) { fs::resize_file(d / "shard.bin", 7); }),
                 "truncated");
  EXPECT_MESSAGE(ConvertError("longer", model,
                              [](const fs::path& d) { fs::resize_file(d / "shard.bin", 100); }),
                 "the shards hold 100");
  json traversal = model;
  traversal["weightsManifest"][0]["paths"][0] = "../shard.bin";
  EXPECT_MESSAGE(ConvertError("traversal", traversal), "not a plain relative path");
}

TEST(ConvertErrors, MalformedJson) {
  const std::string path = SmallModel().Write("badjson", {"conv"});
  std::ofstream(path) << "{\"format\": \"graph-model\", \"modelTopology\": {\"node\": [";
  Graph g;
  const Status s = ConvertTfjsGraph(path, {}, &g);
  ASSERT_FALSE(s.ok());
  EXPECT_MESSAGE(s.message(), "not valid JSON");
  EXPECT_MESSAGE(ConvertTfjsGraph("/nonexistent/model.json", {}, &g).message(), "cannot open");
}

TEST(ConvertErrors, WrongTypesAndMissingFields) {
  const json good = SmallModel().Model({"conv"});
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"root array", [](json& m) { m = json::array(); }, "expected a JSON object"},
      {"no topology", [](json& m) { m.erase("modelTopology"); }, "missing 'modelTopology'"},
      {"nodes not list", [](json& m) { m["modelTopology"]["node"] = 5; }, "must be a list"},
      {"name number", [](json& m) { m["modelTopology"]["node"][0]["name"] = 7; },
       "expected a string"},
      {"no op", [](json& m) { m["modelTopology"]["node"][2].erase("op"); }, "missing 'op'"},
      {"attr string", [](json& m) { m["modelTopology"]["node"][2]["attr"] = "x"; },
       "'attr' must be an object"},
      {"strides text",
       [](json& m) {
         m["modelTopology"]["node"][2]["attr"]["strides"] = Ints({});
         m["modelTopology"]["node"][2]["attr"]["strides"]["list"]["i"] = {"1", "x", "1", "1"};
       },
       "is not an integer"},
      {"padding not base64",
       [](json& m) {
         m["modelTopology"]["node"][2]["attr"]["padding"] = {{"s", "!!"}};
       },
       "bad base64"},
      {"padding odd",
       [](json& m) { m["modelTopology"]["node"][2]["attr"]["padding"] = S("REFLECT"); },
       "padding 'REFLECT'"},
      {"shape string", [](json& m) { m["weightsManifest"][0]["weights"][0]["shape"] = "1,1"; },
       "'shape' must be a list"},
      {"huge dim",
       [](json& m) {
         m["weightsManifest"][0]["weights"][0]["shape"] = {1, 1, 3, 1 << 30};
       },
       "out of range"},
      {"negative dim",
       [](json& m) {
         m["weightsManifest"][0]["weights"][0]["shape"] = {1, -1, 3, 2};
       },
       "out of range"},
      {"dtype", [](json& m) { m["weightsManifest"][0]["weights"][0]["dtype"] = "complex64"; },
       "unsupported dtype"},
      {"quant dtype",
       [](json& m) { m["weightsManifest"][0]["weights"][0]["quantization"]["dtype"] = "int4"; },
       "unsupported quantization"},
      {"quant no scale",
       [](json& m) {
         m["weightsManifest"][0]["weights"][0]["quantization"] = {{"dtype", "uint8"}, {"min", 0}};
       },
       "missing 'scale'"},
      {"shape mismatch",
       [](json& m) {
         m["weightsManifest"][0]["weights"][0]["shape"] = {1, 1, 2, 3};
       },
       "differs from the weights"},
      {"dangling input", [](json& m) { m["modelTopology"]["node"][2]["input"][0] = "nothing"; },
       "'nothing' is not produced"},
      {"unknown output",
       [](json& m) {
         m["signature"]["outputs"] = {{"x", {{"name", "ghost:0"}}}};
       },
       "'ghost' is not a node"},
      {"no outputs", [](json& m) { m.erase("signature"); }, "no signature outputs"},
      {"cycle", [](json& m) { m["modelTopology"]["node"][2]["input"][0] = "conv"; }, "cycle"},
      {"duplicate node", [](json& m) { m["modelTopology"]["node"][1]["name"] = "conv"; },
       "two nodes are named 'conv'"},
      {"channels",
       [](json& m) {
         m["modelTopology"]["node"][0]["attr"]["shape"]["shape"]["dim"][3]["size"] = "5";
         m["signature"]["inputs"]["input"]["tensorShape"]["dim"][3]["size"] = "5";
       },
       "expects 3 input channels"},
      {"layers model", [](json& m) { m["format"] = "layers-model"; }, "not 'graph-model'"},
      {"manifest object", [](json& m) { m["weightsManifest"] = json::object(); },
       "weightsManifest must be a list"},
  };
  for (const Case& c : cases) {
    json m = good;
    c.edit(m);
    EXPECT_MESSAGE(ConvertError(std::string("types_") + std::to_string(&c - cases.data()), m),
                   c.expect)
        << " (" << c.what << ")";
  }
}

// ---- determinism and the committed detectors ----

TEST(Convert, DeterministicBytes) {
  Fixture f = SmallModel();
  const std::string path = f.Write("determinism", {"conv"});
  std::vector<uint8_t> a, b;
  Graph g1, g2;
  ASSERT_TRUE(ConvertTfjsGraph(path, {}, &g1).ok());
  ASSERT_TRUE(ConvertTfjsGraph(path, {}, &g2).ok());
  ASSERT_TRUE(WriteModel(g1, &a).ok());
  ASSERT_TRUE(WriteModel(g2, &b).ok());
  EXPECT_EQ(a, b);
  Graph back;
  ASSERT_TRUE(ReadModel(a.data(), a.size(), &back).ok());
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// tools/convert-detectors made the committed files; converting the npm package's tfjs files again
// with the same options must give the same bytes.
TEST(ConvertNpm, DetectorsMatchCommittedModels) {
  const char* home = std::getenv("HOME");
  const std::string dir = std::string(home ? home : "") + "/.cache/facemask/npm/human-models-3.0.4";
  if (!fs::exists(dir + "/facemesh-detection-full.bin"))
    GTEST_SKIP() << dir << " does not hold the tfjs files (run tools/fetch-models)";
  for (const std::string which : {"short", "full"}) {
    const std::string committed = std::string(FM_SOURCE_DIR) + "/model/blazeface-" + which + ".fmm";
    Graph old;
    ASSERT_TRUE(ReadModelFile(committed, &old).ok()) << committed;
    TfjsConvertOptions o;
    o.outputs = {"Identity"};
    o.strip_prefix = "StatefulPartitionedCall/model/";
    o.metadata = old.metadata;
    Graph g;
    const Status s = ConvertTfjsGraph(dir + "/facemesh-detection-" + which + ".json", o, &g);
    ASSERT_TRUE(s.ok()) << s.message();
    std::vector<uint8_t> bytes;
    ASSERT_TRUE(WriteModel(g, &bytes).ok());
    EXPECT_TRUE(bytes == ReadBytes(committed))
        << which << ": re-converted bytes differ from " << committed;
  }
}

}  // namespace
}  // namespace fm
