// keras_layers.cpp - see keras_layers.h. Two stages:
//   1. the model config is normalised into a list of layers, each with the names of the layers
//      it reads (Sequential: the previous layer; functional: its single inbound node), in an
//      order where every input comes first;
//   2. each layer is lowered into engine ops through GraphBuilder (which infers and checks every
//      shape). Keras layouts are translated on the way: Conv2D kernels HWIO -> OHWI, Dense kernels
//      [in, out] -> [out, in]; depthwise kernels [kh, kw, C, M] are already the engine's
//      [1, kh, kw, C*M] in memory. Flatten needs no permutation: Keras (channels_last) flattens
//      H, W, C with C fastest, which is the engine's NHWC memory order. 'same' padding is
//      TensorFlow SAME in both (the odd extra pixel at the bottom/right).
// Errors are thrown as ConvertError (convert_util.h) inside this file and returned as a Status at
// the boundary.
#include "keras_layers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "convert_util.h"
#include "model/graph_builder.h"

namespace fm {
namespace {

using json = nlohmann::json;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr size_t kMaxLayers = 4096;

using convert_util::Fail;

struct Layer {
  std::string cls, name;
  const json* config = nullptr;
  std::vector<std::string> inbound;  // names of the layers whose (single) output this one reads
  std::string Where() const { return "layer '" + name + "' (" + cls + ")"; }
};

// ---- JSON helpers: every access is type-checked ----

using convert_util::Optional;

int64_t ToInt(const json& v, const std::string& where) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == std::floor(d) && std::fabs(d) < 1e9) return int64_t(d);
  }
  Fail(where, ": expected an integer, got ", v.dump());
}

int64_t IntOf(const Layer& l, const char* key, int64_t fallback) {
  const json* v = Optional(*l.config, key);
  if (!v) return fallback;
  // Keras sometimes writes a one-element list (e.g. BatchNormalization axis [3]).
  if (v->is_array() && v->size() == 1) return ToInt((*v)[0], l.Where() + " '" + key + "'");
  return ToInt(*v, l.Where() + " '" + key + "'");
}

double NumOf(const Layer& l, const char* key, double fallback) {
  const json* v = Optional(*l.config, key);
  if (!v) return fallback;
  if (!v->is_number()) Fail(l.Where(), ": '", key, "' must be a number");
  return v->get<double>();
}

bool BoolOf(const Layer& l, const char* key, bool fallback) {
  const json* v = Optional(*l.config, key);
  if (!v) return fallback;
  if (!v->is_boolean()) Fail(l.Where(), ": '", key, "' must be true or false");
  return v->get<bool>();
}

std::string StrOf(const Layer& l, const char* key, const std::string& fallback) {
  const json* v = Optional(*l.config, key);
  if (!v) return fallback;
  if (!v->is_string()) Fail(l.Where(), ": '", key, "' must be a string");
  return v->get<std::string>();
}

// An int or a list of `n` ints (kernel_size, strides, ...), each in 1..limit.
std::vector<int64_t> TupleOf(const Layer& l, const char* key, std::vector<int64_t> fallback,
                             int64_t limit = 4096) {
  const json* v = Optional(*l.config, key);
  const std::string where = l.Where() + " '" + key + "'";
  const size_t n = fallback.size();
  std::vector<int64_t> out;
  if (!v) {
    out = std::move(fallback);
  } else if (v->is_array()) {
    for (const json& e : *v) out.push_back(ToInt(e, where));
  } else {
    out.assign(n, ToInt(*v, where));
  }
  if (out.size() != n) Fail(where, ": expected ", n, " values");
  for (int64_t x : out)
    if (x < 1 || x > limit) Fail(where, ": value ", x, " is out of range");
  return out;
}

// The name of an activation: a string, or (Keras 3) a serialised object naming a built-in.
std::string ActivationName(const Layer& l, const char* key) {
  const json* v = Optional(*l.config, key);
  if (!v) return "linear";
  if (v->is_string()) return v->get<std::string>();
  const json* c = Optional(*v, "config");
  if (c && c->is_string()) return c->get<std::string>();
  Fail(l.Where(), ": custom activation ", v->dump(), " is not supported");
}

// 'padding' ("valid" or "same") as the attributes of a convolution or pooling op.
void PaddingAttrs(const Layer& l, std::map<std::string, Attr>* attrs) {
  const std::string padding = StrOf(l, "padding", "valid");
  if (padding == "same")
    (*attrs)["same"] = Attr::Ints({1});
  else if (padding == "valid")
    (*attrs)["padding"] = Attr::Ints({0, 0, 0, 0});
  else
    Fail(l.Where(), ": padding '", padding, "' is not supported (valid, same)");
}

