// tfjs_convert.cpp - see tfjs_convert.h. Three stages:
//   1. parse model.json (nlohmann-json) and decode the weight shards into constants;
//   2. lower the TensorFlow nodes the outputs need, in topological order, into a small IR of
//      engine ops (constants are folded on the way: shape arithmetic never reaches the IR);
//   3. peephole passes on the IR (Pad -> conv padding, mul/add by constants -> conv weights and
//      bias, Relu/Relu6 -> fused clamp), dead-node removal, then emission through GraphBuilder,
//      which re-checks every op and validates the whole graph.
// Inside this file errors are thrown as ConvertError (convert_util.h; and nlohmann's own
// exceptions); the public functions catch everything and return a Status.
#include "tfjs_convert.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "convert_util.h"
#include "model/graph_builder.h"
#include "model/model_format.h"
#include "ops/op.h"

namespace fm {
namespace {

using json = nlohmann::json;

constexpr float kInf = std::numeric_limits<float>::infinity();

using convert_util::Fail;
using convert_util::JsonInt;
using convert_util::JsonNumber;
using convert_util::JsonString;
using convert_util::Member;
using convert_util::Optional;

std::string Base64Decode(const std::string& in, const std::string& where) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z')
      v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z')
      v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9')
      v = ch - '0' + 52;
    else if (ch == '+' || ch == '-')
      v = 62;
    else if (ch == '/' || ch == '_')
      v = 63;
    else if (ch == '=')
      break;
    else
      Fail(where, ": bad base64 string");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// ---- the TensorFlow graph as read from model.json ----

struct TfNode {
  std::string name, op;
  std::vector<std::string> inputs;  // tensor names; control inputs dropped
  const json* attr = nullptr;

  const json* Attr(const char* key) const { return attr ? Optional(*attr, key) : nullptr; }
  std::string Where(const char* key) const { return "node '" + name + "' attr '" + key + "'"; }
  int64_t Int(const char* key, int64_t fallback) const {
    const json* a = Attr(key);
    const json* v = a ? Optional(*a, "i") : nullptr;
    return v ? JsonInt(*v, Where(key)) : fallback;
  }
  float Float(const char* key, float fallback) const {
    const json* a = Attr(key);
    const json* v = a ? Optional(*a, "f") : nullptr;
    return v ? float(JsonNumber(*v, Where(key))) : fallback;
  }
  bool Bool(const char* key, bool fallback) const {
    const json* a = Attr(key);
    const json* v = a ? Optional(*a, "b") : nullptr;
    if (v && !v->is_boolean()) Fail(Where(key), ": expected a boolean");
    return v ? v->get<bool>() : fallback;
  }
  std::string Str(const char* key, const std::string& fallback) const {
    const json* a = Attr(key);
    const json* v = a ? Optional(*a, "s") : nullptr;
    return v ? Base64Decode(JsonString(*v, Where(key)), Where(key)) : fallback;
  }
  const json* List(const char* key, const char* kind) const {
    const json* a = Attr(key);
    const json* l = a ? Optional(*a, "list") : nullptr;
    const json* v = l ? Optional(*l, kind) : nullptr;
    if (v && !v->is_array()) Fail(Where(key), ": expected a list");
    return v;
  }
  std::vector<int64_t> Ints(const char* key, std::vector<int64_t> fallback) const {
    const json* v = List(key, "i");
    if (!v) {
      const json* a = Attr(key);
      // An attribute present with an empty list means "no values".
      return a && Optional(*a, "list") ? std::vector<int64_t>{} : fallback;
    }
    std::vector<int64_t> out;
    for (const json& e : *v) out.push_back(JsonInt(e, Where(key)));
    return out;
  }
  std::vector<std::string> Strs(const char* key) const {
    const json* v = List(key, "s");
    std::vector<std::string> out;
    if (v)
      for (const json& e : *v) out.push_back(Base64Decode(JsonString(e, Where(key)), Where(key)));
    return out;
  }
};

// ---- values and the IR ----

struct Value {
  std::string name;
  Shape shape;
  bool is_const = false;
  bool is_int = false;     // integer constant (shape arithmetic)
  std::vector<float> f;    // float constant data
  std::vector<int64_t> i;  // integer constant data
  bool fp16 = false;       // every source of this constant had 16 bits or fewer
  int producer = -1;       // IR node of an activation; -1 for graph inputs and constants
  bool graph_input = false;
};

struct IrNode {
  std::string op, name;
  std::vector<int> in;
  std::map<std::string, Attr> attrs;
  int out = -1;
  bool dead = false;
};

int64_t Elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Checks a shape read from the file before anything is allocated for it.
void CheckDims(const Shape& s, const std::string& where) {
  if (s.size() > 8) Fail(where, ": rank ", s.size(), " is too large");
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0 || d > kMaxDim) Fail(where, ": dimension ", d, " is out of range");
    n *= d;
    if (n > kMaxTensorElements) Fail(where, ": more than ", kMaxTensorElements, " elements");
  }
}

Shape ParseTensorShape(const json& ts, const std::string& where) {
  Shape s;
  const json* dims = Optional(ts, "dim");
  if (!dims) return s;
  if (!dims->is_array()) Fail(where, ": 'dim' must be a list");
  for (const json& d : *dims) {
    const json* size = Optional(d, "size");
    s.push_back(size ? JsonInt(*size, where) : 0);  // proto3 omits zero
  }
  return s;
}

class Converter {
 public:
  Converter(const TfjsConvertOptions& options, std::string weights_dir)
      : options_(options), dir_(std::move(weights_dir)) {}
  void Convert(const std::string& text, Graph* out);

 private:
  void ParseNodes(const json& topology);
  void LoadWeights(const json& manifest);
  void DecodeWeight(const json& w, const std::vector<uint8_t>& bytes, uint64_t* offset,
                    const std::string& group);
  std::vector<const TfNode*> Schedule(const std::vector<std::string>& outputs);
  Shape InputShape(const TfNode& n, const json& model);
  void Lower(const TfNode& n, const json& model);
  void LowerConv(const TfNode& n, bool depthwise);
  void LowerBinary(const TfNode& n);
  void FoldPads();
  void FoldAffine();
  void FuseClamps();
  void Emit(const std::vector<int>& outputs, Graph* out);

  // Value helpers.
  int In(const TfNode& n, size_t k);
  const Value& V(int id) const { return values_[size_t(id)]; }
  int Const(const std::string& name, Shape shape, std::vector<float> data, bool fp16);
  int IntConst(const std::string& name, Shape shape, std::vector<int64_t> data);
  const Value& ConstIn(const TfNode& n, size_t k);
  std::vector<int64_t> IntsIn(const TfNode& n, size_t k);
  int Node(const std::string& op, const std::string& name, std::vector<int> in,
           std::map<std::string, Attr> attrs);
  void Bind(const TfNode& n, int value) { tensor_[n.name] = value; }
  std::vector<int> Consumers(int value) const;

