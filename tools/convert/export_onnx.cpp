// export_onnx.cpp - see export_onnx.h. The protobuf wire format is written by hand (varints,
// length-delimited fields, fixed32 floats) with the field numbers of onnx.proto. Each activation
// tensor of our graph exists in the ONNX graph in one or both of two forms: "plain" (our NHWC
// layout, named exactly like our tensor) and "nchw" (4-D only, channel-first); every node asks for
// the form it needs and a Transpose (or a free Reshape, when the two orders coincide) is added the
// first time a form is missing. Inside this file errors are thrown as ConvertError
// (convert_util.h); the public functions return a Status.
#include "export_onnx.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "convert_util.h"
#include "ops/op.h"

namespace fm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int64_t kIrVersion = 8;
constexpr int64_t kOpset = 13;
constexpr int64_t kFloat = 1, kInt64 = 7;  // TensorProto.DataType

using convert_util::Fail;

// ---- protobuf wire format ----
class Pb {
 public:
  Pb& Varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(char(uint8_t(v) | 0x80));
      v >>= 7;
    }
    buf_.push_back(char(v));
    return *this;
  }
  Pb& Int(uint32_t field, int64_t v) {
    Tag(field, 0);
    return Varint(uint64_t(v));
  }
  Pb& Float(uint32_t field, float f) {
    Tag(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    for (int k = 0; k < 4; ++k) buf_.push_back(char((bits >> (8 * k)) & 0xFF));
    return *this;
  }
  Pb& Bytes(uint32_t field, const std::string& s) {
    Tag(field, 2);
    Varint(s.size());
    buf_ += s;
    return *this;
  }
  Pb& Msg(uint32_t field, const Pb& m) { return Bytes(field, m.buf_); }
  Pb& Append(const Pb& m) {
    buf_ += m.buf_;
    return *this;
  }
  const std::string& bytes() const { return buf_; }

 private:
  void Tag(uint32_t field, uint32_t wire) { Varint((uint64_t(field) << 3) | wire); }
  std::string buf_;
};

// AttributeProto: name 1, f 2, i 3, s 4, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, INTS 7).
Pb AttrInt(const std::string& name, int64_t v) {
  return std::move(Pb().Bytes(1, name).Int(3, v).Int(20, 2));
}
Pb AttrFloat(const std::string& name, float v) {
  return std::move(Pb().Bytes(1, name).Float(2, v).Int(20, 1));
}
Pb AttrStr(const std::string& name, const std::string& v) {
  return std::move(Pb().Bytes(1, name).Bytes(4, v).Int(20, 3));
}
Pb AttrInts(const std::string& name, const std::vector<int64_t>& v) {
  Pb a;
  a.Bytes(1, name);
  for (int64_t x : v) a.Int(8, x);
  return std::move(a.Int(20, 7));
}

// ValueInfoProto {name 1, type 2: TypeProto {tensor_type 1: {elem_type 1, shape 2: {dim 1:
// {dim_value 1}}}}}.
Pb ValueInfo(const std::string& name, const Shape& shape) {
  Pb dims;
  for (int64_t d : shape) dims.Msg(1, Pb().Int(1, d));
  Pb tensor;
  tensor.Int(1, kFloat).Msg(2, dims);
  return std::move(Pb().Bytes(1, name).Msg(2, Pb().Msg(1, tensor)));
}

bool IsIdentity(float lo, float hi) {
  return lo == -kInf && hi == kInf;
}

// NHWC axis -> NCHW axis.
int64_t NchwAxis(int64_t a) {
  static const int64_t map[4] = {0, 2, 3, 1};
  return map[a];
}

class Exporter {
 public:
  explicit Exporter(const Graph& g) : g_(g) {}
  std::string Run();

