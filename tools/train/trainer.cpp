// trainer.cpp - see trainer.h.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>

#include "annotate.h"
#include "frozen.h"
#include "layers.h"
#include "loss.h"
#include "model/model_format.h"
#include "vision/pipeline.h"

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
                         const InputNorm& norm, double* loss,
                         std::vector<float>* logits = nullptr) {
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
      if (logits) logits->insert(logits->end(), z, z + y.c);
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

// The temperature T minimising the cross-entropy of softmax(logits / T) (a log-spaced search
// over 0.25..8; the loss is convex in 1/T).
float FitTemperature(const std::vector<float>& logits, const std::vector<int>& labels) {
  auto nll = [&](float t) {
    double total = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      const float* z = &logits[i * kNumClasses];
      const float m = *std::max_element(z, z + kNumClasses);
      double sum = 0;
      for (int c = 0; c < kNumClasses; ++c) sum += std::exp(double(z[c] - m) / double(t));
      total += std::log(sum) - double(z[labels[i]] - m) / double(t);
    }
    return total / double(std::max<size_t>(labels.size(), 1));
  };
  float best = 1.f;
  double best_nll = nll(1.f);
  for (int k = 0; k <= 300; ++k) {
    const float t = 0.25f * std::pow(32.f, float(k) / 300.f);
    const double v = nll(t);
    if (v < best_nll) best_nll = v, best = t;
  }
  return best;
}