  const TfjsConvertOptions& options_;
  std::string dir_;
  std::vector<TfNode> tf_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, Value> weights_;
  std::vector<Value> values_;
  std::vector<IrNode> nodes_;
  std::map<std::string, int> tensor_;  // TF tensor name -> value
  std::vector<int> inputs_;
  std::vector<int> output_uses_;
  std::map<int, std::string> out_name_hint_;  // output value -> requested output name
};

// Strips ":0" so "Identity:0" and "Identity" name the same tensor.
std::string TensorName(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 2 == s.size() && s[colon + 1] == '0')
    return s.substr(0, colon);
  return s;
}

void Converter::ParseNodes(const json& topology) {
  const json& nodes = Member(topology, "node", "modelTopology");
  if (!nodes.is_array()) Fail("modelTopology.node must be a list");
  tf_.reserve(nodes.size());
  for (size_t k = 0; k < nodes.size(); ++k) {
    const std::string where = "modelTopology.node[" + std::to_string(k) + "]";
    const json& j = nodes[k];
    TfNode n;
    n.name = JsonString(Member(j, "name", where), where + ".name");
    n.op = JsonString(Member(j, "op", where), where + ".op");
    if (n.name.empty() || n.name.size() > 4096) Fail(where, ": bad node name");
    if (const json* in = Optional(j, "input")) {
      if (!in->is_array()) Fail("node '", n.name, "': 'input' must be a list");
      for (const json& e : *in) {
        std::string s = JsonString(e, "node '" + n.name + "' input");
        if (!s.empty() && s[0] == '^') continue;  // control dependency
        n.inputs.push_back(TensorName(s));
      }
    }
    n.attr = Optional(j, "attr");
    if (n.attr && !n.attr->is_object()) Fail("node '", n.name, "': 'attr' must be an object");
    if (by_name_.count(n.name)) Fail("two nodes are named '", n.name, "'");
    by_name_[n.name] = tf_.size();
    tf_.push_back(std::move(n));
  }
}

