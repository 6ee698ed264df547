// test_ops.cpp - every op, XNNPACK against the plain C++ reference, over randomised shapes and
// parameters (odd sizes, stride 2 with SAME padding, channel counts that are not multiples of 4,
// broadcasting, many-input concatenation), in the spirit of ggml's test-backend-ops.
#include <set>

#include "model/graph_builder.h"
#include "ops/op.h"
#include "test_util.h"

namespace fm::test {
namespace {

std::set<std::string>& TestedOps() {
  static std::set<std::string> ops;
  return ops;
}

constexpr int kTrials = 40;

// Finishes a one-op graph, feeds random inputs and compares the backends.
void Check(GraphBuilder& b, int32_t out, const std::string& op, const std::string& desc, Rng& rng,
           float tolerance = 1e-4f) {
  ASSERT_TRUE(b.status().ok()) << desc << ": " << b.status().message();
  auto graph = std::make_shared<Graph>();
  Status s = b.Finish({out}, graph.get());
  ASSERT_TRUE(s.ok()) << desc << ": " << s.message();
  std::vector<std::vector<float>> inputs;
  for (int32_t t : graph->inputs) inputs.push_back(rng.Data(NumElements(graph->ShapeOf(t))));
  const Agreement a = RunBoth(graph, inputs, desc);
  EXPECT_LE(a.max_abs_diff, tolerance * (1.f + a.max_abs_ref)) << desc;
  TestedOps().insert(op);
}

std::string Str(const Shape& s) {
  return ShapeToString(s);
}

// Random padding attributes for a window op: none, explicit or TF SAME.
void RandomPadding(Rng& rng, std::map<std::string, Attr>& attrs, int64_t max_pad, std::string* d) {
  const int mode = rng.Int(0, 2);
  if (mode == 1) {
    std::vector<int64_t> p;
    for (int i = 0; i < 4; ++i) p.push_back(rng.Int(0, int(max_pad)));
    attrs["padding"] = Attr::Ints(p);
    *d += " pad " + Str(p);
  } else if (mode == 2) {
    attrs["same"] = Attr::Ints({1});
    *d += " same";
  }
}

void RandomClamp(Rng& rng, std::map<std::string, Attr>& attrs, std::string* d) {
  if (rng.Chance(30)) {
    attrs["clamp"] = Attr::Floats({0.f, 6.f});
    *d += " relu6";
  } else if (rng.Chance(30)) {
    attrs["clamp"] = Attr::Floats({-0.5f, 0.75f});
    *d += " clamp";
  }
}

void ConvLike(const std::string& op, uint64_t seed) {
  Rng rng(seed);
  for (int trial = 0; trial < kTrials; ++trial) {
    const bool depthwise = op == "depthwise_conv2d";
    const int64_t n = rng.Int(1, 2), h = rng.Int(1, 19), w = rng.Int(1, 19), c = rng.Int(1, 13);
    const int64_t k_choices[] = {1, 2, 3, 5};
    const int64_t kh = k_choices[rng.Int(0, 3)],
                  kw = rng.Chance(80) ? kh : k_choices[rng.Int(0, 3)];
    const int64_t mult = depthwise ? rng.Int(1, 3) : 1;
    const int64_t oc = depthwise ? c * mult : rng.Int(1, 17);
    std::map<std::string, Attr> attrs;
    const int64_t sh = rng.Int(1, 3), sw = rng.Chance(80) ? sh : rng.Int(1, 3);
    const int64_t dh = rng.Chance(75) ? 1 : 2, dw = dh;
    attrs["stride"] = Attr::Ints({sh, sw});
    if (dh > 1) attrs["dilation"] = Attr::Ints({dh, dw});
    std::string d = op + " x" + Str({n, h, w, c}) + " k" + std::to_string(kh) + "x" +
                    std::to_string(kw) + " s" + std::to_string(sh) + "x" + std::to_string(sw) +
                    " d" + std::to_string(dh) + " oc" + std::to_string(oc);
    // Every third trial: stride 2 with SAME padding, the case TF-converted models rely on.
    if (trial % 3 == 0) {
      attrs["stride"] = Attr::Ints({2, 2});
      attrs["same"] = Attr::Ints({1});
      d += " s2-same";
    } else {
      RandomPadding(rng, attrs, 2, &d);
    }
    RandomClamp(rng, attrs, &d);
    // Skip windows that do not fit (they are rejected, which the validation tests cover).
    Window win;
    win.kh = kh;
    win.kw = kw;
    Node probe;
    probe.attrs = attrs;
    if (!ResolveWindow(probe, h, w, &win).ok()) continue;
    GraphBuilder b;
    const int32_t x = b.Input("x", {n, h, w, c});
    const Shape wshape = depthwise ? Shape{1, kh, kw, oc} : Shape{oc, kh, kw, c};
    const int32_t wt = b.Constant("w", wshape, rng.Data(NumElements(wshape)));
    std::vector<int32_t> in = {x, wt};
    if (rng.Chance(70)) in.push_back(b.Constant("b", {oc}, rng.Data(oc)));
    Check(b, b.Op(op, "op", in, attrs), op, d, rng);
  }
}

TEST(Ops, Conv2d) {
  ConvLike("conv2d", 1);
}
TEST(Ops, DepthwiseConv2d) {
  ConvLike("depthwise_conv2d", 2);
}

void Pool(const std::string& op, uint64_t seed) {
  Rng rng(seed);
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t n = rng.Int(1, 2), h = rng.Int(2, 17), w = rng.Int(2, 17), c = rng.Int(1, 11);
    const int64_t kh = rng.Int(1, 3), kw = rng.Int(2, 3);
    std::map<std::string, Attr> attrs;
    attrs["kernel"] = Attr::Ints({kh, kw});
    // XNNPACK's max pooling (and ours) refuses strides larger than the window.
    const int64_t s = rng.Int(1, op == "max_pool2d" ? int(std::min(kh, kw)) : 3);
    attrs["stride"] = Attr::Ints({s, s});
    std::string d = op + " x" + Str({n, h, w, c}) + " k" + std::to_string(kh) + "x" +
                    std::to_string(kw) + " s" + std::to_string(s);
    if (trial % 3 == 0) {
      attrs["same"] = Attr::Ints({1});
      d += " same";
    } else if (rng.Chance(50)) {
      attrs["padding"] = Attr::Ints({rng.Int(0, int(kh - 1)), rng.Int(0, int(kw - 1)),
                                     rng.Int(0, int(kh - 1)), rng.Int(0, int(kw - 1))});
      d += " pad " + Str(attrs["padding"].ints);
    }
    RandomClamp(rng, attrs, &d);
    Window win;
    win.kh = kh;
    win.kw = kw;
    Node probe;
    probe.attrs = attrs;
    if (!ResolveWindow(probe, h, w, &win).ok()) continue;
    GraphBuilder b;
    const int32_t x = b.Input("x", {n, h, w, c});
    Check(b, b.Op(op, "op", {x}, attrs), op, d, rng);
  }
}

TEST(Ops, MaxPool2d) {
  Pool("max_pool2d", 3);
}
TEST(Ops, AvgPool2d) {
  Pool("avg_pool2d", 4);
}

TEST(Ops, GlobalAvgPool) {
  Rng rng(5);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = {rng.Int(1, 2), rng.Int(1, 15), rng.Int(1, 15), rng.Int(1, 37)};
    GraphBuilder b;
    Check(b, b.Op("global_avg_pool", "op", {b.Input("x", s)}), "global_avg_pool",
          "global_avg_pool " + Str(s), rng);
  }
}