namespace {

// The crops one Fit reads, by split, and the synthetic incorrectly worn masks of each epoch
// (augment.h LowerMask): entry k of an epoch's order is the composite n_real + k.
struct FitData {
  CropSet set;
  std::vector<size_t> train, val, dev;
  int counts[kNumClasses] = {};  // training crops per class, the composites included
  std::vector<size_t> bare, masked;
  int lowered = 0;    // composites per epoch
  size_t n_real = 0;  // set.samples.size()
  size_t PerEpoch() const { return train.size() + size_t(lowered); }
};

// Loads the crop cache and splits it: train (at most o.limit, a seeded subset), validation and
// scenes dev (scenes/ crops at least o.min_dev_px wide).
Status LoadFitData(const FitOptions& o, FitData* d) {
  CropSet& set = d->set;
  FM_RETURN_IF_ERROR(set.Load(o.cache.empty() ? DefaultCachePath(o.size) : o.cache));
  if (set.size != o.size) return Errorf("crop cache is for ", set.size, " px, --size is ", o.size);
  for (size_t i = 0; i < set.samples.size(); ++i) {
    const Sample& s = set.samples[i];
    if (s.split == kTrain) d->train.push_back(i);
    if (s.split == kVal && (s.source != kScenes || s.face_px >= o.min_dev_px)) d->val.push_back(i);
    if (s.split == kDev && s.face_px >= o.min_dev_px) d->dev.push_back(i);
  }
  if (o.limit > 0 && int(d->train.size()) > o.limit) {
    Rng r(o.seed ^ 0xABCDEFull);
    r.Shuffle(&d->train);
    d->train.resize(size_t(o.limit));
    std::sort(d->train.begin(), d->train.end());
  }
  if (d->train.empty() || d->val.empty())
    return Errorf("no training or validation crops in the cache");
  for (size_t i : d->train) d->counts[set.samples[i].label]++;
  LowerMaskPools(set, d->train, &d->bare, &d->masked);
  d->lowered = d->bare.empty() || d->masked.empty() ? 0 : o.lowered;
  d->counts[kIncorrect] += d->lowered;
  d->n_real = set.samples.size();
  return Status::Ok();
}

// Entry idx of an epoch's order -> the crop to augment (*base) and, for a composite, the crop
// whose mask it wears (else -1).
long PartnerOf(const FitData& d, uint64_t seed, int epoch, size_t idx, size_t* base) {
  if (idx < d.n_real) {
    *base = idx;
    return -1;
  }
  Rng r(Mix(seed ^ 0x10E4ull, uint64_t(epoch), idx));
  *base = d.bare[r.Next() % d.bare.size()];
  return long(d.masked[r.Next() % d.masked.size()]);
}

// Label smoothing, and inverse class frequency weights normalised to mean 1.
LossOptions FitLossOptions(const FitOptions& o, const FitData& d) {
  LossOptions loss_opt;
  loss_opt.label_smoothing = o.label_smoothing;
  if (!o.class_weights) return loss_opt;
  double sum = 0;
  for (int c = 0; c < kNumClasses; ++c) {
    loss_opt.class_weights.push_back(d.counts[c] ? float(d.PerEpoch()) / float(d.counts[c]) : 0.f);
    sum += loss_opt.class_weights.back();
  }
  for (float& w : loss_opt.class_weights) w = float(w * kNumClasses / sum);
  return loss_opt;
}

// The net of o.arch and the input normalisation it trains with.
Status BuildFitNet(const FitOptions& o, std::unique_ptr<Net>* net, InputNorm* norm) {
  if (o.arch == "frozen") {
    // A head on a pretrained extractor: its input size and normalisation are the model's.
    auto extractor = std::make_shared<Graph>();
    FM_RETURN_IF_ERROR(ReadModelFile(o.extractor, extractor.get()));
    Normalization n;
    FM_RETURN_IF_ERROR(ReadNormalization(*extractor, &n).Prefix(o.extractor + ": "));
    if (n.bgr || n.scale[0] != n.scale[1] || n.scale[0] != n.scale[2])
      return Errorf(o.extractor, ": the trainer needs RGB input with one norm_scale");
    norm->scale = n.scale[0];
    for (int c = 0; c < 3; ++c) norm->offset[c] = n.offset[c];
    FM_RETURN_IF_ERROR(BuildFrozenHead(extractor, o.hidden, kNumClasses, o.dropout, o.seed, net));
    if ((*net)->in_h != o.size)
      return Errorf(o.extractor, ": input is ", (*net)->in_h, " px but the crop cache is ", o.size);
  } else if (o.arch == "original") {
    *net = BuildOriginal(o.size, kNumClasses, o.seed);
  } else {
    *net = BuildMobile(o.size, o.width, kNumClasses, o.dropout, o.seed);
  }
  return Status::Ok();
}

void PrintFitHeader(const FitOptions& o, const FitData& d, Net& net, const LossOptions& loss_opt) {
  std::printf(
      "fit: %s %dpx width %.2f: %lld parameters, %.2f M MACs; train %zu (mask %d, no mask "
      "%d, incorrect %d of which %d lowered-mask composites per epoch), val %zu, scenes dev >= %d "
      "px %zu; %d threads\n",
      o.arch.c_str(), o.size, double(o.width), (long long)net.NumParams(), double(net.Macs()) / 1e6,
      d.PerEpoch(), d.counts[0], d.counts[1], d.counts[2], d.lowered, d.val.size(), o.min_dev_px,
      d.dev.size(), Threads());
  if (!loss_opt.class_weights.empty())
    std::printf("  class weights %.3f %.3f %.3f\n", double(loss_opt.class_weights[0]),
                double(loss_opt.class_weights[1]), double(loss_opt.class_weights[2]));
  std::fflush(stdout);
}

// What the steps of one Fit share.
struct FitRun {
  const FitOptions& o;
  const FitData& d;
  const InputNorm& norm;
  const LossOptions& loss;
  Net& net;
  Optimizer& opt;
};

// What Fit found: the history, the best epoch (its weights are the net's after TrainEpochs) and
// the calibration written to the model.
struct FitOutcome {
  std::vector<EpochStats> history;
  int best_epoch = 0;
  double best_score = -1;
  double train_seconds = 0;
  float temperature = 1.f;
  float unsure_below = -1.f;
};

// A frozen extractor's forward cannot return a status: it keeps its first error.
Status FrozenStatus(Net& net) {
  auto* f = dynamic_cast<Frozen*>(net.layers.front().get());
  return f ? f->status() : Status::Ok();
}

// Batch `step` of an epoch's order: augmented inputs, forward, loss, backward, an optimiser step
// at the scheduled learning rate. Adds the batch's loss (times its size) and right labels.
void TrainStep(const FitRun& f, const std::vector<size_t>& order, int epoch, int step,
               int steps_per_epoch, double* loss_sum, int* correct, EpochStats* st) {
  const FitOptions& o = f.o;
  const size_t per = size_t(o.size) * size_t(o.size) * 3;
  const size_t at = size_t(step) * size_t(o.batch);
  const int n = int(std::min(order.size() - at, size_t(o.batch)));
  if (n < 2) return;  // batch-norm needs more than one sample
  Tensor x(n, o.size, o.size, 3);
  std::vector<int> labels(static_cast<size_t>(n));
  ParallelFor(n, [&](int b, int e, int) {
    for (int i = b; i < e; ++i) {
      const size_t idx = order[at + size_t(i)];
      size_t base = 0;
      const long partner = PartnerOf(f.d, o.seed, epoch, idx, &base);
      MakeInput(f.d.set, base, o.aug, Mix(o.seed, uint64_t(epoch), idx), f.norm,
                x.data() + size_t(i) * per, partner);
    }
  });
  for (int i = 0; i < n; ++i) {
    const size_t idx = order[at + size_t(i)];
    labels[size_t(i)] = idx < f.d.n_real ? f.d.set.samples[idx].label : int(kIncorrect);
  }
  f.net.Forward(x, true);
  Tensor dlogits;
  *loss_sum += SoftmaxCrossEntropy(f.net.Output(), labels, f.loss, &dlogits) * n;
  const Tensor& y = f.net.Output();
  for (int i = 0; i < n; ++i) {
    const float* z = y.data() + size_t(i) * size_t(y.c);
    *correct += int(std::max_element(z, z + y.c) - z) == labels[size_t(i)];
  }
  f.net.Backward(dlogits);
  const float progress = float(epoch - 1) + float(step) / float(steps_per_epoch);
  st->lr = ScheduledLr(o.opt.lr, progress, o.warmup, float(o.epochs));
  f.opt.Step(float(st->lr));
}

// One epoch's steps over a fresh shuffle (from order_rng) of the training crops and composites;
// fills st's learning rate, training loss and accuracy.
void TrainEpoch(const FitRun& f, int epoch, Rng* order_rng, EpochStats* st) {
  std::vector<size_t> order = f.d.train;
  for (int k = 0; k < f.d.lowered; ++k) order.push_back(f.d.n_real + size_t(k));
  order_rng->Shuffle(&order);
  const size_t per_epoch = f.d.PerEpoch();
  const int steps_per_epoch = int((per_epoch + size_t(f.o.batch) - 1) / size_t(f.o.batch));
  double loss_sum = 0;
  int correct = 0;
  for (int step = 0; step < steps_per_epoch; ++step)
    TrainStep(f, order, epoch, step, steps_per_epoch, &loss_sum, &correct, st);
  st->train_loss = loss_sum / double(per_epoch);
  st->train_acc = double(correct) / double(per_epoch);
}

// The epoch's validation loss and balanced accuracies on validation and scenes dev.
Status ValidateEpoch(const FitRun& f, EpochStats* st) {
  const CropSet& set = f.d.set;
  Confusion cv, cd;
  std::vector<int> pv = Predict(f.net, set, f.d.val, f.norm, &st->val_loss);
  for (size_t i = 0; i < f.d.val.size(); ++i) cv.Add(set.samples[f.d.val[i]].label, pv[i]);
  std::vector<int> pd = Predict(f.net, set, f.d.dev, f.norm, nullptr);
  for (size_t i = 0; i < f.d.dev.size(); ++i) cd.Add(set.samples[f.d.dev[i]].label, pd[i]);
  FM_RETURN_IF_ERROR(FrozenStatus(f.net));
  st->val_bacc = cv.BalancedAccuracy();
  st->dev_bacc = cd.BalancedAccuracy();
  return Status::Ok();
}

// The epochs, each validated; early stopping after o.patience epochs without improvement of
// validation balanced accuracy (ties: lower validation loss). Leaves the best epoch in the net.
Status TrainEpochs(const FitRun& f, FitOutcome* r) {
  const FitOptions& o = f.o;
  std::vector<std::vector<float>> best;
  double best_loss = 1e30;
  Rng order_rng(o.seed);
  const double t_start = Now();
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const double t0 = Now();
    EpochStats st;
    st.epoch = epoch;
    TrainEpoch(f, epoch, &order_rng, &st);
    FM_RETURN_IF_ERROR(ValidateEpoch(f, &st));
    st.seconds = Now() - t0;
    r->history.push_back(st);
    const bool improved = st.val_bacc > r->best_score + 1e-9 ||
                          (st.val_bacc > r->best_score - 1e-9 && st.val_loss < best_loss);
    if (improved) {
      r->best_score = st.val_bacc;
      best_loss = st.val_loss;
      r->best_epoch = epoch;
      best = f.net.Snapshot();
    }
    std::printf(
        "epoch %2d  lr %.5f  loss %.4f  acc %.2f%%  val loss %.4f  val bacc %.2f%%  "
        "scenes dev bacc %.2f%%  %.1f s%s\n",
        epoch, st.lr, st.train_loss, 100 * st.train_acc, st.val_loss, 100 * st.val_bacc,
        100 * st.dev_bacc, st.seconds, improved ? "  *" : "");
    std::fflush(stdout);
    if (o.patience > 0 && epoch - r->best_epoch >= o.patience) {
      std::printf("early stop: no validation improvement for %d epochs\n", o.patience);
      break;
    }
  }
  r->train_seconds = Now() - t_start;
  f.net.Restore(best);
  std::printf("best epoch %d (val balanced accuracy %.2f%%); training took %.1f min\n",
              r->best_epoch, 100 * r->best_score, r->train_seconds / 60);
  return Status::Ok();
}

