// eval_scenes.cpp - measures the face pipeline on real street scenes with PASCAL VOC boxes
// (../shared/data/scenes): face recall for faces >= 32 px wide and for all faces, false boxes per
// image, split by the ground-truth class (masked vs unmasked vs worn incorrectly), and - with a
// classifier - per-class recall/precision of the labels on matched faces >= 32 px. Then, by the
// rules of ../shared/eval/map.py and score.py (tools/detection_metrics.h): VOC mAP@0.5 of the
// three classes (face AP without a classifier) for all sizes and for faces >= 32 px, face recall
// at IoU 0.5 by face width and score.py's unmatched boxes per photo.
//   fm_eval_scenes [--detector F] [--classifier F] [--min-score S] [--tiles auto|on|off]
//                  [--min-tile T] [--iou T] [--limit N] [--split all|train|dev|val|fit]
//                  [--pr-svg FILE] [--failures-svg FILE] [--json FILE] [--jsonl FILE]
//                  SCENES_DIR
// A ground-truth face counts as found when a detection overlaps it with IoU >= T (default 0.3;
// BlazeFace boxes are tighter than the hand-drawn ones); a detection overlapping no ground-truth
// box (IoU < 0.1, any size) is a false box. --pr-svg writes precision-recall curves (all sizes),
// --failures-svg the three photos with the most misses (faces >= 20 px not found, false boxes)
// with every box drawn, --json all the numbers as one object, --jsonl the `facemask detect --json`
// line of each photo (so map.py and score.py can score the very same detections).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "annotate.h"
#include "api/results_json.h"
#include "detection_metrics.h"
#include "scenes.h"
#include "vision/pipeline.h"

namespace fs = std::filesystem;
namespace fmm = fm::metrics;

namespace {

constexpr double kApIou = 0.5;        // map.py
constexpr double kRecallIou = 0.5;    // the recall-by-width block
constexpr double kFalseBoxIou = 0.4;  // score.py's default --iou
constexpr double kBigPx = 32;         // map.py --min-px 32
const char* const kFalseBoxRule =
    "score.py's unmatched boxes: per photo, detections by face score (highest first) each take "
    "the best-IoU ground-truth box of any class not taken yet; IoU < 0.4 -> unmatched";

int Usage() {
  std::fprintf(
      stderr,
      "usage: fm_eval_scenes [--detector F] [--classifier F] [--min-score S] "
      "[--tiles auto|on|off] [--min-tile T] [--iou T] [--limit N] [--split all|train|dev|val|fit] "
      "[--pr-svg FILE] [--failures-svg FILE] [--json FILE] [--jsonl FILE] SCENES_DIR\n");
  return 2;
}

struct Args {
  std::string detector_path;  // default: the CLI's (model/detector.fmm, else blazeface-full)
  std::string classifier_path, dir, split = "all", pr_svg, failures_svg, json, jsonl;
  fm::PipelineOptions options;
  float match_iou = 0.3f;
  int limit = 1 << 30;
};

bool ParseArgs(int argc, char** argv, Args* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--detector" && has_value)
      o->detector_path = argv[++i];
    else if (a == "--classifier" && has_value)
      o->classifier_path = argv[++i];
    else if (a == "--min-score" && has_value)
      o->options.min_score = std::stof(argv[++i]);
    else if (a == "--tile-score" && has_value)
      o->options.tile_min_score = std::stof(argv[++i]);
    else if (a == "--min-tile" && has_value)
      o->options.min_tile = std::stof(argv[++i]);
    else if (a == "--iou" && has_value)
      o->match_iou = std::stof(argv[++i]);
    else if (a == "--limit" && has_value)
      o->limit = std::stoi(argv[++i]);
    else if (a == "--split" && has_value)
      o->split = argv[++i];
    else if (a == "--pr-svg" && has_value)
      o->pr_svg = argv[++i];
    else if (a == "--failures-svg" && has_value)
      o->failures_svg = argv[++i];
    else if (a == "--json" && has_value)
      o->json = argv[++i];
    else if (a == "--jsonl" && has_value)
      o->jsonl = argv[++i];
    else if (a == "--tiles" && has_value) {
      const std::string v = argv[++i];
      if (v == "on")
        o->options.tiling = fm::PipelineOptions::Tiling::kOn;
      else if (v == "off")
        o->options.tiling = fm::PipelineOptions::Tiling::kOff;
      else if (v == "auto")
        o->options.tiling = fm::PipelineOptions::Tiling::kAuto;
      else
        return false;
    } else if (a[0] != '-' && o->dir.empty())
      o->dir = a;
    else
      return false;
  }
  return !o->dir.empty() && (o->split == "all" || o->split == "train" || o->split == "dev" ||
                             o->split == "val" || o->split == "fit");
}