void CheckChannelsLast(const Layer& l) {
  const std::string f = StrOf(l, "data_format", "channels_last");
  if (f != "channels_last")
    Fail(l.Where(), ": data_format '", f,
         "' is not supported (only channels_last; re-save the model with channels_last)");
}

// "conv2d/kernel:0", "sequential_4/conv2d_12/kernel" -> "kernel".
std::string WeightSuffix(const std::string& name) {
  std::string s = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos) s = s.substr(0, colon);
  return s;
}

Shape BatchShape(const json& v, const std::string& where) {
  if (!v.is_array() || v.empty() || v.size() > 6) Fail(where, ": expected a list of 1..6 sizes");
  Shape s;
  for (size_t k = 0; k < v.size(); ++k) {
    if (v[k].is_null()) {
      if (k != 0) Fail(where, ": dimension ", k, " is unknown (None); give the input shape");
      s.push_back(1);
    } else {
      const int64_t d = ToInt(v[k], where);
      if (d < 1 || d > kMaxDim) Fail(where, ": dimension ", d, " is out of range");
      s.push_back(k == 0 ? 1 : d);
    }
  }
  return s;
}

class KerasConverter {
 public:
  KerasConverter(const KerasModelSource& src, const KerasConvertOptions& options)
      : src_(src), options_(options) {}
  void Convert(Graph* out);

 private:
  void ParseSequential(const json& layers);
  void ParseFunctional(const json& config);
  void AddInput(const std::string& name, const Shape& shape);
  static Shape DeclaredInput(const Layer& l);
  void PlanFolds();
  void Lower(const Layer& l);
  void LowerConv(const Layer& l);
  void LowerDense(const Layer& l);
  void LowerPool(const Layer& l);
  void LowerBatchNorm(const Layer& l);

  const KerasArray* Weight(const Layer& l, const char* suffix, const Shape& shape,
                           bool required = true);
  // Per-channel y = x * k + shift of a BatchNormalization layer.
  void BatchNormParams(const Layer& bn, int64_t channels, std::vector<float>* k,
                       std::vector<float>* shift);
  int32_t In(const Layer& l, size_t k) const { return tensor_.at(l.inbound.at(k)); }
  int32_t Op(const Layer& l, const std::string& op, const std::string& name,
             const std::vector<int32_t>& in, std::map<std::string, Attr> attrs = {});
  int32_t Const(const std::string& name, const Shape& shape, std::vector<float> data);
  int32_t Activation(const Layer& l, int32_t x, const std::string& act, const std::string& name);
  std::string Unique(const std::string& base);

  const KerasModelSource& src_;
  const KerasConvertOptions& options_;
  json model_;
  std::vector<Layer> layers_;
  std::vector<std::string> inputs_, outputs_;
  std::vector<Shape> input_shapes_;
  std::map<std::string, const Layer*> fold_bn_;  // producer layer -> BN folded into it
  std::set<std::string> folded_bn_;              // BN layers folded away
  GraphBuilder b_;
  std::map<std::string, int32_t> tensor_;  // layer name -> its output tensor
  std::set<std::string> used_;
};