// Temperature scaling: the labels do not change, the probabilities say how often they are right.
// T is fitted on validation and folded into the last (dense) layer.
Status Calibrate(const FitRun& f, float* temperature) {
  std::vector<float> logits;
  Predict(f.net, f.d.set, f.d.val, f.norm, nullptr, &logits);
  std::vector<int> truth;
  for (size_t i : f.d.val) truth.push_back(f.d.set.samples[i].label);
  *temperature = FitTemperature(logits, truth);
  auto* last = dynamic_cast<Dense*>(f.net.layers.back().get());
  if (!last) return Errorf("calibration needs a dense last layer");
  for (float& v : last->w.value) v /= *temperature;
  for (float& v : last->b.value) v /= *temperature;
  std::printf("temperature %.3f (fitted on %zu validation crops)\n", double(*temperature),
              f.d.val.size());
  return Status::Ok();
}

// The validation crops' calibrated top probabilities, then UnsureBelow's rule.
float ChooseUnsureBelow(const FitRun& f) {
  std::vector<float> logits;
  std::vector<int> pred = Predict(f.net, f.d.set, f.d.val, f.norm, nullptr, &logits);
  Calibration cal;
  for (size_t i = 0; i < f.d.val.size(); ++i) {
    const float* z = &logits[i * kNumClasses];
    const float m = *std::max_element(z, z + kNumClasses);
    float sum = 0;
    for (int c = 0; c < kNumClasses; ++c) sum += std::exp(z[c] - m);
    cal.Add(std::exp(z[pred[i]] - m) / sum, pred[i] == f.d.set.samples[f.d.val[i]].label);
  }
  const float unsure_below = UnsureBelow(cal);
  std::printf("unsure_below %.1f (validation: bins at or above it are >= 90%% right)\n",
              double(unsure_below));
  return unsure_below;
}

