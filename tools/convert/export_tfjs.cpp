// export_tfjs.cpp - see export_tfjs.h. One pass over the graph's nodes in execution order; each
// engine op becomes the TensorFlow ops tfjs-converter runs (the fused forms TensorFlow's own
// converter emits: _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul with BiasAdd and
// Relu or Relu6). Constants become Const nodes whose data goes, in order, into one float32 (or
// int32, for shapes and axes) shard described by weightsManifest. Inside this file errors are
// thrown as ConvertError (convert_util.h); the public functions return a Status.
#include "export_tfjs.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "convert_util.h"
#include "ops/op.h"

namespace fm {
namespace {

// Keys keep their insertion order, so the signature lists the outputs in the graph's order (the
// order tfjs's GraphModel.outputs reports).
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr float kInf = std::numeric_limits<float>::infinity();

using convert_util::Base64;
using convert_util::Fail;

// ---- attribute values as tfjs-converter reads them from a GraphDef in JSON ----
json DtFloat() {
  return {{"type", "DT_FLOAT"}};
}
json AttrS(const std::string& s) {
  return {{"s", Base64(s)}};
}
json AttrI(int64_t v) {
  return {{"i", std::to_string(v)}};
}
json AttrB(bool v) {
  return {{"b", v}};
}
json AttrF(float v) {
  return {{"f", v}};
}
json AttrInts(const std::vector<int64_t>& v) {
  json l = json::array();
  for (int64_t x : v) l.push_back(std::to_string(x));
  return {{"list", v.empty() ? json::object() : json{{"i", l}}}};
}
json AttrStrs(const std::vector<std::string>& v) {
  json l = json::array();
  for (const std::string& x : v) l.push_back(Base64(x));
  return {{"list", {{"s", l}}}};
}
json TensorShapeJson(const Shape& s) {
  json dims = json::array();
  for (int64_t d : s) dims.push_back({{"size", std::to_string(d)}});
  return s.empty() ? json::object() : json{{"dim", dims}};
}

json ConstAttr(const char* dtype, const Shape& shape) {
  const json tensor = {{"dtype", dtype}, {"tensorShape", TensorShapeJson(shape)}};
  return {{"dtype", {{"type", dtype}}}, {"value", {{"tensor", tensor}}}};
}

// TensorFlow node names: [A-Za-z0-9.][A-Za-z0-9_./-]* (tfjs splits tensor names at ':').
std::string Sanitize(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '/' || c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty() || out[0] == '_' || out[0] == '/' || out[0] == '-') out = "n" + out;
  return out;
}

bool IsRelu(float lo, float hi) {
  return lo == 0.f && hi == kInf;
}
bool IsRelu6(float lo, float hi) {
  return lo == 0.f && hi == 6.f;
}
bool IsIdentity(float lo, float hi) {
  return lo == -kInf && hi == kInf;
}

class Exporter {
 public:
  explicit Exporter(const Graph& g) : g_(g) {}
  void Run(TfjsExport* out);

 private:
  std::string Unique(const std::string& base);
  void AddNode(const std::string& name, const std::string& op,
               const std::vector<std::string>& inputs, json attr);
  std::string ConstF(const std::string& base, const Shape& shape, const std::vector<float>& data);
  std::string ConstI(const std::string& base, const Shape& shape, const std::vector<int64_t>& data);
  std::string ConstOf(int32_t tensor);
  const std::string& Act(int32_t tensor) const { return name_[size_t(tensor)]; }
  void Activation(const std::string& name, const std::string& in, float lo, float hi);
  void Padding(size_t k, const Window& w, int64_t in_h, int64_t in_w, bool pool, json* attr);
  void Conv(size_t k, bool depthwise);
  void Pool(size_t k, bool max);
  void FullyConnected(size_t k);
  void Lower(size_t k);

