// trainer.cpp - see trainer.h.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include "frozen.h"
#include "loss.h"
#include "model_format.h"
#include "pipeline.h"

namespace fm::train {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

uint64_t Mix(uint64_t a, uint64_t b, uint64_t c) {
  Rng r(a * 0x9E3779B97F4A7C15ull ^ (b << 32) ^ c);
  r.Next();
  return r.Next();
}

// Eval-mode forward of the trainer's net over `indices` (exact crops); returns argmax labels and
// adds the mean loss to *loss.
std::vector<int> Predict(Net& net, const CropSet& set, const std::vector<size_t>& indices,
                         const InputNorm& norm, double* loss) {
  std::vector<int> pred;
  const int bs = 64;
  const size_t per = size_t(set.size) * size_t(set.size) * 3;
  AugmentOptions none;
  none.enabled = false;
  double total = 0;
  for (size_t at = 0; at < indices.size(); at += bs) {
    const int n = int(std::min(indices.size() - at, size_t(bs)));
    Tensor x(n, set.size, set.size, 3);
    std::vector<int> labels(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      MakeInput(set, indices[at + size_t(i)], none, 0, norm, x.data() + size_t(i) * per);
      labels[size_t(i)] = set.samples[indices[at + size_t(i)]].label;
    }
    net.Forward(x, false);
    total += SoftmaxCrossEntropy(net.Output(), labels, LossOptions(), nullptr) * n;
    const Tensor& y = net.Output();
    for (int i = 0; i < n; ++i) {
      const float* z = y.data() + size_t(i) * size_t(y.c);
      pred.push_back(int(std::max_element(z, z + y.c) - z));
    }
  }
  if (loss) *loss = indices.empty() ? 0 : total / double(indices.size());
  return pred;
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return bool(f);
}

}  // namespace

