// tfjs_lower.cpp - stage 2 of the tfjs graph-model converter (tfjs_internal.h): lowering.
// Each TensorFlow op the converter knows has one small lowering function, registered by name in
// OpTable() at the end of this file (a new op: one function and one table line). A function
// either folds its node into a constant (shape arithmetic never reaches the IR) or adds engine
// ops to the IR, whose shapes come from the engine's own shape inference.
#include <algorithm>
#include <cmath>
#include <set>

#include "ops/op.h"
#include "tfjs_internal.h"

namespace fm::tfjs {

using convert_util::JsonString;
using convert_util::Member;
using convert_util::Optional;

// ---- values and IR nodes ----

int Converter::In(const TfNode& n, size_t k) {
  if (k >= n.inputs.size()) Fail("node '", n.name, "' (", n.op, "): needs input ", k);
  auto it = tensor_.find(n.inputs[k]);
  if (it == tensor_.end())
    Fail("node '", n.name, "' (", n.op, "): input '", n.inputs[k],
         "' is not a supported output of its node");
  return it->second;
}

const Value& Converter::ConstIn(const TfNode& n, size_t k) {
  const Value& v = V(In(n, k));
  if (!v.is_const)
    Fail("node '", n.name, "' (", n.op, "): input ", k, " ('", n.inputs[k],
         "') must be a constant");
  return v;
}

std::vector<int64_t> Converter::IntsIn(const TfNode& n, size_t k) {
  const Value& v = ConstIn(n, k);
  if (v.is_int) return v.i;
  std::vector<int64_t> out;
  for (float f : v.f) out.push_back(int64_t(f));
  return out;
}

int Converter::Const(const std::string& name, Shape shape, std::vector<float> data, bool fp16) {
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.is_const = true;
  v.f = std::move(data);
  v.fp16 = fp16;
  values_.push_back(std::move(v));
  return int(values_.size() - 1);
}

int Converter::IntConst(const std::string& name, Shape shape, std::vector<int64_t> data) {
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.is_const = true;
  v.is_int = true;
  v.i = std::move(data);
  values_.push_back(std::move(v));
  return int(values_.size() - 1);
}

int Converter::AddValue(Value v) {
  values_.push_back(std::move(v));
  return int(values_.size() - 1);
}

int Converter::Node(const std::string& op, const std::string& name, std::vector<int> in,
                    std::map<std::string, Attr> attrs) {
  const OpDef* def = FindOp(op);
  if (!def) Fail("internal: no engine op '", op, "'");
  Graph scratch;
  fm::Node node;
  node.op = op;
  node.name = name;
  node.attrs = attrs;
  for (int id : in) {
    if (id < 0) {
      node.inputs.push_back(kNoTensor);
      continue;
    }
    const Value& v = V(id);
    if (v.is_const && v.is_int)
      Fail("node '", name, "': integer tensor '", v.name, "' used as float data");
    Tensor t;
    t.name = v.name;
    t.shape = v.shape;
    t.kind = v.is_const ? TensorKind::kConstant : TensorKind::kActivation;
    Status s = CheckShape(t.shape);
    if (!s.ok()) Fail("node '", name, "' (", op, "): input '", v.name, "': ", s.message());
    scratch.tensors.push_back(std::move(t));
    node.inputs.push_back(int32_t(scratch.tensors.size() - 1));
  }
  Status s = CheckNodeAttrs(*def, node);
  Shape shape;
  if (s.ok()) s = def->infer(scratch, node, &shape);
  if (!s.ok()) Fail("node '", name, "' (", op, "): ", s.message());
  Value out;
  out.name = name;
  out.shape = shape;
  out.producer = int(nodes_.size());
  values_.push_back(std::move(out));
  IrNode ir;
  ir.op = op;
  ir.name = name;
  ir.in = std::move(in);
  ir.attrs = std::move(attrs);
  ir.out = int(values_.size() - 1);
  nodes_.push_back(std::move(ir));
  return nodes_.back().out;
}

namespace {

// ---- constant folding helpers ----

Shape Broadcast(const Shape& a, const Shape& b, const std::string& where) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t x = k < out.size() - a.size() ? 1 : a[k - (out.size() - a.size())];
    const int64_t y = k < out.size() - b.size() ? 1 : b[k - (out.size() - b.size())];
    if (x != y && x != 1 && y != 1)
      Fail(where, ": shapes ", ShapeToString(a), " and ", ShapeToString(b), " do not broadcast");
    out[k] = x == 1 ? y : x;
  }
  return out;
}

// Flat index into a (right-aligned, broadcast) operand for an output position.
int64_t BroadcastIndex(const Shape& out, const Shape& in, int64_t flat) {
  int64_t idx = 0, stride = 1;
  for (size_t k = out.size(); k-- > 0;) {
    const int64_t coord = flat % out[k];
    flat /= out[k];
    const size_t off = out.size() - in.size();
    if (k >= off) {
      const int64_t dim = in[k - off];
      if (dim != 1) idx += coord * stride;
      stride *= dim;
    }
  }
  return idx;
}

