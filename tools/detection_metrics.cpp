// detection_metrics.cpp - see detection_metrics.h.
#include "detection_metrics.h"

#include <algorithm>
#include <limits>

namespace fm {
namespace metrics {

const char* const kMaskClassNames[kNumMaskClasses] = {"with_mask", "without_mask",
                                                      "mask_weared_incorrect"};

// In double, as ../shared/eval/*.py compute it (engine/vision/detection.cpp's float IoU can differ in
// the last digit at exactly IoU 0.5, which changes a match).
double IoU(const Box& a, const Box& b) {
  const double ix = std::max(0.0, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  const double iy = std::max(0.0, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  const double inter = ix * iy;
  const double u = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return u > 0 ? inter / u : 0.0;
}

int MaskClassIndex(const std::string& label) {
  if (label == "with_mask") return 0;
  if (label == "without_mask") return 1;
  if (label == "mask_weared_incorrect" || label == "mask_worn_incorrectly" || label == "incorrect")
    return 2;
  return -1;
}

void MarkNarrowDifficult(std::vector<Photo>* photos, double min_px) {
  for (Photo& p : *photos)
    for (GroundTruth& t : p.truth) t.difficult = t.box.x1 - t.box.x0 < min_px;
}

double AllPointAp(const std::vector<PrPoint>& curve) {
  // map.py: mrec = [0] + rec + [1], mpre = [0] + prec + [0], precision made non-increasing from
  // the right, then the sum of recall steps times precision.
  std::vector<double> mrec{0.0}, mpre{0.0};
  for (const PrPoint& p : curve) mrec.push_back(p.recall), mpre.push_back(p.precision);
  mrec.push_back(1.0);
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  double ap = 0;
  for (size_t i = 1; i < mrec.size(); ++i) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  return ap;
}

ApResult AveragePrecision(const std::vector<Photo>& photos, int cls, double min_iou) {
  struct Ranked {
    double score;
    size_t photo, det;
  };
  ApResult r;
  std::vector<Ranked> ranked;
  std::vector<std::vector<char>> used(photos.size());
  for (size_t p = 0; p < photos.size(); ++p) {
    for (const GroundTruth& t : photos[p].truth) r.gt += t.cls == cls && !t.difficult;
    used[p].assign(photos[p].truth.size(), 0);
    const std::vector<Scored>& dets = photos[p].detections;
    for (size_t d = 0; d < dets.size(); ++d) {
      const double s = cls >= 0 && size_t(cls) < dets[d].class_scores.size()
                           ? dets[d].class_scores[size_t(cls)]
                           : 0.0;
      if (s > 0) ranked.push_back({s, p, d});
    }
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  for (const Ranked& k : ranked) {
    const Photo& photo = photos[k.photo];
    double best = 0.0;
    size_t bi = 0;
    for (size_t i = 0; i < photo.truth.size(); ++i) {
      if (photo.truth[i].cls != cls) continue;
      const double v = IoU(photo.detections[k.det].box, photo.truth[i].box);
      if (v > best) best = v, bi = i;
    }
    bool tp = false;
    if (best > 0 && best >= min_iou) {
      if (photo.truth[bi].difficult) continue;
      tp = !used[k.photo][bi];
      used[k.photo][bi] = 1;
    }
    r.tp += tp;
    r.fp += !tp;
    const int n = r.tp + r.fp;
    r.curve.push_back({double(r.tp) / std::max(1, r.gt), double(r.tp) / n});
  }
  r.ap = AllPointAp(r.curve);
  r.max_recall = r.curve.empty() ? 0.0 : r.curve.back().recall;
  return r;
}

double MeanAp(const std::vector<ApResult>& per_class) {
  double sum = 0;
  for (const ApResult& r : per_class) sum += r.ap;
  return per_class.empty() ? 0.0 : sum / double(per_class.size());
}

namespace {

// The item not yet taken that overlaps `box` most, if that overlap is > 0 and >= min_iou; else -1.
template <typename T, typename BoxOf>
int BestFree(const Box& box, const std::vector<T>& items, const std::vector<char>& taken,
             double min_iou, BoxOf box_of) {
  double best = 0.0;
  int bi = -1;
  for (size_t i = 0; i < items.size(); ++i) {
    if (taken[i]) continue;
    const double v = IoU(box, box_of(items[i]));
    if (v > best) best = v, bi = int(i);
  }
  return best > 0 && best >= min_iou ? bi : -1;
}

}  // namespace

std::vector<bool> FoundTruth(const Photo& photo, double min_iou) {
  std::vector<bool> found(photo.truth.size(), false);
  std::vector<char> taken(photo.detections.size(), 0);
  for (size_t t = 0; t < photo.truth.size(); ++t) {
    const int d = BestFree(photo.truth[t].box, photo.detections, taken, min_iou,
                           [](const Scored& s) { return s.box; });
    if (d < 0) continue;
    taken[size_t(d)] = 1;
    found[t] = true;
  }
  return found;
}

std::vector<WidthBin> RecallByWidth(const std::vector<Photo>& photos,
                                    const std::vector<double>& edges, double min_iou) {
  std::vector<WidthBin> bins;
  double lo = 0;
  for (double e : edges) bins.push_back({lo, e}), lo = e;
  bins.push_back({lo, std::numeric_limits<double>::infinity()});
  for (const Photo& p : photos) {
    const std::vector<bool> found = FoundTruth(p, min_iou);
    for (size_t t = 0; t < p.truth.size(); ++t) {
      const double w = p.truth[t].box.x1 - p.truth[t].box.x0;
      size_t b = 0;
      while (b + 1 < bins.size() && w >= bins[b].max_px) ++b;
      bins[b].total++;
      bins[b].found += found[t];
    }
  }
  return bins;
}

std::vector<bool> UnmatchedDetections(const Photo& photo, double min_iou) {
  std::vector<size_t> order(photo.detections.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return photo.detections[a].score > photo.detections[b].score;
  });
  std::vector<char> used(photo.truth.size(), 0);
  std::vector<bool> unmatched(photo.detections.size(), false);
  for (size_t d : order) {
    const int t = BestFree(photo.detections[d].box, photo.truth, used, min_iou,
                           [](const GroundTruth& g) { return g.box; });
    if (t >= 0)
      used[size_t(t)] = 1;
    else
      unmatched[d] = true;
  }
  return unmatched;
}

int UnmatchedBoxes(const Photo& photo, double min_iou) {
  const std::vector<bool> u = UnmatchedDetections(photo, min_iou);
  return int(std::count(u.begin(), u.end(), true));
}

}  // namespace metrics
}  // namespace fm
