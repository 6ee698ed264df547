// main.cpp - fm_train, the native trainer of the mask classifier.
//   fm_train crops [--data DIR] [--detector F.fmm | --no-detector] [--size 64] [--context 1.5]
//                  [--margin 1.3] [--min-scene-px 16] [--limit N] [--cache FILE]
//   fm_train fit   [--arch mobile|original|frozen] [--extractor F.fmm] [--hidden N] [--size 64]
//   [--width 1] [--epochs 30] [--batch 64]
//                  [--seed 1] [--optimizer adam|sgd] [--lr 2e-3] [--weight-decay 1e-4]
//                  [--label-smoothing 0.05] [--no-class-weights] [--patience 8] [--dropout 0.2]
//                  [--limit N] [--no-augment] [--fp16] [--cache FILE] [--out model.fmm]
//                  [--history h.svg] [--confusion c.svg] [--reliability r.svg] [--json card.json]
//                  [--lowered N] [--cast P] [--unsure-below P (default: from val)] [--no-calibrate]
//   fm_train eval  MODEL.fmm [--cache FILE] [--reference] [--flip] [--errors dev-errors.svg]
//   fm_train preview [--size 64] [--cache FILE] [--count 64] [--seed 1] [--lowered N] --out g.ppm
//   fm_train detector [--init model/blazeface-full.fmm] [--scenes ../shared/data/scenes]
//                  [--steps 3000] [--batch 16] [--lr 3e-4] [--weight-decay 1e-5] [--warmup 100]
//                  [--seed 1] [--from-scratch] [--fp32] [--json log.json] --out detector.fmm
//                  [--faces ../shared/data/faces [--paste-faces 800]] [--min-tile T]
//                  (--faces: paste faces from there into views; off by default, model/README.md)
//   fm_train detector --preview views.png   (16 augmented views with their faces drawn)
//   fm_train detector --retune --init trained.fmm --out out.fmm   (thresholds only)
//   fm_train detector --retune --init a.fmm --average b.fmm [--average c.fmm] --out soup.fmm
//                  (the thresholds of the uniform average of the weights of a, b, c, ...)
//   (--min-tile T: the pipeline tiling the thresholds are chosen for; default the pipeline's)
// Common: --threads N (default 2; OpenBLAS is kept single-threaded, the trainer splits batches).
#include <cblas.h>
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <string>

#include "common.h"
#include "dataset.h"
#include "detect_train.h"
#include "model/model_format.h"
#include "trainer.h"
#include "vision/pipeline.h"

namespace {

using fm::train::CropOptions;
using fm::train::FitOptions;

int Usage() {
  std::fprintf(stderr,
               "usage: fm_train crops|fit|eval|preview [options]  (see tools/train/main.cpp)\n");
  return 2;
}

int Fail(const fm::Status& s) {
  std::fprintf(stderr, "fm_train: %s\n", s.message().c_str());
  return 1;
}

// fm_train detector ...: its own options (detect_train.h).
int Detector(int argc, char** argv) {
  fm::train::DetectFitOptions o;
  o.init = o.reference = std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm";
  o.scenes = std::string(FM_DEFAULT_MODEL_DIR) + "/../../shared/data/scenes";
  o.opt.lr = 3e-4f;
  o.opt.weight_decay = 1e-5f;
  int threads = 2;
  std::string preview;
  bool retune = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--from-scratch") {
      o.from_scratch = true;
      continue;
    }
    if (a == "--fp32") {
      o.fp16 = false;
      continue;
    }
    if (a == "--retune") {
      retune = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "fm_train: %s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--init")
      o.init = v;
    else if (a == "--reference")
      o.reference = v;
    else if (a == "--scenes")
      o.scenes = v;
    else if (a == "--average")
      o.average.push_back(v);
    else if (a == "--faces")
      o.faces = v;
    else if (a == "--paste-faces")
      o.paste_faces = std::stoi(v);
    else if (a == "--out")
      o.out = v;
    else if (a == "--json")
      o.log_json = v;
    else if (a == "--preview")
      preview = v;
    else if (a == "--steps")
      o.steps = std::stoi(v);
    else if (a == "--batch")
      o.batch = std::stoi(v);
    else if (a == "--lr")
      o.opt.lr = std::stof(v);
    else if (a == "--weight-decay")
      o.opt.weight_decay = std::stof(v);
    else if (a == "--warmup")
      o.warmup = std::stof(v);
    else if (a == "--seed")
      o.seed = std::stoull(v);
    else if (a == "--min-tile")
      o.min_tile = std::stof(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else {
      std::fprintf(stderr, "fm_train: unknown option %s\n", a.c_str());
      return Usage();
    }
  }
  if (!preview.empty()) {
    const fm::Status s = fm::train::PreviewDetectorViews(o, 16, preview);
    return s.ok() ? 0 : Fail(s);
  }
  if (o.out.empty() || o.steps < 1 || o.batch < 1 || threads < 1 || threads > 64) return Usage();
  fm::train::SetThreads(threads);
  openblas_set_num_threads(1);
  const fm::Status s = retune ? fm::train::RetuneDetector(o) : fm::train::FitDetector(o);
  return s.ok() ? 0 : Fail(s);
}