Shape ResolveReshape(const Shape& in, std::vector<int64_t> target, const std::string& where) {
  int64_t known = 1;
  int unknown = -1;
  for (size_t k = 0; k < target.size(); ++k) {
    if (target[k] == -1) {
      if (unknown >= 0) Fail(where, ": more than one -1 in the shape");
      unknown = int(k);
    } else if (target[k] < 0) {
      Fail(where, ": bad dimension ", target[k]);
    } else {
      known *= std::max<int64_t>(target[k], 1);
      if (known > kMaxTensorElements) Fail(where, ": shape too large");
    }
  }
  const int64_t n = Elements(in);
  if (unknown >= 0) {
    if (known == 0 || n % known != 0)
      Fail(where, ": cannot reshape ", ShapeToString(in), " with a -1 dimension");
    target[size_t(unknown)] = n / known;
  }
  if (Elements(target) != n)
    Fail(where, ": cannot reshape ", ShapeToString(in), " (", n, " elements) to ",
         ShapeToString(target));
  return target;
}

// Lowers one TensorFlow node: folds it when every input is a constant, else adds engine ops.
std::string Where(const TfNode& n) {
  return "node '" + n.name + "' (" + n.op + ")";
}

[[noreturn]] void Unsupported(const TfNode& n) {
  Fail("unsupported op '", n.op, "' at node '", n.name, "'");
}

// A constant that is a copy of `v` (a constant) under the node's name, with another shape.
int Renamed(Converter& c, const TfNode& n, Value v, Shape shape) {
  v.name = n.name;
  v.shape = std::move(shape);
  return c.AddValue(std::move(v));
}

// ---- graph inputs, constants and identities ----

void LowerConst(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  auto it = c.weights_.find(n.name);
  if (it == c.weights_.end()) Fail(where, ": no weights for it in weightsManifest");
  if (const json* a = n.Attr("value")) {
    const json* t = Optional(*a, "tensor");
    const json* ts = t ? Optional(*t, "tensorShape") : nullptr;
    if (ts && ParseTensorShape(*ts, where) != it->second.shape)
      Fail(where, ": shape ", ShapeToString(ParseTensorShape(*ts, where)),
           " differs from the weights' ", ShapeToString(it->second.shape));
  }
  c.Bind(n, c.AddValue(it->second));
}

void LowerPlaceholder(Converter& c, const TfNode& n) {
  Value v;
  v.name = n.name;
  v.shape = c.InputShape(n);
  v.graph_input = true;
  c.inputs_.push_back(c.AddValue(std::move(v)));
  c.Bind(n, c.inputs_.back());
}

// Identity, StopGradient, Snapshot, and IdentityN of one tensor.
void LowerIdentity(Converter& c, const TfNode& n) {
  if (n.op == "IdentityN" && n.inputs.size() != 1) Unsupported(n);
  c.Bind(n, c.In(n, 0));
}

// ---- shape arithmetic, folded ----

void LowerShape(Converter& c, const TfNode& n) {
  const Value& v = c.V(c.In(n, 0));
  c.Bind(n, c.IntConst(n.name, {int64_t(v.shape.size())},
                       std::vector<int64_t>(v.shape.begin(), v.shape.end())));
}

void LowerCast(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  const Value& v = c.V(c.In(n, 0));
  const std::string dst =
      n.Attr("DstT") ? JsonString(Member(*n.Attr("DstT"), "type", where), where) : "DT_FLOAT";
  const bool to_int = dst == "DT_INT32" || dst == "DT_INT64" || dst == "DT_BOOL";
  if (!v.is_const) {
    if (to_int) Fail(where, ": cast of a run-time tensor to ", dst, " is not supported");
    c.Bind(n, c.In(n, 0));
    return;
  }
  Value r = v;
  r.name = n.name;
  if (to_int && !r.is_int) {
    r.i.clear();
    for (float f : r.f) r.i.push_back(dst == "DT_BOOL" ? f != 0 : int64_t(f));
    r.f.clear();
  } else if (!to_int && r.is_int) {
    r.f.clear();
    for (int64_t x : r.i) r.f.push_back(float(x));
    r.i.clear();
  }
  r.is_int = to_int;
  c.Bind(n, c.AddValue(std::move(r)));
}

// StridedSlice and Slice of a rank-1 constant.
void LowerSlice(Converter& c, const TfNode& n) {
  const std::string& op = n.op;
  const std::string where = Where(n);
  const Value& v = c.ConstIn(n, 0);
  if (v.shape.size() != 1) Fail(where, ": only rank-1 constants can be sliced");
  const int64_t len = v.shape[0];
  const std::vector<int64_t> begin = c.IntsIn(n, 1), end_or_size = c.IntsIn(n, 2);
  if (begin.size() != 1 || end_or_size.size() != 1) Fail(where, ": expects 1-D begin/end");
  int64_t b = begin[0], e = 0, st = 1;
  bool shrink = false;
  if (op == "Slice") {
    e = end_or_size[0] == -1 ? len : b + end_or_size[0];
  } else {
    const std::vector<int64_t> strides = c.IntsIn(n, 3);
    if (strides.size() != 1 || strides[0] == 0) Fail(where, ": bad strides");
    if (n.Int("ellipsis_mask", 0) != 0 || n.Int("new_axis_mask", 0) != 0)
      Fail(where, ": ellipsis_mask and new_axis_mask are not supported");
    st = strides[0];
    e = end_or_size[0];
    shrink = (n.Int("shrink_axis_mask", 0) & 1) != 0;
    if (b < 0) b += len;
    if (e < 0) e += len;
    if (n.Int("begin_mask", 0) & 1) b = st > 0 ? 0 : len - 1;
    if (n.Int("end_mask", 0) & 1) e = st > 0 ? len : -1;
    if (shrink) e = b + 1, st = 1;
  }
  if (st > 0) {
    b = std::clamp<int64_t>(b, 0, len);
    e = std::clamp<int64_t>(e, 0, len);
  } else {
    b = std::clamp<int64_t>(b, -1, len - 1);
    e = std::clamp<int64_t>(e, -1, len - 1);
  }
  Value r;
  r.name = n.name;
  r.is_const = true;
  r.is_int = v.is_int;
  r.fp16 = v.fp16;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) {
    if (k < 0 || k >= len) Fail(where, ": slice out of range");
    if (v.is_int)
      r.i.push_back(v.i[size_t(k)]);
    else
      r.f.push_back(v.f[size_t(k)]);
  }
  const int64_t count = int64_t(v.is_int ? r.i.size() : r.f.size());
  if (shrink && count != 1) Fail(where, ": shrink_axis slice is empty");
  r.shape = shrink ? Shape{} : Shape{count};
  c.Bind(n, c.AddValue(std::move(r)));
}