 private:
  std::string Unique(const std::string& base);
  void AddNode(const std::string& op, const std::vector<std::string>& in, const std::string& out,
               const std::vector<Pb>& attrs = {});
  std::string InitF(const std::string& base, const Shape& dims, const std::vector<float>& data);
  std::string InitI64(const std::string& base, const Shape& dims, const std::vector<int64_t>& data);
  // A constant operand broadcasting against a 4-D activation, in NCHW when nchw is set.
  std::string ConstOperand(int32_t t, bool nchw);
  static bool SameOrder(const Shape& s) { return s.size() == 4 && (s[3] == 1 || s[1] * s[2] == 1); }
  bool IsConst(int32_t t) const { return g_.tensors[size_t(t)].kind == TensorKind::kConstant; }
  std::string Plain(int32_t t);
  std::string Nchw(int32_t t);
  // Name for node k's output in the given form (recorded as that form).
  std::string Output(size_t k, bool nchw);
  // Emits op -> the output of node k (in the given form), then the node's fused clamp if any.
  void Emit(size_t k, const std::string& op, const std::vector<std::string>& in, bool nchw,
            const std::vector<Pb>& attrs = {});
  void Clamp(const std::string& in, const std::string& out, float lo, float hi);
  Window Resolve(size_t k, int64_t kh, int64_t kw);
  void Conv(size_t k, bool depthwise);
  void Lower(size_t k);

  const Graph& g_;
  std::set<std::string> used_;
  std::vector<std::string> plain_, nchw_;  // per tensor: the name of that form, "" = none yet
  Pb nodes_, inits_;
  int node_count_ = 0;
};