std::string KerasConverter::Unique(const std::string& base) {
  std::string name = base.empty() ? "t" : base;
  for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

int32_t KerasConverter::Op(const Layer& l, const std::string& op, const std::string& name,
                           const std::vector<int32_t>& in, std::map<std::string, Attr> attrs) {
  const int32_t id = b_.Op(op, Unique(name), in, std::move(attrs));
  if (!b_.status().ok()) Fail(l.Where(), ": ", b_.status().message());
  return id;
}

int32_t KerasConverter::Const(const std::string& name, const Shape& shape,
                              std::vector<float> data) {
  for (float f : data)
    if (!std::isfinite(f)) Fail("weight '", name, "' contains NaN or infinity");
  const int32_t id = b_.Constant(Unique(name), shape, std::move(data));
  if (!b_.status().ok()) Fail(b_.status().message());
  return id;
}

int32_t KerasConverter::Activation(const Layer& l, int32_t x, const std::string& act,
                                   const std::string& name) {
  if (act == "linear") return x;
  if (act == "relu") return Op(l, "clamp", name, {x}, {{"clamp", Attr::Floats({0.f, kInf})}});
  if (act == "relu6") return Op(l, "clamp", name, {x}, {{"clamp", Attr::Floats({0.f, 6.f})}});
  if (act == "sigmoid") return Op(l, "sigmoid", name, {x});
  if (act == "tanh") return Op(l, "tanh", name, {x});
  if (act == "softmax") return Op(l, "softmax", name, {x});
  Fail(l.Where(), ": activation '", act,
       "' is not supported (relu, relu6, sigmoid, softmax, tanh, linear)");
}

const KerasArray* KerasConverter::Weight(const Layer& l, const char* suffix, const Shape& shape,
                                         bool required) {
  auto it = src_.weights.find(l.name);
  const KerasArray* found = nullptr;
  std::string have;
  if (it != src_.weights.end())
    for (const KerasArray& a : it->second) {
      have += (have.empty() ? "" : ", ") + a.name;
      if (WeightSuffix(a.name) != suffix) continue;
      if (found) Fail(l.Where(), ": two weights named '", suffix, "'");
      found = &a;
    }
  if (!found) {
    if (!required) return nullptr;
    Fail(l.Where(), ": weight '", suffix,
         "' not found (the file has: ", have.empty() ? "none" : have, ")");
  }
  if (found->shape != shape)
    Fail(l.Where(), ": weight '", found->name, "' has shape ", ShapeToString(found->shape),
         ", expected ", ShapeToString(shape));
  if (int64_t(found->data.size()) != NumElements(shape))
    Fail(l.Where(), ": weight '", found->name, "' has the wrong number of values");
  return found;
}

void KerasConverter::BatchNormParams(const Layer& bn, int64_t channels, std::vector<float>* k,
                                     std::vector<float>* shift) {
  const Shape s = {channels};
  const KerasArray* gamma = BoolOf(bn, "scale", true) ? Weight(bn, "gamma", s) : nullptr;
  const KerasArray* beta = BoolOf(bn, "center", true) ? Weight(bn, "beta", s) : nullptr;
  const KerasArray* mean = Weight(bn, "moving_mean", s);
  const KerasArray* var = Weight(bn, "moving_variance", s);
  const double eps = NumOf(bn, "epsilon", 1e-3);
  if (!(eps >= 0)) Fail(bn.Where(), ": epsilon must be >= 0");
  k->resize(size_t(channels));
  shift->resize(size_t(channels));
  for (size_t c = 0; c < size_t(channels); ++c) {
    const double v = double(var->data[c]) + eps;
    if (!(v > 0)) Fail(bn.Where(), ": moving_variance + epsilon must be > 0");
    const double kk = (gamma ? double(gamma->data[c]) : 1.0) / std::sqrt(v);
    (*k)[c] = float(kk);
    (*shift)[c] = float((beta ? double(beta->data[c]) : 0.0) - double(mean->data[c]) * kk);
  }
}

// The input shape a layer declares (InputLayer or first layer of a Sequential), or {}.
Shape KerasConverter::DeclaredInput(const Layer& l) {
  const json* v = Optional(*l.config, "batch_input_shape");
  if (!v) v = Optional(*l.config, "batch_shape");  // Keras 3
  return v ? BatchShape(*v, l.Where() + " input shape") : Shape{};
}

void KerasConverter::AddInput(const std::string& name, const Shape& declared) {
  Shape s = options_.input_shape.empty() ? declared : options_.input_shape;
  if (s.empty()) Fail("input '", name, "' has no known shape: give the input shape");
  Status st = CheckShape(s);
  if (!st.ok()) Fail("input '", name, "': ", st.message());
  inputs_.push_back(name);
  input_shapes_.push_back(s);
}

void KerasConverter::ParseSequential(const json& layers) {
  if (!layers.is_array()) Fail("model_config: Sequential layers must be a list");
  if (layers.size() > kMaxLayers) Fail("model_config: too many layers");
  std::string prev;
  for (size_t k = 0; k < layers.size(); ++k) {
    const json& j = layers[k];
    Layer l;
    const json* cls = Optional(j, "class_name");
    l.config = Optional(j, "config");
    if (!cls || !cls->is_string() || !l.config || !l.config->is_object())
      Fail("model_config: layer ", k, " has no class_name/config");
    l.cls = cls->get<std::string>();
    const json* name = Optional(*l.config, "name");
    l.name = name && name->is_string() ? name->get<std::string>() : "layer_" + std::to_string(k);
    if (l.name.empty() || l.name.size() > 1000) Fail("model_config: layer ", k, ": bad name");
    if (k == 0) {
      const Shape s = DeclaredInput(l);
      if (l.cls == "InputLayer") {
        AddInput(l.name, s);
        prev = l.name;
        continue;
      }
      // No InputLayer entry (Keras before 2.4 or a model built with input_shape on layer 1):
      // the first layer declares the input. Later layers' batch_input_shape is ignored.
      AddInput(l.name + "_input", s);
      prev = inputs_.back();
    } else if (l.cls == "InputLayer") {
      Fail(l.Where(), ": an InputLayer in the middle of a Sequential model is not supported");
    }
    l.inbound = {prev};
    prev = l.name;
    layers_.push_back(std::move(l));
  }
  if (layers_.empty()) Fail("model_config: the model has no layers");
  outputs_ = {prev};
}

// [name, node_index, tensor_index(, kwargs)] or a Keras 3 __keras_tensor__ -> producer name.
void CollectHistory(const json& v, const std::string& where, std::vector<std::string>* out) {
  if (v.is_array() && v.size() >= 3 && v[0].is_string() && v[1].is_number() && v[2].is_number()) {
    if (ToInt(v[1], where) != 0 || ToInt(v[2], where) != 0)
      Fail(where, ": layers called more than once or with several outputs are not supported");
    out->push_back(v[0].get<std::string>());
    return;
  }
  if (v.is_array()) {
    for (const json& e : v) CollectHistory(e, where, out);
    return;
  }
  if (v.is_object()) {
    const json* cfg = Optional(v, "config");
    const json* hist = cfg ? Optional(*cfg, "keras_history") : nullptr;
    if (hist) return CollectHistory(*hist, where, out);
    if (const json* args = Optional(v, "args")) CollectHistory(*args, where, out);
  }
}

void KerasConverter::ParseFunctional(const json& config) {
  const json* layers = Optional(config, "layers");
  if (!layers || !layers->is_array()) Fail("model_config: a functional model needs 'layers'");
  if (layers->size() > kMaxLayers) Fail("model_config: too many layers");
  std::vector<Layer> pending;
  std::set<std::string> names;
  for (size_t k = 0; k < layers->size(); ++k) {
    const json& j = (*layers)[k];
    Layer l;
    const json* cls = Optional(j, "class_name");
    const json* name = Optional(j, "name");
    l.config = Optional(j, "config");
    if (!cls || !cls->is_string() || !l.config || !l.config->is_object())
      Fail("model_config: layer ", k, " has no class_name/config");
    l.cls = cls->get<std::string>();
    if (!name) name = Optional(*l.config, "name");
    if (!name || !name->is_string() || name->get<std::string>().empty())
      Fail("model_config: layer ", k, " has no name");
    l.name = name->get<std::string>();
    if (!names.insert(l.name).second) Fail("model_config: two layers are named '", l.name, "'");
    const json* inbound = Optional(j, "inbound_nodes");
    if (inbound && !inbound->is_array()) Fail(l.Where(), ": inbound_nodes must be a list");
    if (inbound && inbound->size() > 1)
      Fail(l.Where(), ": layers called more than once (shared layers) are not supported");
    if (l.cls == "InputLayer") {
      AddInput(l.name, DeclaredInput(l));
      continue;
    }
    if (inbound && !inbound->empty()) CollectHistory((*inbound)[0], l.Where(), &l.inbound);
    if (l.inbound.empty()) Fail(l.Where(), ": has no inputs");
    pending.push_back(std::move(l));
  }
  if (inputs_.empty()) Fail("model_config: the functional model has no InputLayer");
  if (inputs_.size() > 1 && !options_.input_shape.empty())
    Fail("an input shape can only be given for a model with one input");
  // Order so that every layer comes after its inputs.
  std::set<std::string> ready(inputs_.begin(), inputs_.end());
  while (!pending.empty()) {
    bool progress = false;
    for (size_t k = 0; k < pending.size();) {
      bool ok = true;
      for (const std::string& in : pending[k].inbound) ok = ok && ready.count(in);
      if (ok) {
        ready.insert(pending[k].name);
        layers_.push_back(std::move(pending[k]));
        pending.erase(pending.begin() + long(k));
        progress = true;
      } else {
        ++k;
      }
    }
    if (!progress) {
      for (const std::string& in : pending[0].inbound)
        if (!names.count(in))
          Fail(pending[0].Where(), ": input '", in, "' is not a layer of the model");
      Fail(pending[0].Where(), ": the layers form a cycle");
    }
  }
  const json* outs = Optional(config, "output_layers");
  if (!outs) Fail("model_config: a functional model needs 'output_layers'");
  CollectHistory(*outs, "model_config output_layers", &outputs_);
  if (outputs_.empty() || outputs_.size() > 16) Fail("model_config: 1..16 outputs expected");
  for (const std::string& o : outputs_)
    if (!ready.count(o)) Fail("model_config: output '", o, "' is not a layer of the model");
}

void KerasConverter::PlanFolds() {
  std::map<std::string, int> uses;
  for (const Layer& l : layers_)
    for (const std::string& in : l.inbound) ++uses[in];
  for (const std::string& o : outputs_) ++uses[o];
  std::map<std::string, const Layer*> by_name;
  for (const Layer& l : layers_) by_name[l.name] = &l;
  static const std::set<std::string> kFoldable = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D",
                                                  "Dense"};
  for (const Layer& l : layers_) {
    if (l.cls != "BatchNormalization" || l.inbound.size() != 1) continue;
    auto p = by_name.find(l.inbound[0]);
    if (p == by_name.end() || !kFoldable.count(p->second->cls)) continue;
    const int64_t axis = IntOf(l, "axis", -1);
    if (axis != -1 && axis != (p->second->cls == "Dense" ? 1 : 3)) continue;
    if (uses[p->first] != 1 || ActivationName(*p->second, "activation") != "linear") continue;
    fold_bn_[p->first] = &l;
    folded_bn_.insert(l.name);
  }
}