// Pack, and ConcatV2 of constants: folded.
void FoldConcat(Converter& c, const TfNode& n, bool pack) {
  const std::string where = Where(n);
  const size_t count = pack ? n.inputs.size() : n.inputs.size() - 1;
  if (count < 1) Fail(where, ": no inputs");
  const Value& first = c.ConstIn(n, 0);
  const int64_t rank = int64_t(first.shape.size()) + (pack ? 1 : 0);
  int64_t axis = pack ? n.Int("axis", 0) : c.IntsIn(n, count).at(0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) Fail(where, ": axis out of range");
  Shape out = first.shape;
  if (pack)
    out.insert(out.begin() + axis, int64_t(count));
  else
    out[size_t(axis)] = 0;
  Value r;
  r.name = n.name;
  r.is_const = true;
  r.is_int = first.is_int;
  r.fp16 = true;
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= first.shape[size_t(k)];
  std::vector<int64_t> inner(count);
  for (size_t k = 0; k < count; ++k) {
    const Value& v = c.ConstIn(n, k);
    if (v.is_int != first.is_int) Fail(where, ": mixed integer and float inputs");
    Shape expect = v.shape;
    if (!pack) {
      if (expect.size() != first.shape.size()) Fail(where, ": inputs differ in rank");
      out[size_t(axis)] += v.shape[size_t(axis)];
      expect[size_t(axis)] = first.shape[size_t(axis)];
    }
    if (expect != first.shape) Fail(where, ": inputs differ in shape");
    inner[k] = outer == 0 ? 0 : Elements(v.shape) / std::max<int64_t>(outer, 1);
    r.fp16 = r.fp16 && v.fp16;
  }
  CheckDims(out, where);
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < count; ++k) {
      const Value& v = c.ConstIn(n, k);
      for (int64_t e = 0; e < inner[k]; ++e) {
        const size_t src = size_t(o * inner[k] + e);
        if (v.is_int)
          r.i.push_back(v.i[src]);
        else
          r.f.push_back(v.f[src]);
      }
    }
  r.shape = out;
  c.Bind(n, c.AddValue(std::move(r)));
}

void LowerPack(Converter& c, const TfNode& n) {
  FoldConcat(c, n, true);
}

// ConcatV2: folded when every input is a constant, else the engine's concatenate.
void LowerConcat(Converter& c, const TfNode& n) {
  bool all_const = !n.inputs.empty();
  for (size_t k = 0; all_const && k < n.inputs.size(); ++k) all_const = c.V(c.In(n, k)).is_const;
  if (all_const) return FoldConcat(c, n, false);
  const std::string where = Where(n);
  const size_t count = n.inputs.size() - 1;
  if (n.inputs.size() < 2) Fail(where, ": needs inputs and an axis");
  const std::vector<int64_t> axis = c.IntsIn(n, count);
  if (axis.size() != 1) Fail(where, ": axis must be a scalar");
  std::vector<int> in;
  for (size_t k = 0; k < count; ++k) {
    in.push_back(c.In(n, k));
    if (c.V(in.back()).is_const)
      Fail(where, ": concatenating constants with run-time tensors is not supported");
  }
  if (in.size() == 1)
    c.Bind(n, in[0]);
  else
    c.Bind(n, c.Node("concatenate", n.name, in, {{"axis", Attr::Ints({axis[0]})}}));
}

// The shape a Reshape, Squeeze or ExpandDims of a tensor of shape `in` gives.
Shape ReshapeTarget(Converter& c, const TfNode& n, const Shape& in) {
  const std::string where = Where(n);
  Shape target;
  if (n.op == "Reshape") {
    target = ResolveReshape(in, c.IntsIn(n, 1), where);
  } else if (n.op == "Squeeze") {
    std::vector<int64_t> dims = n.Ints("squeeze_dims", n.Ints("axis", {}));
    std::set<int64_t> drop;
    for (int64_t d : dims) drop.insert(d < 0 ? d + int64_t(in.size()) : d);
    for (size_t k = 0; k < in.size(); ++k) {
      const bool squeeze = drop.empty() ? in[k] == 1 : drop.count(int64_t(k)) != 0;
      if (squeeze && in[k] != 1) Fail(where, ": dimension ", k, " is not 1");
      if (!squeeze) target.push_back(in[k]);
    }
  } else {
    int64_t axis = c.IntsIn(n, 1).at(0);
    if (axis < 0) axis += int64_t(in.size()) + 1;
    if (axis < 0 || axis > int64_t(in.size())) Fail(where, ": axis out of range");
    target = in;
    target.insert(target.begin() + axis, 1);
  }
  CheckDims(target, where);
  return target;
}

