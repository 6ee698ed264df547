// trainer.h - the training loop (fit) and the evaluation of an exported model through the engine
// (eval). Fit: augmented mini-batches from the crop cache, Adam or SGD with a warm-up + cosine
// schedule, per-epoch evaluation on the validation split (faces/ + maskedfacenet/) and on the
// scenes/ dev crops >= 32 px, early stopping on validation balanced accuracy (the best epoch is
// kept), export, then the exported file is measured by the engine - the numbers reported are the
// engine's.
#pragma once

#include <string>

#include "augment.h"
#include "dataset.h"
#include "graph.h"
#include "metrics.h"
#include "net.h"
#include "optimizer.h"
#include "runtime.h"
#include "status.h"

namespace fm::train {

struct FitOptions {
  std::string arch = "mobile";  // mobile | original | frozen (a head on `extractor`)
  std::string extractor;        // frozen: a .fmm feature extractor (facemask convert --features)
  int hidden = 0;               // frozen: units of the optional hidden layer
  int size = 64;
  float width = 1.f;
  float dropout = 0.2f;
  int epochs = 30;
  int batch = 64;
  uint64_t seed = 1;
  OptimizerOptions opt;
  float warmup = 1.f;  // epochs
  float label_smoothing = 0.05f;
  bool class_weights = true;  // inverse class frequency (normalised to mean 1)
  int patience = 8;           // epochs without validation improvement; 0 = off
  int limit = 0;              // > 0: at most this many training crops (quick runs)
  int min_dev_px = 32;
  bool fp16 = false;
  AugmentOptions aug;
  std::string cache, out, history_svg, confusion_svg, card_json;
};

Status Fit(const FitOptions& options);

struct EvalResult {
  Confusion faces_val, mfn_val, val, scenes_dev;
  double seconds = 0;
};

// Runs `graph` (kind=classifier) on every val and dev crop of `set` (the dev crops whose face is
// at least min_dev_px wide) through the engine.
Status EvalWithEngine(std::shared_ptr<const Graph> graph, const CropSet& set, Backend backend,
                      int min_dev_px, EvalResult* out);
std::string EvalText(const EvalResult& r);
std::string EvalJson(const std::string& model, const EvalResult& r);

}  // namespace fm::train