std::string Exporter::Unique(const std::string& base) {
  std::string name = base;
  for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
void Exporter::AddNode(const std::string& op, const std::vector<std::string>& in,
                       const std::string& out, const std::vector<Pb>& attrs) {
  Pb n;
  for (const std::string& s : in) n.Bytes(1, s);
  n.Bytes(2, out).Bytes(3, op + "_" + std::to_string(node_count_++)).Bytes(4, op);
  for (const Pb& a : attrs) n.Msg(5, a);
  nodes_.Msg(1, n);
}

// TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian).
std::string Exporter::InitF(const std::string& base, const Shape& dims,
                            const std::vector<float>& data) {
  const std::string name = Unique(base);
  std::string raw(data.size() * 4, '\0');
  for (size_t k = 0; k < data.size(); ++k) {
    uint32_t bits;
    std::memcpy(&bits, &data[k], 4);
    for (int b = 0; b < 4; ++b) raw[k * 4 + size_t(b)] = char((bits >> (8 * b)) & 0xFF);
  }
  Pb t;
  for (int64_t d : dims) t.Int(1, d);
  t.Int(2, kFloat).Bytes(8, name).Bytes(9, raw);
  inits_.Msg(5, t);
  return name;
}

std::string Exporter::InitI64(const std::string& base, const Shape& dims,
                              const std::vector<int64_t>& data) {
  const std::string name = Unique(base);
  std::string raw(data.size() * 8, '\0');
  for (size_t k = 0; k < data.size(); ++k)
    for (int b = 0; b < 8; ++b)
      raw[k * 8 + size_t(b)] = char((uint64_t(data[k]) >> (8 * b)) & 0xFF);
  Pb t;
  for (int64_t d : dims) t.Int(1, d);
  t.Int(2, kInt64).Bytes(8, name).Bytes(9, raw);
  inits_.Msg(5, t);
  return name;
}

std::string Exporter::ConstOperand(int32_t t, bool nchw) {
  const Tensor& c = g_.tensors[size_t(t)];
  if (!nchw) return InitF(c.name, c.shape, c.data);
  if (c.shape.size() > 4) Fail("internal: constant ", g_.DescribeTensor(t), " has rank > 4");
  Shape s(4 - c.shape.size(), 1);  // right-aligned broadcasting: pad with leading 1s
  s.insert(s.end(), c.shape.begin(), c.shape.end());
  const int64_t N = s[0], H = s[1], W = s[2], C = s[3];
  std::vector<float> d(c.data.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t ch = 0; ch < C; ++ch)
          d[size_t(((n * C + ch) * H + y) * W + x)] =
              c.data[size_t(((n * H + y) * W + x) * C + ch)];
  return InitF(c.name + "/nchw", {N, C, H, W}, d);
}

std::string Exporter::Plain(int32_t t) {
  std::string& p = plain_[size_t(t)];
  if (!p.empty()) return p;
  const std::string& src = nchw_[size_t(t)];
  if (src.empty()) Fail("internal: ", g_.DescribeTensor(t), " is used before it is computed");
  const Shape& s = g_.ShapeOf(t);
  const std::string name = g_.tensors[size_t(t)].name;  // reserved in Run()
  if (SameOrder(s))
    AddNode("Reshape", {src, InitI64(name + "/shape", {4}, s)}, name);
  else
    AddNode("Transpose", {src}, name, {AttrInts("perm", {0, 2, 3, 1})});
  return p = name;
}

std::string Exporter::Nchw(int32_t t) {
  std::string& p = nchw_[size_t(t)];
  if (!p.empty()) return p;
  const Shape& s = g_.ShapeOf(t);
  if (s.size() != 4) Fail("internal: ", g_.DescribeTensor(t), " is not 4-D");
  const std::string src = Plain(t);
  const std::string name = Unique(g_.tensors[size_t(t)].name + "/nchw");
  if (SameOrder(s))
    AddNode("Reshape", {src, InitI64(name + "/shape", {4}, {s[0], s[3], s[1], s[2]})}, name);
  else
    AddNode("Transpose", {src}, name, {AttrInts("perm", {0, 3, 1, 2})});
  return p = name;
}

std::string Exporter::Output(size_t k, bool nchw) {
  const int32_t t = g_.nodes[k].output;
  if (nchw) return nchw_[size_t(t)] = Unique(g_.tensors[size_t(t)].name + "/nchw");
  return plain_[size_t(t)] = g_.tensors[size_t(t)].name;
}

// out = clamp(in, lo, hi): Relu for [0, inf], else Clip (opset 13: min and max are inputs; an
// infinite bound is left out).
void Exporter::Clamp(const std::string& in, const std::string& out, float lo, float hi) {
  if (lo == 0.f && hi == kInf) {
    AddNode("Relu", {in}, out);
  } else if (IsIdentity(lo, hi)) {
    AddNode("Identity", {in}, out);
  } else {
    std::vector<std::string> ins = {in, lo == -kInf ? "" : InitF(out + "/min", {}, {lo})};
    if (hi != kInf) ins.push_back(InitF(out + "/max", {}, {hi}));
    AddNode("Clip", ins, out);
  }
}

void Exporter::Emit(size_t k, const std::string& op, const std::vector<std::string>& in, bool nchw,
                    const std::vector<Pb>& attrs) {
  float lo, hi;
  ClampRange(g_.nodes[k], &lo, &hi);
  const std::string out = Output(k, nchw);
  if (IsIdentity(lo, hi)) return AddNode(op, in, out, attrs);
  const std::string pre = Unique(out + "/" + op);
  AddNode(op, in, pre, attrs);
  Clamp(pre, out, lo, hi);
}

Window Exporter::Resolve(size_t k, int64_t kh, int64_t kw) {
  const Node& n = g_.nodes[k];
  const Shape& x = g_.ShapeOf(n.inputs[0]);
  Window w;
  w.kh = kh;
  w.kw = kw;
  Status s = ResolveWindow(n, x[1], x[2], &w);
  if (!s.ok()) Fail(g_.DescribeNode(k), ": ", s.message());
  return w;
}

void Exporter::Conv(size_t k, bool depthwise) {
  const Node& n = g_.nodes[k];
  const Shape& x = g_.ShapeOf(n.inputs[0]);
  const Tensor& wt = g_.tensors[size_t(n.inputs[1])];
  const int64_t kh = wt.shape[1], kw = wt.shape[2];
  const Window w = Resolve(k, kh, kw);
  std::vector<float> oihw(wt.data.size());
  Shape dims;
  if (depthwise) {  // [1, kh, kw, C*M] -> [C*M, 1, kh, kw]; group = C
    const int64_t OC = wt.shape[3];
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t xx = 0; xx < kw; ++xx)
        for (int64_t o = 0; o < OC; ++o)
          oihw[size_t((o * kh + y) * kw + xx)] = wt.data[size_t((y * kw + xx) * OC + o)];
    dims = {OC, 1, kh, kw};
  } else {  // OHWI -> OIHW
    const int64_t O = wt.shape[0], I = wt.shape[3];
    for (int64_t o = 0; o < O; ++o)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t xx = 0; xx < kw; ++xx)
          for (int64_t i = 0; i < I; ++i)
            oihw[size_t(((o * I + i) * kh + y) * kw + xx)] =
                wt.data[size_t(((o * kh + y) * kw + xx) * I + i)];
    dims = {O, I, kh, kw};
  }
  std::vector<std::string> in = {Nchw(n.inputs[0]), InitF(wt.name, dims, oihw)};
  if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor)
    in.push_back(ConstOperand(n.inputs[2], false));
  Emit(k, "Conv", in, true,
       {AttrInts("dilations", {w.dh, w.dw}), AttrInt("group", depthwise ? x[3] : 1),
        AttrInts("kernel_shape", {kh, kw}),
        AttrInts("pads", {w.pad_top, w.pad_left, w.pad_bottom, w.pad_right}),
        AttrInts("strides", {w.sh, w.sw})});
}