// Reshape, Squeeze, ExpandDims: folded for constants, nothing when the shape stays.
void LowerReshape(Converter& c, const TfNode& n) {
  const int id = c.In(n, 0);
  const Shape in = c.V(id).shape;
  const Shape target = ReshapeTarget(c, n, in);
  if (c.V(id).is_const)
    c.Bind(n, Renamed(c, n, c.V(id), target));
  else if (target == in)
    c.Bind(n, id);
  else
    c.Bind(n, c.Node("reshape", n.name, {id}, {{"shape", Attr::Ints(target)}}));
}

// ---- convolutions ----

// Stride, dilation and padding attributes of a (depthwise) convolution.
std::map<std::string, fm::Attr> ConvAttrs(const TfNode& n, const std::string& where) {
  const std::vector<int64_t> s = n.Ints("strides", {1, 1, 1, 1});
  const std::vector<int64_t> d = n.Ints("dilations", {1, 1, 1, 1});
  if (s.size() != 4 || d.size() != 4 || s[0] != 1 || s[3] != 1 || d[0] != 1 || d[3] != 1)
    Fail(where, ": strides/dilations must be [1, h, w, 1]");
  std::map<std::string, fm::Attr> attrs = {{"stride", Attr::Ints({s[1], s[2]})},
                                           {"dilation", Attr::Ints({d[1], d[2]})}};
  const std::string padding = n.Str("padding", "VALID");
  if (padding == "SAME") {
    attrs["same"] = Attr::Ints({1});
  } else if (padding == "VALID") {
    attrs["padding"] = Attr::Ints({0, 0, 0, 0});
  } else if (padding == "EXPLICIT") {
    const std::vector<int64_t> e = n.Ints("explicit_paddings", {});
    if (e.size() != 8 || e[0] || e[1] || e[6] || e[7])
      Fail(where, ": explicit_paddings must pad only height and width");
    attrs["padding"] = Attr::Ints({e[2], e[4], e[3], e[5]});
  } else {
    Fail(where, ": padding '", padding, "' is not supported");
  }
  return attrs;
}

// A convolution's weights (engine layout) and bias with its fused_ops folded in; the fused
// activations are left for after the convolution.
struct FusedConv {
  bool depthwise = false;
  int64_t out_c = 0;
  std::vector<float> wt;
  std::vector<float> bias;
  bool has_bias = false, b16 = true;
  std::vector<std::string> post;  // activations applied after the convolution
  size_t arg = 2;                 // the next input the fused ops read
};

// Folds a fused FusedBatchNorm (inputs scale, offset, mean, variance) into weights and bias.
void FoldConvBatchNorm(Converter& c, const TfNode& n, const std::string& where, FusedConv* f) {
  const Value &sc = c.ConstIn(n, f->arg), &of = c.ConstIn(n, f->arg + 1),
              &mu = c.ConstIn(n, f->arg + 2), &va = c.ConstIn(n, f->arg + 3);
  f->arg += 4;
  const size_t out_c = size_t(f->out_c);
  for (const Value* v : {&sc, &of, &mu, &va})
    if (v->is_int || int64_t(v->f.size()) != f->out_c)
      Fail(where, ": batch-norm parameters must have ", f->out_c, " values");
  const float eps = n.Float("epsilon", 1e-3f);
  if (!f->has_bias) f->bias.assign(out_c, 0.f);
  const size_t per = f->wt.size() / std::max<size_t>(out_c, 1);  // elements per output channel
  for (size_t ch = 0; ch < out_c; ++ch) {
    const float k = sc.f[ch] / std::sqrt(va.f[ch] + eps);
    f->bias[ch] = (f->bias[ch] - mu.f[ch]) * k + of.f[ch];
    if (f->depthwise) {
      for (size_t e = ch; e < f->wt.size(); e += out_c) f->wt[e] *= k;
    } else {
      for (size_t e = 0; e < per; ++e) f->wt[ch * per + e] *= k;
    }
  }
  f->has_bias = true;
  f->b16 = false;
}

void FoldConvFusedOps(Converter& c, const TfNode& n, const std::string& where, FusedConv* f) {
  for (const std::string& op : n.Strs("fused_ops")) {
    if (op == "BiasAdd") {
      const Value& b = c.ConstIn(n, f->arg++);
      if (b.is_int || int64_t(b.f.size()) != f->out_c)
        Fail(where, ": bias must have ", f->out_c, " values");
      f->bias = b.f;
      f->has_bias = true;
      f->b16 = b.fp16;
    } else if (op == "FusedBatchNorm") {
      FoldConvBatchNorm(c, n, where, f);
    } else if (op == "Relu" || op == "Relu6" || op == "Sigmoid" || op == "Tanh" || op == "Prelu" ||
               op == "LeakyRelu") {
      f->post.push_back(op);
    } else {
      Fail("unsupported op '", n.op, "' with fused '", op, "' at node '", n.name, "'");
    }
  }
}