// The model's normalisation, crop margin, weight type and metadata; *desc: its trained_by line.
ExportOptions FitExportOptions(const FitRun& f, const FitOutcome& r, std::string* desc) {
  const FitOptions& o = f.o;
  ExportOptions eo;
  eo.norm_scale = f.norm.scale;
  eo.norm_offset = {f.norm.offset[0]};
  if (f.norm.offset[1] != f.norm.offset[0] || f.norm.offset[2] != f.norm.offset[0])
    eo.norm_offset = {f.norm.offset[0], f.norm.offset[1], f.norm.offset[2]};
  eo.crop_margin = f.d.set.margin;
  eo.fp16 = o.fp16;
  std::ostringstream d;
  d << "fm_train fit --arch " << o.arch << " --size " << o.size;
  if (o.arch == "frozen")
    d << " --extractor " << o.extractor.substr(o.extractor.rfind('/') + 1) << " --hidden "
      << o.hidden;
  else
    d << " --width " << o.width;
  d << " --seed " << o.seed << " --lowered " << o.lowered << " --cast " << o.aug.cast
    << " --epochs " << o.epochs << "; best epoch " << r.best_epoch;
  char num[32];
  std::snprintf(num, sizeof num, "%.3f", double(r.temperature));
  d << ", temperature " << num;
  std::snprintf(num, sizeof num, "%g", double(r.unsure_below));
  *desc = d.str();
  eo.extra_metadata = {{"trained_by", *desc}, {"unsure_below", num}};
  return eo;
}