void Converter::DecodeWeight(const json& w, const std::vector<uint8_t>& bytes, uint64_t* offset,
                             const std::string& group) {
  const std::string name = JsonString(Member(w, "name", group), group + " weight name");
  const std::string where = "weight '" + name + "'";
  Shape shape;
  const json& js = Member(w, "shape", where);
  if (!js.is_array()) Fail(where, ": 'shape' must be a list");
  for (const json& d : js) shape.push_back(JsonInt(d, where + " shape"));
  CheckDims(shape, where);
  const std::string dtype = JsonString(Member(w, "dtype", where), where + " dtype");
  const int64_t n = Elements(shape);
  Value v;
  v.name = name;
  v.shape = shape;
  v.is_const = true;
  std::string stored = dtype;
  double scale = 1, min = 0;
  const json* q = Optional(w, "quantization");
  if (q) {
    stored = JsonString(Member(*q, "dtype", where + " quantization"), where + " quantization");
    if (stored == "uint8" || stored == "uint16") {
      scale = JsonNumber(Member(*q, "scale", where + " quantization"), where + " scale");
      min = JsonNumber(Member(*q, "min", where + " quantization"), where + " min");
    } else if (stored != "float16") {
      Fail(where, ": unsupported quantization dtype '", stored, "'");
    }
  }
  uint64_t width;
  if (stored == "uint8" || stored == "bool")
    width = 1;
  else if (stored == "uint16" || stored == "float16")
    width = 2;
  else if (stored == "float32" || stored == "int32")
    width = 4;
  else
    Fail(where, ": unsupported dtype '", stored, "'");
  const uint64_t need = uint64_t(n) * width;
  if (*offset + need > bytes.size())
    Fail(where, ": needs bytes [", *offset, ", ", *offset + need, ") but the shards of ", group,
         " hold only ", bytes.size(), " bytes (missing or truncated shard?)");
  const uint8_t* p = bytes.data() + *offset;
  *offset += need;
  v.is_int = dtype == "int32" || dtype == "bool";
  v.fp16 = width <= 2 && !v.is_int;
  std::vector<double> d(size_t(n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const uint8_t* e = p + uint64_t(k) * width;
    if (stored == "uint8" || stored == "bool") {
      d[size_t(k)] = stored == "bool" ? double(e[0] != 0) : e[0] * scale + min;
    } else if (stored == "uint16") {
      d[size_t(k)] = uint16_t(e[0] | (e[1] << 8)) * scale + min;
    } else if (stored == "float16") {
      d[size_t(k)] = HalfToFloat(uint16_t(e[0] | (e[1] << 8)));
    } else if (stored == "float32") {
      float f;
      std::memcpy(&f, e, 4);
      d[size_t(k)] = f;
    } else {
      int32_t i;
      std::memcpy(&i, e, 4);
      d[size_t(k)] = i;
    }
  }
  if (v.is_int) {
    v.i.reserve(d.size());
    for (double x : d) v.i.push_back(int64_t(std::llround(x)));
  } else if (dtype == "float32") {
    v.f.reserve(d.size());
    for (double x : d) {
      const float f = float(x);
      if (!std::isfinite(f)) Fail(where, ": contains NaN or infinity");
      v.f.push_back(f);
    }
  } else {
    Fail(where, ": unsupported dtype '", dtype, "'");
  }
  weights_[name] = std::move(v);
}

void Converter::LoadWeights(const json& manifest) {
  if (!manifest.is_array()) Fail("weightsManifest must be a list");
  for (size_t g = 0; g < manifest.size(); ++g) {
    const std::string group = "weightsManifest[" + std::to_string(g) + "]";
    const json& paths = Member(manifest[g], "paths", group);
    const json& weights = Member(manifest[g], "weights", group);
    if (!paths.is_array() || !weights.is_array()) Fail(group, ": paths and weights must be lists");
    const std::vector<uint8_t> bytes = convert_util::ReadShards(paths, dir_, group, true);
    uint64_t offset = 0;
    for (const json& w : weights) DecodeWeight(w, bytes, &offset, group);
    if (offset != bytes.size())
      Fail(group, ": the manifest describes ", offset, " bytes but the shards hold ", bytes.size());
  }
}

// Nodes the outputs need, inputs first (iterative DFS; refuses cycles and dangling inputs).
std::vector<const TfNode*> Converter::Schedule(const std::vector<std::string>& outputs) {
  std::vector<const TfNode*> order;
  std::vector<uint8_t> state(tf_.size(), 0);  // 0 new, 1 on stack, 2 done
  for (const std::string& out : outputs) {
    auto it = by_name_.find(out);
    if (it == by_name_.end()) Fail("output '", out, "' is not a node of the model");
    std::vector<std::pair<size_t, size_t>> stack = {{it->second, 0}};
    while (!stack.empty()) {
      auto& [idx, next] = stack.back();
      if (state[idx] == 2) {
        stack.pop_back();
        continue;
      }
      state[idx] = 1;
      const TfNode& n = tf_[idx];
      if (next < n.inputs.size()) {
        const std::string& in = n.inputs[next++];
        const size_t colon = in.rfind(':');
        const std::string node = colon == std::string::npos ? in : in.substr(0, colon);
        auto j = by_name_.find(node);
        if (j == by_name_.end())
          Fail("node '", n.name, "': input '", in, "' is not produced by any node");
        if (state[j->second] == 1) Fail("node '", n.name, "': the graph has a cycle");
        if (state[j->second] == 0) stack.push_back({j->second, 0});
        continue;
      }
      state[idx] = 2;
      order.push_back(&n);
      stack.pop_back();
    }
  }
  return order;
}

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

// Adds an IR node; its output shape comes from the engine op's own shape inference.
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

Shape Converter::InputShape(const TfNode& n, const json& model) {
  Shape s = options_.input_shape;
  if (s.empty()) {
    // The signature's shape, else the Placeholder's own.
    const json* sig = Optional(model, "signature");
    const json* ins = sig ? Optional(*sig, "inputs") : nullptr;
    if (ins && ins->is_object())
      for (const auto& [key, in] : ins->items()) {
        const json* nm = Optional(in, "name");
        const json* ts = Optional(in, "tensorShape");
        if (nm && ts && nm->is_string() && TensorName(nm->get<std::string>()) == n.name)
          s = ParseTensorShape(*ts, "signature input '" + key + "'");
      }
    if (s.empty()) {
      const json* a = n.Attr("shape");
      const json* sh = a ? Optional(*a, "shape") : nullptr;
      if (sh) s = ParseTensorShape(*sh, "node '" + n.name + "' shape");
    }
    if (s.empty()) Fail("input '", n.name, "' has no known shape: give the input shape");
    if (s[0] == -1) s[0] = 1;
  }
  for (int64_t d : s)
    if (d < 1) Fail("input '", n.name, "' has an unknown dimension: give the input shape");
  CheckDims(s, "input '" + n.name + "'");
  return s;
}

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
void Converter::Lower(const TfNode& n, const json& model) {
  const std::string& op = n.op;
  const std::string where = "node '" + n.name + "' (" + op + ")";
  auto has_const_inputs = [&]() {
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (!V(In(n, k)).is_const) return false;
    return !n.inputs.empty();
  };

  if (op == "Const") {
    auto it = weights_.find(n.name);
    if (it == weights_.end()) Fail(where, ": no weights for it in weightsManifest");
    if (const json* a = n.Attr("value")) {
      const json* t = Optional(*a, "tensor");
      const json* ts = t ? Optional(*t, "tensorShape") : nullptr;
      if (ts && ParseTensorShape(*ts, where) != it->second.shape)
        Fail(where, ": shape ", ShapeToString(ParseTensorShape(*ts, where)),
             " differs from the weights' ", ShapeToString(it->second.shape));
    }
    values_.push_back(it->second);
    Bind(n, int(values_.size() - 1));
    return;
  }
  if (op == "Placeholder") {
    Value v;
    v.name = n.name;
    v.shape = InputShape(n, model);
    v.graph_input = true;
    values_.push_back(std::move(v));
    inputs_.push_back(int(values_.size() - 1));
    Bind(n, inputs_.back());
    return;
  }
  if (op == "Identity" || op == "StopGradient" || op == "Snapshot" ||
      (op == "IdentityN" && n.inputs.size() == 1)) {
    Bind(n, In(n, 0));
    return;
  }
  if (op == "Shape") {
    const Value& v = V(In(n, 0));
    Bind(n, IntConst(n.name, {int64_t(v.shape.size())},
                     std::vector<int64_t>(v.shape.begin(), v.shape.end())));
    return;
  }
  if (op == "Cast") {
    const Value& v = V(In(n, 0));
    const std::string dst =
        n.Attr("DstT") ? JsonString(Member(*n.Attr("DstT"), "type", where), where) : "DT_FLOAT";
    const bool to_int = dst == "DT_INT32" || dst == "DT_INT64" || dst == "DT_BOOL";
    if (!v.is_const) {
      if (to_int) Fail(where, ": cast of a run-time tensor to ", dst, " is not supported");
      Bind(n, In(n, 0));
      return;
    }
    Value c = v;
    c.name = n.name;
    if (to_int && !c.is_int) {
      c.i.clear();
      for (float f : c.f) c.i.push_back(dst == "DT_BOOL" ? f != 0 : int64_t(f));
      c.f.clear();
    } else if (!to_int && c.is_int) {
      c.f.clear();
      for (int64_t x : c.i) c.f.push_back(float(x));
      c.i.clear();
    }
    c.is_int = to_int;
    values_.push_back(std::move(c));
    Bind(n, int(values_.size() - 1));
    return;
  }
  if (op == "StridedSlice" || op == "Slice") {
    const Value& v = ConstIn(n, 0);
    if (v.shape.size() != 1) Fail(where, ": only rank-1 constants can be sliced");
    const int64_t len = v.shape[0];
    const std::vector<int64_t> begin = IntsIn(n, 1), end_or_size = IntsIn(n, 2);
    if (begin.size() != 1 || end_or_size.size() != 1) Fail(where, ": expects 1-D begin/end");
    int64_t b = begin[0], e = 0, st = 1;
    bool shrink = false;
    if (op == "Slice") {
      e = end_or_size[0] == -1 ? len : b + end_or_size[0];
    } else {
      const std::vector<int64_t> strides = IntsIn(n, 3);
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
    Value c;
    c.name = n.name;
    c.is_const = true;
    c.is_int = v.is_int;
    c.fp16 = v.fp16;
    for (int64_t k = b; st > 0 ? k < e : k > e; k += st) {
      if (k < 0 || k >= len) Fail(where, ": slice out of range");
      if (v.is_int)
        c.i.push_back(v.i[size_t(k)]);
      else
        c.f.push_back(v.f[size_t(k)]);
    }
    const int64_t count = int64_t(v.is_int ? c.i.size() : c.f.size());
    if (shrink && count != 1) Fail(where, ": shrink_axis slice is empty");
    c.shape = shrink ? Shape{} : Shape{count};
    values_.push_back(std::move(c));
    Bind(n, int(values_.size() - 1));
    return;
  }
  if (op == "Pack" || (op == "ConcatV2" && has_const_inputs())) {
    const bool pack = op == "Pack";
    const size_t count = pack ? n.inputs.size() : n.inputs.size() - 1;
    if (count < 1) Fail(where, ": no inputs");
    const Value& first = ConstIn(n, 0);
    const int64_t rank = int64_t(first.shape.size()) + (pack ? 1 : 0);
    int64_t axis = pack ? n.Int("axis", 0) : IntsIn(n, count).at(0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) Fail(where, ": axis out of range");
    Shape out = first.shape;
    if (pack)
      out.insert(out.begin() + axis, int64_t(count));
    else
      out[size_t(axis)] = 0;
    Value c;
    c.name = n.name;
    c.is_const = true;
    c.is_int = first.is_int;
    c.fp16 = true;
    int64_t outer = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= first.shape[size_t(k)];
    std::vector<int64_t> inner(count);
    for (size_t k = 0; k < count; ++k) {
      const Value& v = ConstIn(n, k);
      if (v.is_int != first.is_int) Fail(where, ": mixed integer and float inputs");
      Shape expect = v.shape;
      if (!pack) {
        if (expect.size() != first.shape.size()) Fail(where, ": inputs differ in rank");
        out[size_t(axis)] += v.shape[size_t(axis)];
        expect[size_t(axis)] = first.shape[size_t(axis)];
      }
      if (expect != first.shape) Fail(where, ": inputs differ in shape");
      inner[k] = outer == 0 ? 0 : Elements(v.shape) / std::max<int64_t>(outer, 1);
      c.fp16 = c.fp16 && v.fp16;
    }
    CheckDims(out, where);
    for (int64_t o = 0; o < outer; ++o)
      for (size_t k = 0; k < count; ++k) {
        const Value& v = ConstIn(n, k);
        for (int64_t e = 0; e < inner[k]; ++e) {
          const size_t src = size_t(o * inner[k] + e);
          if (v.is_int)
            c.i.push_back(v.i[src]);
          else
            c.f.push_back(v.f[src]);
        }
      }
    c.shape = out;
    values_.push_back(std::move(c));
    Bind(n, int(values_.size() - 1));
    return;
  }
  if (op == "Reshape" || op == "Squeeze" || op == "ExpandDims") {
    const int id = In(n, 0);
    const Shape in = V(id).shape;
    Shape target;
    if (op == "Reshape") {
      target = ResolveReshape(in, IntsIn(n, 1), where);
    } else if (op == "Squeeze") {
      std::vector<int64_t> dims = n.Ints("squeeze_dims", n.Ints("axis", {}));
      std::set<int64_t> drop;
      for (int64_t d : dims) drop.insert(d < 0 ? d + int64_t(in.size()) : d);
      for (size_t k = 0; k < in.size(); ++k) {
        const bool squeeze = drop.empty() ? in[k] == 1 : drop.count(int64_t(k)) != 0;
        if (squeeze && in[k] != 1) Fail(where, ": dimension ", k, " is not 1");
        if (!squeeze) target.push_back(in[k]);
      }
    } else {
      int64_t axis = IntsIn(n, 1).at(0);
      if (axis < 0) axis += int64_t(in.size()) + 1;
      if (axis < 0 || axis > int64_t(in.size())) Fail(where, ": axis out of range");
      target = in;
      target.insert(target.begin() + axis, 1);
    }
    CheckDims(target, where);
    if (V(id).is_const) {
      Value c = V(id);
      c.name = n.name;
      c.shape = target;
      values_.push_back(std::move(c));
      Bind(n, int(values_.size() - 1));
    } else if (target == in) {
      Bind(n, id);
    } else {
      Bind(n, Node("reshape", n.name, {id}, {{"shape", Attr::Ints(target)}}));
    }
    return;
  }
  if (op == "Conv2D" || op == "_FusedConv2D") return LowerConv(n, false);
  if (op == "DepthwiseConv2dNative" || op == "FusedDepthwiseConv2dNative" ||
      op == "_FusedDepthwiseConv2dNative")
    return LowerConv(n, true);
  if (op == "Add" || op == "AddV2" || op == "Sub" || op == "Mul" || op == "RealDiv" ||
      op == "BiasAdd" || op == "Maximum" || op == "Minimum" || op == "FloorDiv")
    return LowerBinary(n);
  if (op == "Relu" || op == "Relu6") {
    Bind(n, Node("clamp", n.name, {In(n, 0)},
                 {{"clamp", Attr::Floats({0.f, op == "Relu" ? kInf : 6.f})}}));
    return;
  }
  if (op == "ClipByValue") {
    const Value &lo = ConstIn(n, 1), &hi = ConstIn(n, 2);
    if (lo.is_int || hi.is_int || lo.f.size() != 1 || hi.f.size() != 1)
      Fail(where, ": clip_value_min and clip_value_max must be float scalars");
    if (!(lo.f[0] < hi.f[0]))
      Fail(where, ": the clip range [", lo.f[0], ", ", hi.f[0], "] is empty");
    Bind(n, Node("clamp", n.name, {In(n, 0)}, {{"clamp", Attr::Floats({lo.f[0], hi.f[0]})}}));
    return;
  }
  if (op == "Sigmoid" || op == "Tanh" || op == "Softmax") {
    std::string ours = op == "Sigmoid" ? "sigmoid" : op == "Tanh" ? "tanh" : "softmax";
    Bind(n, Node(ours, n.name, {In(n, 0)}, {}));
    return;
  }
  if (op == "LeakyRelu") {
    Bind(n, Node("leaky_relu", n.name, {In(n, 0)},
                 {{"alpha", Attr::Floats({n.Float("alpha", 0.2f)})}}));
    return;
  }
  if (op == "Prelu") {
    const int x = In(n, 0);
    Value slope = ConstIn(n, 1);
    slope.name = n.name + "/slope";
    // [1, 1, C] or [1, 1, 1, C] -> [C]: the engine's prelu wants a slope that broadcasts.
    int64_t ones = 0;
    for (size_t k = 0; k + 1 < slope.shape.size(); ++k) ones += slope.shape[k] == 1;
    if (!slope.shape.empty() && ones == int64_t(slope.shape.size()) - 1)
      slope.shape = {slope.shape.back()};
    values_.push_back(std::move(slope));
    Bind(n, Node("prelu", n.name, {x, int(values_.size() - 1)}, {}));
    return;
  }
  if (op == "Pad" || op == "PadV2" || op == "MirrorPad") {
    if (op == "MirrorPad") Fail("unsupported op 'MirrorPad' at node '", n.name, "'");
    const int x = In(n, 0);
    const std::vector<int64_t> p = IntsIn(n, 1);
    const size_t rank = V(x).shape.size();
    if (p.size() != 2 * rank) Fail(where, ": paddings must be [", rank, ", 2]");
    std::vector<int64_t> pads(2 * rank);
    for (size_t d = 0; d < rank; ++d) {
      pads[d] = p[2 * d];
      pads[d + rank] = p[2 * d + 1];
    }
    float value = 0.f;
    if (op == "PadV2") {
      const Value& c = ConstIn(n, 2);
      if (c.is_int ? c.i.size() != 1 : c.f.size() != 1) Fail(where, ": value must be a scalar");
      value = c.is_int ? float(c.i[0]) : c.f[0];
    }
    std::map<std::string, Attr> attrs = {{"pads", Attr::Ints(pads)}};
    if (value != 0.f) attrs["value"] = Attr::Floats({value});
    Bind(n, Node("pad", n.name, {x}, attrs));
    return;
  }
  if (op == "MaxPool" || op == "AvgPool") {
    if (n.Str("data_format", "NHWC") != "NHWC") Fail(where, ": only NHWC is supported");
    const std::vector<int64_t> k = n.Ints("ksize", {}), s = n.Ints("strides", {1, 1, 1, 1});
    if (k.size() != 4 || s.size() != 4 || k[0] != 1 || k[3] != 1 || s[0] != 1 || s[3] != 1)
      Fail(where, ": ksize/strides must be [1, h, w, 1]");
    const std::string padding = n.Str("padding", "VALID");
    std::map<std::string, Attr> attrs = {{"kernel", Attr::Ints({k[1], k[2]})},
                                         {"stride", Attr::Ints({s[1], s[2]})}};
    if (padding == "SAME")
      attrs["same"] = Attr::Ints({1});
    else if (padding != "VALID")
      Fail(where, ": padding '", padding, "' is not supported");
    if (k[1] == 1 && k[2] == 1 && s[1] == 1 && s[2] == 1) {
      Bind(n, In(n, 0));  // a 1x1 pool is the identity
      return;
    }
    Bind(n, Node(op == "MaxPool" ? "max_pool2d" : "avg_pool2d", n.name, {In(n, 0)}, attrs));
    return;
  }
  if (op == "Mean") {
    const int x = In(n, 0);
    std::vector<int64_t> axes = IntsIn(n, 1);
    const Shape in = V(x).shape;  // a copy: Node() may reallocate values_
    for (int64_t& a : axes)
      if (a < 0) a += int64_t(in.size());
    std::sort(axes.begin(), axes.end());
    if (in.size() != 4 || axes != std::vector<int64_t>{1, 2})
      Fail(where, ": only the mean over height and width of NHWC is supported");
    const bool keep = n.Bool("keep_dims", n.Bool("keepDims", false));
    const int pooled = Node("global_avg_pool", keep ? n.name : n.name + "/pool", {x}, {});
    if (keep)
      Bind(n, pooled);
    else
      Bind(n, Node("reshape", n.name, {pooled}, {{"shape", Attr::Ints({in[0], in[3]})}}));
    return;
  }
  if (op == "ResizeBilinear") {
    const std::vector<int64_t> size = IntsIn(n, 1);
    if (size.size() != 2) Fail(where, ": size must have 2 values");
    const bool align = n.Bool("align_corners", false), half = n.Bool("half_pixel_centers", false);
    if (align && half) Fail(where, ": align_corners and half_pixel_centers are both set");
    const int64_t mode = half ? 0 : align ? 1 : 2;
    Bind(n, Node("resize_bilinear", n.name, {In(n, 0)},
                 {{"size", Attr::Ints(size)}, {"mode", Attr::Ints({mode})}}));
    return;
  }
  if (op == "DepthToSpace") {
    if (n.Str("data_format", "NHWC") != "NHWC") Fail(where, ": only NHWC is supported");
    Bind(n, Node("depth_to_space", n.name, {In(n, 0)},
                 {{"block", Attr::Ints({n.Int("block_size", 0)})}}));
    return;
  }
  if (op == "ConcatV2") {
    const size_t count = n.inputs.size() - 1;
    if (n.inputs.size() < 2) Fail(where, ": needs inputs and an axis");
    const std::vector<int64_t> axis = IntsIn(n, count);
    if (axis.size() != 1) Fail(where, ": axis must be a scalar");
    std::vector<int> in;
    for (size_t k = 0; k < count; ++k) {
      in.push_back(In(n, k));
      if (V(in.back()).is_const)
        Fail(where, ": concatenating constants with run-time tensors is not supported");
    }
    if (in.size() == 1)
      Bind(n, in[0]);
    else
      Bind(n, Node("concatenate", n.name, in, {{"axis", Attr::Ints({axis[0]})}}));
    return;
  }
  if (op == "MatMul" || op == "_FusedMatMul") {
    if (n.Bool("transpose_a", false)) Fail(where, ": transpose_a is not supported");
    const int x = In(n, 0);
    const Value& w = ConstIn(n, 1);
    if (w.shape.size() != 2 || w.is_int) Fail(where, ": weights must be a 2-D float constant");
    const bool tb = n.Bool("transpose_b", false);
    const int64_t K = tb ? w.shape[1] : w.shape[0], N = tb ? w.shape[0] : w.shape[1];
    std::vector<float> wt(size_t(K * N));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t o = 0; o < N; ++o)
        wt[size_t(o * K + k)] = tb ? w.f[size_t(o * K + k)] : w.f[size_t(k * N + o)];
    std::vector<int> in = {x, Const(n.name + "/weights", {N, K}, std::move(wt), w.fp16)};
    std::map<std::string, Attr> attrs;
    size_t arg = 2;
    for (const std::string& f : n.Strs("fused_ops")) {
      if (f == "BiasAdd") {
        Value b = ConstIn(n, arg++);
        if (b.is_int || Elements(b.shape) != N) Fail(where, ": bias must have ", N, " values");
        in.push_back(Const(n.name + "/bias", {N}, b.f, b.fp16));
      } else if (f == "Relu" || f == "Relu6") {
        attrs["clamp"] = Attr::Floats({0.f, f == "Relu" ? kInf : 6.f});
      } else {
        Fail("unsupported op '", op, "' with fused '", f, "' at node '", n.name, "'");
      }
    }
    Bind(n, Node("fully_connected", n.name, in, attrs));
    return;
  }
  if (op == "FusedBatchNorm" || op == "FusedBatchNormV2" || op == "FusedBatchNormV3") {
    if (n.Bool("is_training", false)) Fail(where, ": training-mode batch norm");
    const int x = In(n, 0);
    const Value &scale = ConstIn(n, 1), &offset = ConstIn(n, 2), &mean = ConstIn(n, 3),
                &var = ConstIn(n, 4);
    const int64_t C = V(x).shape.empty() ? 0 : V(x).shape.back();
    for (const Value* v : {&scale, &offset, &mean, &var})
      if (v->is_int || int64_t(v->f.size()) != C)
        Fail(where, ": parameters must have ", C, " values");
    const float eps = n.Float("epsilon", 1e-3f);
    std::vector<float> s(static_cast<size_t>(C)), b(static_cast<size_t>(C));
    for (size_t c = 0; c < size_t(C); ++c) {
      s[c] = scale.f[c] / std::sqrt(var.f[c] + eps);
      b[c] = offset.f[c] - mean.f[c] * s[c];
    }
    const int m = Node("multiply", n.name + "/scale", {x, Const(n.name + "/s", {C}, s, false)}, {});
    Bind(n, Node("add", n.name, {m, Const(n.name + "/b", {C}, b, false)}, {}));
    return;
  }
  Fail("unsupported op '", op, "' at node '", n.name, "'");
}

void Converter::LowerConv(const TfNode& n, bool depthwise) {
  const std::string where = "node '" + n.name + "' (" + n.op + ")";
  if (n.Str("data_format", "NHWC") != "NHWC") Fail(where, ": only NHWC is supported");
  const int x = In(n, 0);
  const Shape xs = V(x).shape;
  if (V(x).is_const) Fail(where, ": the input must be a run-time tensor");
  const Value& w = ConstIn(n, 1);
  if (w.is_int || w.shape.size() != 4) Fail(where, ": filter must be a 4-D float constant");
  if (xs.size() != 4) Fail(where, ": input must be NHWC (rank 4), got ", ShapeToString(xs));
  const int64_t kh = w.shape[0], kw = w.shape[1], I = w.shape[2], O = w.shape[3];
  if (I != xs[3])
    Fail(where, ": filter ", ShapeToString(w.shape), " expects ", I, " input channels, input has ",
         xs[3], depthwise ? "" : " (grouped convolution is not supported)");
  const std::vector<int64_t> s = n.Ints("strides", {1, 1, 1, 1});
  const std::vector<int64_t> d = n.Ints("dilations", {1, 1, 1, 1});
  if (s.size() != 4 || d.size() != 4 || s[0] != 1 || s[3] != 1 || d[0] != 1 || d[3] != 1)
    Fail(where, ": strides/dilations must be [1, h, w, 1]");
  std::map<std::string, Attr> attrs = {{"stride", Attr::Ints({s[1], s[2]})},
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
  // Weights: HWIO -> OHWI for conv2d; HWCM is already [1, kh, kw, C*M] in memory for depthwise.
  const int64_t out_c = depthwise ? I * O : O;
  std::vector<float> wt(w.f.size());
  Shape ws;
  if (depthwise) {
    wt = w.f;
    ws = {1, kh, kw, I * O};
  } else {
    for (int64_t y = 0; y < kh; ++y)
      for (int64_t xx = 0; xx < kw; ++xx)
        for (int64_t i = 0; i < I; ++i)
          for (int64_t o = 0; o < O; ++o)
            wt[size_t(((o * kh + y) * kw + xx) * I + i)] =
                w.f[size_t(((y * kw + xx) * I + i) * O + o)];
    ws = {O, kh, kw, I};
  }
  const bool w16 = w.fp16;
  std::vector<float> bias;
  bool has_bias = false, b16 = true;
  std::vector<std::string> post;  // activations applied after the convolution
  size_t arg = 2;
  auto next_arg = [&]() -> const Value& { return ConstIn(n, arg++); };
  for (const std::string& f : n.Strs("fused_ops")) {
    if (f == "BiasAdd") {
      const Value& b = next_arg();
      if (b.is_int || int64_t(b.f.size()) != out_c)
        Fail(where, ": bias must have ", out_c, " values");
      bias = b.f;
      has_bias = true;
      b16 = b.fp16;
    } else if (f == "FusedBatchNorm") {
      const Value &sc = next_arg(), &of = next_arg(), &mu = next_arg(), &va = next_arg();
      for (const Value* v : {&sc, &of, &mu, &va})
        if (v->is_int || int64_t(v->f.size()) != out_c)
          Fail(where, ": batch-norm parameters must have ", out_c, " values");
      const float eps = n.Float("epsilon", 1e-3f);
      if (!has_bias) bias.assign(size_t(out_c), 0.f);
      for (size_t c = 0; c < size_t(out_c); ++c) {
        const float k = sc.f[c] / std::sqrt(va.f[c] + eps);
        bias[c] = (bias[c] - mu.f[c]) * k + of.f[c];
        if (depthwise) {
          for (size_t e = c; e < wt.size(); e += size_t(out_c)) wt[e] *= k;
        } else {
          const size_t per = size_t(kh * kw * I);
          for (size_t e = 0; e < per; ++e) wt[c * per + e] *= k;
        }
      }
      has_bias = true;
      b16 = false;
    } else if (f == "Relu" || f == "Relu6" || f == "Sigmoid" || f == "Tanh") {
      post.push_back(f);
    } else if (f == "Prelu" || f == "LeakyRelu") {
      post.push_back(f);
    } else {
      Fail("unsupported op '", n.op, "' with fused '", f, "' at node '", n.name, "'");
    }
  }
  const int wid = Const(n.name + "/weights", ws, std::move(wt), w16);
  const int bid = has_bias ? Const(n.name + "/bias", {out_c}, std::move(bias), b16) : -1;
  const std::string conv_name = post.empty() ? n.name : n.name + "/conv";
  int out = Node(depthwise ? "depthwise_conv2d" : "conv2d", conv_name,
                 has_bias ? std::vector<int>{x, wid, bid} : std::vector<int>{x, wid}, attrs);
  for (size_t k = 0; k < post.size(); ++k) {
    const std::string& f = post[k];
    const std::string name = k + 1 == post.size() ? n.name : n.name + "/" + f;
    if (f == "Relu" || f == "Relu6") {
      out = Node("clamp", name, {out}, {{"clamp", Attr::Floats({0.f, f == "Relu" ? kInf : 6.f})}});
    } else if (f == "Sigmoid" || f == "Tanh") {
      out = Node(f == "Sigmoid" ? "sigmoid" : "tanh", name, {out}, {});
    } else if (f == "LeakyRelu") {
      out = Node("leaky_relu", name, {out},
                 {{"alpha", Attr::Floats({n.Float("leakyrelu_alpha", 0.2f)})}});
    } else {
      Value slope = next_arg();
      slope.name = n.name + "/slope";
      if (slope.is_int || int64_t(slope.f.size()) != out_c)
        Fail(where, ": prelu slope must have ", out_c, " values");
      slope.shape = {out_c};
      values_.push_back(std::move(slope));
      out = Node("prelu", name, {out, int(values_.size() - 1)}, {});
    }
  }
  Bind(n, out);
}

void Converter::LowerBinary(const TfNode& n) {
  const std::string& op = n.op;
  const std::string where = "node '" + n.name + "' (" + op + ")";
  int a = In(n, 0), b = In(n, 1);
  if (V(a).is_const && V(b).is_const) {
    // Constant folding (shape arithmetic or float constants).
    const Value &x = V(a), &y = V(b);
    if (x.is_int != y.is_int) Fail(where, ": mixed integer and float operands");
    const Shape out = Broadcast(x.shape, y.shape, where);
    CheckDims(out, where);
    Value c;
    c.name = n.name;
    c.shape = out;
    c.is_const = true;
    c.is_int = x.is_int;
    c.fp16 = x.fp16 && y.fp16;
    const int64_t count = Elements(out);
    for (int64_t k = 0; k < count; ++k) {
      const size_t ia = size_t(BroadcastIndex(out, x.shape, k));
      const size_t ib = size_t(BroadcastIndex(out, y.shape, k));
      const double p = x.is_int ? double(x.i[ia]) : x.f[ia];
      const double q = y.is_int ? double(y.i[ib]) : y.f[ib];
      double r;
      if (op == "Add" || op == "AddV2" || op == "BiasAdd")
        r = p + q;
      else if (op == "Sub")
        r = p - q;
      else if (op == "Mul")
        r = p * q;
      else if (op == "Maximum")
        r = std::max(p, q);
      else if (op == "Minimum")
        r = std::min(p, q);
      else {
        if (q == 0) Fail(where, ": division by zero");
        r = op == "FloorDiv" ? std::floor(p / q) : (c.is_int ? std::trunc(p / q) : p / q);
      }
      if (c.is_int)
        c.i.push_back(int64_t(r));
      else
        c.f.push_back(float(r));
    }
    values_.push_back(std::move(c));
    Bind(n, int(values_.size() - 1));
    return;
  }
  auto scaled_const = [&](int id, float k, const std::string& name) {
    const Value& v = V(id);
    std::vector<float> d;
    for (float f : v.f) d.push_back(op == "RealDiv" ? 1.f / f : f * k);
    return Const(name, v.shape, std::move(d), v.fp16);
  };
  if (op == "Add" || op == "AddV2" || op == "BiasAdd") {
    Bind(n, Node("add", n.name, {a, b}, {}));
  } else if (op == "Mul") {
    Bind(n, Node("multiply", n.name, {a, b}, {}));
  } else if (op == "Sub") {
    // a - b = a + (-1 * b).
    if (V(b).is_const) {
      Bind(n, Node("add", n.name, {a, scaled_const(b, -1.f, n.name + "/neg")}, {}));
    } else {
      const int neg = Node("multiply", n.name + "/neg",
                           {b, Const(n.name + "/minus_one", {1}, {-1.f}, false)}, {});
      Bind(n, Node("add", n.name, {a, neg}, {}));
    }
  } else if ((op == "Maximum" || op == "Minimum") && (V(a).is_const || V(b).is_const)) {
    // max(x, c) / min(x, c) with a scalar constant c: a one-sided clamp.
    const Value& c = V(V(a).is_const ? a : b);
    if (c.is_int || c.f.size() != 1)
      Fail(where, ": only a scalar constant operand is supported with a run-time tensor");
    const std::vector<float> range =
        op == "Maximum" ? std::vector<float>{c.f[0], kInf} : std::vector<float>{-kInf, c.f[0]};
    Bind(n, Node("clamp", n.name, {V(a).is_const ? b : a}, {{"clamp", Attr::Floats(range)}}));
  } else if (op == "RealDiv" && V(b).is_const) {
    for (float f : V(b).f)
      if (f == 0.f) Fail(where, ": division by zero");
    Bind(n, Node("multiply", n.name, {a, scaled_const(b, 1.f, n.name + "/reciprocal")}, {}));
  } else {
    Fail("unsupported op '", op, "' at node '", n.name, "' (with run-time operands)");
  }
}

std::vector<int> Converter::Consumers(int value) const {
  std::vector<int> out;
  for (size_t k = 0; k < nodes_.size(); ++k)
    if (!nodes_[k].dead)
      for (int in : nodes_[k].in)
        if (in == value) {
          out.push_back(int(k));
          break;
        }
  return out;
}

bool IsOutput(const std::vector<int>& outputs, int value) {
  return std::find(outputs.begin(), outputs.end(), value) != outputs.end();
}

// A zero Pad of height/width only, in front of a convolution with explicit padding, becomes
// that padding (XNNPACK pads with zeros inside the convolution).
void Converter::FoldPads() {
  for (IrNode& conv : nodes_) {
    if (conv.dead || (conv.op != "conv2d" && conv.op != "depthwise_conv2d") ||
        conv.attrs.count("same"))
      continue;
    const int p = V(conv.in[0]).producer;
    if (p < 0 || nodes_[size_t(p)].op != "pad" || nodes_[size_t(p)].attrs.count("value")) continue;
    const std::vector<int64_t>& pads = nodes_[size_t(p)].attrs.at("pads").ints;
    if (pads.size() != 8 || pads[0] || pads[3] || pads[4] || pads[7]) continue;
    std::vector<int64_t> cp = conv.attrs.count("padding") ? conv.attrs.at("padding").ints
                                                          : std::vector<int64_t>{0, 0, 0, 0};
    cp[0] += pads[1];  // top
    cp[1] += pads[2];  // left
    cp[2] += pads[5];  // bottom
    cp[3] += pads[6];  // right
    if (*std::max_element(cp.begin(), cp.end()) > 1024) continue;
    conv.attrs["padding"] = Attr::Ints(cp);
    conv.in[0] = nodes_[size_t(p)].in[0];
  }
}

// multiply/add by a per-channel (or scalar) constant right after a conv, depthwise conv or fully
// connected layer with no other consumer becomes part of its weights and bias.
void Converter::FoldAffine() {
  for (IrNode& m : nodes_) {
    if (m.dead || (m.op != "multiply" && m.op != "add")) continue;
    int act = -1, cst = -1;
    for (int k = 0; k < 2; ++k)
      if (V(m.in[size_t(k)]).is_const)
        cst = m.in[size_t(k)];
      else
        act = m.in[size_t(k)];
    if (act < 0 || cst < 0) continue;
    const int p = V(act).producer;
    if (p < 0) continue;
    IrNode& conv = nodes_[size_t(p)];
    if (conv.dead || conv.attrs.count("clamp") ||
        (conv.op != "conv2d" && conv.op != "depthwise_conv2d" && conv.op != "fully_connected"))
      continue;
    if (Consumers(act).size() != 1 || IsOutput(output_uses_, act)) continue;
    // Copies: Const() below may reallocate values_.
    const Shape cshape = V(cst).shape;
    const std::vector<float> cf = V(cst).f;
    const bool c16 = V(cst).fp16;
    const Shape os = V(act).shape;
    const int64_t C = os.back();
    // The constant must broadcast along the last (channel) axis only, without growing the output.
    bool per_channel = cshape.size() <= os.size();
    for (size_t k = 0; per_channel && k < cshape.size(); ++k)
      per_channel = k + 1 == cshape.size() ? (cshape[k] == 1 || cshape[k] == C) : cshape[k] == 1;
    if (!per_channel) continue;
    auto at = [&](int64_t ch) { return cf.size() == 1 ? cf[0] : cf[size_t(ch)]; };
    if (conv.in.size() < 3) conv.in.push_back(-1);
    if (conv.in[2] < 0 && m.op == "add")
      conv.in[2] = Const(conv.name + "/bias", {C}, std::vector<float>(size_t(C), 0.f), true);
    if (m.op == "multiply") {
      Value& w = values_[size_t(conv.in[1])];
      if (conv.op == "depthwise_conv2d") {
        for (size_t e = 0; e < w.f.size(); ++e) w.f[e] *= at(int64_t(e % size_t(C)));
      } else {
        const size_t per = w.f.size() / size_t(C);
        for (size_t e = 0; e < w.f.size(); ++e) w.f[e] *= at(int64_t(e / per));
      }
      w.fp16 = w.fp16 && c16;
    }
    if (conv.in[2] >= 0) {
      Value& b = values_[size_t(conv.in[2])];
      for (int64_t ch = 0; ch < C; ++ch)
        b.f[size_t(ch)] = m.op == "multiply" ? b.f[size_t(ch)] * at(ch) : b.f[size_t(ch)] + at(ch);
      b.fp16 = b.fp16 && c16;
    }
    if (conv.in[2] < 0) conv.in.pop_back();
    conv.out = m.out;
    values_[size_t(m.out)].producer = p;
    m.dead = true;
  }
}

// clamp (Relu, Relu6) after an op with a fused clamp, when nothing else reads the op's output.
void Converter::FuseClamps() {
  static const std::set<std::string> kFusable = {"conv2d",    "depthwise_conv2d", "fully_connected",
                                                 "add",       "multiply",         "max_pool2d",
                                                 "avg_pool2d"};
  for (IrNode& c : nodes_) {
    if (c.dead || c.op != "clamp") continue;
    const int p = V(c.in[0]).producer;
    if (p < 0 || !kFusable.count(nodes_[size_t(p)].op)) continue;
    if (Consumers(c.in[0]).size() != 1 || IsOutput(output_uses_, c.in[0])) continue;
    IrNode& prod = nodes_[size_t(p)];
    std::vector<float> range = c.attrs.at("clamp").floats;
    if (prod.attrs.count("clamp")) {
      const std::vector<float>& old = prod.attrs.at("clamp").floats;
      range = {std::max(range[0], old[0]), std::min(range[1], old[1])};
      if (!(range[0] < range[1])) continue;
    }
    prod.attrs["clamp"] = Attr::Floats(range);
    prod.out = c.out;
    values_[size_t(c.out)].producer = p;
    c.dead = true;
  }
}

void Converter::Emit(const std::vector<int>& outputs, Graph* out) {
  // Live nodes: reachable backwards from the outputs.
  std::vector<uint8_t> live(nodes_.size(), 0);
  std::vector<int> stack(outputs.begin(), outputs.end());
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    const int p = V(v).producer;
    if (p < 0 || live[size_t(p)]) continue;
    live[size_t(p)] = 1;
    for (int in : nodes_[size_t(p)].in)
      if (in >= 0) stack.push_back(in);
  }
  GraphBuilder b;
  std::map<int, int32_t> ids;
  std::set<std::string> used;
  auto unique = [&](const std::string& full) {
    const std::string& cut = options_.strip_prefix;
    const std::string base =
        !cut.empty() && full.size() > cut.size() && full.compare(0, cut.size(), cut) == 0
            ? full.substr(cut.size())
            : full;
    std::string name = base;
    for (int k = 1; used.count(name); ++k) name = base + "_" + std::to_string(k);
    used.insert(name);
    return name;
  };
  // Output names are reserved for the tensors they name.
  std::map<int, std::string> out_names;
  for (int v : inputs_) ids[v] = b.Input(unique(V(v).name), V(v).shape);
  for (const auto& [v, name] : out_name_hint_)
    if (!used.count(name)) out_names[v] = unique(name);
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (!live[k]) continue;
    const IrNode& n = nodes_[k];
    std::vector<int32_t> in;
    for (int v : n.in) {
      if (v < 0) {
        in.push_back(kNoTensor);
        continue;
      }
      auto it = ids.find(v);
      if (it == ids.end()) {
        const Value& c = V(v);
        if (!c.is_const) Fail("internal: value '", c.name, "' used before it is computed");
        it =
            ids.emplace(v, b.Constant(unique(c.name), c.shape, c.f, c.fp16 && !options_.force_fp32))
                .first;
      }
      in.push_back(it->second);
    }
    auto named = out_names.find(n.out);
    const std::string name = named != out_names.end() ? named->second : unique(n.name);
    ids[n.out] = b.Op(n.op, name, in, n.attrs);
    if (!b.status().ok()) Fail(b.status().message());
  }
  std::vector<int32_t> outs;
  for (int v : outputs) outs.push_back(ids.at(v));
  for (const auto& [k, v] : options_.metadata) b.Metadata(k, v);
  Status s = b.Finish(outs, out);
  if (!s.ok()) Fail("the converted graph is invalid: ", s.message());
}