// The fused activations after the convolution `out`; the last one takes the node's name.
int ConvActivations(Converter& c, const TfNode& n, const std::string& where, FusedConv* f,
                    int out) {
  for (size_t k = 0; k < f->post.size(); ++k) {
    const std::string& op = f->post[k];
    const std::string name = k + 1 == f->post.size() ? n.name : n.name + "/" + op;
    if (op == "Relu" || op == "Relu6") {
      out =
          c.Node("clamp", name, {out}, {{"clamp", Attr::Floats({0.f, op == "Relu" ? kInf : 6.f})}});
    } else if (op == "Sigmoid" || op == "Tanh") {
      out = c.Node(op == "Sigmoid" ? "sigmoid" : "tanh", name, {out}, {});
    } else if (op == "LeakyRelu") {
      out = c.Node("leaky_relu", name, {out},
                   {{"alpha", Attr::Floats({n.Float("leakyrelu_alpha", 0.2f)})}});
    } else {
      Value slope = c.ConstIn(n, f->arg++);
      slope.name = n.name + "/slope";
      if (slope.is_int || int64_t(slope.f.size()) != f->out_c)
        Fail(where, ": prelu slope must have ", f->out_c, " values");
      slope.shape = {f->out_c};
      out = c.Node("prelu", name, {out, c.AddValue(std::move(slope))}, {});
    }
  }
  return out;
}

// Conv2D and DepthwiseConv2dNative with their fused forms (bias, batch norm, activations).
void LowerConv(Converter& c, const TfNode& n, bool depthwise) {
  const std::string where = Where(n);
  if (n.Str("data_format", "NHWC") != "NHWC") Fail(where, ": only NHWC is supported");
  const int x = c.In(n, 0);
  const Shape xs = c.V(x).shape;
  if (c.V(x).is_const) Fail(where, ": the input must be a run-time tensor");
  const Value& w = c.ConstIn(n, 1);
  if (w.is_int || w.shape.size() != 4) Fail(where, ": filter must be a 4-D float constant");
  if (xs.size() != 4) Fail(where, ": input must be NHWC (rank 4), got ", ShapeToString(xs));
  const int64_t kh = w.shape[0], kw = w.shape[1], I = w.shape[2], O = w.shape[3];
  if (I != xs[3])
    Fail(where, ": filter ", ShapeToString(w.shape), " expects ", I, " input channels, input has ",
         xs[3], depthwise ? "" : " (grouped convolution is not supported)");
  const std::map<std::string, fm::Attr> attrs = ConvAttrs(n, where);
  // Weights: HWIO -> OHWI for conv2d; HWCM is already [1, kh, kw, C*M] in memory for depthwise.
  FusedConv f;
  f.depthwise = depthwise;
  f.out_c = depthwise ? I * O : O;
  f.wt.resize(w.f.size());
  Shape ws;
  if (depthwise) {
    f.wt = w.f;
    ws = {1, kh, kw, I * O};
  } else {
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t xx = 0; xx < kw; ++xx)
        for (int64_t i = 0; i < I; ++i)
          for (int64_t o = 0; o < O; ++o)
            f.wt[size_t(((o * kh + y) * kw + xx) * I + i)] =
                w.f[size_t(((y * kw + xx) * I + i) * O + o)];
    ws = {O, kh, kw, I};
  }
  const bool w16 = w.fp16;
  FoldConvFusedOps(c, n, where, &f);
  const int wid = c.Const(n.name + "/weights", ws, std::move(f.wt), w16);
  const int bid = f.has_bias ? c.Const(n.name + "/bias", {f.out_c}, std::move(f.bias), f.b16) : -1;
  const std::string conv_name = f.post.empty() ? n.name : n.name + "/conv";
  const int out =
      c.Node(depthwise ? "depthwise_conv2d" : "conv2d", conv_name,
             f.has_bias ? std::vector<int>{x, wid, bid} : std::vector<int>{x, wid}, attrs);
  c.Bind(n, ConvActivations(c, n, where, &f, out));
}

void LowerConv2D(Converter& c, const TfNode& n) {
  LowerConv(c, n, false);
}

void LowerDepthwiseConv2D(Converter& c, const TfNode& n) {
  LowerConv(c, n, true);
}

// ---- element-wise ----

// Both operands constant: folded (shape arithmetic or float constants).
void FoldBinary(Converter& c, const TfNode& n, const Value& x, const Value& y) {
  const std::string& op = n.op;
  const std::string where = Where(n);
  if (x.is_int != y.is_int) Fail(where, ": mixed integer and float operands");
  const Shape out = Broadcast(x.shape, y.shape, where);
  CheckDims(out, where);
  Value r;
  r.name = n.name;
  r.shape = out;
  r.is_const = true;
  r.is_int = x.is_int;
  r.fp16 = x.fp16 && y.fp16;
  const int64_t count = Elements(out);
  for (int64_t k = 0; k < count; ++k) {
    const size_t ia = size_t(BroadcastIndex(out, x.shape, k));
    const size_t ib = size_t(BroadcastIndex(out, y.shape, k));
    const double p = x.is_int ? double(x.i[ia]) : x.f[ia];
    const double q = y.is_int ? double(y.i[ib]) : y.f[ib];
    double v;
    if (op == "Add" || op == "AddV2" || op == "BiasAdd")
      v = p + q;
    else if (op == "Sub")
      v = p - q;
    else if (op == "Mul")
      v = p * q;
    else if (op == "Maximum")
      v = std::max(p, q);
    else if (op == "Minimum")
      v = std::min(p, q);
    else {
      if (q == 0) Fail(where, ": division by zero");
      v = op == "FloorDiv" ? std::floor(p / q) : (r.is_int ? std::trunc(p / q) : p / q);
    }
    if (r.is_int)
      r.i.push_back(int64_t(v));
    else
      r.f.push_back(float(v));
  }
  c.Bind(n, c.AddValue(std::move(r)));
}