// Exports the net; with o.out, writes the file and returns it as read back, so that everything
// after measures the file as written (float16 weights rounded), not the graph in memory: a
// borderline crop can change its label with the rounding.
Status ExportFitted(const FitRun& f, const ExportOptions& eo, std::shared_ptr<Graph>* graph) {
  *graph = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ExportGraph(f.net, eo, graph->get()));
  if (f.o.out.empty()) return Status::Ok();
  FM_RETURN_IF_ERROR(WriteModelFile(**graph, f.o.out));
  std::printf("wrote %s\n", f.o.out.c_str());
  auto written = std::make_shared<Graph>();
  FM_RETURN_IF_ERROR(ReadModelFile(f.o.out, written.get()));
  *graph = written;
  return Status::Ok();
}

// Trainer vs engine on a few validation crops: the largest difference of their probabilities.
Status CompareWithEngine(const FitRun& f, const std::shared_ptr<Graph>& graph) {
  const FitOptions& o = f.o;
  std::unique_ptr<Runtime> rt;
  RuntimeOptions ro;
  FM_RETURN_IF_ERROR(Runtime::Create(graph, ro, &rt));
  const size_t n = std::min<size_t>(f.d.val.size(), 32);
  const size_t per = size_t(o.size) * size_t(o.size) * 3;
  AugmentOptions none;
  none.enabled = false;
  Tensor x(int(n), o.size, o.size, 3);
  for (size_t i = 0; i < n; ++i)
    MakeInput(f.d.set, f.d.val[i], none, 0, f.norm, x.data() + i * per);
  f.net.Forward(x, false);
  std::vector<float> probs;
  Softmax(f.net.Output(), &probs);
  float maxdiff = 0;
  for (size_t i = 0; i < n; ++i) {
    std::copy(x.data() + i * per, x.data() + (i + 1) * per, rt->input(0));
    FM_RETURN_IF_ERROR(rt->Run());
    for (int c = 0; c < kNumClasses; ++c)
      maxdiff = std::max(maxdiff, std::fabs(rt->output(0)[c] - probs[i * kNumClasses + size_t(c)]));
  }
  std::printf("trainer vs engine (XNNPACK) on %zu crops: max |diff| of probabilities %.2e\n", n,
              double(maxdiff));
  return Status::Ok();
}

// The exported model measured by the engine: printed, then the card JSON and the plots asked for.
Status ReportEngineEval(const FitRun& f, const FitOutcome& r, const std::string& desc,
                        const std::shared_ptr<Graph>& graph) {
  const FitOptions& o = f.o;
  EvalResult er;
  FM_RETURN_IF_ERROR(EvalWithEngine(graph, f.d.set, Backend::kXnnpack, o.min_dev_px, &er));
  std::printf("%s", EvalText(er).c_str());
  std::string json = EvalJson(o.out, er, r.unsure_below);
  json.insert(json.size() - 1, ", \"train_minutes\": " + std::to_string(r.train_seconds / 60) +
                                   ", \"best_epoch\": " + std::to_string(r.best_epoch) +
                                   ", \"temperature\": " + std::to_string(r.temperature) +
                                   ", \"macs\": " + std::to_string(f.net.Macs()) +
                                   ", \"params\": " + std::to_string(f.net.NumParams()));
  std::printf("%s\n", json.c_str());
  if (!o.card_json.empty()) WriteText(o.card_json, json + "\n");
  if (!o.history_svg.empty()) WriteText(o.history_svg, HistorySvg(r.history, desc));
  if (!o.confusion_svg.empty())
    WriteText(o.confusion_svg, ConfusionSvg({{"faces/ validation", er.faces_val},
                                             {"maskedfacenet/ validation", er.mfn_val},
                                             {"scenes/ val crops >= 32 px", er.scenes_val},
                                             {"scenes/ dev crops >= 32 px", er.scenes_dev}}));
  if (!o.reliability_svg.empty())
    WriteText(o.reliability_svg,
              ReliabilitySvg({{"validation (faces/, maskedfacenet/, scenes/)", er.cal_val},
                              {"scenes/ dev crops >= 32 px", er.cal_dev}}));
  return Status::Ok();
}

}  // namespace