void KerasConverter::LowerConv(const Layer& l) {
  CheckChannelsLast(l);
  const int32_t x = In(l, 0);
  const Shape xs = b_.ShapeOf(x);
  if (xs.size() != 4) Fail(l.Where(), ": input must be [N, H, W, C], got ", ShapeToString(xs));
  const std::vector<int64_t> ks = TupleOf(l, "kernel_size", {1, 1});
  const std::vector<int64_t> st = TupleOf(l, "strides", {1, 1});
  const std::vector<int64_t> dl = TupleOf(l, "dilation_rate", {1, 1});
  if (IntOf(l, "groups", 1) != 1) Fail(l.Where(), ": grouped convolution is not supported");
  std::map<std::string, Attr> attrs = {{"stride", Attr::Ints(st)}, {"dilation", Attr::Ints(dl)}};
  PaddingAttrs(l, &attrs);
  const int64_t C = xs[3], kh = ks[0], kw = ks[1];
  int32_t in = x;
  int64_t out_c;
  std::vector<float> w;
  Shape ws;
  std::string op = "conv2d";
  std::map<std::string, Attr> conv_attrs = attrs;
  if (l.cls == "Conv2D") {
    out_c = IntOf(l, "filters", 0);
    if (out_c < 1 || out_c > kMaxDim) Fail(l.Where(), ": bad 'filters'");
    const KerasArray* k = Weight(l, "kernel", {kh, kw, C, out_c});
    w.resize(k->data.size());
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t xx = 0; xx < kw; ++xx)
        for (int64_t i = 0; i < C; ++i)
          for (int64_t o = 0; o < out_c; ++o)
            w[size_t(((o * kh + y) * kw + xx) * C + i)] =
                k->data[size_t(((y * kw + xx) * C + i) * out_c + o)];
    ws = {out_c, kh, kw, C};
  } else {
    const int64_t M = IntOf(l, "depth_multiplier", 1);
    if (M < 1 || M > 4096) Fail(l.Where(), ": bad 'depth_multiplier'");
    const KerasArray* dk = Weight(l, "depthwise_kernel", {kh, kw, C, M});
    if (l.cls == "DepthwiseConv2D") {
      out_c = C * M;
      w = dk->data;  // [kh, kw, C, M] is [1, kh, kw, C*M] in memory
      ws = {1, kh, kw, C * M};
      op = "depthwise_conv2d";
    } else {  // SeparableConv2D: depthwise (no bias) then a 1x1 convolution
      in = Op(l, "depthwise_conv2d", l.name + "/depthwise",
              {x, Const(l.name + "/depthwise_kernel", {1, kh, kw, C * M}, dk->data)}, attrs);
      out_c = IntOf(l, "filters", 0);
      if (out_c < 1 || out_c > kMaxDim) Fail(l.Where(), ": bad 'filters'");
      const KerasArray* pk = Weight(l, "pointwise_kernel", {1, 1, C * M, out_c});
      w.resize(pk->data.size());
      for (int64_t i = 0; i < C * M; ++i)
        for (int64_t o = 0; o < out_c; ++o)
          w[size_t(o * C * M + i)] = pk->data[size_t(i * out_c + o)];
      ws = {out_c, 1, 1, C * M};
      conv_attrs = {{"padding", Attr::Ints({0, 0, 0, 0})}};
    }
  }
  std::vector<float> bias;
  if (BoolOf(l, "use_bias", true)) bias = Weight(l, "bias", {out_c})->data;
  auto fold = fold_bn_.find(l.name);
  if (fold != fold_bn_.end()) {
    std::vector<float> k, shift;
    BatchNormParams(*fold->second, out_c, &k, &shift);
    if (bias.empty()) bias.assign(size_t(out_c), 0.f);
    for (size_t e = 0; e < w.size(); ++e)
      w[e] *= k[op == "depthwise_conv2d" ? e % size_t(out_c) : e / (w.size() / size_t(out_c))];
    for (size_t c = 0; c < size_t(out_c); ++c) bias[c] = bias[c] * k[c] + shift[c];
  }
  const std::string act = ActivationName(l, "activation");
  if (act == "relu" || act == "relu6")
    conv_attrs["clamp"] = Attr::Floats({0.f, act == "relu" ? kInf : 6.f});
  std::vector<int32_t> ins = {in, Const(l.name + "/kernel", ws, std::move(w))};
  if (!bias.empty()) ins.push_back(Const(l.name + "/bias", {out_c}, std::move(bias)));
  const bool fused = act == "relu" || act == "relu6" || act == "linear";
  int32_t y = Op(l, op, fused ? l.name : l.name + "/conv", ins, conv_attrs);
  if (!fused) y = Activation(l, y, act, l.name);
  tensor_[l.name] = y;
}