  const Graph& g_;
  std::set<std::string> used_;
  std::vector<std::string> name_;  // activation tensor -> TensorFlow node name
  json nodes_ = json::array();
  json weights_ = json::array();
  std::vector<uint8_t> shard_;
};

std::string Exporter::Unique(const std::string& base) {
  const std::string clean = Sanitize(base);
  std::string name = clean;
  for (int k = 1; used_.count(name); ++k) name = clean + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

void Exporter::AddNode(const std::string& name, const std::string& op,
                       const std::vector<std::string>& inputs, json attr) {
  json n = {{"name", name}, {"op", op}};
  if (!inputs.empty()) n["input"] = inputs;
  n["attr"] = attr.is_null() ? json::object() : std::move(attr);
  nodes_.push_back(std::move(n));
}

std::string Exporter::ConstF(const std::string& base, const Shape& shape,
                             const std::vector<float>& data) {
  const std::string name = Unique(base);
  for (float f : data) {
    uint8_t b[4];
    std::memcpy(b, &f, 4);  // IEEE binary32; tfjs shards are little-endian like every host here
    shard_.insert(shard_.end(), b, b + 4);
  }
  weights_.push_back({{"name", name}, {"shape", shape}, {"dtype", "float32"}});
  AddNode(name, "Const", {}, ConstAttr("DT_FLOAT", shape));
  return name;
}

std::string Exporter::ConstI(const std::string& base, const Shape& shape,
                             const std::vector<int64_t>& data) {
  const std::string name = Unique(base);
  for (int64_t v : data) {
    const int32_t i = int32_t(v);
    uint8_t b[4];
    std::memcpy(b, &i, 4);
    shard_.insert(shard_.end(), b, b + 4);
  }
  weights_.push_back({{"name", name}, {"shape", shape}, {"dtype", "int32"}});
  AddNode(name, "Const", {}, ConstAttr("DT_INT32", shape));
  return name;
}

std::string Exporter::ConstOf(int32_t tensor) {
  const Tensor& t = g_.tensors[size_t(tensor)];
  return ConstF(t.name, t.shape, t.data);
}

// out = clamp(in, lo, hi) as the TensorFlow op tfjs runs for that range.
void Exporter::Activation(const std::string& name, const std::string& in, float lo, float hi) {
  if (IsRelu(lo, hi)) {
    AddNode(name, "Relu", {in}, {{"T", DtFloat()}});
  } else if (IsRelu6(lo, hi)) {
    AddNode(name, "Relu6", {in}, {{"T", DtFloat()}});
  } else if (IsIdentity(lo, hi)) {
    AddNode(name, "Identity", {in}, {{"T", DtFloat()}});
  } else if (hi == kInf) {
    AddNode(name, "Maximum", {in, ConstF(name + "/min", {}, {lo})}, {{"T", DtFloat()}});
  } else if (lo == -kInf) {
    AddNode(name, "Minimum", {in, ConstF(name + "/max", {}, {hi})}, {{"T", DtFloat()}});
  } else {
    AddNode(name, "ClipByValue",
            {in, ConstF(name + "/min", {}, {lo}), ConstF(name + "/max", {}, {hi})},
            {{"T", DtFloat()}});
  }
}

// TensorFlow's padding for a resolved window: SAME or VALID when the pads are exactly those, else
// EXPLICIT (convolutions only: tfjs pools know SAME and VALID).
void Exporter::Padding(size_t k, const Window& w, int64_t in_h, int64_t in_w, bool pool,
                       json* attr) {
  const Node& n = g_.nodes[k];
  Node same = n;
  same.attrs.erase("padding");
  same.attrs["same"] = Attr::Ints({1});
  Window sw;
  sw.kh = w.kh;
  sw.kw = w.kw;
  const bool is_same = ResolveWindow(same, in_h, in_w, &sw).ok() && sw.pad_top == w.pad_top &&
                       sw.pad_left == w.pad_left && sw.pad_bottom == w.pad_bottom &&
                       sw.pad_right == w.pad_right;
  const bool is_valid = !w.pad_top && !w.pad_left && !w.pad_bottom && !w.pad_right;
  if (is_valid || is_same) {
    (*attr)["padding"] = AttrS(is_valid ? "VALID" : "SAME");
    if (!pool) (*attr)["explicit_paddings"] = AttrInts({});
    return;
  }
  if (pool)
    Fail(g_.DescribeNode(k), ": padding [", w.pad_top, ", ", w.pad_left, ", ", w.pad_bottom, ", ",
         w.pad_right,
         "] is neither TensorFlow's SAME nor VALID for this input, which TensorFlow.js pools "
         "cannot express");
  (*attr)["padding"] = AttrS("EXPLICIT");
  (*attr)["explicit_paddings"] =
      AttrInts({0, 0, w.pad_top, w.pad_bottom, w.pad_left, w.pad_right, 0, 0});
}

void Exporter::Conv(size_t k, bool depthwise) {
  const Node& n = g_.nodes[k];
  const Shape& x = g_.ShapeOf(n.inputs[0]);
  const Tensor& wt = g_.tensors[size_t(n.inputs[1])];
  const Shape& ws = wt.shape;
  Window w;
  w.kh = ws[1];
  w.kw = ws[2];
  Status s = ResolveWindow(n, x[1], x[2], &w);
  if (!s.ok()) Fail(g_.DescribeNode(k), ": ", s.message());
  if ((w.dh > 1 || w.dw > 1) && (w.sh > 1 || w.sw > 1))
    Fail(g_.DescribeNode(k),
         ": dilation and stride both above 1, which TensorFlow.js convolutions refuse");
  const int64_t kh = ws[1], kw = ws[2];
  const int64_t out_c = depthwise ? ws[3] : ws[0];
  std::vector<float> filter(wt.data.size());
  Shape fshape;
  if (depthwise) {
    // [1, kh, kw, C*M] is [kh, kw, C, M] in memory (channel c*M + m reads input channel c).
    filter = wt.data;
    fshape = {kh, kw, x[3], ws[3] / x[3]};
  } else {
    const int64_t O = ws[0], I = ws[3];
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t xx = 0; xx < kw; ++xx)
          for (int64_t i = 0; i < I; ++i)
            filter[size_t(((y * kw + xx) * I + i) * O + o)] =
                wt.data[size_t(((o * kh + y) * kw + xx) * I + i)];
    fshape = {kh, kw, I, O};
  }
  std::vector<float> bias(size_t(out_c), 0.f);
  if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor) bias = g_.tensors[size_t(n.inputs[2])].data;
  float lo, hi;
  ClampRange(n, &lo, &hi);
  std::vector<std::string> fused = {"BiasAdd"};
  const bool fuse = IsRelu(lo, hi) || IsRelu6(lo, hi);
  if (fuse) fused.push_back(IsRelu(lo, hi) ? "Relu" : "Relu6");
  const bool separate = !fuse && !IsIdentity(lo, hi);
  const std::string out = Act(n.output);
  const std::string conv = separate ? Unique(out + "/conv") : out;
  json attr = {{"T", DtFloat()},
               {"strides", AttrInts({1, w.sh, w.sw, 1})},
               {"dilations", AttrInts({1, w.dh, w.dw, 1})},
               {"data_format", AttrS("NHWC")},
               {"fused_ops", AttrStrs(fused)},
               {"num_args", AttrI(1)},
               {"epsilon", AttrF(0.f)}};
  if (!depthwise) attr["use_cudnn_on_gpu"] = AttrB(true);
  Padding(k, w, x[1], x[2], false, &attr);
  const std::string f = ConstF(wt.name, fshape, filter);
  const std::string b = ConstF(out + "/bias", {out_c}, bias);
  AddNode(conv, depthwise ? "FusedDepthwiseConv2dNative" : "_FusedConv2D", {Act(n.inputs[0]), f, b},
          std::move(attr));
  if (separate) Activation(out, conv, lo, hi);
}