// Load and split the crops, build the net, train (early stopping), calibrate, export, measure the
// exported file through the engine.
Status Fit(const FitOptions& o) {
  SetThreads(Threads());
  FitData d;
  FM_RETURN_IF_ERROR(LoadFitData(o, &d));
  const LossOptions loss_opt = FitLossOptions(o, d);
  std::unique_ptr<Net> net;
  InputNorm norm;
  FM_RETURN_IF_ERROR(BuildFitNet(o, &net, &norm));
  PrintFitHeader(o, d, *net, loss_opt);
  Optimizer opt(net->Params(), o.opt);
  const FitRun f{o, d, norm, loss_opt, *net, opt};
  FitOutcome r;
  FM_RETURN_IF_ERROR(TrainEpochs(f, &r));
  if (o.calibrate) FM_RETURN_IF_ERROR(Calibrate(f, &r.temperature));
  r.unsure_below = o.unsure_below < 0 ? ChooseUnsureBelow(f) : o.unsure_below;
  std::string desc;
  const ExportOptions eo = FitExportOptions(f, r, &desc);
  std::shared_ptr<Graph> graph;
  FM_RETURN_IF_ERROR(ExportFitted(f, eo, &graph));
  FM_RETURN_IF_ERROR(CompareWithEngine(f, graph));
  return ReportEngineEval(f, r, desc, graph);
}

Status EvalWithEngine(std::shared_ptr<const Graph> graph, const CropSet& set, Backend backend,
                      int min_dev_px, EvalResult* out, bool flip) {
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
    if ((s.split == kVal && (s.source != kScenes || s.face_px >= min_dev_px)) ||
        (s.split == kDev && s.face_px >= min_dev_px))
      todo.push_back(i);
  }
  std::vector<int> pred(todo.size());
  std::vector<float> top(todo.size());
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
      float avg[kNumClasses] = {};
      for (int pass = 0; pass < (flip ? 2 : 1); ++pass) {
        float* x = rt->input(0);
        for (size_t p = 0; p < per; ++p) {
          // pass 1: the mirror image (column x reads column size - 1 - x)
          const size_t row = p / size_t(set.size), col = p % size_t(set.size);
          const size_t q = pass ? row * size_t(set.size) + size_t(set.size) - 1 - col : p;
          for (int c = 0; c < 3; ++c) {
            const int src = norm.bgr ? 2 - c : c;
            x[p * 3 + size_t(c)] = float(px[q * 3 + size_t(src)]) * norm.scale[c] + norm.offset[c];
          }
        }
        status[size_t(t)] = rt->Run();
        if (!status[size_t(t)].ok()) return;
        for (int c = 0; c < kNumClasses; ++c) avg[c] += rt->output(0)[c] / (flip ? 2.f : 1.f);
      }
      const float* y = avg;
      pred[size_t(j)] = int(std::max_element(y, y + kNumClasses) - y);
      top[size_t(j)] = y[pred[size_t(j)]];
    }
  });
  for (const Status& s : status) FM_RETURN_IF_ERROR(s);
  for (size_t j = 0; j < todo.size(); ++j) {
    const Sample& s = set.samples[todo[j]];
    if (s.split == kDev) {
      out->scenes_dev.Add(s.label, pred[j]);
      out->cal_dev.Add(top[j], pred[j] == s.label);
      if (pred[j] != s.label) out->dev_errors.push_back({todo[j], pred[j], top[j]});
      continue;
    }
    out->val.Add(s.label, pred[j]);
    out->cal_val.Add(top[j], pred[j] == s.label);
    (s.source == kFaces    ? out->faces_val
     : s.source == kScenes ? out->scenes_val
                           : out->mfn_val)
        .Add(s.label, pred[j]);
  }
  out->seconds = Now() - t0;
  return Status::Ok();
}

