// tfjs_read.cpp - stage 1 of the tfjs graph-model converter (tfjs_internal.h): reading model.json.
// The nodes of modelTopology with their type-checked attributes, the weightsManifest's shards
// decoded into constants (float32, float16, int32, bool, uint8/uint16 affine quantisation), the
// shape of each graph input, and the schedule: the nodes the outputs need, inputs first.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "model/model_format.h"
#include "tfjs_internal.h"

namespace fm::tfjs {
namespace {

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

}  // namespace

// ---- TfNode attributes ----

const json* TfNode::Attr(const char* key) const {
  return attr ? Optional(*attr, key) : nullptr;
}

std::string TfNode::Where(const char* key) const {
  return "node '" + name + "' attr '" + key + "'";
}

int64_t TfNode::Int(const char* key, int64_t fallback) const {
  const json* a = Attr(key);
  const json* v = a ? Optional(*a, "i") : nullptr;
  return v ? JsonInt(*v, Where(key)) : fallback;
}

float TfNode::Float(const char* key, float fallback) const {
  const json* a = Attr(key);
  const json* v = a ? Optional(*a, "f") : nullptr;
  return v ? float(JsonNumber(*v, Where(key))) : fallback;
}

bool TfNode::Bool(const char* key, bool fallback) const {
  const json* a = Attr(key);
  const json* v = a ? Optional(*a, "b") : nullptr;
  if (v && !v->is_boolean()) Fail(Where(key), ": expected a boolean");
  return v ? v->get<bool>() : fallback;
}

std::string TfNode::Str(const char* key, const std::string& fallback) const {
  const json* a = Attr(key);
  const json* v = a ? Optional(*a, "s") : nullptr;
  return v ? Base64Decode(JsonString(*v, Where(key)), Where(key)) : fallback;
}

const json* TfNode::List(const char* key, const char* kind) const {
  const json* a = Attr(key);
  const json* l = a ? Optional(*a, "list") : nullptr;
  const json* v = l ? Optional(*l, kind) : nullptr;
  if (v && !v->is_array()) Fail(Where(key), ": expected a list");
  return v;
}

std::vector<int64_t> TfNode::Ints(const char* key, std::vector<int64_t> fallback) const {
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

std::vector<std::string> TfNode::Strs(const char* key) const {
  const json* v = List(key, "s");
  std::vector<std::string> out;
  if (v)
    for (const json& e : *v) out.push_back(Base64Decode(JsonString(e, Where(key)), Where(key)));
  return out;
}

// ---- shapes and names ----

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

// Strips ":0" so "Identity:0" and "Identity" name the same tensor.
std::string TensorName(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 2 == s.size() && s[colon + 1] == '0')
    return s.substr(0, colon);
  return s;
}

bool IsOutput(const std::vector<int>& outputs, int value) {
  return std::find(outputs.begin(), outputs.end(), value) != outputs.end();
}

// ---- nodes and weights ----

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

Shape Converter::InputShape(const TfNode& n) {
  Shape s = options_.input_shape;
  if (s.empty()) {
    // The signature's shape, else the Placeholder's own.
    const json* sig = Optional(*model_, "signature");
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

}  // namespace fm::tfjs