// A random shape and a second shape that broadcasts against it.
void BroadcastPair(Rng& rng, Shape* a, Shape* b) {
  const int rank = rng.Int(1, 4);
  a->clear();
  for (int i = 0; i < rank; ++i) a->push_back(rng.Int(1, 7));
  *b = *a;
  for (auto& d : *b)
    if (rng.Chance(35)) d = 1;
  while (!b->empty() && rng.Chance(25)) b->erase(b->begin());
  if (b->empty()) b->push_back(1);
  if (rng.Chance(50)) std::swap(*a, *b);
}

void Binary(const std::string& op, uint64_t seed) {
  Rng rng(seed);
  for (int trial = 0; trial < kTrials; ++trial) {
    Shape sa, sb;
    BroadcastPair(rng, &sa, &sb);
    std::map<std::string, Attr> attrs;
    std::string d = op + " " + Str(sa) + " " + Str(sb);
    RandomClamp(rng, attrs, &d);
    GraphBuilder b;
    const int32_t x = b.Input("a", sa);
    const int32_t y =
        rng.Chance(30) ? b.Constant("b", sb, rng.Data(NumElements(sb))) : b.Input("b", sb);
    if (rng.Chance(50))
      Check(b, b.Op(op, "op", {x, y}, attrs), op, d, rng);
    else
      Check(b, b.Op(op, "op", {y, x}, attrs), op, d + " (swapped)", rng);
  }
}