// Add, AddV2, BiasAdd, Sub, Mul, RealDiv, Maximum, Minimum, FloorDiv.
void LowerBinary(Converter& c, const TfNode& n) {
  const std::string& op = n.op;
  const std::string where = Where(n);
  int a = c.In(n, 0), b = c.In(n, 1);
  if (c.V(a).is_const && c.V(b).is_const) return FoldBinary(c, n, c.V(a), c.V(b));
  auto scaled_const = [&](int id, float k, const std::string& name) {
    const Value& v = c.V(id);
    std::vector<float> d;
    for (float f : v.f) d.push_back(op == "RealDiv" ? 1.f / f : f * k);
    return c.Const(name, v.shape, std::move(d), v.fp16);
  };
  if (op == "Add" || op == "AddV2" || op == "BiasAdd") {
    c.Bind(n, c.Node("add", n.name, {a, b}, {}));
  } else if (op == "Mul") {
    c.Bind(n, c.Node("multiply", n.name, {a, b}, {}));
  } else if (op == "Sub") {
    // a - b = a + (-1 * b).
    if (c.V(b).is_const) {
      c.Bind(n, c.Node("add", n.name, {a, scaled_const(b, -1.f, n.name + "/neg")}, {}));
    } else {
      const int neg = c.Node("multiply", n.name + "/neg",
                             {b, c.Const(n.name + "/minus_one", {1}, {-1.f}, false)}, {});
      c.Bind(n, c.Node("add", n.name, {a, neg}, {}));
    }
  } else if ((op == "Maximum" || op == "Minimum") && (c.V(a).is_const || c.V(b).is_const)) {
    // max(x, c) / min(x, c) with a scalar constant c: a one-sided clamp.
    const Value& k = c.V(c.V(a).is_const ? a : b);
    if (k.is_int || k.f.size() != 1)
      Fail(where, ": only a scalar constant operand is supported with a run-time tensor");
    const std::vector<float> range =
        op == "Maximum" ? std::vector<float>{k.f[0], kInf} : std::vector<float>{-kInf, k.f[0]};
    c.Bind(n, c.Node("clamp", n.name, {c.V(a).is_const ? b : a}, {{"clamp", Attr::Floats(range)}}));
  } else if (op == "RealDiv" && c.V(b).is_const) {
    for (float f : c.V(b).f)
      if (f == 0.f) Fail(where, ": division by zero");
    c.Bind(n, c.Node("multiply", n.name, {a, scaled_const(b, 1.f, n.name + "/reciprocal")}, {}));
  } else {
    Fail("unsupported op '", op, "' at node '", n.name, "' (with run-time operands)");
  }
}

void LowerRelu(Converter& c, const TfNode& n) {
  c.Bind(n, c.Node("clamp", n.name, {c.In(n, 0)},
                   {{"clamp", Attr::Floats({0.f, n.op == "Relu" ? kInf : 6.f})}}));
}

void LowerClipByValue(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  const Value &lo = c.ConstIn(n, 1), &hi = c.ConstIn(n, 2);
  if (lo.is_int || hi.is_int || lo.f.size() != 1 || hi.f.size() != 1)
    Fail(where, ": clip_value_min and clip_value_max must be float scalars");
  if (!(lo.f[0] < hi.f[0])) Fail(where, ": the clip range [", lo.f[0], ", ", hi.f[0], "] is empty");
  c.Bind(n, c.Node("clamp", n.name, {c.In(n, 0)}, {{"clamp", Attr::Floats({lo.f[0], hi.f[0]})}}));
}

// Sigmoid, Tanh, Softmax: the engine op of the same name.
void LowerUnary(Converter& c, const TfNode& n) {
  const std::string ours = n.op == "Sigmoid" ? "sigmoid" : n.op == "Tanh" ? "tanh" : "softmax";
  c.Bind(n, c.Node(ours, n.name, {c.In(n, 0)}, {}));
}

void LowerLeakyRelu(Converter& c, const TfNode& n) {
  c.Bind(n, c.Node("leaky_relu", n.name, {c.In(n, 0)},
                   {{"alpha", Attr::Floats({n.Float("alpha", 0.2f)})}}));
}

void LowerPrelu(Converter& c, const TfNode& n) {
  const int x = c.In(n, 0);
  Value slope = c.ConstIn(n, 1);
  slope.name = n.name + "/slope";
  // [1, 1, C] or [1, 1, 1, C] -> [C]: the engine's prelu wants a slope that broadcasts.
  int64_t ones = 0;
  for (size_t k = 0; k + 1 < slope.shape.size(); ++k) ones += slope.shape[k] == 1;
  if (!slope.shape.empty() && ones == int64_t(slope.shape.size()) - 1)
    slope.shape = {slope.shape.back()};
  c.Bind(n, c.Node("prelu", n.name, {x, c.AddValue(std::move(slope))}, {}));
}