void KerasConverter::LowerDense(const Layer& l) {
  int32_t x = In(l, 0);
  const Shape xs = b_.ShapeOf(x);
  const int64_t K = xs.back();
  bool reshaped = false;
  if (xs.size() != 2) {
    for (size_t k = 0; k + 1 < xs.size(); ++k)
      if (xs[k] != 1)
        Fail(l.Where(), ": Dense on a ", ShapeToString(xs),
             " input is not supported (add a Flatten before it)");
    x = Op(l, "reshape", l.name + "/flat", {x}, {{"shape", Attr::Ints({1, K})}});
    reshaped = true;
  }
  const int64_t units = IntOf(l, "units", 0);
  if (units < 1 || units > kMaxDim) Fail(l.Where(), ": bad 'units'");
  const KerasArray* k = Weight(l, "kernel", {K, units});
  std::vector<float> w(k->data.size());
  for (int64_t i = 0; i < K; ++i)
    for (int64_t o = 0; o < units; ++o) w[size_t(o * K + i)] = k->data[size_t(i * units + o)];
  std::vector<float> bias;
  if (BoolOf(l, "use_bias", true)) bias = Weight(l, "bias", {units})->data;
  auto fold = fold_bn_.find(l.name);
  if (fold != fold_bn_.end()) {
    std::vector<float> bk, shift;
    BatchNormParams(*fold->second, units, &bk, &shift);
    if (bias.empty()) bias.assign(size_t(units), 0.f);
    for (size_t e = 0; e < w.size(); ++e) w[e] *= bk[e / size_t(K)];
    for (size_t c = 0; c < size_t(units); ++c) bias[c] = bias[c] * bk[c] + shift[c];
  }
  const std::string act = ActivationName(l, "activation");
  std::map<std::string, Attr> attrs;
  if (act == "relu" || act == "relu6")
    attrs["clamp"] = Attr::Floats({0.f, act == "relu" ? kInf : 6.f});
  std::vector<int32_t> ins = {x, Const(l.name + "/kernel", {units, K}, std::move(w))};
  if (!bias.empty()) ins.push_back(Const(l.name + "/bias", {units}, std::move(bias)));
  const bool fused = act == "relu" || act == "relu6" || act == "linear";
  const bool last = fused && !reshaped;
  int32_t y = Op(l, "fully_connected", last ? l.name : l.name + "/dense", ins, attrs);
  if (!fused) y = Activation(l, y, act, reshaped ? l.name + "/act" : l.name);
  if (reshaped) {
    Shape back = xs;
    back.back() = units;
    y = Op(l, "reshape", l.name, {y}, {{"shape", Attr::Ints(back)}});
  }
  tensor_[l.name] = y;
}