TEST(Ops, Add) {
  Binary("add", 6);
}
TEST(Ops, Multiply) {
  Binary("multiply", 7);
}

Shape RandomShape(Rng& rng, int max_rank = 4, int max_dim = 9) {
  Shape s;
  const int rank = rng.Int(1, max_rank);
  for (int i = 0; i < rank; ++i) s.push_back(rng.Int(1, max_dim));
  return s;
}

void Unary(const std::string& op, uint64_t seed, std::map<std::string, Attr> attrs) {
  Rng rng(seed);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = RandomShape(rng);
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    // Scale the input up so saturating functions see their tails.
    const int32_t big = b.Op("multiply", "scale", {x, b.Constant("k", {1}, {6.f})});
    Check(b, b.Op(op, "op", {big}, attrs), op, op + " " + Str(s), rng);
  }
}

TEST(Ops, Clamp) {
  Unary("clamp", 8, {{"clamp", Attr::Floats({0.f, 6.f})}});
  Unary("clamp", 9, {{"clamp", Attr::Floats({-1.5f, 0.25f})}});
}
TEST(Ops, LeakyRelu) {
  Unary("leaky_relu", 10, {{"alpha", Attr::Floats({0.1f})}});
}
TEST(Ops, Sigmoid) {
  Unary("sigmoid", 11, {});
}
TEST(Ops, Tanh) {
  Unary("tanh", 12, {});
}

TEST(Ops, Softmax) {
  Rng rng(13);
  for (int trial = 0; trial < kTrials; ++trial) {
    Shape s = RandomShape(rng, 3);
    s.push_back(rng.Int(1, 40));
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    const int32_t big = b.Op("multiply", "scale", {x, b.Constant("k", {1}, {8.f})});
    Check(b, b.Op("softmax", "op", {big}), "softmax", "softmax " + Str(s), rng);
  }
}

TEST(Ops, Prelu) {
  Rng rng(14);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = {1, rng.Int(1, 9), rng.Int(1, 9), rng.Int(1, 19)};
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    const int32_t slope = b.Constant("slope", {s[3]}, rng.Data(s[3], -0.5f, 0.5f));
    Check(b, b.Op("prelu", "op", {x, slope}), "prelu", "prelu " + Str(s), rng);
  }
}

TEST(Ops, FullyConnected) {
  Rng rng(15);
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t n = rng.Int(1, 3), k = rng.Int(1, 100), o = rng.Int(1, 41);
    std::map<std::string, Attr> attrs;
    std::string d = "fully_connected " + Str({n, k}) + " -> " + std::to_string(o);
    RandomClamp(rng, attrs, &d);
    GraphBuilder b;
    const int32_t x = b.Input("x", {n, k});
    std::vector<int32_t> in = {x, b.Constant("w", {o, k}, rng.Data(o * k))};
    if (rng.Chance(60)) in.push_back(b.Constant("b", {o}, rng.Data(o)));
    Check(b, b.Op("fully_connected", "op", in, attrs), "fully_connected", d, rng);
  }
}