void Exporter::Pool(size_t k, bool max) {
  const Node& n = g_.nodes[k];
  const Shape& x = g_.ShapeOf(n.inputs[0]);
  const std::vector<int64_t> kernel = n.Ints("kernel", {1, 1});
  Window w;
  w.kh = kernel[0];
  w.kw = kernel[1];
  Status s = ResolveWindow(n, x[1], x[2], &w);
  if (!s.ok()) Fail(g_.DescribeNode(k), ": ", s.message());
  if (w.dh != 1 || w.dw != 1)
    Fail(g_.DescribeNode(k), ": dilated pooling is not supported by TensorFlow.js");
  float lo, hi;
  ClampRange(n, &lo, &hi);
  const bool separate = !IsIdentity(lo, hi);
  const std::string out = Act(n.output);
  const std::string pool = separate ? Unique(out + "/pool") : out;
  json attr = {{"T", DtFloat()},
               {"ksize", AttrInts({1, w.kh, w.kw, 1})},
               {"strides", AttrInts({1, w.sh, w.sw, 1})},
               {"data_format", AttrS("NHWC")}};
  Padding(k, w, x[1], x[2], true, &attr);
  AddNode(pool, max ? "MaxPool" : "AvgPool", {Act(n.inputs[0])}, std::move(attr));
  if (separate) Activation(out, pool, lo, hi);
}