Status Fit(const FitOptions& o) {
  SetThreads(Threads());
  CropSet set;
  FM_RETURN_IF_ERROR(set.Load(o.cache.empty() ? DefaultCachePath(o.size) : o.cache));
  if (set.size != o.size) return Errorf("crop cache is for ", set.size, " px, --size is ", o.size);
  std::vector<size_t> train, val, dev;
  for (size_t i = 0; i < set.samples.size(); ++i) {
    const Sample& s = set.samples[i];
    if (s.split == kTrain) train.push_back(i);
    if (s.split == kVal) val.push_back(i);
    if (s.split == kDev && s.face_px >= o.min_dev_px) dev.push_back(i);
  }
  if (o.limit > 0 && int(train.size()) > o.limit) {
    Rng r(o.seed ^ 0xABCDEFull);
    r.Shuffle(&train);
    train.resize(size_t(o.limit));
    std::sort(train.begin(), train.end());
  }
  if (train.empty() || val.empty()) return Errorf("no training or validation crops in the cache");
  int counts[kNumClasses] = {};
  for (size_t i : train) counts[set.samples[i].label]++;
  LossOptions loss_opt;
  loss_opt.label_smoothing = o.label_smoothing;
  if (o.class_weights) {
    double sum = 0;
    for (int c = 0; c < kNumClasses; ++c) {
      loss_opt.class_weights.push_back(counts[c] ? float(train.size()) / float(counts[c]) : 0.f);
      sum += loss_opt.class_weights.back();
    }
    for (float& w : loss_opt.class_weights) w = float(w * kNumClasses / sum);
  }

  std::unique_ptr<Net> net;
  InputNorm norm;
  if (o.arch == "frozen") {
    // A head on a pretrained extractor: its input size and normalisation are the model's.
    auto extractor = std::make_shared<Graph>();
    FM_RETURN_IF_ERROR(ReadModelFile(o.extractor, extractor.get()));
    Normalization n;
    FM_RETURN_IF_ERROR(ReadNormalization(*extractor, &n).Prefix(o.extractor + ": "));
    if (n.bgr || n.scale[0] != n.scale[1] || n.scale[0] != n.scale[2])
      return Errorf(o.extractor, ": the trainer needs RGB input with one norm_scale");
    norm.scale = n.scale[0];
    for (int c = 0; c < 3; ++c) norm.offset[c] = n.offset[c];
    FM_RETURN_IF_ERROR(BuildFrozenHead(extractor, o.hidden, kNumClasses, o.dropout, o.seed, &net));
    if (net->in_h != o.size)
      return Errorf(o.extractor, ": input is ", net->in_h, " px but the crop cache is ", o.size);
  } else if (o.arch == "original") {
    net = BuildOriginal(o.size, kNumClasses, o.seed);
  } else {
    net = BuildMobile(o.size, o.width, kNumClasses, o.dropout, o.seed);
  }
  auto frozen_status = [&]() {
    auto* f = dynamic_cast<Frozen*>(net->layers.front().get());
    return f ? f->status() : Status::Ok();
  };
  std::printf(
      "fit: %s %dpx width %.2f: %lld parameters, %.2f M MACs; train %zu (mask %d, no mask "
      "%d, incorrect %d), val %zu, scenes dev >= %d px %zu; %d threads\n",
      o.arch.c_str(), o.size, double(o.width), (long long)net->NumParams(),
      double(net->Macs()) / 1e6, train.size(), counts[0], counts[1], counts[2], val.size(),
      o.min_dev_px, dev.size(), Threads());
  if (!loss_opt.class_weights.empty())
    std::printf("  class weights %.3f %.3f %.3f\n", double(loss_opt.class_weights[0]),
                double(loss_opt.class_weights[1]), double(loss_opt.class_weights[2]));
  std::fflush(stdout);

  Optimizer opt(net->Params(), o.opt);
  const size_t per = size_t(o.size) * size_t(o.size) * 3;
  const int steps_per_epoch = int((train.size() + size_t(o.batch) - 1) / size_t(o.batch));
  std::vector<EpochStats> history;
  std::vector<std::vector<float>> best;
  double best_score = -1, best_loss = 1e30;
  int best_epoch = 0;
  Rng order_rng(o.seed);
  const double t_start = Now();
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const double t0 = Now();
    std::vector<size_t> order = train;
    order_rng.Shuffle(&order);
    EpochStats st;
    st.epoch = epoch;
    double loss_sum = 0;
    int correct = 0;
    for (int step = 0; step < steps_per_epoch; ++step) {
      const size_t at = size_t(step) * size_t(o.batch);
      const int n = int(std::min(order.size() - at, size_t(o.batch)));
      if (n < 2) continue;  // batch-norm needs more than one sample
      Tensor x(n, o.size, o.size, 3);
      std::vector<int> labels(static_cast<size_t>(n));
      ParallelFor(n, [&](int b, int e, int) {
        for (int i = b; i < e; ++i) {
          const size_t idx = order[at + size_t(i)];
          MakeInput(set, idx, o.aug, Mix(o.seed, uint64_t(epoch), idx), norm,
                    x.data() + size_t(i) * per);
        }
      });
      for (int i = 0; i < n; ++i) labels[size_t(i)] = set.samples[order[at + size_t(i)]].label;
      net->Forward(x, true);
      Tensor dlogits;
      loss_sum += SoftmaxCrossEntropy(net->Output(), labels, loss_opt, &dlogits) * n;
      const Tensor& y = net->Output();
      for (int i = 0; i < n; ++i) {
        const float* z = y.data() + size_t(i) * size_t(y.c);
        correct += int(std::max_element(z, z + y.c) - z) == labels[size_t(i)];
      }
      net->Backward(dlogits);
      const float progress = float(epoch - 1) + float(step) / float(steps_per_epoch);
      st.lr = ScheduledLr(o.opt.lr, progress, o.warmup, float(o.epochs));
      opt.Step(float(st.lr));
    }
    st.train_loss = loss_sum / double(train.size());
    st.train_acc = double(correct) / double(train.size());
    Confusion cv, cd;
    std::vector<int> pv = Predict(*net, set, val, norm, &st.val_loss);
    for (size_t i = 0; i < val.size(); ++i) cv.Add(set.samples[val[i]].label, pv[i]);
    std::vector<int> pd = Predict(*net, set, dev, norm, nullptr);
    for (size_t i = 0; i < dev.size(); ++i) cd.Add(set.samples[dev[i]].label, pd[i]);
    FM_RETURN_IF_ERROR(frozen_status());
    st.val_bacc = cv.BalancedAccuracy();
    st.dev_bacc = cd.BalancedAccuracy();
    st.seconds = Now() - t0;
    history.push_back(st);
    const bool improved = st.val_bacc > best_score + 1e-9 ||
                          (st.val_bacc > best_score - 1e-9 && st.val_loss < best_loss);
    if (improved) {
      best_score = st.val_bacc;
      best_loss = st.val_loss;
      best_epoch = epoch;
      best = net->Snapshot();
    }
    std::printf(
        "epoch %2d  lr %.5f  loss %.4f  acc %.2f%%  val loss %.4f  val bacc %.2f%%  "
        "scenes dev bacc %.2f%%  %.1f s%s\n",
        epoch, st.lr, st.train_loss, 100 * st.train_acc, st.val_loss, 100 * st.val_bacc,
        100 * st.dev_bacc, st.seconds, improved ? "  *" : "");
    std::fflush(stdout);
    if (o.patience > 0 && epoch - best_epoch >= o.patience) {
      std::printf("early stop: no validation improvement for %d epochs\n", o.patience);
      break;
    }
  }
  const double train_seconds = Now() - t_start;
  net->Restore(best);
  std::printf("best epoch %d (val balanced accuracy %.2f%%); training took %.1f min\n", best_epoch,
              100 * best_score, train_seconds / 60);

  // Export, then measure the exported file through the engine.
  ExportOptions eo;
  eo.norm_scale = norm.scale;
  eo.norm_offset = {norm.offset[0]};
  if (norm.offset[1] != norm.offset[0] || norm.offset[2] != norm.offset[0])
    eo.norm_offset = {norm.offset[0], norm.offset[1], norm.offset[2]};
  eo.crop_margin = set.margin;
  eo.fp16 = o.fp16;
  std::ostringstream desc;
  desc << "fm_train fit --arch " << o.arch << " --size " << o.size;
  if (o.arch == "frozen")
    desc << " --extractor " << o.extractor.substr(o.extractor.rfind('/') + 1) << " --hidden "
         << o.hidden;
  else
    desc << " --width " << o.width;
  desc << " --seed " << o.seed << "; best epoch " << best_epoch;
  eo.extra_metadata = {{"trained_by", desc.str()}};
  auto graph = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ExportGraph(*net, eo, graph.get()));
  if (!o.out.empty()) {
    FM_RETURN_IF_ERROR(WriteModelFile(*graph, o.out));
    std::printf("wrote %s\n", o.out.c_str());
  }
  // Trainer vs engine on a few validation crops.
  {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    FM_RETURN_IF_ERROR(Runtime::Create(graph, ro, &rt));
    const size_t n = std::min<size_t>(val.size(), 32);
    AugmentOptions none;
    none.enabled = false;
    Tensor x(int(n), o.size, o.size, 3);
    for (size_t i = 0; i < n; ++i) MakeInput(set, val[i], none, 0, norm, x.data() + i * per);
    net->Forward(x, false);
    std::vector<float> probs;
    Softmax(net->Output(), &probs);
    float maxdiff = 0;
    for (size_t i = 0; i < n; ++i) {
      std::copy(x.data() + i * per, x.data() + (i + 1) * per, rt->input(0));
      FM_RETURN_IF_ERROR(rt->Run());
      for (int c = 0; c < kNumClasses; ++c)
        maxdiff =
            std::max(maxdiff, std::fabs(rt->output(0)[c] - probs[i * kNumClasses + size_t(c)]));
    }
    std::printf("trainer vs engine (XNNPACK) on %zu crops: max |diff| of probabilities %.2e\n", n,
                double(maxdiff));
  }
  EvalResult er;
  FM_RETURN_IF_ERROR(EvalWithEngine(graph, set, Backend::kXnnpack, o.min_dev_px, &er));
  std::printf("%s", EvalText(er).c_str());
  std::string json = EvalJson(o.out, er);
  json.insert(json.size() - 1, ", \"train_minutes\": " + std::to_string(train_seconds / 60) +
                                   ", \"best_epoch\": " + std::to_string(best_epoch) +
                                   ", \"macs\": " + std::to_string(net->Macs()) +
                                   ", \"params\": " + std::to_string(net->NumParams()));
  std::printf("%s\n", json.c_str());
  if (!o.card_json.empty()) WriteText(o.card_json, json + "\n");
  if (!o.history_svg.empty()) WriteText(o.history_svg, HistorySvg(history, desc.str()));
  if (!o.confusion_svg.empty())
    WriteText(o.confusion_svg, ConfusionSvg({{"faces/ validation", er.faces_val},
                                             {"maskedfacenet/ validation", er.mfn_val},
                                             {"scenes/ dev crops >= 32 px", er.scenes_dev}}));
  return Status::Ok();
}