TEST(Ops, Pad) {
  Rng rng(16);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = RandomShape(rng, 4, 7);
    std::vector<int64_t> pads(2 * s.size());
    for (auto& p : pads) p = rng.Chance(50) ? 0 : rng.Int(1, 3);
    const float value = rng.Chance(50) ? 0.f : rng.Uniform(-2.f, 2.f);
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    Check(b, b.Op("pad", "op", {x}, {{"pads", Attr::Ints(pads)}, {"value", Attr::Floats({value})}}),
          "pad", "pad " + Str(s) + " " + Str(pads), rng);
  }
}

TEST(Ops, ResizeBilinear) {
  Rng rng(17);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = {rng.Int(1, 2), rng.Int(1, 12), rng.Int(1, 12), rng.Int(1, 9)};
    const int64_t oh = rng.Chance(50) ? s[1] * 2 : rng.Int(1, 25);
    const int64_t ow = rng.Chance(50) ? s[2] * 2 : rng.Int(1, 25);
    const int64_t mode = trial % 3;
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    Check(b,
          b.Op("resize_bilinear", "op", {x},
               {{"size", Attr::Ints({oh, ow})}, {"mode", Attr::Ints({mode})}}),
          "resize_bilinear",
          "resize_bilinear " + Str(s) + " -> " + Str({oh, ow}) + " mode " + std::to_string(mode),
          rng);
  }
}

TEST(Ops, DepthToSpace) {
  Rng rng(18);
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t block = rng.Int(2, 3);
    const Shape s = {rng.Int(1, 2), rng.Int(1, 8), rng.Int(1, 8), block * block * rng.Int(1, 5)};
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    Check(b, b.Op("depth_to_space", "op", {x}, {{"block", Attr::Ints({block})}}), "depth_to_space",
          "depth_to_space " + Str(s) + " block " + std::to_string(block), rng);
  }
}

TEST(Ops, Reshape) {
  Rng rng(19);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape s = {rng.Int(1, 2), rng.Int(1, 8), rng.Int(1, 8), rng.Int(1, 8)};
    const Shape flat = {s[0], s[1] * s[2] * s[3]};
    GraphBuilder b;
    const int32_t x = b.Input("x", s);
    // Reshape alone is a copy; follow it with an op so XNNPACK must honour the new layout.
    const int32_t r = b.Op("reshape", "op", {x}, {{"shape", Attr::Ints(flat)}});
    const int32_t y =
        b.Op("fully_connected", "fc", {r, b.Constant("w", {3, flat[1]}, rng.Data(3 * flat[1]))});
    Check(b, y, "reshape", "reshape " + Str(s) + " -> " + Str(flat), rng);
  }
}

TEST(Ops, Concatenate) {
  Rng rng(20);
  for (int trial = 0; trial < kTrials; ++trial) {
    const Shape base = RandomShape(rng, 4, 6);
    const int64_t axis = rng.Int(0, int(base.size()) - 1);
    const int count = trial % 4 == 0 ? rng.Int(6, 9) : rng.Int(2, 5);
    GraphBuilder b;
    std::vector<int32_t> in;
    for (int i = 0; i < count; ++i) {
      Shape s = base;
      s[size_t(axis)] = rng.Int(1, 4);
      in.push_back(b.Input("x" + std::to_string(i), s));
    }
    const int64_t attr_axis = rng.Chance(30) ? axis - int64_t(base.size()) : axis;
    Check(b, b.Op("concatenate", "op", in, {{"axis", Attr::Ints({attr_axis})}}), "concatenate",
          "concatenate " + std::to_string(count) + " x " + Str(base) + " axis " +
              std::to_string(attr_axis),
          rng);
  }
}

// Must stay the last test of this file: every registered op has a randomised test above.
TEST(Ops, EveryRegisteredOpIsTested) {
  if (std::string(::testing::GTEST_FLAG(filter)) != "*") GTEST_SKIP() << "filtered run";
  for (const OpDef* op : AllOps())
    EXPECT_TRUE(TestedOps().count(op->name)) << op->name << " has no randomised test";
}

}  // namespace
}  // namespace fm::test
