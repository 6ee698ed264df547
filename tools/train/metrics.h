// metrics.h - confusion matrices, per-class precision / recall, balanced accuracy (mean recall
// over the classes present), their text and JSON forms, and the two SVG figures (training history
// and confusion matrices).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dataset.h"

namespace fm::train {

struct Confusion {
  int m[kNumClasses][kNumClasses] = {};  // [truth][predicted]
  void Add(int truth, int pred) { m[truth][pred]++; }
  int Total() const;
  double Recall(int c) const;     // -1 when the class has no samples
  double Precision(int c) const;  // -1 when nothing was predicted as c
  double BalancedAccuracy() const;
  double Accuracy() const;
  std::string Text(const std::string& title) const;
  std::string Json(const std::string& key) const;  // "key": {...}
};

struct EpochStats {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_acc = 0, val_loss = 0, val_bacc = 0, dev_bacc = 0;
  double seconds = 0;
};

std::string HistorySvg(const std::vector<EpochStats>& history, const std::string& title);
std::string ConfusionSvg(const std::vector<std::pair<std::string, Confusion>>& matrices);

}  // namespace fm::train