// The options of crops, fit, eval and preview (each command reads the ones it needs).
struct Args {
  CropOptions co;
  FitOptions fo;
  std::string cache, model, out, errors_svg;
  bool reference = false, flip = false;
  int threads = 2, count = 64;
};

// argv[2..] into *r; false (after saying which) on an unknown option. Each option is looked up
// by how its value is read; --size and --limit set both crops' and fit's.
bool ParseArgs(int argc, char** argv, Args* r) {
  CropOptions& co = r->co;
  FitOptions& fo = r->fo;
  const std::map<std::string, std::function<void()>> flags = {
      {"--no-detector", [&] { co.detector.clear(); }},
      {"--no-class-weights", [&] { fo.class_weights = false; }},
      {"--no-augment", [&] { fo.aug.enabled = false; }},
      {"--fp16", [&] { fo.fp16 = true; }},
      {"--flip", [&] { r->flip = true; }},
      {"--no-calibrate", [&] { fo.calibrate = false; }},
      {"--reference", [&] { r->reference = true; }}};
  const std::map<std::string, std::string*> strings = {{"--data", &co.data_dir},
                                                       {"--detector", &co.detector},
                                                       {"--cache", &r->cache},
                                                       {"--arch", &fo.arch},
                                                       {"--extractor", &fo.extractor},
                                                       {"--optimizer", &fo.opt.type},
                                                       {"--out", &r->out},
                                                       {"--history", &fo.history_svg},
                                                       {"--confusion", &fo.confusion_svg},
                                                       {"--json", &fo.card_json},
                                                       {"--reliability", &fo.reliability_svg},
                                                       {"--errors", &r->errors_svg}};
  const std::map<std::string, std::vector<int*>> ints = {{"--size", {&co.size, &fo.size}},
                                                         {"--min-scene-px", {&co.min_scene_px}},
                                                         {"--limit", {&co.limit, &fo.limit}},
                                                         {"--threads", {&r->threads}},
                                                         {"--hidden", {&fo.hidden}},
                                                         {"--epochs", {&fo.epochs}},
                                                         {"--batch", {&fo.batch}},
                                                         {"--patience", {&fo.patience}},
                                                         {"--lowered", {&fo.lowered}},
                                                         {"--count", {&r->count}}};
  const std::map<std::string, float*> floats = {{"--context", &co.context},
                                                {"--margin", &co.margin},
                                                {"--width", &fo.width},
                                                {"--lr", &fo.opt.lr},
                                                {"--weight-decay", &fo.opt.weight_decay},
                                                {"--label-smoothing", &fo.label_smoothing},
                                                {"--dropout", &fo.dropout},
                                                {"--warmup", &fo.warmup},
                                                {"--cast", &fo.aug.cast},
                                                {"--unsure-below", &fo.unsure_below}};
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fm_train: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (const auto f = flags.find(a); f != flags.end()) {
      f->second();
    } else if (const auto s = strings.find(a); s != strings.end()) {
      *s->second = value();
    } else if (const auto n = ints.find(a); n != ints.end()) {
      const int v = std::stoi(value());
      for (int* to : n->second) *to = v;
    } else if (const auto x = floats.find(a); x != floats.end()) {
      *x->second = std::stof(value());
    } else if (a == "--seed") {
      fo.seed = std::stoull(value());
    } else if (a[0] != '-' && r->model.empty()) {
      r->model = a;
    } else {
      std::fprintf(stderr, "fm_train: unknown option %s\n", a.c_str());
      return false;
    }
  }
  return true;
}

// The architecture and optimiser options make sense together (else usage, exit status 2).
bool FitArgsOk(const FitOptions& fo) {
  if (fo.arch != "mobile" && fo.arch != "original" && fo.arch != "frozen") return Usage(), false;
  if ((fo.arch == "frozen") != !fo.extractor.empty()) {
    std::fprintf(stderr, "fm_train: --arch frozen and --extractor go together\n");
    return false;
  }
  if (fo.opt.type != "adam" && fo.opt.type != "sgd") return Usage(), false;
  return true;
}

// fm_train crops: builds the crop cache and writes it.
int Crops(const Args& r) {
  fm::train::CropSet set;
  std::string report;
  fm::Status s = fm::train::BuildCrops(r.co, &set, &report);
  if (!s.ok()) return Fail(s);
  std::printf("%s", report.c_str());
  const std::string path = r.cache.empty() ? fm::train::DefaultCachePath(r.co.size) : r.cache;
  s = set.Save(path);
  if (!s.ok()) return Fail(s);
  std::printf("wrote %s (%zu crops, %d px + %d px context)\n", path.c_str(), set.samples.size(),
              set.size, set.ctx_size);
  return 0;
}

