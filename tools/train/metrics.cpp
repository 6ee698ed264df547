// metrics.cpp - see metrics.h.
#include "metrics.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace fm::train {

int Confusion::Total() const {
  int n = 0;
  for (auto& row : m)
    for (int v : row) n += v;
  return n;
}

double Confusion::Recall(int c) const {
  int n = 0;
  for (int p = 0; p < kNumClasses; ++p) n += m[c][p];
  return n ? double(m[c][c]) / n : -1;
}

double Confusion::Precision(int c) const {
  int n = 0;
  for (int t = 0; t < kNumClasses; ++t) n += m[t][c];
  return n ? double(m[c][c]) / n : -1;
}

double Confusion::BalancedAccuracy() const {
  double sum = 0;
  int k = 0;
  for (int c = 0; c < kNumClasses; ++c)
    if (Recall(c) >= 0) sum += Recall(c), ++k;
  return k ? sum / k : 0;
}

double Confusion::Accuracy() const {
  int ok = 0;
  for (int c = 0; c < kNumClasses; ++c) ok += m[c][c];
  return Total() ? double(ok) / Total() : 0;
}

std::string Confusion::Text(const std::string& title) const {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%s: %d crops, balanced accuracy %.2f%%, accuracy %.2f%%\n",
                title.c_str(), Total(), 100 * BalancedAccuracy(), 100 * Accuracy());
  o << line;
  for (int c = 0; c < kNumClasses; ++c) {
    int n = 0;
    for (int p = 0; p < kNumClasses; ++p) n += m[c][p];
    if (n == 0 && Precision(c) < 0) continue;
    std::snprintf(line, sizeof line,
                  "  %-22s n=%-5d recall %6.2f%%  precision %6.2f%%   predicted as: %d / %d / %d\n",
                  LabelName(c), n, 100 * std::max(Recall(c), 0.0),
                  100 * std::max(Precision(c), 0.0), m[c][0], m[c][1], m[c][2]);
    o << line;
  }
  return o.str();
}

std::string Confusion::Json(const std::string& key) const {
  std::ostringstream o;
  o.precision(4);
  o << "\"" << key << "\": {\"n\": " << Total() << ", \"balanced_accuracy\": " << BalancedAccuracy()
    << ", \"accuracy\": " << Accuracy() << ", \"classes\": {";
  for (int c = 0; c < kNumClasses; ++c) {
    o << (c ? ", " : "") << "\"" << LabelName(c) << "\": {\"recall\": " << Recall(c)
      << ", \"precision\": " << Precision(c) << "}";
  }
  o << "}, \"matrix\": [";
  for (int t = 0; t < kNumClasses; ++t)
    o << (t ? ", " : "") << "[" << m[t][0] << ", " << m[t][1] << ", " << m[t][2] << "]";
  o << "]}";
  return o.str();
}

std::string HistorySvg(const std::vector<EpochStats>& h, const std::string& title) {
  const int W = 640, H = 360, L = 50, R = 20, T = 40, B = 40;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
       "fill=\"white\"/>\n<text x=\""
    << L << "\" y=\"20\" font-size=\"14\">" << title << "</text>\n";
  const int n = int(h.size());
  double max_loss = 0.01;
  for (const auto& e : h) max_loss = std::max({max_loss, e.train_loss, e.val_loss});
  auto X = [&](int i) { return L + (W - L - R) * (n > 1 ? double(i) / (n - 1) : 0.5); };
  auto Y = [&](double v) { return T + (H - T - B) * (1 - v); };
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k)
    o << "<text x=\"" << L - 5 << "\" y=\"" << Y(k / 4.0) + 4 << "\" text-anchor=\"end\">" << k * 25
      << "%</text>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">epoch (1.." << n
    << "); losses scaled to max " << max_loss << "</text>\n";
  struct Series {
    const char* name;
    const char* color;
    bool dashed;
    double (*get)(const EpochStats&, double);
  };
  const Series series[] = {
      {"train loss", "#d62728", true,
       [](const EpochStats& e, double m) { return e.train_loss / m; }},
      {"val loss", "#ff7f0e", true, [](const EpochStats& e, double m) { return e.val_loss / m; }},
      {"train acc", "#1f77b4", false, [](const EpochStats& e, double) { return e.train_acc; }},
      {"val balanced acc", "#2ca02c", false,
       [](const EpochStats& e, double) { return e.val_bacc; }},
      {"scenes dev balanced acc", "#9467bd", false,
       [](const EpochStats& e, double) { return e.dev_bacc; }}};
  int li = 0;
  for (const Series& s : series) {
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
      << (s.dashed ? " stroke-dasharray=\"5,3\"" : "") << " points=\"";
    for (int i = 0; i < n; ++i) o << X(i) << "," << Y(s.get(h[size_t(i)], max_loss)) << " ";
    o << "\"/>\n<text x=\"" << L + 10 + 120 * li << "\" y=\"" << T - 6 << "\" fill=\"" << s.color
      << "\">" << s.name << "</text>\n";
    ++li;
  }
  o << "</svg>\n";
  return o.str();
}

std::string ConfusionSvg(const std::vector<std::pair<std::string, Confusion>>& mats) {
  const int cell = 70, pad = 170, gap = 60;
  const int W = int(mats.size()) * (pad + 3 * cell + gap), H = 3 * cell + 150;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
       "fill=\"white\"/>\n";
  static const char* shortn[] = {"mask", "no mask", "incorrect"};
  for (size_t k = 0; k < mats.size(); ++k) {
    const Confusion& c = mats[k].second;
    const int x0 = int(k) * (pad + 3 * cell + gap) + pad, y0 = 60;
    o << "<text x=\"" << x0 << "\" y=\"20\" font-size=\"14\">" << mats[k].first << "</text>\n";
    char ba[64];
    std::snprintf(ba, sizeof ba, "balanced accuracy %.1f%%", 100 * c.BalancedAccuracy());
    o << "<text x=\"" << x0 << "\" y=\"38\">" << ba << "</text>\n";
    for (int t = 0; t < kNumClasses; ++t) {
      int n = 0;
      for (int p = 0; p < kNumClasses; ++p) n += c.m[t][p];
      o << "<text x=\"" << x0 - 8 << "\" y=\"" << y0 + t * cell + cell / 2 + 4
        << "\" text-anchor=\"end\">" << shortn[t] << " (truth)</text>\n";
      for (int p = 0; p < kNumClasses; ++p) {
        const double f = n ? double(c.m[t][p]) / n : 0;
        const int shade = int(255 - 200 * f);
        o << "<rect x=\"" << x0 + p * cell << "\" y=\"" << y0 + t * cell << "\" width=\"" << cell
          << "\" height=\"" << cell << "\" fill=\"rgb(" << shade << "," << shade << ",255)\" "
          << "stroke=\"#444\"/>\n<text x=\"" << x0 + p * cell + cell / 2 << "\" y=\""
          << y0 + t * cell + cell / 2 + 4 << "\" text-anchor=\"middle\">" << c.m[t][p]
          << "</text>\n";
      }
    }
    for (int p = 0; p < kNumClasses; ++p)
      o << "<text x=\"" << x0 + p * cell + cell / 2 << "\" y=\"" << y0 + 3 * cell + 18
        << "\" text-anchor=\"middle\">" << shortn[p] << "</text>\n";
    o << "<text x=\"" << x0 + 3 * cell / 2 << "\" y=\"" << y0 + 3 * cell + 36
      << "\" text-anchor=\"middle\">predicted</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace fm::train