void Converter::Convert(const std::string& text, Graph* out) {
  const json model = json::parse(text);
  if (!model.is_object()) Fail("model.json: expected a JSON object");
  if (const json* format = Optional(model, "format"))
    if (!format->is_string() || format->get<std::string>() != "graph-model")
      Fail("model.json: format is not 'graph-model' (layers models are not supported)");
  ParseNodes(Member(model, "modelTopology", "model.json"));
  LoadWeights(Member(model, "weightsManifest", "model.json"));
  std::vector<std::string> names;
  for (const std::string& o : options_.outputs) names.push_back(TensorName(o));
  if (names.empty()) {
    const json* sig = Optional(model, "signature");
    const json* outs = sig ? Optional(*sig, "outputs") : nullptr;
    if (outs && outs->is_object())
      for (const auto& [key, o] : outs->items()) {
        const json* nm = Optional(o, "name");
        names.push_back(TensorName(JsonString(nm ? *nm : json(key), "signature output")));
      }
    if (names.empty()) Fail("model.json has no signature outputs: name the outputs to keep");
  }
  if (names.size() > 16) Fail("more than 16 outputs");
  for (const std::string& name : names)
    if (name.find(':') != std::string::npos)
      Fail("output '", name, "': only a node's first output (:0) can be an output");
  for (const TfNode* n : Schedule(names)) Lower(*n, model);
  for (const std::string& name : names) {
    const int v = tensor_.at(name);
    if (V(v).is_const) Fail("output '", name, "' is a constant: nothing to compute");
    if (V(v).graph_input) Fail("output '", name, "' is a graph input: nothing to compute");
    if (IsOutput(output_uses_, v)) Fail("output '", name, "' is the same tensor as another output");
    output_uses_.push_back(v);
    out_name_hint_[v] = name;
  }
  if (inputs_.empty()) Fail("the outputs do not depend on any input");
  FoldPads();
  FoldAffine();
  FuseClamps();
  Emit(output_uses_, out);
}