// The value as results_json writes it (and the python scorers read it back).
double Written(float v, int decimals) {
  if (!(v - v == 0.f)) v = 0.f;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, double(v));
  return std::strtod(buf, nullptr);
}

// One photo for the metrics, from the detections exactly as --jsonl writes them. With a
// classifier: the three mask classes, class score = face score x the largest probability of the
// labels naming that class (map.py); without: one class, the face score.
fmm::Photo ToPhoto(const std::vector<fm::VocBox>& truth, const std::vector<fm::Face>& faces,
                   const std::vector<std::string>& labels, bool mask_classes) {
  fmm::Photo p;
  for (const fm::VocBox& t : truth)
    p.truth.push_back({{t.x0, t.y0, t.x1, t.y1}, mask_classes ? fmm::MaskClassIndex(t.label) : 0});
  for (const fm::Face& f : faces) {
    fmm::Scored d;
    d.box = {Written(f.det.x0, 1), Written(f.det.y0, 1), Written(f.det.x1, 1),
             Written(f.det.y1, 1)};
    d.score = Written(f.det.score, 4);
    if (!mask_classes) {
      d.class_scores = {d.score};
    } else {
      std::vector<double> best(fmm::kNumMaskClasses, 0.0);
      // FacesJson writes probs only for labelled faces with one probability per label.
      if (f.label >= 0 && size_t(f.label) < labels.size() && f.probs.size() == labels.size())
        for (size_t l = 0; l < labels.size(); ++l) {
          const int c = fmm::MaskClassIndex(labels[l]);
          if (c >= 0) best[size_t(c)] = std::max(best[size_t(c)], Written(f.probs[l], 4));
        }
      for (double b : best) d.class_scores.push_back(d.score * b);
    }
    p.detections.push_back(std::move(d));
  }
  return p;
}

// The original statistics (match IoU --iou): recall by class, false boxes (IoU < 0.1) and the
// classifier's confusion on matched faces >= 32 px.
struct LegacyStats {
  std::map<std::string, int> total_big, found_big, total_all, found_all;
  std::map<std::string, std::map<std::string, int>> confusion;  // [truth][predicted]
  int images = 0, false_boxes = 0;
  double ms_total = 0;

  void Add(const std::vector<fm::VocBox>& truth, const std::vector<fm::Face>& faces,
           const std::vector<std::string>& labels, float match_iou) {
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
        if (f.label >= 0) confusion[t.label][labels[size_t(f.label)]]++;
      }
    }
    for (size_t f = 0; f < faces.size(); ++f) {
      float best = 0;
      for (const fm::VocBox& t : truth) best = std::max(best, fm::BoxIoU(t, faces[f].det));
      if (best < 0.1f) ++false_boxes;
    }
  }
  static int Sum(const std::map<std::string, int>& m) {
    int n = 0;
    for (auto& kv : m) n += kv.second;
    return n;
  }
  double RecallBig() const { return double(Sum(found_big)) / std::max(Sum(total_big), 1); }
  double RecallAll() const { return double(Sum(found_all)) / std::max(Sum(total_all), 1); }
  double FalsePerImage() const { return double(false_boxes) / std::max(images, 1); }
  double MsPerImage() const { return ms_total / std::max(images, 1); }
};

