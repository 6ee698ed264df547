// test_train.cpp - the trainer (tools/train): finite-difference gradient checks for every layer's
// backward and for the loss, a toy problem learned to ~100% in seconds (Adam and SGD), bit-exact
// reruns with the same seed, augmentation determinism, and the export: trainer eval-mode forward
// == engine (reference and XNNPACK) after a write/read round trip, within 1e-4, including a head
// trained on a frozen pretrained graph (approach (b)), whose features must equal the engine's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "augment.h"
#include "common.h"
#include "frozen.h"
#include "layers.h"
#include "loss.h"
#include "model/graph_builder.h"
#include "model/model_format.h"
#include "net.h"
#include "optimizer.h"
#include "runtime/runtime.h"
#include "trainer.h"

namespace fm::train {
namespace {

Tensor RandomTensor(int n, int h, int w, int c, Rng* rng, float lo = -1.f, float hi = 1.f) {
  Tensor t(n, h, w, c);
  for (float& v : t.v) v = rng->Uniform(lo, hi);
  return t;
}

// L = sum(y * r): dL/dy = r. Checks dx and every parameter gradient of `layer` against central
// differences on up to 24 coordinates each. A fresh copy of the layer runs each forward, so state
// such as dropout's mask stream is identical in every evaluation.
template <typename L>
void GradCheck(const L& proto, const Tensor& x, bool train, const char* what) {
  Rng rng(7);
  L layer = proto;
  Tensor y, dx;
  layer.Forward(x, &y, train);
  Tensor r = RandomTensor(y.n, y.h, y.w, y.c, &rng);
  layer.Backward(x, y, r, &dx);
  auto loss = [&](const L& variant, const Tensor& in) {
    L l = variant;
    Tensor out;
    l.Forward(in, &out, train);
    double s = 0;
    for (size_t i = 0; i < out.v.size(); ++i) s += double(out.v[i]) * r.v[i];
    return s;
  };
  const float eps = 1e-2f;
  auto check = [&](double analytic, double numeric, const std::string& where) {
    EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << what << " " << where;
  };
  for (int k = 0; k < 24; ++k) {
    const size_t i = rng.Next() % x.v.size();
    Tensor xp = x, xm = x;
    xp.v[i] += eps;
    xm.v[i] -= eps;
    check(dx.v[i], (loss(proto, xp) - loss(proto, xm)) / (2 * eps),
          "dx[" + std::to_string(i) + "]");
  }
  const std::vector<Param*> grads = layer.Params();
  for (size_t p = 0; p < grads.size(); ++p) {
    for (int k = 0; k < 24; ++k) {
      const size_t i = rng.Next() % grads[p]->value.size();
      L plus = proto, minus = proto;
      plus.Params()[p]->value[i] += eps;
      minus.Params()[p]->value[i] -= eps;
      check(grads[p]->grad[i], (loss(plus, x) - loss(minus, x)) / (2 * eps),
            grads[p]->name + "[" + std::to_string(i) + "]");
    }
  }
}

TEST(Train, GradConv2D) {
  Rng rng(1);
  const Tensor x = RandomTensor(2, 7, 6, 3, &rng);
  GradCheck(Conv2D(3, 4, 3, 1, true, &rng), x, true, "conv 3x3 s1");
  GradCheck(Conv2D(3, 5, 3, 2, false, &rng), x, true, "conv 3x3 s2");
  GradCheck(Conv2D(3, 4, 1, 1, true, &rng), x, true, "conv 1x1");
}

TEST(Train, GradDepthwise) {
  Rng rng(2);
  const Tensor x = RandomTensor(2, 7, 6, 4, &rng);
  GradCheck(DepthwiseConv2D(4, 3, 1, true, &rng), x, true, "dw s1");
  GradCheck(DepthwiseConv2D(4, 3, 2, false, &rng), x, true, "dw s2");
}

TEST(Train, GradBatchNorm) {
  Rng rng(3);
  const Tensor x = RandomTensor(3, 4, 3, 5, &rng, -2.f, 3.f);
  BatchNorm bn(5);
  for (float& g : bn.gamma.value) g = rng.Uniform(0.5f, 1.5f);
  for (float& b : bn.beta.value) b = rng.Uniform(-0.5f, 0.5f);
  GradCheck(bn, x, true, "batch-norm (training)");
  GradCheck(bn, x, false, "batch-norm (eval)");
}

TEST(Train, GradActivationsPoolsDropout) {
  Rng rng(4);
  const Tensor x = RandomTensor(2, 6, 5, 3, &rng, -3.f, 8.f);
  GradCheck(Activation(std::numeric_limits<float>::infinity()), x, true, "relu");
  GradCheck(Activation(6.f), x, true, "relu6");
  GradCheck(Pool2D(true, 2, 2), x, true, "max pool 2x2");
  GradCheck(Pool2D(true, 3, 2), x, true, "max pool 3x3 s2 (padded)");
  GradCheck(Pool2D(false, 3, 2), x, true, "avg pool 3x3 s2 (padded)");
  GradCheck(GlobalAvgPool(), x, true, "global avg pool");
  GradCheck(Dropout(0.3f, 99), x, true, "dropout (training)");
  GradCheck(Dropout(0.3f, 99), x, false, "dropout (eval)");
}

TEST(Train, GradDense) {
  Rng rng(5);
  const Tensor x = RandomTensor(4, 2, 2, 3, &rng);
  GradCheck(Dense(12, 5, &rng), x, true, "dense");
}

TEST(Train, GradLoss) {
  Rng rng(6);
  const Tensor z = RandomTensor(5, 1, 1, 3, &rng, -3.f, 3.f);
  const std::vector<int> labels = {0, 2, 1, 1, 2};
  for (bool weighted : {false, true}) {
    LossOptions o;
    if (weighted) o.class_weights = {0.5f, 1.f, 2.f}, o.label_smoothing = 0.1f;
    Tensor dz;
    SoftmaxCrossEntropy(z, labels, o, &dz);
    for (size_t i = 0; i < z.v.size(); ++i) {
      Tensor zp = z, zm = z;
      zp.v[i] += 1e-3f;
      zm.v[i] -= 1e-3f;
      const double num = (SoftmaxCrossEntropy(zp, labels, o, nullptr) -
                          SoftmaxCrossEntropy(zm, labels, o, nullptr)) /
                         2e-3;
      EXPECT_NEAR(dz.v[i], num, 1e-3) << "logit " << i << (weighted ? " weighted" : "");
    }
  }
}

// Toy: 12x12 images, class = which third (top / middle / bottom) holds a bright bar; noise.
void ToyBatch(Rng* rng, int n, Tensor* x, std::vector<int>* labels) {
  x->Resize(n, 12, 12, 3);
  labels->resize(size_t(n));
  for (int i = 0; i < n; ++i) {
    const int c = rng->Int(0, 2);
    (*labels)[size_t(i)] = c;
    for (int y = 0; y < 12; ++y)
      for (int xx = 0; xx < 12; ++xx)
        for (int ch = 0; ch < 3; ++ch)
          x->v[((size_t(i) * 12 + size_t(y)) * 12 + size_t(xx)) * 3 + size_t(ch)] =
              (y / 4 == c ? 0.8f : -0.2f) + rng->Uniform(-0.5f, 0.5f);
  }
}

std::unique_ptr<Net> ToyNet(uint64_t seed) {
  Rng rng(seed);
  auto net = std::make_unique<Net>(12, 12, 3);
  net->Add(std::make_unique<Conv2D>(3, 8, 3, 2, false, &rng));
  net->Add(std::make_unique<BatchNorm>(8));
  net->Add(std::make_unique<Activation>(6.f));
  net->Add(std::make_unique<DepthwiseConv2D>(8, 3, 1, false, &rng));
  net->Add(std::make_unique<BatchNorm>(8));
  net->Add(std::make_unique<Activation>(6.f));
  net->Add(std::make_unique<Pool2D>(true, 2, 2));
  net->Add(std::make_unique<Dropout>(0.1f, rng.Next()));
  net->Add(std::make_unique<Dense>(3 * 3 * 8, 3, &rng));
  return net;
}

double TrainToy(const std::string& optimizer, uint64_t seed, std::vector<std::vector<float>>* w) {
  auto net = ToyNet(seed);
  OptimizerOptions oo;
  oo.type = optimizer;
  oo.lr = optimizer == "adam" ? 1e-2f : 5e-2f;
  Optimizer opt(net->Params(), oo);
  Rng rng(seed);
  Tensor x;
  std::vector<int> labels;
  for (int step = 0; step < 60; ++step) {
    ToyBatch(&rng, 32, &x, &labels);
    net->Forward(x, true);
    Tensor dz;
    SoftmaxCrossEntropy(net->Output(), labels, LossOptions(), &dz);
    net->Backward(dz);
    opt.Step(ScheduledLr(oo.lr, float(step) / 60.f, 0.1f, 1.f));
  }
  ToyBatch(&rng, 200, &x, &labels);
  net->Forward(x, false);
  int ok = 0;
  for (int i = 0; i < x.n; ++i) {
    const float* z = net->Output().data() + size_t(i) * 3;
    ok += int(std::max_element(z, z + 3) - z) == labels[size_t(i)];
  }
  if (w) *w = net->Snapshot();
  return double(ok) / x.n;
}

TEST(Train, ToyProblemAdam) {
  EXPECT_GE(TrainToy("adam", 1, nullptr), 0.98);
}
TEST(Train, ToyProblemSgd) {
  EXPECT_GE(TrainToy("sgd", 2, nullptr), 0.98);
}

TEST(Train, SameSeedSameWeights) {
  SetThreads(2);
  std::vector<std::vector<float>> a, b;
  TrainToy("adam", 5, &a);
  TrainToy("adam", 5, &b);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "tensor " << i;
}

TEST(Train, AugmentationIsDeterministicAndInRange) {
  CropSet set;
  set.size = 16;
  set.ctx_size = 24;
  set.context = 1.5f;
  Rng rng(3);
  for (int label = 0; label < 3; ++label) {
    Sample s;
    s.label = uint8_t(label);
    set.samples.push_back(s);
  }
  set.exact.resize(3 * 16 * 16 * 3);
  set.ctx.resize(3 * 24 * 24 * 3);
  for (auto& v : set.exact) v = uint8_t(rng.Int(0, 255));
  for (auto& v : set.ctx) v = uint8_t(rng.Int(0, 255));
  AugmentOptions all;
  all.recolor = all.hand = all.photometric = all.hue = all.grey = all.blur = all.noise = all.jpeg =
      all.occlude = 1.f;
  std::vector<float> a(16 * 16 * 3), b(a.size());
  for (size_t i = 0; i < 3; ++i) {
    MakeInput(set, i, all, 42 + i, InputNorm(), a.data());
    MakeInput(set, i, all, 42 + i, InputNorm(), b.data());
    EXPECT_EQ(a, b);
    for (float v : a) ASSERT_TRUE(v >= -1.f && v <= 1.f) << v;
  }
  AugmentOptions none;
  none.enabled = false;
  MakeInput(set, 1, none, 0, InputNorm(), a.data());
  EXPECT_FLOAT_EQ(a[5], set.exact[16 * 16 * 3 + 5] / 127.5f - 1.f);
}

// LowerMask puts the masked face's mask `shift` crop sides lower on the bare face: a skin-toned
// face with a blue lower half (the mask) over a skin-toned bare face. Above the lowered mask the
// bare face shows (its nose); the mask appears lower; below the chin nothing is pasted.
TEST(Train, LowerMaskMovesTheMaskBelowTheNose) {
  CropSet set;
  set.size = 40;
  set.ctx_size = 60;
  set.context = 1.5f;
  set.samples.resize(2);
  set.samples[0].label = kWithoutMask;
  set.samples[1].label = kWithMask;
  const int n = 60;
  const float region = 40.f, off = 10.f;  // the pipeline crop inside the context crop
  set.ctx.resize(size_t(2 * n * n * 3));
  set.exact.resize(size_t(2 * 40 * 40 * 3));
  const uint8_t skin[3] = {220, 170, 140}, bare_skin[3] = {200, 150, 120}, blue[3] = {30, 40, 160};
  auto v_of = [&](int y) { return (float(y) + 0.5f - off) / region; };
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int c = 0; c < 3; ++c) {
        set.ctx[size_t((y * n + x) * 3 + c)] = bare_skin[c];
        set.ctx[size_t(((n + y) * n + x) * 3 + c)] = v_of(y) >= 0.5f ? blue[c] : skin[c];
      }
  std::vector<uint8_t> out(size_t(n * n * 3));
  auto is = [&](int u_percent, int v_percent, const uint8_t* rgb) {
    const int x = int(off + region * float(u_percent) / 100.f),
              y = int(off + region * float(v_percent) / 100.f);
    const uint8_t* p = &out[size_t((y * n + x) * 3)];
    return std::abs(p[0] - rgb[0]) + std::abs(p[1] - rgb[1]) + std::abs(p[2] - rgb[2]) <= 6;
  };
  LowerMask(set, 0, 1, 0.f, out.data());
  EXPECT_TRUE(is(50, 60, blue)) << "no shift: the mask where it was";
  EXPECT_TRUE(is(50, 40, bare_skin)) << "the eyes are the bare face's";
  LowerMask(set, 0, 1, 0.2f, out.data());
  EXPECT_TRUE(is(50, 60, bare_skin)) << "the nose shows above the lowered mask";
  EXPECT_TRUE(is(50, 82, blue)) << "the mask sits lower";
  EXPECT_TRUE(is(50, 105, bare_skin)) << "nothing below the chin";
  EXPECT_TRUE(is(5, 80, bare_skin)) << "nothing outside the face";
}

// Temperature scaling recovers the temperature that made the labels: labels drawn from
// softmax(z / 2) give T ~ 2 from the raw logits z. ECE is ~0 for labels drawn from the stated
// probabilities and large for overconfident ones.
TEST(Train, CalibrationTemperatureAndEce) {
  Rng rng(5);
  std::vector<float> logits;
  std::vector<int> labels;
  Calibration honest, overconfident;
  for (int i = 0; i < 20000; ++i) {
    float z[3], p[3], sum = 0;
    for (int c = 0; c < 3; ++c) z[c] = rng.Normal() * 3.f;
    for (int c = 0; c < 3; ++c) sum += p[c] = std::exp(z[c] / 2.f);
    float u = rng.Uniform(0.f, sum);
    int label = 0;
    while (label < 2 && u > p[label]) u -= p[label++];
    logits.insert(logits.end(), z, z + 3);
    labels.push_back(label);
    const int top = int(std::max_element(p, p + 3) - p);
    honest.Add(p[top] / sum, top == label);
    overconfident.Add(std::min(1.f, 0.5f + p[top] / sum), top == label);
  }
  EXPECT_NEAR(FitTemperature(logits, labels), 2.f, 0.1f);
  EXPECT_LT(honest.Ece(), 0.02);
  EXPECT_GT(overconfident.Ece(), 0.2);
  int sure = 0, unsure = 0;
  double sure_acc = 0, unsure_acc = 0;
  honest.Split(0.6f, &sure, &sure_acc, &unsure, &unsure_acc);
  EXPECT_EQ(sure + unsure, 20000);
  EXPECT_GT(sure_acc, unsure_acc);
  // unsure_below: the lowest bin edge from which every bin is >= 90% right (bins under 5 crops
  // do not count).
  Calibration steps;
  for (int i = 0; i < 100; ++i) {
    steps.Add(0.55f, i % 10 < 6);  // 60% right
    steps.Add(0.75f, i % 10 < 7);  // 70%
    steps.Add(0.85f, i % 10 < 9);  // 90%
    steps.Add(0.95f, true);
  }
  EXPECT_FLOAT_EQ(UnsureBelow(steps), 0.8f);
  for (int i = 0; i < 4; ++i) steps.Add(0.65f, false);  // too few to count
  EXPECT_FLOAT_EQ(UnsureBelow(steps), 0.8f);
  steps.Add(0.99f, false), steps.Add(0.99f, false), steps.Add(0.99f, false);  // top bin < 90%
  for (int i = 0; i < 40; ++i) steps.Add(0.91f, false);
  EXPECT_FLOAT_EQ(UnsureBelow(steps), 0.9f) << "nothing qualifies: the highest cut";
}

// A few training steps (so batch-norm running statistics are not trivial), export, write, read
// back, run on both engine backends and compare with the trainer's eval-mode forward.
void CheckExport(Net& net, const char* what) {
  Rng rng(11);
  Tensor x;
  std::vector<int> labels(8);
  OptimizerOptions oo;
  Optimizer opt(net.Params(), oo);
  for (int step = 0; step < 3; ++step) {
    x = RandomTensor(8, net.in_h, net.in_w, 3, &rng);
    for (int& l : labels) l = rng.Int(0, 2);
    net.Forward(x, true);
    Tensor dz;
    SoftmaxCrossEntropy(net.Output(), labels, LossOptions(), &dz);
    net.Backward(dz);
    opt.Step(1e-2f);
  }
  x = RandomTensor(3, net.in_h, net.in_w, 3, &rng);
  net.Forward(x, false);
  std::vector<float> probs;
  Softmax(net.Output(), &probs);

  Graph exported;
  Status s = ExportGraph(net, ExportOptions(), &exported);
  ASSERT_TRUE(s.ok()) << what << ": " << s.message();
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(exported, &bytes).ok());
  auto graph = std::make_shared<Graph>();
  s = ReadModel(bytes.data(), bytes.size(), graph.get());
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(graph->metadata.at("kind"), "classifier");
  EXPECT_EQ(graph->metadata.at("labels"), "with_mask,without_mask,mask_worn_incorrectly");
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    ro.backend = backend;
    ASSERT_TRUE(Runtime::Create(graph, ro, &rt).ok());
    const size_t per = x.PerSample();
    float max_diff = 0;
    for (int i = 0; i < x.n; ++i) {
      std::copy(x.data() + size_t(i) * per, x.data() + size_t(i + 1) * per, rt->input(0));
      ASSERT_TRUE(rt->Run().ok());
      for (int c = 0; c < 3; ++c)
        max_diff =
            std::max(max_diff, std::fabs(rt->output(0)[c] - probs[size_t(i) * 3 + size_t(c)]));
    }
    EXPECT_LE(max_diff, 1e-4f) << what
                               << (backend == Backend::kXnnpack ? " xnnpack" : " reference");
  }
}

