// eval_scenes.cpp - measures the face pipeline on real street scenes with PASCAL VOC boxes
// (../shared/data/scenes): face recall for faces >= 32 px wide and for all faces, false boxes per
// image, split by the ground-truth class (masked vs unmasked vs worn incorrectly), and - with a
// classifier - per-class recall/precision of the labels on matched faces >= 32 px.
//   fm_eval_scenes [--detector F] [--classifier F] [--min-score S] [--tiles auto|on|off]
//   [--min-tile T]
//                  [--iou T] [--limit N] [--split all|train|dev] SCENES_DIR
// A ground-truth face counts as found when a detection overlaps it with IoU >= T (default 0.3;
// BlazeFace boxes are tighter than the hand-drawn ones); a detection overlapping no ground-truth
// box (IoU < 0.1, any size) is a false box.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model_format.h"
#include "pipeline.h"
#include "scenes.h"

namespace fs = std::filesystem;

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: fm_eval_scenes [--detector F] [--classifier F] [--min-score S] "
               "[--tiles auto|on|off] [--min-tile T] [--iou T] [--limit N] [--split all|train|dev] "
               "SCENES_DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string detector_path = std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm";
  std::string classifier_path, dir, split = "all";
  fm::PipelineOptions options;
  float match_iou = 0.3f;
  int limit = 1 << 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--detector" && has_value)
      detector_path = argv[++i];
    else if (a == "--classifier" && has_value)
      classifier_path = argv[++i];
    else if (a == "--min-score" && has_value)
      options.min_score = std::stof(argv[++i]);
    else if (a == "--tile-score" && has_value)
      options.tile_min_score = std::stof(argv[++i]);
    else if (a == "--min-tile" && has_value)
      options.min_tile = std::stof(argv[++i]);
    else if (a == "--iou" && has_value)
      match_iou = std::stof(argv[++i]);
    else if (a == "--limit" && has_value)
      limit = std::stoi(argv[++i]);
    else if (a == "--split" && has_value)
      split = argv[++i];
    else if (a == "--tiles" && has_value) {
      const std::string v = argv[++i];
      if (v == "on")
        options.tiling = fm::PipelineOptions::Tiling::kOn;
      else if (v == "off")
        options.tiling = fm::PipelineOptions::Tiling::kOff;
      else if (v == "auto")
        options.tiling = fm::PipelineOptions::Tiling::kAuto;
      else
        return Usage();
    } else if (a[0] != '-' && dir.empty())
      dir = a;
    else
      return Usage();
  }
  if (dir.empty() || (split != "all" && split != "train" && split != "dev")) return Usage();
  auto detector = std::make_shared<fm::Graph>();
  fm::Status s = fm::ReadModelFile(detector_path, detector.get());
  std::shared_ptr<fm::Graph> classifier;
  if (s.ok() && !classifier_path.empty()) {
    classifier = std::make_shared<fm::Graph>();
    s = fm::ReadModelFile(classifier_path, classifier.get());
  }
  std::unique_ptr<fm::Pipeline> pipeline;
  if (s.ok()) s = fm::Pipeline::Create(detector, classifier, options, &pipeline);
  if (!s.ok()) {
    std::fprintf(stderr, "fm_eval_scenes: %s\n", s.message().c_str());
    return 2;
  }

  std::vector<std::string> xmls;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".xml") xmls.push_back(e.path().string());
  std::sort(xmls.begin(), xmls.end());

  std::map<std::string, int> total_big, found_big, total_all, found_all;
  // Classifier confusion on matched faces >= 32 px: [truth][predicted].
  std::map<std::string, std::map<std::string, int>> confusion;
  int images = 0, false_boxes = 0;
  double ms_total = 0;
  std::vector<fm::Face> faces;
  fm::Image image;
  for (const std::string& xml : xmls) {
    if (images >= limit) break;
    const std::string stem = fs::path(xml).stem().string();
    if (split != "all" && fm::IsScenesDevPhoto(stem) != (split == "dev")) continue;
    const std::string jpg = (fs::path(dir) / (stem + ".jpg")).string();
    const std::string png = (fs::path(dir) / (stem + ".png")).string();
    s = fm::DecodeImageFile(fs::exists(jpg) ? jpg : png, &image);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      continue;
    }
    const std::vector<fm::VocBox> truth = fm::ReadVocBoxes(xml);
    const auto t0 = std::chrono::steady_clock::now();
    s = pipeline->Run(image, &faces);
    ms_total +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", jpg.c_str(), s.message().c_str());
      continue;
    }
    ++images;
    std::vector<char> used(faces.size(), 0);
    for (const fm::VocBox& t : truth) {
      const bool big = t.x1 - t.x0 >= 32;
      int best = -1;
      float best_iou = match_iou;
      for (size_t f = 0; f < faces.size(); ++f) {
        const float iou = fm::BoxIoU(t, faces[f].det);
        if (iou >= best_iou && !used[f]) best_iou = iou, best = int(f);
      }
      total_all[t.label]++;
      if (big) total_big[t.label]++;
      if (best < 0) continue;
      used[size_t(best)] = 1;
      found_all[t.label]++;
      if (big) {
        found_big[t.label]++;
        const fm::Face& f = faces[size_t(best)];
        if (f.label >= 0) confusion[t.label][pipeline->labels()[size_t(f.label)]]++;
      }
    }
    for (size_t f = 0; f < faces.size(); ++f) {
      float best = 0;
      for (const fm::VocBox& t : truth) best = std::max(best, fm::BoxIoU(t, faces[f].det));
      if (best < 0.1f) ++false_boxes;
    }
  }
  auto sum = [](std::map<std::string, int>& m) {
    int n = 0;
    for (auto& kv : m) n += kv.second;
    return n;
  };
  const int tb = sum(total_big), fb = sum(found_big), ta = sum(total_all), fa = sum(found_all);
  std::printf("scenes: %d images (split %s), detector %s, tiles %s\n", images, split.c_str(),
              fs::path(detector_path).filename().c_str(),
              options.tiling == fm::PipelineOptions::Tiling::kOff  ? "off"
              : options.tiling == fm::PipelineOptions::Tiling::kOn ? "on"
                                                                   : "auto");
  std::printf("  recall, faces >= 32 px: %.1f%% (%d/%d)\n", 100.0 * fb / std::max(tb, 1), fb, tb);
  std::printf("  recall, all faces:      %.1f%% (%d/%d)\n", 100.0 * fa / std::max(ta, 1), fa, ta);
  std::printf("  false boxes per image:  %.3f (%d)\n", double(false_boxes) / std::max(images, 1),
              false_boxes);
  for (auto& kv : total_big)
    std::printf("  %-22s >= 32 px: %.1f%% (%d/%d); all sizes %.1f%% (%d/%d)\n", kv.first.c_str(),
                100.0 * found_big[kv.first] / std::max(kv.second, 1), found_big[kv.first],
                kv.second, 100.0 * found_all[kv.first] / std::max(total_all[kv.first], 1),
                found_all[kv.first], total_all[kv.first]);
  std::printf("  pipeline time: %.1f ms per image\n", ms_total / std::max(images, 1));
  if (!confusion.empty()) {
    std::printf("  classifier on matched faces >= 32 px (rows: truth, columns: predicted)\n");
    double recall_sum = 0;
    int classes = 0;
    for (auto& row : confusion) {
      int n = 0;
      for (auto& c : row.second) n += c.second;
      std::printf("    %-22s", row.first.c_str());
      for (auto& c : row.second) std::printf("  %s %d", c.first.c_str(), c.second);
      const std::string truth =
          row.first == "mask_weared_incorrect" ? "mask_worn_incorrectly" : row.first;
      const double recall = double(row.second[truth]) / std::max(n, 1);
      std::printf("  (recall %.1f%%)\n", 100.0 * recall);
      recall_sum += recall;
      ++classes;
    }
    std::printf("  balanced accuracy: %.1f%%\n", 100.0 * recall_sum / std::max(classes, 1));
  }
  std::printf(
      "{\"eval\": \"scenes\", \"images\": %d, \"recall_32px\": %.4f, \"recall_all\": %.4f, "
      "\"false_boxes_per_image\": %.4f, \"ms_per_image\": %.2f}\n",
      images, double(fb) / std::max(tb, 1), double(fa) / std::max(ta, 1),
      double(false_boxes) / std::max(images, 1), ms_total / std::max(images, 1));
  return 0;
}
