// tfjs_internal.h - the inside of the TensorFlow.js graph-model converter (tfjs_convert.h), shared
// by its stages:
//   tfjs_read.cpp    model.json's nodes and attributes, the weight shards, the schedule;
//   tfjs_lower.cpp   one lowering function per TensorFlow op, registered in one table;
//   tfjs_passes.cpp  peephole passes on the IR and its emission through GraphBuilder;
//   tfjs_convert.cpp the driver and the public functions.
// Errors are thrown as convert_util::ConvertError (and nlohmann's own exceptions); only the
// public functions in tfjs_convert.cpp turn them into a Status.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert_util.h"
#include "model/graph.h"
#include "tfjs_convert.h"

namespace fm::tfjs {

using json = nlohmann::json;
using convert_util::Fail;

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---- the TensorFlow graph as read from model.json ----

struct TfNode {
  std::string name, op;
  std::vector<std::string> inputs;  // tensor names; control inputs dropped
  const json* attr = nullptr;

  // Attribute values (the "i", "f", "b", "s" or "list" member of attr[key]); type-checked.
  const json* Attr(const char* key) const;
  std::string Where(const char* key) const;
  int64_t Int(const char* key, int64_t fallback) const;
  float Float(const char* key, float fallback) const;
  bool Bool(const char* key, bool fallback) const;
  std::string Str(const char* key, const std::string& fallback) const;
  const json* List(const char* key, const char* kind) const;
  std::vector<int64_t> Ints(const char* key, std::vector<int64_t> fallback) const;
  std::vector<std::string> Strs(const char* key) const;
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
  std::map<std::string, fm::Attr> attrs;
  int out = -1;
  bool dead = false;
};

int64_t Elements(const Shape& s);
// Checks a shape read from the file before anything is allocated for it.
void CheckDims(const Shape& s, const std::string& where);
Shape ParseTensorShape(const json& ts, const std::string& where);
// Strips ":0" so "Identity:0" and "Identity" name the same tensor.
std::string TensorName(const std::string& s);
bool IsOutput(const std::vector<int>& outputs, int value);

// The conversion of one model. The stages live in different files; what one stage hands to the
// next is public here.
class Converter {
 public:
  Converter(const TfjsConvertOptions& options, std::string weights_dir)
      : options_(options), dir_(std::move(weights_dir)) {}
  void Convert(const std::string& text, Graph* out);

  // ---- reading (tfjs_read.cpp) ----
  void ParseNodes(const json& topology);
  void LoadWeights(const json& manifest);
  std::vector<const TfNode*> Schedule(const std::vector<std::string>& outputs);
  Shape InputShape(const TfNode& n);

  // ---- lowering (tfjs_lower.cpp) ----
  // Lowers one TensorFlow node through the op table: folds it when every input is a constant,
  // else adds IR nodes.
  void Lower(const TfNode& n);
  int In(const TfNode& n, size_t k);
  const Value& V(int id) const { return values_[size_t(id)]; }
  int Const(const std::string& name, Shape shape, std::vector<float> data, bool fp16);
  int IntConst(const std::string& name, Shape shape, std::vector<int64_t> data);
  int AddValue(Value v);
  const Value& ConstIn(const TfNode& n, size_t k);
  std::vector<int64_t> IntsIn(const TfNode& n, size_t k);
  // Adds an IR node; its output shape comes from the engine op's own shape inference.
  int Node(const std::string& op, const std::string& name, std::vector<int> in,
           std::map<std::string, fm::Attr> attrs);
  void Bind(const TfNode& n, int value) { tensor_[n.name] = value; }

  // ---- passes (tfjs_passes.cpp) ----
  void FoldPads();
  void FoldAffine();
  void FuseClamps();
  void Emit(const std::vector<int>& outputs, Graph* out);
  std::vector<int> Consumers(int value) const;

  const TfjsConvertOptions& options_;
  std::string dir_;
  const json* model_ = nullptr;  // model.json, while Convert runs
  std::vector<TfNode> tf_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, Value> weights_;
  std::vector<Value> values_;
  std::vector<IrNode> nodes_;
  std::map<std::string, int> tensor_;  // TF tensor name -> value
  std::vector<int> inputs_;
  std::vector<int> output_uses_;
  std::map<int, std::string> out_name_hint_;  // output value -> requested output name

 private:
  void DecodeWeight(const json& w, const std::vector<uint8_t>& bytes, uint64_t* offset,
                    const std::string& group);
};

}  // namespace fm::tfjs