void KerasConverter::LowerPool(const Layer& l) {
  CheckChannelsLast(l);
  const int32_t x = In(l, 0);
  if (b_.ShapeOf(x).size() != 4)
    Fail(l.Where(), ": input must be [N, H, W, C], got ", ShapeToString(b_.ShapeOf(x)));
  const std::vector<int64_t> pool = TupleOf(l, "pool_size", {2, 2});
  const json* s = Optional(*l.config, "strides");
  const std::vector<int64_t> st = s ? TupleOf(l, "strides", {1, 1}) : pool;
  std::map<std::string, Attr> attrs = {{"kernel", Attr::Ints(pool)}, {"stride", Attr::Ints(st)}};
  PaddingAttrs(l, &attrs);
  tensor_[l.name] =
      Op(l, l.cls == "MaxPooling2D" ? "max_pool2d" : "avg_pool2d", l.name, {x}, attrs);
}

void KerasConverter::LowerBatchNorm(const Layer& l) {
  if (folded_bn_.count(l.name)) {
    tensor_[l.name] = In(l, 0);  // already applied by the producer's weights
    return;
  }
  const int32_t x = In(l, 0);
  const Shape xs = b_.ShapeOf(x);
  const int64_t axis = IntOf(l, "axis", -1);
  if (axis != -1 && axis != int64_t(xs.size()) - 1)
    Fail(l.Where(), ": only normalisation over the last (channel) axis is supported, got axis ",
         axis);
  std::vector<float> k, shift;
  BatchNormParams(l, xs.back(), &k, &shift);
  const int64_t C = xs.back();
  const int32_t m =
      Op(l, "multiply", l.name + "/scale", {x, Const(l.name + "/k", {C}, std::move(k))});
  tensor_[l.name] = Op(l, "add", l.name, {m, Const(l.name + "/shift", {C}, std::move(shift))});
}