void Exporter::Lower(size_t k) {
  const Node& n = g_.nodes[k];
  const std::string& op = n.op;
  const int32_t x = n.inputs[0];
  const size_t out_rank = g_.ShapeOf(n.output).size();
  // Elementwise ops keep whichever form their input has (NCHW first).
  auto either = [&](int32_t t) { return !nchw_[size_t(t)].empty(); };
  if (op == "conv2d" || op == "depthwise_conv2d") {
    Conv(k, op == "depthwise_conv2d");
  } else if (op == "max_pool2d" || op == "avg_pool2d") {
    const std::vector<int64_t> kernel = n.Ints("kernel", {1, 1});
    const Window w = Resolve(k, kernel[0], kernel[1]);
    if (w.dh != 1 || w.dw != 1) Fail(g_.DescribeNode(k), ": dilated pooling is not supported");
    std::vector<Pb> attrs = {AttrInts("kernel_shape", {w.kh, w.kw}),
                             AttrInts("pads", {w.pad_top, w.pad_left, w.pad_bottom, w.pad_right}),
                             AttrInts("strides", {w.sh, w.sw})};
    if (op == "avg_pool2d") attrs.push_back(AttrInt("count_include_pad", 0));
    Emit(k, op == "max_pool2d" ? "MaxPool" : "AveragePool", {Nchw(x)}, true, attrs);
  } else if (op == "global_avg_pool") {
    Emit(k, "GlobalAveragePool", {Nchw(x)}, true);
  } else if (op == "add" || op == "multiply" || op == "prelu") {
    const int32_t b = n.inputs[1];
    bool nchw = out_rank == 4;
    for (int32_t t : {x, b})
      if (!IsConst(t) && g_.ShapeOf(t).size() != 4) nchw = false;
    if (nchw) nchw = (!IsConst(x) && either(x)) || (!IsConst(b) && either(b));
    std::vector<std::string> in;
    for (int32_t t : {x, b})
      in.push_back(IsConst(t) ? ConstOperand(t, nchw) : nchw ? Nchw(t) : Plain(t));
    Emit(k, op == "add" ? "Add" : op == "multiply" ? "Mul" : "PRelu", in, nchw);
  } else if (op == "clamp" || op == "sigmoid" || op == "tanh" || op == "leaky_relu") {
    const bool nchw = either(x);
    const std::string in = nchw ? Nchw(x) : Plain(x);
    if (op == "clamp") {
      float lo, hi;
      ClampRange(n, &lo, &hi);
      Clamp(in, Output(k, nchw), lo, hi);
    } else if (op == "leaky_relu") {
      Emit(k, "LeakyRelu", {in}, nchw, {AttrFloat("alpha", n.Float("alpha", 0.f))});
    } else {
      Emit(k, op == "sigmoid" ? "Sigmoid" : "Tanh", {in}, nchw);
    }
  } else if (op == "softmax") {  // over our last axis: C, which is axis 1 in NCHW
    const bool nchw = out_rank == 4 && either(x);
    Emit(k, "Softmax", {nchw ? Nchw(x) : Plain(x)}, nchw, {AttrInt("axis", nchw ? 1 : -1)});
  } else if (op == "fully_connected") {
    const Tensor& w = g_.tensors[size_t(n.inputs[1])];
    std::vector<std::string> in = {Plain(x), InitF(w.name, w.shape, w.data)};
    if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor)
      in.push_back(ConstOperand(n.inputs[2], false));
    Emit(k, "Gemm", in, false, {AttrInt("transB", 1)});
  } else if (op == "pad") {
    std::vector<int64_t> pads = n.Ints("pads", {});
    const bool nchw = out_rank == 4 && either(x);
    if (nchw) {  // befores then afters, NHWC axes -> NCHW axes
      pads = {pads[0], pads[3], pads[1], pads[2], pads[4], pads[7], pads[5], pads[6]};
    }
    const std::string out = g_.tensors[size_t(n.output)].name;
    Emit(k, "Pad",
         {nchw ? Nchw(x) : Plain(x), InitI64(out + "/pads", {int64_t(pads.size())}, pads),
          InitF(out + "/value", {}, {n.Float("value", 0.f)})},
         nchw, {AttrStr("mode", "constant")});
  } else if (op == "resize_bilinear") {
    static const char* kModes[3] = {"half_pixel", "align_corners", "asymmetric"};
    const int64_t mode = n.Int("mode", 0);
    const Shape& s = g_.ShapeOf(n.output);
    const std::string sizes =
        InitI64(g_.tensors[size_t(n.output)].name + "/sizes", {4}, {s[0], s[3], s[1], s[2]});
    Emit(k, "Resize", {Nchw(x), "", "", sizes}, true,
         {AttrStr("coordinate_transformation_mode", kModes[mode]), AttrStr("mode", "linear")});
  } else if (op == "depth_to_space") {
    Emit(k, "DepthToSpace", {Nchw(x)}, true,
         {AttrInt("blocksize", n.Int("block", 0)), AttrStr("mode", "DCR")});
  } else if (op == "reshape") {
    const Shape& s = g_.ShapeOf(n.output);
    const std::string& p = plain_[size_t(x)];
    // Channel-first data already is in our order when C == 1 or H * W == 1.
    const std::string in = !p.empty() ? p : SameOrder(g_.ShapeOf(x)) ? Nchw(x) : Plain(x);
    Emit(k, "Reshape",
         {in, InitI64(g_.tensors[size_t(n.output)].name + "/shape", {int64_t(s.size())}, s)},
         false);
  } else if (op == "concatenate") {
    int64_t axis = n.Int("axis", 0);
    if (axis < 0) axis += int64_t(out_rank);
    bool nchw = out_rank == 4;
    for (int32_t t : n.inputs) nchw = nchw && either(t);
    std::vector<std::string> in;
    for (int32_t t : n.inputs) in.push_back(nchw ? Nchw(t) : Plain(t));
    Emit(k, "Concat", in, nchw, {AttrInt("axis", nchw ? NchwAxis(axis) : axis)});
  } else {
    Fail(g_.DescribeNode(k), ": op '", op, "' is not supported by the ONNX export");
  }
}

