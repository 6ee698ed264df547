// trainer.h - the training loop (fit) and the evaluation of an exported model through the engine
// (eval). Fit: augmented mini-batches from the crop cache, Adam or SGD with a warm-up + cosine
// schedule, per-epoch evaluation on the validation split (faces/ + maskedfacenet/ + scenes/ val
// crops >= 32 px) and on the scenes/ dev crops >= 32 px, early stopping on validation balanced
// accuracy (the best epoch is kept), temperature scaling fitted on validation (folded into the
// last layer), export, then the exported file is measured by the engine - the numbers reported
// are the engine's, with the reliability (ECE) of its probabilities.
#pragma once

#include <string>
#include <vector>

#include "augment.h"
#include "dataset.h"
#include "metrics.h"
#include "model/graph.h"
#include "net.h"
#include "optimizer.h"
#include "runtime/runtime.h"
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
  // Synthetic "worn incorrectly" crops per epoch (augment.h LowerMask: a real bare face wearing a
  // real mask from faces/ or scenes/ lowered under the nose); 0 = none.
  int lowered = 0;
  bool calibrate = true;  // temperature scaling on the validation crops, folded into the model
  // Written to the model's metadata (pipeline.h MarkConfidence); < 0: UnsureBelow on validation.
  float unsure_below = -1.f;
  AugmentOptions aug;
  std::string cache, out, history_svg, confusion_svg, reliability_svg, card_json;
};

Status Fit(const FitOptions& options);

// The temperature T minimising the cross-entropy of softmax(logits / T) over [n, 3] logits.
float FitTemperature(const std::vector<float>& logits, const std::vector<int>& labels);

// Top probability and whether the label was right, per crop (for calibration).
struct Calibration {
  std::vector<float> top;
  std::vector<char> right;
  void Add(float p, bool ok) { top.push_back(p), right.push_back(ok ? 1 : 0); }
  struct Bin {
    int n = 0;
    double right = 0, confidence = 0;  // sums over the bin's crops
  };
  std::vector<Bin> Bins(int bins = 10) const;  // equal-width bins of the top probability
  double Ece(int bins = 10) const;             // expected calibration error over those bins
  // Of the crops at or above `cut`: how many, and their accuracy; below: how many, accuracy.
  void Split(float cut, int* sure, double* sure_acc, int* unsure, double* unsure_acc) const;
};

// The documented rule for a model's unsure_below: over 10 equal bins of the (calibrated) top
// probability of the validation crops, the lowest bin edge (0.5 .. 0.9) from which every bin with
// at least 5 crops is at least 90% right: labels under it are right too rarely to state.
float UnsureBelow(const Calibration& validation);

struct EvalResult {
  Confusion faces_val, mfn_val, scenes_val, val, scenes_dev;
  Calibration cal_val, cal_dev;
  struct Error {
    size_t index;  // into the crop set
    int pred;
    float prob;  // of pred
  };
  std::vector<Error> dev_errors;  // the scenes dev crops it labelled wrong
  double seconds = 0;
};

// Runs `graph` (kind=classifier) on every val and dev crop of `set` (the dev crops whose face is
// at least min_dev_px wide) through the engine.
// flip: test-time averaging of the crop and its mirror image (twice the classifier's work).
Status EvalWithEngine(std::shared_ptr<const Graph> graph, const CropSet& set, Backend backend,
                      int min_dev_px, EvalResult* out, bool flip = false);
std::string EvalText(const EvalResult& r);
std::string EvalJson(const std::string& model, const EvalResult& r, float unsure_below);
// The wrong scenes dev crops as a grid (JPEG crops inside the SVG), each with truth -> predicted.
std::string ErrorsSvg(const CropSet& set, const EvalResult& r);
// A reliability diagram: accuracy against confidence in 10 bins, for each named set.
std::string ReliabilitySvg(const std::vector<std::pair<std::string, Calibration>>& sets);

}  // namespace fm::train