void KerasConverter::Lower(const Layer& l) {
  const std::string& c = l.cls;
  if (c != "Add" && c != "Concatenate" && l.inbound.size() != 1)
    Fail(l.Where(), ": expected one input, got ", l.inbound.size());
  if (c == "Conv2D" || c == "DepthwiseConv2D" || c == "SeparableConv2D") return LowerConv(l);
  if (c == "Dense") return LowerDense(l);
  if (c == "MaxPooling2D" || c == "AveragePooling2D") return LowerPool(l);
  if (c == "BatchNormalization") return LowerBatchNorm(l);
  if (c == "Dropout" || c == "SpatialDropout2D" || c == "GaussianDropout" || c == "GaussianNoise" ||
      c == "AlphaDropout") {
    tensor_[l.name] = In(l, 0);  // identity at inference
    return;
  }
  const int32_t x = In(l, 0);
  const Shape xs = b_.ShapeOf(x);
  if (c == "Activation") {
    tensor_[l.name] = Activation(l, x, ActivationName(l, "activation"), l.name);
  } else if (c == "ReLU") {
    const json* mv = Optional(*l.config, "max_value");
    const double max_value = mv ? NumOf(l, "max_value", 0) : double(kInf);
    const double slope = NumOf(l, "negative_slope", 0), threshold = NumOf(l, "threshold", 0);
    if (threshold != 0) Fail(l.Where(), ": threshold != 0 is not supported");
    if (slope == 0) {
      if (!(max_value > 0)) Fail(l.Where(), ": max_value must be > 0");
      tensor_[l.name] =
          Op(l, "clamp", l.name, {x}, {{"clamp", Attr::Floats({0.f, float(max_value)})}});
    } else if (!mv) {
      tensor_[l.name] = Op(l, "leaky_relu", l.name, {x}, {{"alpha", Attr::Floats({float(slope)})}});
    } else {
      Fail(l.Where(), ": negative_slope together with max_value is not supported");
    }
  } else if (c == "LeakyReLU") {
    const double alpha = Optional(*l.config, "negative_slope") ? NumOf(l, "negative_slope", 0.3)
                                                               : NumOf(l, "alpha", 0.3);
    tensor_[l.name] = Op(l, "leaky_relu", l.name, {x}, {{"alpha", Attr::Floats({float(alpha)})}});
  } else if (c == "Softmax") {
    const int64_t axis = IntOf(l, "axis", -1);
    if (axis != -1 && axis != int64_t(xs.size()) - 1)
      Fail(l.Where(), ": softmax over axis ", axis, " is not supported (only the last axis)");
    tensor_[l.name] = Op(l, "softmax", l.name, {x});
  } else if (c == "Flatten") {
    CheckChannelsLast(l);
    tensor_[l.name] = xs.size() == 2 ? x
                                     : Op(l, "reshape", l.name, {x},
                                          {{"shape", Attr::Ints({1, NumElements(xs)})}});
  } else if (c == "Reshape") {
    const json* t = Optional(*l.config, "target_shape");
    if (!t || !t->is_array() || t->empty() || t->size() > 5)
      Fail(l.Where(), ": target_shape must be a list of 1..5 sizes");
    std::vector<int64_t> shape = {1};
    int64_t known = 1, unknown = -1;
    for (const json& d : *t) {
      const int64_t v = ToInt(d, l.Where() + " target_shape");
      if (v == -1 && unknown < 0) {
        unknown = int64_t(shape.size());
      } else if (v < 1 || v > kMaxDim) {
        Fail(l.Where(), ": bad target_shape ", t->dump());
      } else {
        known *= v;
        if (known > kMaxTensorElements) Fail(l.Where(), ": target_shape too large");
      }
      shape.push_back(v);
    }
    const int64_t n = NumElements(xs);
    if (unknown >= 0) {
      if (n % known != 0) Fail(l.Where(), ": cannot reshape ", ShapeToString(xs));
      shape[size_t(unknown)] = n / known;
    }
    tensor_[l.name] = Op(l, "reshape", l.name, {x}, {{"shape", Attr::Ints(shape)}});
  } else if (c == "GlobalAveragePooling2D") {
    CheckChannelsLast(l);
    if (xs.size() != 4) Fail(l.Where(), ": input must be [N, H, W, C]");
    const bool keep = BoolOf(l, "keepdims", false);
    const int32_t g = Op(l, "global_avg_pool", keep ? l.name : l.name + "/pool", {x});
    tensor_[l.name] = keep ? g : Op(l, "reshape", l.name, {g}, {{"shape", Attr::Ints({1, xs[3]})}});
  } else if (c == "ZeroPadding2D") {
    CheckChannelsLast(l);
    if (xs.size() != 4) Fail(l.Where(), ": input must be [N, H, W, C]");
    const json* p = Optional(*l.config, "padding");
    const std::string where = l.Where() + " padding";
    int64_t t = 1, bo = 1, le = 1, r = 1;
    if (p && p->is_array() && p->size() == 2) {
      auto pair = [&](const json& e, int64_t* a, int64_t* b) {
        if (e.is_array() && e.size() == 2) {
          *a = ToInt(e[0], where);
          *b = ToInt(e[1], where);
        } else {
          *a = *b = ToInt(e, where);
        }
      };
      pair((*p)[0], &t, &bo);
      pair((*p)[1], &le, &r);
    } else if (p) {
      t = bo = le = r = ToInt(*p, where);
    }
    for (int64_t v : {t, bo, le, r})
      if (v < 0 || v > 4096) Fail(where, ": value ", v, " is out of range");
    tensor_[l.name] = Op(l, "pad", l.name, {x}, {{"pads", Attr::Ints({0, t, le, 0, 0, bo, r, 0})}});
  } else if (c == "Add") {
    if (l.inbound.size() < 2) Fail(l.Where(), ": needs at least two inputs");
    int32_t y = x;
    for (size_t k = 1; k < l.inbound.size(); ++k)
      y = Op(l, "add", k + 1 == l.inbound.size() ? l.name : l.name + "/" + std::to_string(k),
             {y, In(l, k)});
    tensor_[l.name] = y;
  } else if (c == "Concatenate") {
    if (l.inbound.size() < 2 || l.inbound.size() > 16) Fail(l.Where(), ": needs 2..16 inputs");
    std::vector<int32_t> ins;
    for (size_t k = 0; k < l.inbound.size(); ++k) ins.push_back(In(l, k));
    tensor_[l.name] =
        Op(l, "concatenate", l.name, ins, {{"axis", Attr::Ints({IntOf(l, "axis", -1)})}});
  } else {
    Fail(l.Where(), ": layer type '", c, "' is not supported");
  }
}

