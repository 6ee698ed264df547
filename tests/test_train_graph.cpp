// test_train_graph.cpp - the graph trainer (tools/train/graph_net.h) and the detector's loss
// (detect_loss.h): finite-difference gradient checks through every trainable op (conv2d and
// depthwise with explicit padding and stride 2, residual add with its clamp, clamp, resize
// bilinear in all three modes, depth_to_space, pad, reshape, concatenation, two heads), trainer ==
// engine (reference and XNNPACK) on the exported graph after training steps, the kept zeros of
// a sparse model, the real full-range BlazeFace graph, the loss's anchor matching and focal
// loss against hand-computed values, and the detector views' pasted faces (detect_data.h).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "common.h"
#include "detect_data.h"
#include "detect_loss.h"
#include "detect_train.h"
#include "graph_net.h"
#include "model/graph_builder.h"
#include "model/model_format.h"
#include "optimizer.h"
#include "runtime/runtime.h"

namespace fm::train {
namespace {

std::vector<float> Rand(size_t n, Rng* rng, float scale) {
  std::vector<float> v(n);
  for (float& x : v) x = rng->Uniform(-scale, scale);
  return v;
}

// A BlazeFace-shaped graph with every trainable op: two branches joined by a residual add,
// an upsampling path, depth_to_space heads, a channel pad, reshape and a concatenation.
Graph BranchyGraph(int resize_mode, uint64_t seed) {
  Rng rng(seed);
  GraphBuilder b;
  auto W = [&](const std::string& n, const Shape& s, float scale) {
    return b.Constant(n, s, Rand(size_t(NumElements(s)), &rng, scale));
  };
  const int32_t x = b.Input("input", {1, 12, 12, 3});
  int32_t t = b.Op("conv2d", "stem", {x, W("stem/w", {6, 3, 3, 3}, 0.5f), W("stem/b", {6}, 0.1f)},
                   {{"stride", Attr::Ints({2, 2})},
                    {"padding", Attr::Ints({1, 1, 1, 1})},
                    {"clamp", Attr::Floats({0.f, INFINITY})}});  // 6x6x6
  const int32_t dw =
      b.Op("depthwise_conv2d", "dw", {t, W("dw/w", {1, 3, 3, 6}, 0.5f), W("dw/b", {6}, 0.1f)},
           {{"padding", Attr::Ints({1, 1, 1, 1})}});
  const int32_t pw = b.Op("conv2d", "pw", {dw, W("pw/w", {6, 1, 1, 6}, 0.5f)});
  t = b.Op("add", "res", {t, pw}, {{"clamp", Attr::Floats({0.f, INFINITY})}});
  const int32_t down = b.Op("depthwise_conv2d", "down", {t, W("down/w", {1, 3, 3, 6}, 0.5f)},
                            {{"stride", Attr::Ints({2, 2})}, {"same", Attr::Ints({1})}});  // 3x3
  const int32_t padded =
      b.Op("pad", "chpad", {down}, {{"pads", Attr::Ints({0, 0, 0, 0, 0, 0, 0, 2})}});  // 3x3x8
  const int32_t up = b.Op("resize_bilinear", "up", {padded},
                          {{"size", Attr::Ints({6, 6})}, {"mode", Attr::Ints({resize_mode})}});
  const int32_t lat = b.Op("conv2d", "lat", {t, W("lat/w", {8, 1, 1, 6}, 0.5f)});
  t = b.Op("add", "fuse", {up, lat});
  t = b.Op("clamp", "clip", {t}, {{"clamp", Attr::Floats({-0.6f, 0.8f})}});
  const int32_t h1 = b.Op("conv2d", "head1", {t, W("head1/w", {4, 1, 1, 8}, 0.5f)});
  const int32_t s1 = b.Op("depth_to_space", "d2s1", {h1}, {{"block", Attr::Ints({2})}});
  const int32_t r1 = b.Op("reshape", "r1", {s1}, {{"shape", Attr::Ints({1, 144, 1})}});
  const int32_t h2 =
      b.Op("conv2d", "head2", {t, W("head2/w", {12, 3, 3, 8}, 0.3f)}, {{"same", Attr::Ints({1})}});
  const int32_t s2 = b.Op("depth_to_space", "d2s2", {h2}, {{"block", Attr::Ints({2})}});
  const int32_t r2 = b.Op("reshape", "r2", {s2}, {{"shape", Attr::Ints({1, 144, 3})}});
  const int32_t cat = b.Op("concatenate", "cat", {r1, r2}, {{"axis", Attr::Ints({-1})}});
  Graph g;
  const Status s = b.Finish({cat, h1}, &g);
  EXPECT_TRUE(s.ok()) << s.message();
  return g;
}

Tensor RandomInput(int n, int h, int w, int c, Rng* rng) {
  Tensor t(n, h, w, c);
  for (float& v : t.v) v = rng->Uniform(-1.f, 1.f);
  return t;
}

// Random output gradients (r_i) for the outputs of the last Forward.
std::vector<Tensor> RandomOutputGrads(const GraphNet& net, Rng* rng) {
  std::vector<Tensor> r;
  for (size_t i = 0; i < net.NumOutputs(); ++i) {
    const Tensor& o = net.Output(i);
    r.push_back(RandomInput(o.n, o.h, o.w, o.c, rng));
  }
  return r;
}

// L = sum_i sum(output_i * r_i).
double Loss(GraphNet& net, const Tensor& x, const std::vector<Tensor>& r) {
  net.Forward(x, false);
  double l = 0;
  for (size_t i = 0; i < r.size(); ++i)
    for (size_t e = 0; e < r[i].Size(); ++e) l += double(net.Output(i).v[e]) * double(r[i].v[e]);
  return l;
}

// Central differences on up to 16 coordinates of a vector. A step that crosses a kink (a ReLU or
// clamp changing state) shows as one-sided differences that disagree: such coordinates are
// skipped, every other one must match, and at least half must have been checked.
void CheckCoordinates(std::vector<float>* values, const std::vector<float>& grad,
                      const std::function<double()>& loss, Rng* rng, const std::string& what) {
  const int count = std::min<int>(16, int(values->size()));
  int checked = 0;
  const double base = loss();
  for (int k = 0; k < count; ++k) {
    const size_t i = size_t(rng->Next() % values->size());
    const float keep = (*values)[i];
    const float eps = 1e-3f;
    (*values)[i] = keep + eps;
    const double up = loss();
    (*values)[i] = keep - eps;
    const double down = loss();
    (*values)[i] = keep;
    const double tol = 1e-2 * std::max(1.0, std::fabs(up - down) / (2 * double(eps)));
    if (std::fabs((up - base) - (base - down)) / double(eps) > tol) continue;  // a kink
    ++checked;
    EXPECT_NEAR(grad[i], (up - down) / (2 * double(eps)), tol) << what << " coordinate " << i;
  }
  EXPECT_GE(checked, count / 2) << what;
}

TEST(TrainGraph, GradientsMatchFiniteDifferences) {
  for (int mode = 0; mode < 3; ++mode) {
    const Graph g = BranchyGraph(mode, 11 + uint64_t(mode));
    std::unique_ptr<GraphNet> net;
    ASSERT_TRUE(GraphNet::Create(g, false, &net).ok());
    Rng rng(3);
    Tensor x = RandomInput(2, 12, 12, 3, &rng);
    net->Forward(x, true);
    const std::vector<Tensor> r = RandomOutputGrads(*net, &rng);
    net->Backward(r, true);
    const Tensor dx = net->InputGrad();
    std::vector<std::vector<float>> grads;
    for (Param* p : net->Params()) grads.push_back(p->grad);
    auto loss = [&] { return Loss(*net, x, r); };
    CheckCoordinates(&x.v, dx.v, loss, &rng, "input, resize mode " + std::to_string(mode));
    const std::vector<Param*> params = net->Params();
    for (size_t i = 0; i < params.size(); ++i)
      CheckCoordinates(&params[i]->value, grads[i], loss, &rng,
                       params[i]->name + ", resize mode " + std::to_string(mode));
  }
}

// The net's eval forward vs the engine on the exported graph (fp32 weights), both backends.
void ExpectMatchesEngine(GraphNet& net, const Tensor& x, float tol) {
  auto exported = std::make_shared<Graph>();
  ASSERT_TRUE(net.Export(false, exported.get()).ok());
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(WriteModel(*exported, &bytes).ok());
  auto reread = std::make_shared<Graph>();
  ASSERT_TRUE(ReadModel(bytes.data(), bytes.size(), reread.get()).ok());
  net.Forward(x, false);
  for (Backend backend : {Backend::kReference, Backend::kXnnpack}) {
    RuntimeOptions ro;
    ro.backend = backend;
    std::unique_ptr<Runtime> rt;
    ASSERT_TRUE(Runtime::Create(reread, ro, &rt).ok());
    for (int n = 0; n < x.n; ++n) {
      std::copy(x.v.begin() + ptrdiff_t(size_t(n) * x.PerSample()),
                x.v.begin() + ptrdiff_t(size_t(n + 1) * x.PerSample()), rt->input(0));
      ASSERT_TRUE(rt->Run().ok());
      for (size_t o = 0; o < net.NumOutputs(); ++o) {
        const Tensor& y = net.Output(o);
        float worst = 0.f, scale = 1.f;
        for (size_t e = 0; e < y.PerSample(); ++e) {
          const float a = y.v[size_t(n) * y.PerSample() + e], b = rt->output(o)[e];
          worst = std::max(worst, std::fabs(a - b));
          scale = std::max(scale, std::fabs(b));
        }
        EXPECT_LE(worst / scale, tol) << "output " << o << " sample " << n << " backend "
                                      << int(backend) << " (largest value " << scale << ")";
      }
    }
  }
}

TEST(TrainGraph, TrainedGraphIsTheEnginesForward) {
  const Graph g = BranchyGraph(0, 5);
  std::unique_ptr<GraphNet> net;
  ASSERT_TRUE(GraphNet::Create(g, false, &net).ok());
  Rng rng(9);
  OptimizerOptions oo;
  oo.lr = 1e-2f;
  Optimizer opt(net->Params(), oo);
  for (int step = 0; step < 3; ++step) {
    Tensor x = RandomInput(4, 12, 12, 3, &rng);
    net->Forward(x, true);
    const std::vector<Tensor> r = RandomOutputGrads(*net, &rng);
    net->Backward(r);
    opt.Step(oo.lr);
  }
  // The weights moved, and the engine computes what the trainer computes.
  std::unique_ptr<GraphNet> fresh;
  ASSERT_TRUE(GraphNet::Create(g, false, &fresh).ok());
  EXPECT_NE(fresh->Params()[0]->value, net->Params()[0]->value);
  ExpectMatchesEngine(*net, RandomInput(3, 12, 12, 3, &rng), 1e-4f);
}

TEST(TrainGraph, KeptZerosStayZero) {
  Graph g = BranchyGraph(0, 6);
  const int wt = g.FindTensor("pw/w");
  ASSERT_GE(wt, 0);
  std::vector<float>& w = g.tensors[size_t(wt)].data;
  for (size_t i = 0; i < w.size(); i += 2) w[i] = 0.f;
  std::unique_ptr<GraphNet> net;
  ASSERT_TRUE(GraphNet::Create(g, true, &net).ok());
  Rng rng(2);
  Optimizer opt(net->Params(), OptimizerOptions());
  Tensor x = RandomInput(2, 12, 12, 3, &rng);
  net->Forward(x, true);
  const std::vector<Tensor> r = RandomOutputGrads(*net, &rng);
  net->Backward(r);
  net->MaskGradients();
  opt.Step(1e-2f);
  Graph out;
  ASSERT_TRUE(net->Export(false, &out).ok());
  const std::vector<float>& trained = out.tensors[size_t(wt)].data;
  for (size_t i = 0; i < trained.size(); ++i) {
    if (i % 2 == 0)
      EXPECT_EQ(trained[i], 0.f) << i;
    else
      EXPECT_NE(trained[i], w[i]) << i;
  }
}

TEST(TrainGraph, ReinitializeIsHeNormal) {
  Graph g;
  ASSERT_TRUE(ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", &g).ok());
  std::unique_ptr<GraphNet> net;
  ASSERT_TRUE(GraphNet::Create(g, true, &net).ok());
  net->Reinitialize(3);
  // He normal: rms = sqrt(2 / fan_in). The stem is 3x3x3 (fan-in 27), a depthwise 3x3 (9), the
  // first 1x1 convolution reads 32 channels.
  const std::map<std::string, double> expected = {
      {"activation/Relu/conv/weights", std::sqrt(2.0 / 27)},
      {"depthwise_conv2d/depthwise/weights", std::sqrt(2.0 / 9)},
      {"activation_1/Relu/conv/weights", std::sqrt(2.0 / 32)}};
  int seen = 0;
  for (Param* p : net->Params()) {
    double sum2 = 0;
    for (float v : p->value) sum2 += double(v) * v;
    const double rms = std::sqrt(sum2 / double(p->value.size()));
    if (!p->decay) {
      EXPECT_EQ(rms, 0.0) << p->name;  // biases start at zero
    }
    auto it = expected.find(p->name);
    if (it == expected.end()) continue;
    ++seen;
    EXPECT_NEAR(rms, it->second, 0.2 * it->second) << p->name;
  }
  EXPECT_EQ(seen, 3);
}

TEST(TrainGraph, RefusesWhatItCannotTrain) {
  GraphBuilder b;
  const int32_t x = b.Input("input", {1, 4, 4, 2});
  const int32_t y = b.Op("sigmoid", "s", {x});
  Graph g;
  ASSERT_TRUE(b.Finish({y}, &g).ok());
  std::unique_ptr<GraphNet> net;
  const Status s = GraphNet::Create(g, false, &net);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'sigmoid' cannot be trained"), std::string::npos) << s.message();
}

// The shipped full-range BlazeFace: the trainer's forward is the engine's, before and after a
// training step.
TEST(TrainGraph, BlazeFaceFullRangeMatchesEngine) {
  Graph g;
  ASSERT_TRUE(ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", &g).ok());
  std::unique_ptr<GraphNet> net;
  ASSERT_TRUE(GraphNet::Create(g, true, &net).ok());
  Rng rng(4);
  Tensor x = RandomInput(2, 192, 192, 3, &rng);
  ExpectMatchesEngine(*net, x, 1e-4f);
  net->Forward(x, true);
  const Tensor& o = net->Output(0);
  Tensor r = RandomInput(o.n, o.h, o.w, o.c, &rng);
  for (float& v : r.v) v *= 1e-3f;
  net->Backward({r});
  net->MaskGradients();
  Optimizer opt(net->Params(), OptimizerOptions());
  opt.Step(1e-4f);
  ExpectMatchesEngine(*net, x, 1e-4f);
}

// Seeds averaged ("model soup"): every differing constant is the mean, values all models share
// (the kept zeros above all) stay bit for bit, and a graph of another shape is refused.
TEST(TrainGraph, AverageGraphsIsTheMeanAndKeepsZeros) {
  Graph a;
  ASSERT_TRUE(ReadModelFile(std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm", &a).ok());
  std::vector<Graph> others(2, a);
  Rng rng(11);
  size_t changed = 0, zeros = 0;
  for (size_t t = 0; t < a.tensors.size(); ++t)
    for (size_t i = 0; i < a.tensors[t].data.size(); ++i) {
      if (a.tensors[t].data[i] == 0.f || i % 3 == 0) continue;  // every third value stays put
      others[0].tensors[t].data[i] += rng.Uniform() - 0.5f;
      others[1].tensors[t].data[i] -= 2.f * rng.Uniform();
      ++changed;
    }
  Graph avg = a;
  ASSERT_TRUE(AverageGraphs(others, &avg).ok());
  for (size_t t = 0; t < a.tensors.size(); ++t)
    for (size_t i = 0; i < a.tensors[t].data.size(); ++i) {
      const float x = a.tensors[t].data[i], y = others[0].tensors[t].data[i],
                  z = others[1].tensors[t].data[i], got = avg.tensors[t].data[i];
      if (x == y && y == z) {
        ASSERT_EQ(got, x) << t << " " << i;
        zeros += x == 0.f;
      } else {
        ASSERT_NEAR(got, (double(x) + y + z) / 3.0, 1e-6 * (1 + std::fabs(got))) << t << " " << i;
      }
    }
  EXPECT_GT(changed, size_t(100000));
  EXPECT_GT(zeros, size_t(100000));  // the full-range model's pruned 1x1 weights
  EXPECT_EQ(avg.metadata["training"].rfind("average of 3: ", 0), 0u) << avg.metadata["training"];

  std::vector<Graph> wrong(1, a);
  for (fm::Tensor& t : wrong[0].tensors)
    if (t.kind == TensorKind::kConstant && t.shape.size() == 1) {
      t.shape[0] += 1;
      t.data.push_back(0.f);
      break;
    }
  Graph b = a;
  const Status s = AverageGraphs(wrong, &b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("differs in kind or shape"), std::string::npos) << s.message();
  wrong[0] = a;
  wrong[0].nodes.pop_back();
  const Status s2 = AverageGraphs(wrong, &b);
  ASSERT_FALSE(s2.ok());
  EXPECT_NE(s2.message().find("not the same graph"), std::string::npos) << s2.message();
}

// ---- detection loss

TEST(DetectLoss, FocalLossDerivative) {
  for (bool positive : {true, false})
    for (float z : {-4.f, -1.f, -0.2f, 0.f, 0.7f, 3.f}) {
      float d, unused;
      const double l = FocalLoss(z, positive, 0.25f, 2.f, &d);
      const double up = FocalLoss(z + 1e-3f, positive, 0.25f, 2.f, &unused);
      const double down = FocalLoss(z - 1e-3f, positive, 0.25f, 2.f, &unused);
      EXPECT_NEAR(d, (up - down) / 2e-3, 1e-3) << z << " " << positive;
      EXPECT_GT(l, 0.0);
    }
  // gamma 0 is alpha-weighted cross-entropy: -0.25 * log(sigmoid(0)) = 0.25 * ln 2.
  float d;
  EXPECT_NEAR(FocalLoss(0.f, true, 0.25f, 0.f, &d), 0.25 * std::log(2.0), 1e-6);
  EXPECT_NEAR(d, -0.125, 1e-6);
}

TEST(DetectLoss, CentreSamplingAssignsByHand) {
  // A 4x4 grid of anchors (stride 4 on a 16 px input): centres at 2, 6, 10, 14.
  std::vector<Anchor> anchors;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) anchors.push_back({(x * 4 + 2) / 16.f, (y * 4 + 2) / 16.f});
  DetLossOptions o;  // radius 0.15 of the size, at least 2 px
  // Face A: 12x12 at (1, 1)-(13, 13), centre (7, 7): radius max(2, 1.8) = 2 -> anchors with
  // centres within 2 px of 7 on both axes: x, y in {6} -> anchor (6, 6) = index 5. The other
  // anchors inside the box ((2|6|10) x (2|6|10)) are ignored.
  // Face B: tiny 3x3 at (12.5, 12.5)-(15.5, 15.5), centre (14, 14): anchor (14, 14) = index 15.
  // Face C: an ignore region over (0, 13)-(5, 16): anchor (2, 14) = index 12 is ignored.
  std::vector<GtBox> gts = {{1, 1, 13, 13}, {12.5f, 12.5f, 15.5f, 15.5f}, {0, 13, 5, 16}};
  gts[2].ignore = true;
  std::vector<int> assign;
  AssignAnchors(anchors, 16, gts, o, &assign);
  const std::vector<int> expected = {-2, -2, -2, -1, -2, 0, -2, -1, -2, -2, -2, -1, -2, -1, -1, 1};
  EXPECT_EQ(assign, expected);
  // Positive weight: each face weight 1, one positive each: 1 * sqrt(1) + 1 * sqrt(1).
  EXPECT_FLOAT_EQ(PositiveWeight(gts, assign), 2.f);
  // An anchor two faces claim goes to the smaller one.
  std::vector<GtBox> overlap = {{0, 0, 16, 16}, {4, 4, 8, 8}};
  AssignAnchors(anchors, 16, overlap, o, &assign);
  EXPECT_EQ(assign[5], 1);  // (6, 6): the centre of the small face, inside the large one too
}

TEST(DetectLoss, GradientMatchesFiniteDifferences) {
  std::vector<Anchor> anchors;
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) anchors.push_back({(x * 4 + 2) / 24.f, (y * 4 + 2) / 24.f});
  std::vector<GtBox> gts = {{3, 4, 17, 19}, {15, 15, 21, 22}};
  gts[1].weight = 2.f;
  DetLossOptions o;
  std::vector<int> assign;
  AssignAnchors(anchors, 24, gts, o, &assign);
  Rng rng(5);
  std::vector<float> raw = Rand(anchors.size() * kRawColumns, &rng, 3.f);
  std::vector<float> teacher = Rand(anchors.size() * kRawColumns, &rng, 3.f);
  std::vector<float> grad(raw.size()), scratch(raw.size());
  const float norm = 1.f / PositiveWeight(gts, assign);
  SampleLoss(raw.data(), teacher.data(), anchors, 24, gts, assign, norm, o, grad.data());
  auto total = [&] {
    const DetLoss l =
        SampleLoss(raw.data(), teacher.data(), anchors, 24, gts, assign, norm, o, scratch.data());
    return l.cls + l.box + l.keypoints;
  };
  int checked = 0;
  for (size_t i = 0; i < raw.size(); i += 7) {
    const float keep = raw[i];
    raw[i] = keep + 1e-3f;
    const double up = total();
    raw[i] = keep - 1e-3f;
    const double down = total();
    raw[i] = keep;
    EXPECT_NEAR(grad[i], (up - down) / 2e-3, 2e-3) << "column " << i % kRawColumns;
    ++checked;
  }
  EXPECT_GT(checked, 80);
}

}  // namespace
}  // namespace fm::train

// Pasted faces land where their boxes say, in the size range, never over an annotated face or
// the letterbox padding, and leave the rest of the view as it was: a red 40x40 "face" in a
// 100x100 grey photo pasted into views of a 400x300 scene with one annotated face.
TEST(DetectData, PastedFacesAreWhereTheirBoxesSay) {
  fm::train::Scene scene;
  scene.image.width = 400;
  scene.image.height = 300;
  scene.image.rgb.assign(size_t(400 * 300 * 3), 90);
  scene.boxes.push_back({"with_mask", 180.f, 120.f, 220.f, 170.f});
  fm::train::PasteFace f;
  fm::Image src;
  src.width = src.height = 100;
  src.rgb.assign(size_t(100 * 100 * 3), 128);
  for (int y = 30; y < 70; ++y)
    for (int x = 30; x < 70; ++x) {
      uint8_t* p = &src.rgb[size_t(y * 100 + x) * 3];
      p[0] = 255, p[1] = 0, p[2] = 0;
    }
  f.levels = {src, fm::Downscale(src, 2)};
  f.x0 = f.y0 = 30.f, f.x1 = f.y1 = 70.f;
  const std::vector<fm::train::PasteFace> pastes = {f};
  fm::train::ViewOptions vo;
  vo.whole_prob = 1.f;  // letterboxed: padding above and below
  vo.photometric = false;
  vo.recolour_prob = 0.f;
  vo.paste_prob = 1.f;
  const int S = vo.size;
  std::vector<float> with(size_t(S * S * 3)), without(with.size());
  int pasted = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::vector<fm::train::GtBox> gts, plain;
    fm::train::Rng a(seed), b(seed);
    fm::train::SampleView(scene, pastes, vo, &a, with.data(), &gts);
    fm::train::SampleView(scene, {}, vo, &b, without.data(), &plain);
    ASSERT_EQ(plain.size(), 1u);
    ASSERT_GE(gts.size(), 1u);
    const fm::train::GtBox& face = gts[0];
    std::vector<bool> inside(size_t(S * S), false);
    for (size_t i = 1; i < gts.size(); ++i, ++pasted) {
      const fm::train::GtBox& g = gts[i];
      const float w = g.x1 - g.x0;
      EXPECT_GE(w, vo.paste_min_px - 1e-3f);
      EXPECT_LE(w, vo.paste_max_px + 1e-3f);
      EXPECT_NEAR(g.y1 - g.y0, w, 1e-3f);
      EXPECT_TRUE(g.x1 < face.x0 || g.x0 > face.x1 || g.y1 < face.y0 || g.y0 > face.y1);
      // The box centre is the red face (bilinear edges aside).
      const float* c =
          &with[(size_t(int((g.y0 + g.y1) / 2)) * size_t(S) + size_t(int((g.x0 + g.x1) / 2))) * 3];
      EXPECT_GT(c[0], 0.9f);
      EXPECT_LT(c[1], -0.9f);
      // The square it was blended in: 1.8x the face around it.
      const float half = 0.9f * w + 1.f, cx = (g.x0 + g.x1) / 2, cy = (g.y0 + g.y1) / 2;
      for (int y = std::max(0, int(cy - half)); y < std::min(S, int(cy + half) + 1); ++y)
        for (int x = std::max(0, int(cx - half)); x < std::min(S, int(cx + half) + 1); ++x)
          inside[size_t(y * S + x)] = true;
    }
    for (int i = 0; i < S * S; ++i) {
      const float* p = &without[size_t(i) * 3];
      const bool padding = p[0] == 0.f && p[1] == 0.f && p[2] == 0.f;
      if (inside[size_t(i)] && !padding) continue;
      for (int k = 0; k < 3; ++k)
        ASSERT_EQ(with[size_t(i) * 3 + size_t(k)], p[k]) << "seed " << seed << " pixel " << i;
    }
  }
  EXPECT_GE(pasted, 40);  // 1..3 per view, a few refused where they would overlap
}