// ---- layout and pooling ----

// Pad and PadV2 (MirrorPad is not supported: it has no table entry).
void LowerPad(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  const int x = c.In(n, 0);
  const std::vector<int64_t> p = c.IntsIn(n, 1);
  const size_t rank = c.V(x).shape.size();
  if (p.size() != 2 * rank) Fail(where, ": paddings must be [", rank, ", 2]");
  std::vector<int64_t> pads(2 * rank);
  for (size_t d = 0; d < rank; ++d) {
    pads[d] = p[2 * d];
    pads[d + rank] = p[2 * d + 1];
  }
  float value = 0.f;
  if (n.op == "PadV2") {
    const Value& v = c.ConstIn(n, 2);
    if (v.is_int ? v.i.size() != 1 : v.f.size() != 1) Fail(where, ": value must be a scalar");
    value = v.is_int ? float(v.i[0]) : v.f[0];
  }
  std::map<std::string, fm::Attr> attrs = {{"pads", Attr::Ints(pads)}};
  if (value != 0.f) attrs["value"] = Attr::Floats({value});
  c.Bind(n, c.Node("pad", n.name, {x}, attrs));
}

// MaxPool and AvgPool.
void LowerPool(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  if (n.Str("data_format", "NHWC") != "NHWC") Fail(where, ": only NHWC is supported");
  const std::vector<int64_t> k = n.Ints("ksize", {}), s = n.Ints("strides", {1, 1, 1, 1});
  if (k.size() != 4 || s.size() != 4 || k[0] != 1 || k[3] != 1 || s[0] != 1 || s[3] != 1)
    Fail(where, ": ksize/strides must be [1, h, w, 1]");
  const std::string padding = n.Str("padding", "VALID");
  std::map<std::string, fm::Attr> attrs = {{"kernel", Attr::Ints({k[1], k[2]})},
                                           {"stride", Attr::Ints({s[1], s[2]})}};
  if (padding == "SAME")
    attrs["same"] = Attr::Ints({1});
  else if (padding != "VALID")
    Fail(where, ": padding '", padding, "' is not supported");
  if (k[1] == 1 && k[2] == 1 && s[1] == 1 && s[2] == 1) {
    c.Bind(n, c.In(n, 0));  // a 1x1 pool is the identity
    return;
  }
  c.Bind(n, c.Node(n.op == "MaxPool" ? "max_pool2d" : "avg_pool2d", n.name, {c.In(n, 0)}, attrs));
}

// Mean over height and width: global average pooling.
void LowerMean(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  const int x = c.In(n, 0);
  std::vector<int64_t> axes = c.IntsIn(n, 1);
  const Shape in = c.V(x).shape;  // a copy: Node() may reallocate values_
  for (int64_t& a : axes)
    if (a < 0) a += int64_t(in.size());
  std::sort(axes.begin(), axes.end());
  if (in.size() != 4 || axes != std::vector<int64_t>{1, 2})
    Fail(where, ": only the mean over height and width of NHWC is supported");
  const bool keep = n.Bool("keep_dims", n.Bool("keepDims", false));
  const int pooled = c.Node("global_avg_pool", keep ? n.name : n.name + "/pool", {x}, {});
  if (keep)
    c.Bind(n, pooled);
  else
    c.Bind(n, c.Node("reshape", n.name, {pooled}, {{"shape", Attr::Ints({in[0], in[3]})}}));
}

void LowerResizeBilinear(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  const std::vector<int64_t> size = c.IntsIn(n, 1);
  if (size.size() != 2) Fail(where, ": size must have 2 values");
  const bool align = n.Bool("align_corners", false), half = n.Bool("half_pixel_centers", false);
  if (align && half) Fail(where, ": align_corners and half_pixel_centers are both set");
  const int64_t mode = half ? 0 : align ? 1 : 2;
  c.Bind(n, c.Node("resize_bilinear", n.name, {c.In(n, 0)},
                   {{"size", Attr::Ints(size)}, {"mode", Attr::Ints({mode})}}));
}

void LowerDepthToSpace(Converter& c, const TfNode& n) {
  if (n.Str("data_format", "NHWC") != "NHWC") Fail(Where(n), ": only NHWC is supported");
  c.Bind(n, c.Node("depth_to_space", n.name, {c.In(n, 0)},
                   {{"block", Attr::Ints({n.Int("block_size", 0)})}}));
}

// ---- dense layers and batch norm ----