void KerasConverter::Convert(Graph* out) {
  model_ = json::parse(src_.config_json);
  const json* cls = Optional(model_, "class_name");
  const json* config = Optional(model_, "config");
  if (!cls || !cls->is_string() || !config)
    Fail("model_config: expected {\"class_name\": ..., \"config\": ...}");
  const std::string kind = cls->get<std::string>();
  if (kind == "Sequential") {
    // Keras before 2.2.3 stores the layer list itself; later versions {"name", "layers"}.
    const json* layers = config->is_array() ? config : Optional(*config, "layers");
    if (!layers) Fail("model_config: Sequential without 'layers'");
    ParseSequential(*layers);
  } else if (kind == "Model" || kind == "Functional") {
    ParseFunctional(*config);
  } else {
    Fail("model_config: model class '", kind, "' is not supported (Sequential, Model, Functional)");
  }
  PlanFolds();
  for (size_t k = 0; k < inputs_.size(); ++k) {
    used_.insert(inputs_[k]);
    tensor_[inputs_[k]] = b_.Input(inputs_[k], input_shapes_[k]);
  }
  for (const Layer& l : layers_) {
    if (l.cls == "Sequential" || l.cls == "Model" || l.cls == "Functional")
      Fail(l.Where(), ": nested models are not supported (flatten the model before saving)");
    Lower(l);
  }
  std::vector<int32_t> outs;
  for (const std::string& o : outputs_) {
    const int32_t t = tensor_.at(o);
    for (const std::string& in : inputs_)
      if (tensor_.at(in) == t) Fail("output '", o, "' is the input: nothing to compute");
    outs.push_back(t);
  }
  for (const auto& [k, v] : options_.metadata) b_.Metadata(k, v);
  Status s = b_.Finish(outs, out);
  if (!s.ok()) Fail("the converted graph is invalid: ", s.message());
}

}  // namespace

Status ConvertKerasModel(const KerasModelSource& source, const KerasConvertOptions& options,
                         Graph* out) {
  Graph g;
  FM_RETURN_IF_ERROR(convert_util::CatchToStatus(
      convert_util::Catches()
          .Json("model_config is not valid JSON: ", "model_config has a malformed field: ")
          .OutOfMemory("out of memory while converting")
          .Other("conversion failed: "),
      [&] { KerasConverter(source, options).Convert(&g); }));
  *out = std::move(g);
  return Status::Ok();
}

}  // namespace fm