std::string Exporter::Run() {
  if (!g_.validated()) Fail("the graph is not validated");
  // (Validate refuses an output listed twice and an input that is also an output: each tensor
  // gets one name here.)
  plain_.assign(g_.tensors.size(), "");
  nchw_.assign(g_.tensors.size(), "");
  // Our activation names are the plain forms' names: reserved before anything else is named.
  for (const Tensor& t : g_.tensors)
    if (t.kind == TensorKind::kActivation) used_.insert(t.name);
  Pb graph;
  graph.Bytes(2, "facemask");
  for (int32_t t : g_.inputs) plain_[size_t(t)] = g_.tensors[size_t(t)].name;
  for (size_t k = 0; k < g_.nodes.size(); ++k) Lower(k);
  for (int32_t t : g_.outputs) Plain(t);
  graph.Append(nodes_).Append(inits_);
  for (int32_t t : g_.inputs) graph.Msg(11, ValueInfo(g_.tensors[size_t(t)].name, g_.ShapeOf(t)));
  for (int32_t t : g_.outputs) graph.Msg(12, ValueInfo(g_.tensors[size_t(t)].name, g_.ShapeOf(t)));
  // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8
  // {domain 1, version 2}, metadata_props 14 {key 1, value 2}.
  Pb model;
  model.Int(1, kIrVersion).Bytes(2, "facemask").Bytes(3, "1").Msg(7, graph);
  model.Msg(8, Pb().Bytes(1, "").Int(2, kOpset));
  for (const auto& [key, value] : g_.metadata) model.Msg(14, Pb().Bytes(1, key).Bytes(2, value));
  return model.bytes();
}

}  // namespace

Status ExportOnnx(const Graph& graph, std::string* bytes) {
  return convert_util::CatchToStatus(
      convert_util::Catches().Error("ONNX export: ").Other("ONNX export failed: "),
      [&] { *bytes = Exporter(graph).Run(); });
}

Status ExportOnnxFile(const Graph& graph, const std::string& path) {
  std::string bytes;
  FM_RETURN_IF_ERROR(ExportOnnx(graph, &bytes));
  return convert_util::WriteAtomically(path, [&](const std::string& tmp) {
    return convert_util::WriteFile(tmp, bytes.data(), bytes.size());
  });
}

}  // namespace fm
