// detect_train.h - `fm_train detector`: fine-tunes a BlazeFace-shaped detector graph (by default
// the converted full-range BlazeFace) on the scenes train split, then chooses the pipeline's
// score thresholds on the held-out part of the train split and writes the model.
//
// Loop: batches of augmented views (detect_data.h), the graph net's forward (graph_net.h), the
// detection loss (detect_loss.h) with keypoint targets from the frozen starting model (the
// teacher, run by the engine) where it is confident, backward, AdamW with warm-up + cosine decay.
// Weights that were zero stay zero (the sparse model stays sparse). Deterministic for a seed, a
// thread count and a machine.
#pragma once

#include <string>
#include <vector>

#include "model/graph.h"
#include "optimizer.h"
#include "status.h"

namespace fm::train {

struct DetectFitOptions {
  std::string init;  // starting .fmm (converted BlazeFace)
  // --retune: the detector whose boxes the classifier's crops were cut around (crop_box)
  std::string reference;
  std::string scenes;  // ../shared/data/scenes
  // ../shared/data/faces: faces to paste into views; empty (the default) = none. Measured: no
  // gain on val (model/README.md), so the shipped detector is trained without.
  std::string faces;
  int paste_faces = 800;  // how many of them
  std::string out;        // written .fmm
  // --retune --average B.fmm ...: retune the uniform average of the weights of init and these
  // (detectors fine-tuned from the same start with other seeds: a "model soup").
  std::vector<std::string> average;
  std::string log_json;  // optional: loss history and the threshold sweep
  int steps = 3000;
  int batch = 16;
  float warmup = 100;  // steps
  uint64_t seed = 1;
  bool from_scratch = false;  // re-initialise every weight (He), as a baseline
  bool fp16 = true;
  // The smallest tile (PipelineOptions::min_tile) the thresholds are chosen for; < 0: the
  // pipeline's default.
  float min_tile = -1.f;
  OptimizerOptions opt;
};

Status FitDetector(const DetectFitOptions& options);

// Only the last part of FitDetector: chooses the thresholds of an already trained detector
// (options.init, or the average of it and options.average) on the held-out train photos and
// writes it with them to options.out.
Status RetuneDetector(const DetectFitOptions& options);

// The uniform average of the constants of `model` and `others` (graphs that differ only in their
// constants' values, e.g. one detector fine-tuned with several seeds), written into `model`.
// Values equal in every model stay bit for bit (zeros stay zeros: sparsity is kept); metadata
// "training" lists every model's. Errors if a graph differs in ops, wiring or shapes.
Status AverageGraphs(const std::vector<Graph>& others, Graph* model);

// Writes a PNG grid of `count` augmented training views with their faces drawn (green: a face to
// learn, red: an ignore region): what the trainer sees.
Status PreviewDetectorViews(const DetectFitOptions& options, int count, const std::string& png);

}  // namespace fm::train