std::vector<Calibration::Bin> Calibration::Bins(int bins) const {
  std::vector<Bin> out(static_cast<size_t>(bins));
  for (size_t i = 0; i < top.size(); ++i) {
    Bin& b = out[size_t(std::min(bins - 1, std::max(0, int(top[i] * float(bins)))))];
    b.n++, b.right += right[i], b.confidence += top[i];
  }
  return out;
}

double Calibration::Ece(int bins) const {
  double ece = 0;
  for (const Bin& b : Bins(bins)) ece += std::fabs(b.right - b.confidence);
  return top.empty() ? 0 : ece / double(top.size());
}

void Calibration::Split(float cut, int* sure, double* sure_acc, int* unsure,
                        double* unsure_acc) const {
  int ns = 0, nu = 0, rs = 0, ru = 0;
  for (size_t i = 0; i < top.size(); ++i)
    if (top[i] >= cut)
      ns++, rs += right[i];
    else
      nu++, ru += right[i];
  *sure = ns, *unsure = nu;
  *sure_acc = ns ? double(rs) / ns : 0;
  *unsure_acc = nu ? double(ru) / nu : 0;
}

float UnsureBelow(const Calibration& c) {
  const std::vector<Calibration::Bin> bins = c.Bins(10);
  int cut = 10;  // lowest bin from which every populated bin up is >= 90% right
  for (int b = 9; b >= 5; --b) {
    const Calibration::Bin& bin = bins[size_t(b)];
    if (bin.n >= 5 && bin.right < 0.9 * bin.n) break;
    cut = b;
  }
  return std::min(0.9f, float(cut) / 10.f);
}

namespace {
std::string CalibrationJson(const std::string& key, const Calibration& c, float cut) {
  int ns, nu;
  double as, au;
  c.Split(cut, &ns, &as, &nu, &au);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"%s\": {\"ece\": %.4f, \"n\": %zu, \"unsure\": %d, \"sure_accuracy\": %.4f, "
                "\"unsure_accuracy\": %.4f}",
                key.c_str(), c.Ece(), c.top.size(), nu, as, au);
  return buf;
}
}  // namespace

std::string EvalText(const EvalResult& r) {
  std::string out =
      r.faces_val.Text("faces/ validation") + r.mfn_val.Text("maskedfacenet/ validation") +
      r.scenes_val.Text("scenes/ validation crops >= 32 px") + r.val.Text("validation (all)") +
      r.scenes_dev.Text("scenes/ dev crops >= 32 px");
  char buf[160];
  std::snprintf(buf, sizeof buf, "expected calibration error: validation %.4f, scenes dev %.4f\n",
                r.cal_val.Ece(), r.cal_dev.Ece());
  return out + buf;
}

std::string EvalJson(const std::string& model, const EvalResult& r, float unsure_below) {
  return "{\"eval\": \"classifier\", \"model\": \"" + model + "\", " +
         r.faces_val.Json("faces_val") + ", " + r.mfn_val.Json("maskedfacenet_val") + ", " +
         r.scenes_val.Json("scenes_val") + ", " + r.val.Json("val") + ", " +
         r.scenes_dev.Json("scenes_dev") + ", \"unsure_below\": " + std::to_string(unsure_below) +
         ", \"unsure_below_by_rule\": " + std::to_string(UnsureBelow(r.cal_val)) + ", " +
         CalibrationJson("calibration_val", r.cal_val, unsure_below) + ", " +
         CalibrationJson("calibration_dev", r.cal_dev, unsure_below) + "}";
}