// fm_train fit: trains, calibrates and exports (trainer.h).
int FitCommand(const Args& r) {
  FitOptions fo = r.fo;
  fo.cache = r.cache;
  fo.out = r.out;
  fm::Status s = fm::train::Fit(fo);
  return s.ok() ? 0 : Fail(s);
}

// fm_train eval: a model measured through the engine on the cache's validation and dev crops.
int Eval(const Args& r) {
  if (r.model.empty()) return Usage();
  auto graph = std::make_shared<fm::Graph>();
  fm::Status s = fm::ReadModelFile(r.model, graph.get());
  if (!s.ok()) return Fail(s);
  const int size = int(graph->ShapeOf(graph->inputs[0])[1]);
  fm::train::CropSet set;
  s = set.Load(r.cache.empty() ? fm::train::DefaultCachePath(size) : r.cache);
  if (!s.ok()) return Fail(s);
  fm::train::EvalResult res;
  s = fm::train::EvalWithEngine(graph, set,
                                r.reference ? fm::Backend::kReference : fm::Backend::kXnnpack,
                                r.fo.min_dev_px, &res, r.flip);
  if (!s.ok()) return Fail(s);
  float unsure_below = fm::kDefaultUnsureBelow;
  auto it = graph->metadata.find("unsure_below");
  if (it != graph->metadata.end()) unsure_below = std::strtof(it->second.c_str(), nullptr);
  std::printf("%s%s\n", fm::train::EvalText(res).c_str(),
              fm::train::EvalJson(r.model, res, unsure_below).c_str());
  if (!r.errors_svg.empty()) {
    std::ofstream f(r.errors_svg);
    f << fm::train::ErrorsSvg(set, res);
    if (!f) return Fail(fm::Errorf("cannot write ", r.errors_svg));
  }
  return 0;
}

// fm_train preview: a grid of augmented training crops (PPM), to look at what the trainer sees.
int Preview(const Args& r) {
  const FitOptions& fo = r.fo;
  fm::train::CropSet set;
  fm::Status s = set.Load(r.cache.empty() ? fm::train::DefaultCachePath(r.co.size) : r.cache);
  if (!s.ok()) return Fail(s);
  if (r.out.empty() || set.samples.empty()) return Usage();
  const int cols = 8, rows = (r.count + cols - 1) / cols, sz = set.size;
  std::vector<uint8_t> grid(size_t(cols * sz) * size_t(rows * sz) * 3, 0);
  std::vector<uint8_t> crop(size_t(sz * sz * 3));
  fm::train::Rng rng(fo.seed);
  // --lowered N: the first N tiles are lowered-mask composites (augment.h LowerMask).
  std::vector<size_t> all(set.samples.size()), bare, masked;
  std::iota(all.begin(), all.end(), size_t(0));
  fm::train::LowerMaskPools(set, all, &bare, &masked);
  for (int k = 0; k < r.count; ++k) {
    size_t idx = rng.Next() % set.samples.size();
    long partner = -1;
    if (k < fo.lowered && !bare.empty() && !masked.empty()) {
      idx = bare[rng.Next() % bare.size()];
      partner = long(masked[rng.Next() % masked.size()]);
    }
    fm::train::MakeAugmentedRgb(set, idx, fo.aug, rng.Next(), crop.data(), partner);
    const int gx = (k % cols) * sz, gy = (k / cols) * sz;
    for (int y = 0; y < sz; ++y)
      std::copy(crop.begin() + y * sz * 3, crop.begin() + (y + 1) * sz * 3,
                grid.begin() + (size_t(gy + y) * size_t(cols * sz) + size_t(gx)) * 3);
  }
  std::ofstream f(r.out, std::ios::binary);
  f << "P6\n" << cols * sz << " " << rows * sz << "\n255\n";
  f.write(reinterpret_cast<const char*>(grid.data()), std::streamsize(grid.size()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  // Keep freed batch-sized buffers in the heap instead of returning them to the kernel after
  // every step (mmap/munmap churn and page faults cost more than the arithmetic otherwise).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  const std::string cmd = argv[1];
  if (cmd == "detector") return Detector(argc, argv);
  Args args;
  args.co.detector = std::string(FM_DEFAULT_MODEL_DIR) + "/detector.fmm";
  if (!ParseArgs(argc, argv, &args)) return Usage();
  fm::train::SetThreads(args.threads);
  openblas_set_num_threads(1);  // batches are split by the trainer's own threads
  if (!FitArgsOk(args.fo)) return 2;
  if (cmd == "crops") return Crops(args);
  if (cmd == "fit") return FitCommand(args);
  if (cmd == "eval") return Eval(args);
  if (cmd == "preview") return Preview(args);
  return Usage();
}