void Exporter::FullyConnected(size_t k) {
  const Node& n = g_.nodes[k];
  const Tensor& wt = g_.tensors[size_t(n.inputs[1])];
  const int64_t O = wt.shape[0], K = wt.shape[1];
  std::vector<float> w(wt.data.size());  // [out, in] -> [in, out]
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < K; ++i) w[size_t(i * O + o)] = wt.data[size_t(o * K + i)];
  const bool has_bias = n.inputs.size() > 2 && n.inputs[2] != kNoTensor;
  float lo, hi;
  ClampRange(n, &lo, &hi);
  const bool fuse = has_bias && (IsRelu(lo, hi) || IsRelu6(lo, hi));
  const bool separate = !fuse && !IsIdentity(lo, hi);
  const std::string out = Act(n.output);
  const std::string mm = separate ? Unique(out + "/matmul") : out;
  const std::string wn = ConstF(wt.name, {K, O}, w);
  json attr = {{"T", DtFloat()}, {"transpose_a", AttrB(false)}, {"transpose_b", AttrB(false)}};
  if (has_bias) {
    std::vector<std::string> fused = {"BiasAdd"};
    if (fuse) fused.push_back(IsRelu(lo, hi) ? "Relu" : "Relu6");
    attr["fused_ops"] = AttrStrs(fused);
    attr["num_args"] = AttrI(1);
    attr["epsilon"] = AttrF(0.f);
    AddNode(mm, "_FusedMatMul", {Act(n.inputs[0]), wn, ConstOf(n.inputs[2])}, std::move(attr));
  } else {
    AddNode(mm, "MatMul", {Act(n.inputs[0]), wn}, std::move(attr));
  }
  if (separate) Activation(out, mm, lo, hi);
}

