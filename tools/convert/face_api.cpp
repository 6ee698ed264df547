// face_api.cpp - see face_api.h. Weight layouts in the manifest are TensorFlow's: conv filters
// HWIO [3, 3, in, out], depthwise [3, 3, channels, 1], pointwise [1, 1, in, out], fc [in, out];
// they are rearranged to the engine's OHWI / [1, kh, kw, channels] / [out, in].
#include "face_api.h"

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/graph_builder.h"
#include "tfjs_layers.h"

namespace fm {
namespace {

constexpr float kMeanRgb[3] = {122.782f, 117.001f, 104.298f};  // face-api.js FaceFeatureExtractor

std::string Num(float v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

// TensorFlow SAME padding [top, left, bottom, right] for a square k x k window.
std::vector<int64_t> SamePadding(const Shape& in, int k, int stride) {
  std::vector<int64_t> before(2), after(2);
  for (int a = 0; a < 2; ++a) {
    const int64_t n = in[size_t(1 + a)], out = (n + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + k - n, 0);
    before[size_t(a)] = total / 2;
    after[size_t(a)] = total - total / 2;
  }
  return {before[0], before[1], after[0], after[1]};
}

class Builder {
 public:
  Builder(std::map<std::string, KerasArray> weights, const FaceApiOptions& o)
      : w_(std::move(weights)), o_(o) {}

  // The named weight, which must exist with exactly `shape`.
  Status Get(const std::string& name, const Shape& shape, const KerasArray** out) {
    auto it = w_.find(name);
    if (it == w_.end()) return Errorf("weight '", name, "' is missing from the manifest");
    if (it->second.shape != shape)
      return Errorf("weight '", name, "' has shape ", ShapeToString(it->second.shape),
                    ", expected ", ShapeToString(shape));
    used_++;
    *out = &it->second;
    return Status::Ok();
  }

  // 3x3 convolution (HWIO filters + bias), stride s, relu.
  Status Conv(const std::string& p, int32_t x, int cout, int stride, int32_t* y) {
    const int64_t cin = gb_.ShapeOf(x)[3];
    const KerasArray *f, *b;
    FM_RETURN_IF_ERROR(Get(p + "/filters", {3, 3, cin, cout}, &f));
    FM_RETURN_IF_ERROR(Get(p + "/bias", {cout}, &b));
    std::vector<float> ohwi(f->data.size());
    for (int64_t k = 0; k < 9; ++k)
      for (int64_t i = 0; i < cin; ++i)
        for (int64_t o = 0; o < cout; ++o)
          ohwi[size_t((o * 9 + k) * cin + i)] = f->data[size_t((k * cin + i) * cout + o)];
    const int32_t wt = gb_.Constant(p + "/weights", {cout, 3, 3, cin}, ohwi, Fp16());
    const int32_t bt = gb_.Constant(p + "/bias", {cout}, b->data, Fp16());
    *y = gb_.Op("conv2d", p, {x, wt, bt},
                {{"stride", Attr::Ints({stride, stride})},
                 {"padding", Attr::Ints(SamePadding(gb_.ShapeOf(x), 3, stride))},
                 {"clamp", Attr::Floats({0.f, kInf})}});
    return gb_.status();
  }

  // Separable convolution: depthwise 3x3 (no bias), pointwise 1x1 + bias; relu when asked.
  Status Sep(const std::string& p, int32_t x, int cout, int stride, bool relu, int32_t* y) {
    const int64_t cin = gb_.ShapeOf(x)[3];
    const KerasArray *dw, *pw, *b;
    FM_RETURN_IF_ERROR(Get(p + "/depthwise_filter", {3, 3, cin, 1}, &dw));
    FM_RETURN_IF_ERROR(Get(p + "/pointwise_filter", {1, 1, cin, cout}, &pw));
    FM_RETURN_IF_ERROR(Get(p + "/bias", {cout}, &b));
    // [3, 3, C, 1] and the engine's [1, 3, 3, C] are the same bytes.
    const int32_t dwt = gb_.Constant(p + "/depthwise", {1, 3, 3, cin}, dw->data, Fp16());
    const int32_t d = gb_.Op("depthwise_conv2d", p + "/dw", {x, dwt, kNoTensor},
                             {{"stride", Attr::Ints({stride, stride})},
                              {"padding", Attr::Ints(SamePadding(gb_.ShapeOf(x), 3, stride))}});
    std::vector<float> oi(pw->data.size());
    for (int64_t i = 0; i < cin; ++i)
      for (int64_t o = 0; o < cout; ++o) oi[size_t(o * cin + i)] = pw->data[size_t(i * cout + o)];
    const int32_t pwt = gb_.Constant(p + "/pointwise", {cout, 1, 1, cin}, oi, Fp16());
    const int32_t bt = gb_.Constant(p + "/bias", {cout}, b->data, Fp16());
    std::map<std::string, Attr> attrs = {{"stride", Attr::Ints({1, 1})},
                                         {"padding", Attr::Ints({0, 0, 0, 0})}};
    if (relu) attrs["clamp"] = Attr::Floats({0.f, kInf});
    *y = gb_.Op("conv2d", p + "/pw", {d, pwt, bt}, attrs);
    return gb_.status();
  }

  int32_t Add(const std::string& name, int32_t a, int32_t b, bool relu) {
    std::map<std::string, Attr> attrs;
    if (relu) attrs["clamp"] = Attr::Floats({0.f, kInf});
    return gb_.Op("add", name, {a, b}, attrs);
  }

  // One dense block (face-api.js denseBlock4, always scaling down).
  Status DenseBlock(int index, int32_t x, int cout, int32_t* y) {
    const std::string p = "dense" + std::to_string(index);
    int32_t out1, out2, out3, out4;
    if (index == 0)
      FM_RETURN_IF_ERROR(Conv(p + "/conv0", x, cout, 2, &out1));
    else
      FM_RETURN_IF_ERROR(Sep(p + "/conv0", x, cout, 2, true, &out1));
    FM_RETURN_IF_ERROR(Sep(p + "/conv1", out1, cout, 1, false, &out2));
    const int32_t s12 = Add(p + "/sum12", out1, out2, false);
    const int32_t in3 = gb_.Op("clamp", p + "/in3", {s12}, {{"clamp", Attr::Floats({0.f, kInf})}});
    FM_RETURN_IF_ERROR(Sep(p + "/conv2", in3, cout, 1, false, &out3));
    const int32_t s123 = Add(p + "/sum123", s12, out3, false);
    const int32_t in4 = gb_.Op("clamp", p + "/in4", {s123}, {{"clamp", Attr::Floats({0.f, kInf})}});
    FM_RETURN_IF_ERROR(Sep(p + "/conv3", in4, cout, 1, false, &out4));
    *y = Add(p + "/out", s123, out4, true);
    return gb_.status();
  }

  Status Build(Graph* out) {
    const int s = o_.input_size;
    int32_t t = gb_.Input("input", {1, s, s, 3});
    const int channels[4] = {32, 64, 128, 256};
    for (int b = 0; b < o_.blocks; ++b) FM_RETURN_IF_ERROR(DenseBlock(b, t, channels[b], &t));
    t = gb_.Op("global_avg_pool", "pool", {t});
    const int64_t c = gb_.ShapeOf(t)[3];
    t = gb_.Op("reshape", "features", {t}, {{"shape", Attr::Ints({1, c})}});
    if (!o_.features_only) {
      const KerasArray *fw, *fb;
      const int64_t n = int64_t(FaceApiExpressionLabels().size());
      FM_RETURN_IF_ERROR(Get("fc/weights", {c, n}, &fw));
      FM_RETURN_IF_ERROR(Get("fc/bias", {n}, &fb));
      std::vector<float> oi(fw->data.size());
      for (int64_t i = 0; i < c; ++i)
        for (int64_t o = 0; o < n; ++o) oi[size_t(o * c + i)] = fw->data[size_t(i * n + o)];
      const int32_t wt = gb_.Constant("fc/weights", {n, c}, oi, Fp16());
      const int32_t bt = gb_.Constant("fc/bias", {n}, fb->data, Fp16());
      t = gb_.Op("fully_connected", "fc", {t, wt, bt});
      t = gb_.Op("softmax", "probs", {t});
      if (used_ != w_.size())
        return Errorf("the manifest holds ", w_.size() - used_,
                      " weights that FaceExpressionNet does not use (not a face-api.js "
                      "face_expression_model?)");
    }
    gb_.Metadata("source_format", "face-api");
    gb_.Metadata("norm_scale", Num(1.f / 255.f));
    gb_.Metadata("norm_offset", Num(-kMeanRgb[0] / 255.f) + "," + Num(-kMeanRgb[1] / 255.f) + "," +
                                    Num(-kMeanRgb[2] / 255.f));
    gb_.Metadata("channel_order", "rgb");
    return gb_.Finish({t}, out);
  }

 private:
  static constexpr float kInf = std::numeric_limits<float>::infinity();
  bool Fp16() const { return !o_.force_fp32; }
  std::map<std::string, KerasArray> w_;
  FaceApiOptions o_;
  GraphBuilder gb_;
  size_t used_ = 0;
};

}  // namespace

const std::vector<std::string>& FaceApiExpressionLabels() {
  static const std::vector<std::string> labels = {"neutral", "happy",     "sad",      "angry",
                                                  "fearful", "disgusted", "surprised"};
  return labels;
}

bool LooksLikeFaceApiManifest(const std::string& json_text) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array() || j.empty() || !j[0].is_object()) return false;
  const auto w = j[0].find("weights");
  if (w == j[0].end() || !w->is_array() || w->empty() || !(*w)[0].is_object()) return false;
  const auto name = (*w)[0].find("name");
  return name != (*w)[0].end() && name->is_string() &&
         name->get<std::string>().rfind("dense0/", 0) == 0;
}

Status ConvertFaceApi(const std::string& manifest_path, const FaceApiOptions& o, Graph* out) {
  if (o.input_size < 32 || o.input_size > 448)
    return Errorf("face-api: input size ", o.input_size, " is outside 32..448");
  if (o.blocks < 1 || o.blocks > 4)
    return Errorf("face-api: blocks ", o.blocks, " is outside 1..4");
  if (o.blocks < 4 && !o.features_only)
    return Errorf("face-api: fewer than 4 dense blocks only make sense with features_only");
  std::vector<KerasArray> arrays;
  FM_RETURN_IF_ERROR(ReadWeightsManifest(manifest_path, &arrays));
  std::map<std::string, KerasArray> by_name;
  for (KerasArray& a : arrays) {
    const std::string name = a.name;
    if (!by_name.emplace(name, std::move(a)).second)
      return Errorf(manifest_path, ": weight '", name, "' appears twice");
  }
  Graph g;
  FM_RETURN_IF_ERROR(Builder(std::move(by_name), o).Build(&g).Prefix(manifest_path + ": "));
  *out = std::move(g);
  return Status::Ok();
}

}  // namespace fm