Status EvalWithEngine(std::shared_ptr<const Graph> graph, const CropSet& set, Backend backend,
                      int min_dev_px, EvalResult* out) {
  *out = EvalResult();
  const double t0 = Now();
  const Shape& in = graph->ShapeOf(graph->inputs[0]);
  if (in.size() != 4 || in[1] != set.size || in[2] != set.size || in[3] != 3)
    return Errorf("model input ", ShapeToString(in), " does not match the ", set.size,
                  " px crop cache");
  Normalization norm;
  FM_RETURN_IF_ERROR(ReadNormalization(*graph, &norm));
  std::vector<size_t> todo;
  for (size_t i = 0; i < set.samples.size(); ++i) {
    const Sample& s = set.samples[i];
    if (s.split == kVal || (s.split == kDev && s.face_px >= min_dev_px)) todo.push_back(i);
  }
  std::vector<int> pred(todo.size());
  std::vector<Status> status(static_cast<size_t>(Threads()));
  ParallelFor(int(todo.size()), [&](int b, int e, int t) {
    std::unique_ptr<Runtime> rt;
    RuntimeOptions ro;
    ro.backend = backend;
    status[size_t(t)] = Runtime::Create(graph, ro, &rt);
    if (!status[size_t(t)].ok()) return;
    const size_t per = size_t(set.size) * size_t(set.size);
    for (int j = b; j < e; ++j) {
      const uint8_t* px = set.Exact(todo[size_t(j)]);
      float* x = rt->input(0);
      for (size_t p = 0; p < per; ++p)
        for (int c = 0; c < 3; ++c) {
          const int src = norm.bgr ? 2 - c : c;
          x[p * 3 + size_t(c)] = float(px[p * 3 + size_t(src)]) * norm.scale[c] + norm.offset[c];
        }
      status[size_t(t)] = rt->Run();
      if (!status[size_t(t)].ok()) return;
      const float* y = rt->output(0);
      pred[size_t(j)] = int(std::max_element(y, y + kNumClasses) - y);
    }
  });
  for (const Status& s : status) FM_RETURN_IF_ERROR(s);
  for (size_t j = 0; j < todo.size(); ++j) {
    const Sample& s = set.samples[todo[j]];
    if (s.split == kDev) {
      out->scenes_dev.Add(s.label, pred[j]);
      continue;
    }
    out->val.Add(s.label, pred[j]);
    (s.source == kFaces ? out->faces_val : out->mfn_val).Add(s.label, pred[j]);
  }
  out->seconds = Now() - t0;
  return Status::Ok();
}

std::string EvalText(const EvalResult& r) {
  return r.faces_val.Text("faces/ validation") + r.mfn_val.Text("maskedfacenet/ validation") +
         r.val.Text("validation (both)") + r.scenes_dev.Text("scenes/ dev crops >= 32 px");
}

std::string EvalJson(const std::string& model, const EvalResult& r) {
  return "{\"eval\": \"classifier\", \"model\": \"" + model + "\", " +
         r.faces_val.Json("faces_val") + ", " + r.mfn_val.Json("maskedfacenet_val") + ", " +
         r.val.Json("val") + ", " + r.scenes_dev.Json("scenes_dev") + "}";
}

}  // namespace fm::train