TEST(Train, ExportMatchesEngineMobile) {
  auto net = BuildMobile(32, 0.25f, 3, 0.2f, 1);
  CheckExport(*net, "mobile 32px");
}

TEST(Train, ExportMatchesEngineOriginal) {
  auto net = BuildOriginal(20, 3, 1);
  CheckExport(*net, "original 20px");
}

TEST(Train, ExportMatchesEngineToy) {
  auto net = ToyNet(4);  // dropout, max pool, depthwise, dense over a flattened map
  CheckExport(*net, "toy");
}

// A small pretrained-looking extractor built in code: conv 3x3 s2 + relu, a depthwise conv with no
// bias, an add, global average pool, reshape to [1, F].
std::shared_ptr<const Graph> TinyExtractor(int size) {
  Rng rng(5);
  auto rand = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.Uniform(-0.5f, 0.5f);
    return v;
  };
  GraphBuilder gb;
  int32_t t = gb.Input("input", {1, size, size, 3});
  const int32_t w = gb.Constant("c/w", {8, 3, 3, 3}, rand(8 * 27), true);
  const int32_t b = gb.Constant("c/b", {8}, rand(8));
  const int32_t c = gb.Op("conv2d", "c", {t, w, b},
                          {{"stride", Attr::Ints({2, 2})},
                           {"padding", Attr::Ints({0, 0, 1, 1})},
                           {"clamp", Attr::Floats({0.f, 1e30f})}});
  const int32_t dw = gb.Constant("d/w", {1, 3, 3, 8}, rand(72));
  const int32_t d = gb.Op("depthwise_conv2d", "d", {c, dw, kNoTensor},
                          {{"stride", Attr::Ints({1, 1})}, {"padding", Attr::Ints({1, 1, 1, 1})}});
  t = gb.Op("add", "sum", {c, d});
  t = gb.Op("global_avg_pool", "pool", {t});
  t = gb.Op("reshape", "features", {t}, {{"shape", Attr::Ints({1, 8})}});
  auto g = std::make_shared<Graph>();
  EXPECT_TRUE(gb.Finish({t}, g.get()).ok());
  return g;
}