Status RunConverter(const std::string& text, const std::string& dir,
                    const TfjsConvertOptions& options, Graph* out) {
  Graph g;
  FM_RETURN_IF_ERROR(convert_util::CatchToStatus(
      convert_util::Catches()
          .Json("model.json is not valid JSON: ", "model.json has a malformed field: ")
          .OutOfMemory("out of memory while converting")
          .Other("conversion failed: "),
      [&] { Converter(options, dir).Convert(text, &g); }));
  *out = std::move(g);
  return Status::Ok();
}

}  // namespace

Status ConvertTfjsGraphFromText(const std::string& json_text, const std::string& weights_dir,
                                const TfjsConvertOptions& options, Graph* out) {
  return RunConverter(json_text, weights_dir, options, out);
}

Status ConvertTfjsGraph(const std::string& model_json_path, const TfjsConvertOptions& options,
                        Graph* out) {
  std::ifstream f(model_json_path, std::ios::binary);
  if (!f) return Errorf("cannot open '", model_json_path, "'");
  std::ostringstream text;
  text << f.rdbuf();
  if (!f.good() && !f.eof()) return Errorf("cannot read '", model_json_path, "'");
  const size_t slash = model_json_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : model_json_path.substr(0, slash);
  return RunConverter(text.str(), dir.empty() ? "/" : dir, options, out)
      .Prefix(model_json_path + ": ");
}

GraphStats ComputeGraphStats(const Graph& g) {
  GraphStats s;
  for (const Tensor& t : g.tensors)
    if (t.kind == TensorKind::kConstant) s.params += NumElements(t.shape);
  for (const fm::Node& n : g.nodes) {
    ++s.op_counts[n.op];
    const int64_t out = NumElements(g.ShapeOf(n.output));
    if (n.op == "conv2d") {
      const Shape& w = g.ShapeOf(n.inputs[1]);
      s.macs += out * w[1] * w[2] * w[3];
    } else if (n.op == "depthwise_conv2d") {
      const Shape& w = g.ShapeOf(n.inputs[1]);
      s.macs += out * w[1] * w[2];
    } else if (n.op == "fully_connected") {
      s.macs += out * g.ShapeOf(n.inputs[1])[1];
    }
  }
  return s;
}

}  // namespace fm