void Exporter::Lower(size_t k) {
  const Node& n = g_.nodes[k];
  const std::string& op = n.op;
  const std::string out = Act(n.output);
  auto in = [&](size_t i) {
    const int32_t t = n.inputs[i];
    return g_.tensors[size_t(t)].kind == TensorKind::kConstant ? ConstOf(t) : Act(t);
  };
  if (op == "conv2d" || op == "depthwise_conv2d") return Conv(k, op == "depthwise_conv2d");
  if (op == "max_pool2d" || op == "avg_pool2d") return Pool(k, op == "max_pool2d");
  if (op == "fully_connected") return FullyConnected(k);
  if (op == "add" || op == "multiply") {
    float lo, hi;
    ClampRange(n, &lo, &hi);
    const bool separate = !IsIdentity(lo, hi);
    const std::string name = separate ? Unique(out + "/" + op) : out;
    AddNode(name, op == "add" ? "AddV2" : "Mul", {in(0), in(1)}, {{"T", DtFloat()}});
    if (separate) Activation(out, name, lo, hi);
  } else if (op == "clamp") {
    float lo, hi;
    ClampRange(n, &lo, &hi);
    Activation(out, in(0), lo, hi);
  } else if (op == "sigmoid" || op == "tanh" || op == "softmax") {
    AddNode(out,
            op == "sigmoid" ? "Sigmoid"
            : op == "tanh"  ? "Tanh"
                            : "Softmax",
            {in(0)}, {{"T", DtFloat()}});
  } else if (op == "leaky_relu") {
    AddNode(out, "LeakyRelu", {in(0)}, {{"T", DtFloat()}, {"alpha", AttrF(n.Float("alpha", 0))}});
  } else if (op == "prelu") {
    AddNode(out, "Prelu", {in(0), in(1)}, {{"T", DtFloat()}});
  } else if (op == "global_avg_pool") {
    AddNode(out, "Mean", {in(0), ConstI(out + "/axes", {2}, {1, 2})},
            {{"T", DtFloat()}, {"Tidx", {{"type", "DT_INT32"}}}, {"keep_dims", AttrB(true)}});
  } else if (op == "pad") {
    const std::vector<int64_t> pads = n.Ints("pads", {});
    const size_t rank = pads.size() / 2;
    std::vector<int64_t> p;  // TensorFlow: [rank, 2] of (before, after)
    for (size_t d = 0; d < rank; ++d) {
      p.push_back(pads[d]);
      p.push_back(pads[d + rank]);
    }
    const float value = n.Float("value", 0.f);
    std::vector<std::string> ins = {in(0), ConstI(out + "/paddings", {int64_t(rank), 2}, p)};
    if (value != 0.f) ins.push_back(ConstF(out + "/value", {}, {value}));
    AddNode(out, value != 0.f ? "PadV2" : "Pad", ins,
            {{"T", DtFloat()}, {"Tpaddings", {{"type", "DT_INT32"}}}});
  } else if (op == "resize_bilinear") {
    const std::vector<int64_t> size = n.Ints("size", {});
    const int64_t mode = n.Int("mode", 0);
    AddNode(out, "ResizeBilinear", {in(0), ConstI(out + "/size", {2}, size)},
            {{"T", DtFloat()},
             {"align_corners", AttrB(mode == 1)},
             {"half_pixel_centers", AttrB(mode == 0)}});
  } else if (op == "depth_to_space") {
    AddNode(out, "DepthToSpace", {in(0)},
            {{"T", DtFloat()},
             {"block_size", AttrI(n.Int("block", 0))},
             {"data_format", AttrS("NHWC")}});
  } else if (op == "reshape") {
    const Shape& shape = g_.ShapeOf(n.output);
    AddNode(out, "Reshape", {in(0), ConstI(out + "/shape", {int64_t(shape.size())}, shape)},
            {{"T", DtFloat()}, {"Tshape", {{"type", "DT_INT32"}}}});
  } else if (op == "concatenate") {
    int64_t axis = n.Int("axis", 0);
    if (axis < 0) axis += int64_t(g_.ShapeOf(n.output).size());
    std::vector<std::string> ins;
    for (size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(in(i));
    ins.push_back(ConstI(out + "/axis", {}, {axis}));
    AddNode(out, "ConcatV2", ins,
            {{"T", DtFloat()},
             {"N", AttrI(int64_t(n.inputs.size()))},
             {"Tidx", {{"type", "DT_INT32"}}}});
  } else {
    Fail(g_.DescribeNode(k), ": op '", op, "' is not supported by the TensorFlow.js export");
  }
}

void Exporter::Run(TfjsExport* result) {
  if (!g_.validated()) Fail("the graph is not validated");
  // (Validate refuses an output listed twice and an input that is also an output: each tensor
  // gets one name here.)
  // Names: inputs, then outputs (so they keep their own names), then the other activations.
  name_.assign(g_.tensors.size(), "");
  for (int32_t t : g_.inputs) name_[size_t(t)] = Unique(g_.tensors[size_t(t)].name);
  for (int32_t t : g_.outputs) name_[size_t(t)] = Unique(g_.tensors[size_t(t)].name);
  for (const Node& n : g_.nodes)
    if (name_[size_t(n.output)].empty())
      name_[size_t(n.output)] = Unique(g_.tensors[size_t(n.output)].name);

  json sig_in = json::object(), sig_out = json::object();
  for (int32_t t : g_.inputs) {
    const Shape& s = g_.ShapeOf(t);
    AddNode(Act(t), "Placeholder", {},
            {{"dtype", DtFloat()}, {"shape", {{"shape", TensorShapeJson(s)}}}});
    sig_in[Act(t)] = {
        {"name", Act(t) + ":0"}, {"dtype", "DT_FLOAT"}, {"tensorShape", TensorShapeJson(s)}};
    result->input_names.push_back(Act(t));
  }
  for (size_t k = 0; k < g_.nodes.size(); ++k) Lower(k);
  for (int32_t t : g_.outputs) {
    sig_out[Act(t)] = {{"name", Act(t) + ":0"},
                       {"dtype", "DT_FLOAT"},
                       {"tensorShape", TensorShapeJson(g_.ShapeOf(t))}};
    result->output_names.push_back(Act(t));
  }
  json meta = json::object();
  for (const auto& [key, value] : g_.metadata) meta[key] = value;
  const json model = {
      {"format", "graph-model"},
      {"generatedBy", "facemask export"},
      {"convertedBy", "facemask export --tfjs (tools/convert/export_tfjs.cpp)"},
      {"modelTopology",
       {{"node", nodes_}, {"library", json::object()}, {"versions", {{"producer", 1}}}}},
      {"weightsManifest", json::array({{{"paths", {kTfjsShardName}}, {"weights", weights_}}})},
      {"signature", {{"inputs", sig_in}, {"outputs", sig_out}}},
      {"userDefinedMetadata",
       {{"inputs", result->input_names}, {"outputs", result->output_names}, {"facemask", meta}}}};
  result->model_json = model.dump();
  result->weights = std::move(shard_);
}

}  // namespace