TEST(Train, FrozenLayerIsTheEnginesForward) {
  auto extractor = TinyExtractor(12);
  std::unique_ptr<Frozen> frozen;
  ASSERT_TRUE(Frozen::Create(extractor, &frozen).ok());
  Rng rng(3);
  const Tensor x = RandomTensor(5, 12, 12, 3, &rng);
  Tensor y;
  frozen->Forward(x, &y, true);
  ASSERT_TRUE(frozen->status().ok());
  ASSERT_EQ(y.c, 8);
  std::unique_ptr<Runtime> rt;
  RuntimeOptions ro;
  ro.backend = Backend::kReference;
  ASSERT_TRUE(Runtime::Create(extractor, ro, &rt).ok());
  for (int i = 0; i < x.n; ++i) {
    std::copy(x.data() + size_t(i) * x.PerSample(), x.data() + size_t(i + 1) * x.PerSample(),
              rt->input(0));
    ASSERT_TRUE(rt->Run().ok());
    for (int k = 0; k < 8; ++k)
      EXPECT_NEAR(y.data()[size_t(i) * 8 + size_t(k)], rt->output(0)[k], 1e-5f);
  }
  // Wrong input size: an error, NaN features, no crash.
  Tensor bad(1, 10, 10, 3);
  frozen->Forward(bad, &y, false);
  EXPECT_FALSE(frozen->status().ok());
  EXPECT_TRUE(std::isnan(y.data()[0]));
  // Not an image model / no graph.
  GraphBuilder gb;
  const int32_t in = gb.Input("in", {1, 4});
  auto flat = std::make_shared<Graph>();
  ASSERT_TRUE(
      gb.Finish({gb.Op("clamp", "c", {in}, {{"clamp", Attr::Floats({0.f, 1.f})}})}, flat.get())
          .ok());
  EXPECT_FALSE(Frozen::Create(flat, &frozen).ok());
}

TEST(Train, ExportMatchesEngineFrozenHead) {
  std::unique_ptr<Net> net;
  ASSERT_TRUE(BuildFrozenHead(TinyExtractor(16), 6, 3, 0.2f, 1, &net).ok());
  const auto params = net->NumParams();
  EXPECT_EQ(params, 8 * 6 + 6 + 6 * 3 + 3);  // only the head is trained
  CheckExport(*net, "frozen head");
  std::unique_ptr<Net> bad;
  EXPECT_FALSE(BuildFrozenHead(TinyExtractor(16), -1, 3, 0.2f, 1, &bad).ok());
}

}  // namespace
}  // namespace fm::train
