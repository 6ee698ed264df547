// tfjs_convert.cpp - see tfjs_convert.h. The driver of the converter, whose stages live in
//   tfjs_read.cpp    1. parse model.json (nlohmann-json) and decode the weight shards into
//                       constants; schedule the TensorFlow nodes the outputs need;
//   tfjs_lower.cpp   2. lower those nodes, in topological order, into a small IR of engine ops
//                       through a table of per-op functions (constants are folded on the way:
//                       shape arithmetic never reaches the IR);
//   tfjs_passes.cpp  3. peephole passes on the IR (Pad -> conv padding, mul/add by constants ->
//                       conv weights and bias, Relu/Relu6 -> fused clamp), dead-node removal,
//                       then emission through GraphBuilder, which re-checks every op and
//                       validates the whole graph.
// Inside the converter errors are thrown as ConvertError (convert_util.h; and nlohmann's own
// exceptions); the public functions here catch everything and return a Status.
#include <fstream>
#include <sstream>

#include "tfjs_internal.h"

namespace fm {
namespace tfjs {
namespace {

using convert_util::JsonString;
using convert_util::Member;
using convert_util::Optional;

// The nodes to convert up to: the requested outputs, else the signature's.
std::vector<std::string> OutputNames(const json& model, const TfjsConvertOptions& options) {
  std::vector<std::string> names;
  for (const std::string& o : options.outputs) names.push_back(TensorName(o));
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
  return names;
}

}  // namespace

void Converter::Convert(const std::string& text, Graph* out) {
  const json model = json::parse(text);
  if (!model.is_object()) Fail("model.json: expected a JSON object");
  if (const json* format = Optional(model, "format"))
    if (!format->is_string() || format->get<std::string>() != "graph-model")
      Fail("model.json: format is not 'graph-model' (layers models are not supported)");
  model_ = &model;
  ParseNodes(Member(model, "modelTopology", "model.json"));
  LoadWeights(Member(model, "weightsManifest", "model.json"));
  const std::vector<std::string> names = OutputNames(model, options_);
  for (const TfNode* n : Schedule(names)) Lower(*n);
  model_ = nullptr;
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

}  // namespace tfjs

namespace {

Status RunConverter(const std::string& text, const std::string& dir,
                    const TfjsConvertOptions& options, Graph* out) {
  Graph g;
  FM_RETURN_IF_ERROR(convert_util::CatchToStatus(
      convert_util::Catches()
          .Json("model.json is not valid JSON: ", "model.json has a malformed field: ")
          .OutOfMemory("out of memory while converting")
          .Other("conversion failed: "),
      [&] { tfjs::Converter(options, dir).Convert(text, &g); }));
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