void PrintLegacy(LegacyStats& st, const Args& args) {
  const int tb = st.Sum(st.total_big), fb = st.Sum(st.found_big);
  const int ta = st.Sum(st.total_all), fa = st.Sum(st.found_all);
  const auto tiling = args.options.tiling;
  std::printf("scenes: %d images (split %s), detector %s, tiles %s\n", st.images,
              args.split.c_str(), fs::path(args.detector_path).filename().c_str(),
              tiling == fm::PipelineOptions::Tiling::kOff  ? "off"
              : tiling == fm::PipelineOptions::Tiling::kOn ? "on"
                                                           : "auto");
  std::printf("  recall, faces >= 32 px: %.1f%% (%d/%d)\n", 100.0 * fb / std::max(tb, 1), fb, tb);
  std::printf("  recall, all faces:      %.1f%% (%d/%d)\n", 100.0 * fa / std::max(ta, 1), fa, ta);
  std::printf("  false boxes per image:  %.3f (%d)\n", st.FalsePerImage(), st.false_boxes);
  for (auto& kv : st.total_big)
    std::printf("  %-22s >= 32 px: %.1f%% (%d/%d); all sizes %.1f%% (%d/%d)\n", kv.first.c_str(),
                100.0 * st.found_big[kv.first] / std::max(kv.second, 1), st.found_big[kv.first],
                kv.second, 100.0 * st.found_all[kv.first] / std::max(st.total_all[kv.first], 1),
                st.found_all[kv.first], st.total_all[kv.first]);
  std::printf("  pipeline time: %.1f ms per image\n", st.MsPerImage());
  if (st.confusion.empty()) return;
  std::printf("  classifier on matched faces >= 32 px (rows: truth, columns: predicted)\n");
  double recall_sum = 0;
  int classes = 0;
  for (auto& row : st.confusion) {
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

// The numbers of map.py / score.py and the recall-by-width block.
struct Metrics {
  std::vector<std::string> classes;           // with_mask ... or just "face"
  std::vector<fmm::ApResult> ap_all, ap_big;  // per class: all sizes, faces >= 32 px
  std::vector<fmm::WidthBin> bins;            // < 16, 16-32, 32-64, >= 64 px
  int big_total = 0, big_found = 0, all_total = 0, all_found = 0;
  int photos = 0, unmatched = 0;
  double UnmatchedPerPhoto() const { return double(unmatched) / std::max(photos, 1); }
};

Metrics ComputeMetrics(std::vector<fmm::Photo> photos, bool mask_classes) {
  Metrics m;
  if (mask_classes)
    m.classes.assign(fmm::kMaskClassNames, fmm::kMaskClassNames + fmm::kNumMaskClasses);
  else
    m.classes = {"face"};
  m.photos = int(photos.size());
  for (const fmm::Photo& p : photos) m.unmatched += fmm::UnmatchedBoxes(p, kFalseBoxIou);
  m.bins = fmm::RecallByWidth(photos, {16, 32, 64}, kRecallIou);
  for (const fmm::WidthBin& b : m.bins) {
    m.all_total += b.total, m.all_found += b.found;
    if (b.min_px >= kBigPx) m.big_total += b.total, m.big_found += b.found;
  }
  fmm::MarkNarrowDifficult(&photos, 0);
  for (int c = 0; c < int(m.classes.size()); ++c)
    m.ap_all.push_back(fmm::AveragePrecision(photos, c, kApIou));
  fmm::MarkNarrowDifficult(&photos, kBigPx);
  for (int c = 0; c < int(m.classes.size()); ++c)
    m.ap_big.push_back(fmm::AveragePrecision(photos, c, kApIou));
  return m;
}

void PrintMetrics(const Metrics& m, double seconds) {
  const bool single = m.classes.size() == 1;
  std::printf("  %s AP@0.5 (VOC all-point, greedy by %s; as ../shared/eval/map.py)\n",
              single ? "face" : "per-class", single ? "face score" : "face score x class prob");
  std::printf("    %-22s %-18s %s\n", "", "all sizes", "faces >= 32 px");
  for (size_t c = 0; c < m.classes.size(); ++c)
    std::printf("    %-22s %.4f (%4d GT)    %.4f (%4d GT)\n", m.classes[c].c_str(), m.ap_all[c].ap,
                m.ap_all[c].gt, m.ap_big[c].ap, m.ap_big[c].gt);
  if (!single)
    std::printf("    %-22s %.4f             %.4f\n", "mAP@0.5", fmm::MeanAp(m.ap_all),
                fmm::MeanAp(m.ap_big));
  std::printf("  face recall at IoU >= 0.5 by face width (each face takes its best unused box)\n");
  for (const fmm::WidthBin& b : m.bins) {
    char name[32];
    if (b.min_px == 0)
      std::snprintf(name, sizeof name, "< %.0f px", b.max_px);
    else if (b.max_px > 1e9)
      std::snprintf(name, sizeof name, ">= %.0f px", b.min_px);
    else
      std::snprintf(name, sizeof name, "%.0f-%.0f px", b.min_px, b.max_px);
    std::printf("    %-12s %5.1f%% (%d/%d)\n", name, 100.0 * b.found / std::max(b.total, 1),
                b.found, b.total);
  }
  std::printf("    %-12s %5.1f%% (%d/%d)\n", ">= 32 px",
              100.0 * m.big_found / std::max(m.big_total, 1), m.big_found, m.big_total);
  std::printf("    %-12s %5.1f%% (%d/%d)\n", "all faces",
              100.0 * m.all_found / std::max(m.all_total, 1), m.all_found, m.all_total);
  std::printf("  false boxes per photo: %.4f (%d in %d photos)\n", m.UnmatchedPerPhoto(),
              m.unmatched, m.photos);
  std::printf("    (%s)\n", kFalseBoxRule);
  std::printf("  wall time: %.1f s\n", seconds);
}

std::string Num(double v, const char* format = "%.6f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v - v == 0 ? v : 0.0);
  return buf;
}

std::string ApJson(const Metrics& m, const std::vector<fmm::ApResult>& ap, double min_px) {
  std::string out = "{\"min_px\": " + Num(min_px, "%.0f");
  for (size_t c = 0; c < m.classes.size(); ++c)
    out += ", " + fm::JsonString(m.classes[c]) + ": {\"ap50\": " + Num(ap[c].ap) +
           ", \"gt\": " + std::to_string(ap[c].gt) + ", \"tp\": " + std::to_string(ap[c].tp) +
           ", \"fp\": " + std::to_string(ap[c].fp) + ", \"max_recall\": " + Num(ap[c].max_recall) +
           "}";
  if (m.classes.size() > 1) out += ", \"map50\": " + Num(fmm::MeanAp(ap));
  return out + "}";
}

std::string RecallJson(const char* name, int found, int total) {
  return std::string("{\"bin\": ") + fm::JsonString(name) + ", \"gt\": " + std::to_string(total) +
         ", \"found\": " + std::to_string(found) +
         ", \"recall\": " + Num(double(found) / std::max(total, 1)) + "}";
}

std::string ResultsJson(const Args& args, const LegacyStats& st, const Metrics& m, double seconds) {
  std::string o = "{\"eval\": \"scenes\", \"split\": " + fm::JsonString(args.split) +
                  ", \"images\": " + std::to_string(st.images) +
                  ", \"detector\": " + fm::JsonString(args.detector_path) +
                  ", \"classifier\": " + fm::JsonString(args.classifier_path);
  o += ", \"legacy\": {\"match_iou\": " + Num(args.match_iou, "%.3f") +
       ", \"recall_32px\": " + Num(st.RecallBig()) + ", \"recall_all\": " + Num(st.RecallAll()) +
       ", \"false_boxes_per_image\": " + Num(st.FalsePerImage()) + "}";
  const bool single = m.classes.size() == 1;
  if (single) {
    o += ", \"face_ap50\": " + Num(m.ap_all[0].ap) +
         ", \"face_ap50_ge32px\": " + Num(m.ap_big[0].ap);
  } else {
    o += ", \"map50\": " + Num(fmm::MeanAp(m.ap_all)) +
         ", \"map50_ge32px\": " + Num(fmm::MeanAp(m.ap_big));
  }
  o += ", \"ap50\": {\"all\": " + ApJson(m, m.ap_all, 0) +
       ", \"ge32px\": " + ApJson(m, m.ap_big, kBigPx) + "}";
  o += ", \"recall_iou\": " + Num(kRecallIou, "%.2f") + ", \"recall_by_width\": [";
  const char* names[] = {"<16", "16-32", "32-64", ">=64"};
  for (size_t b = 0; b < m.bins.size() && b < 4; ++b)
    o += std::string(b ? ", " : "") + RecallJson(names[b], m.bins[b].found, m.bins[b].total);
  o += "], \"recall_ge32px\": " + RecallJson(">=32", m.big_found, m.big_total) +
       ", \"recall_all\": " + RecallJson("all", m.all_found, m.all_total);
  o += ", \"false_boxes\": {\"iou\": " + Num(kFalseBoxIou, "%.2f") +
       ", \"count\": " + std::to_string(m.unmatched) + ", \"photos\": " + std::to_string(m.photos) +
       ", \"per_photo\": " + Num(m.UnmatchedPerPhoto()) +
       ", \"definition\": " + fm::JsonString(kFalseBoxRule) + "}";
  o += ", \"ms_per_image\": " + Num(st.MsPerImage(), "%.2f") +
       ", \"wall_seconds\": " + Num(seconds, "%.2f") + "}\n";
  return o;
}

// Precision-recall curves (all sizes), one per class, AP in the legend. Plain SVG.
std::string PrSvg(const Metrics& m) {
  const double left = 60, top = 40, side = 320;
  const char* colors[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a"};
  auto X = [&](double r) { return left + r * side; };
  auto Y = [&](double p) { return top + (1 - p) * side; };
  char buf[256];
  std::string s =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"410\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"680\" height=\"410\" "
      "fill=\"white\"/>\n";
  std::snprintf(
      buf, sizeof buf,
      "<text x=\"%.0f\" y=\"24\" font-size=\"14\">Precision-recall, IoU 0.5, all "
      "sizes%s</text>\n",
      left, m.classes.size() > 1 ? (", mAP " + Num(fmm::MeanAp(m.ap_all), "%.3f")).c_str() : "");
  s += buf;
  for (int i = 0; i <= 5; ++i) {
    const double v = i * 0.2;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                  X(v), Y(0), X(v), Y(1), X(0), Y(v), X(1), Y(v), X(v), Y(0) + 18, v, X(0) - 6,
                  Y(v) + 4, v);
    s += buf;
  }
  std::snprintf(buf, sizeof buf,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                "stroke=\"black\"/>\n<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">recall"
                "</text>\n<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 "
                "16 %.0f)\">precision</text>\n",
                left, top, side, side, X(0.5), Y(0) + 36, Y(0.5), Y(0.5));
  s += buf;
  for (size_t c = 0; c < m.ap_all.size(); ++c) {
    const auto& curve = m.ap_all[c].curve;
    s += std::string("<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"") + colors[c % 4] +
         "\" points=\"";
    std::string last;  // consecutive points that round alike are drawn once
    for (size_t i = 0; i <= curve.size() && !curve.empty(); ++i) {
      const fmm::PrPoint p = i ? curve[i - 1] : fmm::PrPoint{0.0, curve[0].precision};
      const std::string point = Num(X(p.recall), "%.1f") + "," + Num(Y(p.precision), "%.1f");
      if (point != last) s += (i ? " " : "") + point;
      last = point;
    }
    s += "\"/>\n";
    const double ly = top + 20 + 22 * double(c);
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"400\" y1=\"%.0f\" x2=\"424\" y2=\"%.0f\" stroke=\"%s\" "
                  "stroke-width=\"3\"/><text x=\"430\" y=\"%.0f\">%s AP %.3f</text>\n",
                  ly, ly, colors[c % 4], ly + 4, m.classes[c].c_str(), m.ap_all[c].ap);
    s += buf;
  }
  return s + "</svg>\n";
}

// One photo's outcome for the failures plot: which faces were found (IoU 0.5) and which boxes are
// false (score.py's rule).
struct PhotoOutcome {
  std::string file;
  fmm::Photo photo;
  std::vector<bool> found, unmatched;
  int missed_big = 0, missed_small = 0, false_boxes = 0;  // big: >= 20 px wide
};

PhotoOutcome Outcome(const std::string& file, fmm::Photo photo) {
  PhotoOutcome o;
  o.file = file;
  o.found = fmm::FoundTruth(photo, 0.5);
  o.unmatched = fmm::UnmatchedDetections(photo, kFalseBoxIou);
  for (size_t t = 0; t < photo.truth.size(); ++t)
    if (!o.found[t])
      ++(photo.truth[t].box.x1 - photo.truth[t].box.x0 >= 20 ? o.missed_big : o.missed_small);
  o.false_boxes = int(std::count(o.unmatched.begin(), o.unmatched.end(), true));
  o.photo = std::move(photo);
  return o;
}

// The `count` photos with the most misses (faces >= 20 px not found + false boxes), each drawn
// 480 px wide: found faces green, missed >= 20 px red, smaller misses pink; the detections blue,
// false ones yellow and dashed.
std::string FailuresSvg(std::vector<PhotoOutcome> all, size_t count) {
  std::stable_sort(all.begin(), all.end(), [](const PhotoOutcome& a, const PhotoOutcome& b) {
    return a.missed_big + a.false_boxes > b.missed_big + b.false_boxes;
  });
  all.resize(std::min(all.size(), count));
  const double W = 480, caption = 22;
  std::string body;
  double y = 30;
  char buf[512];
  for (const PhotoOutcome& o : all) {
    fm::Image im;
    if (!fm::DecodeImageFile(o.file, &im).ok()) continue;
    const double k = W / im.width, h = im.height * k;
    const int found = int(std::count(o.found.begin(), o.found.end(), true));
    std::snprintf(buf, sizeof buf,
                  "<text x=\"4\" y=\"%.0f\">%s: %zu faces, %d found; missed %d &gt;= 20 px, %d "
                  "smaller; %d false</text>\n",
                  y + 15, fs::path(o.file).filename().c_str(), o.found.size(), found, o.missed_big,
                  o.missed_small, o.false_boxes);
    body += buf;
    y += caption;
    body += "<image x=\"0\" y=\"" + Num(y, "%.0f") + "\" width=\"" + Num(W, "%.0f") +
            "\" height=\"" + Num(h, "%.1f") + "\" href=\"" +
            fm::JpegDataUri(im.rgb.data(), im.width, im.height, 80) + "\"/>\n";
    auto rect = [&](const fmm::Box& b, const char* colour, bool dashed) {
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                    "stroke=\"%s\" stroke-width=\"1.5\"%s/>\n",
                    b.x0 * k, y + b.y0 * k, (b.x1 - b.x0) * k, (b.y1 - b.y0) * k, colour,
                    dashed ? " stroke-dasharray=\"4 2\"" : "");
      body += buf;
    };
    for (size_t t = 0; t < o.photo.truth.size(); ++t) {
      const fmm::Box& b = o.photo.truth[t].box;
      rect(b, o.found[t] ? "#00c000" : b.x1 - b.x0 >= 20 ? "#ff0000" : "#ff80c0", false);
    }
    for (size_t d = 0; d < o.photo.detections.size(); ++d)
      rect(o.photo.detections[d].box, o.unmatched[d] ? "#ffd000" : "#40a0ff", o.unmatched[d]);
    y += h + 8;
  }
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
                "height=\"100%%\" fill=\"white\"/>\n<text x=\"4\" y=\"18\">Faces found (green), "
                "missed &gt;= 20 px (red), smaller (pink); boxes (blue), false (yellow, "
                "dashed)</text>\n",
                W, y);
  return buf + body + "</svg>\n";
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (out.good()) return true;
  std::fprintf(stderr, "fm_eval_scenes: cannot write %s\n", path.c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Args args;
  if (!ParseArgs(argc, argv, &args)) return Usage();
  if (args.detector_path.empty()) {
    args.detector_path = std::string(FM_DEFAULT_MODEL_DIR) + "/detector.fmm";
    if (!fs::exists(args.detector_path))
      args.detector_path = std::string(FM_DEFAULT_MODEL_DIR) + "/blazeface-full.fmm";
  }
  fm::ModelSource detector, classifier;
  detector.path = args.detector_path;
  classifier.path = args.classifier_path;
  std::unique_ptr<fm::Pipeline> pipeline;
  fm::Status s = fm::LoadPipeline(detector, classifier, args.options, &pipeline);
  if (!s.ok()) {
    std::fprintf(stderr, "fm_eval_scenes: %s\n", s.message().c_str());
    return 2;
  }
  std::ofstream jsonl;
  if (!args.jsonl.empty()) {
    jsonl.open(args.jsonl, std::ios::binary);
    if (!jsonl) {
      std::fprintf(stderr, "fm_eval_scenes: cannot write %s\n", args.jsonl.c_str());
      return 2;
    }
  }

  std::vector<std::string> xmls;
  for (const auto& e : fs::directory_iterator(args.dir))
    if (e.path().extension() == ".xml") xmls.push_back(e.path().string());
  std::sort(xmls.begin(), xmls.end());

  LegacyStats st;
  std::vector<fmm::Photo> photos;
  std::vector<PhotoOutcome> outcomes;
  std::vector<fm::Face> faces;
  fm::Image image;
  for (const std::string& xml : xmls) {
    if (st.images >= args.limit) break;
    const std::string stem = fs::path(xml).stem().string();
    // train = val + fit (the detector's held-out part and the rest); dev is never trained on.
    const std::string split = fm::ScenesSplitOf(stem);
    if (args.split != "all" && split != args.split && !(args.split == "train" && split != "dev"))
      continue;
    const std::string jpg = (fs::path(args.dir) / (stem + ".jpg")).string();
    const std::string png = (fs::path(args.dir) / (stem + ".png")).string();
    const std::string file = fs::exists(jpg) ? jpg : png;
    s = fm::DecodeImageFile(file, &image);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      continue;
    }
    const std::vector<fm::VocBox> truth = fm::ReadVocBoxes(xml);
    const auto t0 = Clock::now();
    s = pipeline->Run(image, &faces);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    st.ms_total += ms;
    if (!s.ok()) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(), s.message().c_str());
      continue;
    }
    st.Add(truth, faces, pipeline->labels(), args.match_iou);
    photos.push_back(ToPhoto(truth, faces, pipeline->labels(), pipeline->has_classifier()));
    if (!args.failures_svg.empty()) outcomes.push_back(Outcome(file, photos.back()));
    if (jsonl.is_open()) {
      fm::JsonMembers extra;
      extra.file = file;
      extra.ms = ms;
      jsonl << fm::FacesResultJson(image.width, image.height, faces, pipeline->labels(), nullptr,
                                   extra)
            << "\n";
    }
  }
  const Metrics m = ComputeMetrics(std::move(photos), pipeline->has_classifier());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  PrintLegacy(st, args);
  PrintMetrics(m, seconds);
  bool ok = true;
  if (jsonl.is_open()) {
    jsonl.close();
    if (jsonl.fail()) {
      std::fprintf(stderr, "fm_eval_scenes: cannot write %s\n", args.jsonl.c_str());
      ok = false;
    }
  }
  if (!args.json.empty()) ok = WriteFile(args.json, ResultsJson(args, st, m, seconds)) && ok;
  if (!args.pr_svg.empty()) ok = WriteFile(args.pr_svg, PrSvg(m)) && ok;
  if (!args.failures_svg.empty())
    ok = WriteFile(args.failures_svg, FailuresSvg(std::move(outcomes), 3)) && ok;
  std::printf(
      "{\"eval\": \"scenes\", \"images\": %d, \"recall_32px\": %.4f, \"recall_all\": %.4f, "
      "\"false_boxes_per_image\": %.4f, \"ms_per_image\": %.2f}\n",
      st.images, st.RecallBig(), st.RecallAll(), st.FalsePerImage(), st.MsPerImage());
  return ok ? 0 : 1;
}