std::string ErrorsSvg(const CropSet& set, const EvalResult& r) {
  const int cell = 128, cols = 6, label_h = 34;
  const int rows = int((r.dev_errors.size() + cols - 1) / cols);
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << cols * cell << "' height='"
    << std::max(1, rows) * (cell + label_h) + 24
    << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' "
       "fill='white'/>\n<text x='4' y='16'>scenes/ dev crops the classifier labels wrong ("
    << r.dev_errors.size() << " of " << r.scenes_dev.Total()
    << "): truth, then predicted and its probability</text>\n";
  static const char* kShort[] = {"mask", "no mask", "incorrect"};
  for (size_t k = 0; k < r.dev_errors.size(); ++k) {
    const auto& e = r.dev_errors[k];
    const std::string uri = JpegDataUri(set.Exact(e.index), set.size, set.size, 90);
    const Sample& s = set.samples[e.index];
    const int x = int(k % cols) * cell, y = 24 + int(k / cols) * (cell + label_h);
    o << "<image x='" << x + 4 << "' y='" << y << "' width='" << cell - 8 << "' height='"
      << cell - 8 << "' style='image-rendering:pixelated' href='" << uri << "'/>\n";
    char text[96];
    std::snprintf(text, sizeof text, "%s -&gt; %s %.0f%%", kShort[s.label], kShort[e.pred],
                  double(e.prob) * 100);
    o << "<text x='" << x + 4 << "' y='" << y + cell + 4 << "'>" << text << "</text>\n";
    o << "<text x='" << x + 4 << "' y='" << y + cell + 18 << "' font-size='9' fill='#555'>"
      << s.name.substr(s.name.rfind('/') + 1, 24) << " (" << s.face_px << " px)</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string ReliabilitySvg(const std::vector<std::pair<std::string, Calibration>>& sets) {
  const int bins = 10, w = 300, h = 300, pad = 50, gap = 40;
  const int W = int(sets.size()) * (w + pad + gap) + pad, H = h + 2 * pad + 20;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' "
       "fill='white'/>\n";
  for (size_t k = 0; k < sets.size(); ++k) {
    const Calibration& c = sets[k].second;
    const int x0 = pad + int(k) * (w + pad + gap), y0 = pad;
    const std::vector<Calibration::Bin> bin = c.Bins(bins);
    char title[200];
    std::snprintf(title, sizeof title, "%s: ECE %.3f (n=%zu)", sets[k].first.c_str(), c.Ece(),
                  c.top.size());
    o << "<text x='" << x0 << "' y='" << y0 - 15 << "'>" << title << "</text>\n";
    o << "<rect x='" << x0 << "' y='" << y0 << "' width='" << w << "' height='" << h
      << "' fill='none' stroke='#888'/>\n";
    o << "<line x1='" << x0 << "' y1='" << y0 + h << "' x2='" << x0 + w << "' y2='" << y0
      << "' stroke='#888' stroke-dasharray='4,3'/>\n";
    for (int b = 0; b < bins; ++b) {
      if (!bin[size_t(b)].n) continue;
      const double a = bin[size_t(b)].right / bin[size_t(b)].n;
      const int bx = x0 + b * w / bins, bw = w / bins - 2, bh = int(a * h);
      o << "<rect x='" << bx + 1 << "' y='" << y0 + h - bh << "' width='" << bw << "' height='"
        << bh << "' fill='#4575b4' fill-opacity='0.75'/>\n";
      o << "<text x='" << bx + w / bins / 2 << "' y='" << y0 + h - bh - 3
        << "' text-anchor='middle' font-size='9'>" << bin[size_t(b)].n << "</text>\n";
    }
    for (int t = 0; t <= 10; t += 2) {
      o << "<text x='" << x0 + t * w / 10 << "' y='" << y0 + h + 15 << "' text-anchor='middle'>"
        << t / 10.0 << "</text>\n";
      o << "<text x='" << x0 - 5 << "' y='" << y0 + h - t * h / 10 + 4 << "' text-anchor='end'>"
        << t / 10.0 << "</text>\n";
    }
    o << "<text x='" << x0 + w / 2 << "' y='" << y0 + h + 32
      << "' text-anchor='middle'>top probability (bars: accuracy per bin, count above)</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace fm::train