Status ExportTfjs(const Graph& graph, TfjsExport* out) {
  TfjsExport e;
  FM_RETURN_IF_ERROR(convert_util::CatchToStatus(
      convert_util::Catches().Error("tfjs export: ").Other("tfjs export failed: "),
      [&] { Exporter(graph).Run(&e); }));
  *out = std::move(e);
  return Status::Ok();
}

Status ExportTfjsToDir(const Graph& graph, const std::string& dir) {
  TfjsExport e;
  FM_RETURN_IF_ERROR(ExportTfjs(graph, &e));
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (!existed) fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) return Errorf("cannot create the directory '", dir, "'");
  Status s;
  {
    // The shard first: model.json appears last, when everything it names is in place.
    convert_util::AtomicFiles files;
    s = files.Write((fs::path(dir) / kTfjsShardName).string(), e.weights.data(), e.weights.size());
    if (s.ok())
      s = files.Write((fs::path(dir) / "model.json").string(), e.model_json.data(),
                      e.model_json.size());
    if (s.ok() && !files.Commit().ok())
      s = Errorf("cannot rename the files in '", dir,
                 "': ", std::error_code(files.rename_errno(), std::generic_category()).message());
  }
  if (!s.ok() && !existed) fs::remove_all(dir, ec);
  return s;
}

}  // namespace fm