// MatMul and _FusedMatMul (BiasAdd, Relu, Relu6) with constant weights: fully_connected.
void LowerMatMul(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  if (n.Bool("transpose_a", false)) Fail(where, ": transpose_a is not supported");
  const int x = c.In(n, 0);
  const Value& w = c.ConstIn(n, 1);
  if (w.shape.size() != 2 || w.is_int) Fail(where, ": weights must be a 2-D float constant");
  const bool tb = n.Bool("transpose_b", false);
  const int64_t K = tb ? w.shape[1] : w.shape[0], N = tb ? w.shape[0] : w.shape[1];
  std::vector<float> wt(size_t(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t o = 0; o < N; ++o)
      wt[size_t(o * K + k)] = tb ? w.f[size_t(o * K + k)] : w.f[size_t(k * N + o)];
  std::vector<int> in = {x, c.Const(n.name + "/weights", {N, K}, std::move(wt), w.fp16)};
  std::map<std::string, fm::Attr> attrs;
  size_t arg = 2;
  for (const std::string& f : n.Strs("fused_ops")) {
    if (f == "BiasAdd") {
      Value b = c.ConstIn(n, arg++);
      if (b.is_int || Elements(b.shape) != N) Fail(where, ": bias must have ", N, " values");
      in.push_back(c.Const(n.name + "/bias", {N}, b.f, b.fp16));
    } else if (f == "Relu" || f == "Relu6") {
      attrs["clamp"] = Attr::Floats({0.f, f == "Relu" ? kInf : 6.f});
    } else {
      Fail("unsupported op '", n.op, "' with fused '", f, "' at node '", n.name, "'");
    }
  }
  c.Bind(n, c.Node("fully_connected", n.name, in, attrs));
}

// FusedBatchNorm(V2, V3) in inference mode: multiply and add by per-channel constants (which the
// passes fold into a preceding convolution).
void LowerBatchNorm(Converter& c, const TfNode& n) {
  const std::string where = Where(n);
  if (n.Bool("is_training", false)) Fail(where, ": training-mode batch norm");
  const int x = c.In(n, 0);
  const Value &scale = c.ConstIn(n, 1), &offset = c.ConstIn(n, 2), &mean = c.ConstIn(n, 3),
              &var = c.ConstIn(n, 4);
  const int64_t C = c.V(x).shape.empty() ? 0 : c.V(x).shape.back();
  for (const Value* v : {&scale, &offset, &mean, &var})
    if (v->is_int || int64_t(v->f.size()) != C)
      Fail(where, ": parameters must have ", C, " values");
  const float eps = n.Float("epsilon", 1e-3f);
  std::vector<float> s(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (size_t ch = 0; ch < size_t(C); ++ch) {
    s[ch] = scale.f[ch] / std::sqrt(var.f[ch] + eps);
    b[ch] = offset.f[ch] - mean.f[ch] * s[ch];
  }
  const int m =
      c.Node("multiply", n.name + "/scale", {x, c.Const(n.name + "/s", {C}, s, false)}, {});
  c.Bind(n, c.Node("add", n.name, {m, c.Const(n.name + "/b", {C}, b, false)}, {}));
}

// ---- the op table ----

using LowerFn = void (*)(Converter& c, const TfNode& n);

// Every TensorFlow op the converter lowers, and its lowering function. A new op: one function
// above and one line here. Ops not listed are refused with "unsupported op".
const std::map<std::string, LowerFn>& OpTable() {
  static const std::map<std::string, LowerFn> table = {
      {"Const", LowerConst},
      {"Placeholder", LowerPlaceholder},
      {"Identity", LowerIdentity},
      {"IdentityN", LowerIdentity},
      {"Snapshot", LowerIdentity},
      {"StopGradient", LowerIdentity},
      {"Shape", LowerShape},
      {"Cast", LowerCast},
      {"Slice", LowerSlice},
      {"StridedSlice", LowerSlice},
      {"Pack", LowerPack},
      {"ConcatV2", LowerConcat},
      {"Reshape", LowerReshape},
      {"Squeeze", LowerReshape},
      {"ExpandDims", LowerReshape},
      {"Conv2D", LowerConv2D},
      {"_FusedConv2D", LowerConv2D},
      {"DepthwiseConv2dNative", LowerDepthwiseConv2D},
      {"FusedDepthwiseConv2dNative", LowerDepthwiseConv2D},
      {"_FusedDepthwiseConv2dNative", LowerDepthwiseConv2D},
      {"Add", LowerBinary},
      {"AddV2", LowerBinary},
      {"BiasAdd", LowerBinary},
      {"Sub", LowerBinary},
      {"Mul", LowerBinary},
      {"RealDiv", LowerBinary},
      {"FloorDiv", LowerBinary},
      {"Maximum", LowerBinary},
      {"Minimum", LowerBinary},
      {"Relu", LowerRelu},
      {"Relu6", LowerRelu},
      {"ClipByValue", LowerClipByValue},
      {"Sigmoid", LowerUnary},
      {"Tanh", LowerUnary},
      {"Softmax", LowerUnary},
      {"LeakyRelu", LowerLeakyRelu},
      {"Prelu", LowerPrelu},
      {"Pad", LowerPad},
      {"PadV2", LowerPad},
      {"MaxPool", LowerPool},
      {"AvgPool", LowerPool},
      {"Mean", LowerMean},
      {"ResizeBilinear", LowerResizeBilinear},
      {"DepthToSpace", LowerDepthToSpace},
      {"MatMul", LowerMatMul},
      {"_FusedMatMul", LowerMatMul},
      {"FusedBatchNorm", LowerBatchNorm},
      {"FusedBatchNormV2", LowerBatchNorm},
      {"FusedBatchNormV3", LowerBatchNorm},
  };
  return table;
}

}  // namespace

void Converter::Lower(const TfNode& n) {
  const auto& table = OpTable();
  auto it = table.find(n.op);
  if (it == table.end()) Unsupported(n);
  it->second(*this, n);
}

}  // namespace fm::tfjs
