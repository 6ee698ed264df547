// model_import.cpp - see model_import.h.
#include "model_import.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "face_api.h"
#include "keras_h5.h"
#include "tfjs_convert.h"
#include "tfjs_layers.h"

namespace fm {

const char* ModelFormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kKerasH5:
      return "keras-h5";
    case ModelFormat::kTfjsGraph:
      return "tfjs-graph";
    case ModelFormat::kTfjsLayers:
      return "tfjs-layers";
    case ModelFormat::kFaceApi:
      return "face-api";
  }
  return "?";
}

Status DetectModelFormat(const std::string& path, ModelFormat* format) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Errorf(path, ": cannot open");
  char head[8] = {};
  f.read(head, sizeof head);
  const std::streamsize got = f.gcount();
  if (got >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0)
    return Errorf(path,
                  ": a zip archive (Keras 3 .keras format?) is not supported; save the model "
                  "as .h5 (model.save('model.h5')) or convert it to TensorFlow.js");
  size_t k = 0;
  while (k < size_t(got) && std::isspace(static_cast<unsigned char>(head[k]))) ++k;
  if (k < size_t(got) && head[k] == '[') {
    std::ostringstream text;
    f.clear();
    f.seekg(0);
    text << f.rdbuf();
    if (!LooksLikeFaceApiManifest(text.str()))
      return Errorf(path,
                    ": a JSON list that is not a face-api.js weights manifest (expected weights "
                    "named dense0/conv0/...)");
    *format = ModelFormat::kFaceApi;
    return Status::Ok();
  }
  if (k == size_t(got) || head[k] != '{') {
    *format = ModelFormat::kKerasH5;  // the HDF5 reader says so when it is not HDF5
    return Status::Ok();
  }
  f.clear();
  f.seekg(0);
  std::ostringstream text;
  text << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Errorf(path, ": not valid JSON");
  const auto fmt = j.find("format");
  if (fmt != j.end() && *fmt == "layers-model") {
    *format = ModelFormat::kTfjsLayers;
  } else if (fmt != j.end() && *fmt == "graph-model") {
    *format = ModelFormat::kTfjsGraph;
  } else {
    const auto topo = j.find("modelTopology");
    if (topo == j.end() || !topo->is_object())
      return Errorf(path, ": JSON without modelTopology is not a TensorFlow.js model");
    if (topo->contains("node"))
      *format = ModelFormat::kTfjsGraph;
    else if (topo->contains("model_config") || topo->contains("class_name"))
      *format = ModelFormat::kTfjsLayers;
    else
      return Errorf(path, ": modelTopology is neither a graph nor a Keras model");
  }
  return Status::Ok();
}

Status ExpandSigmoidOutput(Graph* g) {
  if (g->outputs.size() != 1 || g->ShapeOf(g->outputs[0]) != Shape{1, 1})
    return Errorf("expected one [1, 1] output");
  auto add_tensor = [&](const std::string& base, Shape shape, std::vector<float> data) {
    Tensor t;
    t.name = base;
    for (int k = 1; g->FindTensor(t.name) >= 0; ++k) t.name = base + "_" + std::to_string(k);
    t.shape = std::move(shape);
    t.kind = data.empty() ? TensorKind::kActivation : TensorKind::kConstant;
    t.data = std::move(data);
    g->tensors.push_back(std::move(t));
    return int32_t(g->tensors.size() - 1);
  };
  auto add_node = [&](const std::string& op, std::vector<int32_t> in, int32_t out,
                      std::map<std::string, Attr> attrs) {
    Node n;
    n.op = op;
    n.name = g->tensors[size_t(out)].name;
    n.inputs = std::move(in);
    n.output = out;
    n.attrs = std::move(attrs);
    g->nodes.push_back(std::move(n));
  };
  const int32_t p = g->outputs[0];
  const int32_t minus_one = add_tensor("two_class/minus_one", {1}, {-1.f});
  const int32_t one = add_tensor("two_class/one", {1}, {1.f});
  const int32_t neg = add_tensor("two_class/neg", {1, 1}, {});
  const int32_t q = add_tensor("two_class/one_minus_p", {1, 1}, {});
  const int32_t both = add_tensor("two_class/probs", {1, 2}, {});
  add_node("multiply", {p, minus_one}, neg, {});
  add_node("add", {neg, one}, q, {});
  add_node("concatenate", {q, p}, both, {{"axis", Attr::Ints({-1})}});
  g->outputs = {both};
  return g->Validate();
}

Status ImportModel(const std::string& path, const ImportOptions& options, Graph* out,
                   ModelFormat* format_out) {
  ModelFormat format;
  FM_RETURN_IF_ERROR(DetectModelFormat(path, &format));
  if (format_out) *format_out = format;
  Graph g;
  if (format != ModelFormat::kFaceApi &&
      (options.input_size || options.feature_blocks || options.fp32))
    return Errorf(path,
                  ": --input-size, --features and --fp32 apply to face-api.js manifests only");
  if (format == ModelFormat::kFaceApi) {
    if (options.scale != 1.f || options.mean != 0.f || options.bgr)
      return Errorf(path,
                    ": a face-api.js model has fixed preprocessing; --scale, --mean and --bgr "
                    "do not apply");
    FaceApiOptions fo;
    fo.force_fp32 = options.fp32;
    if (options.input_size) fo.input_size = options.input_size;
    if (options.feature_blocks) {
      fo.blocks = options.feature_blocks;
      fo.features_only = true;
    }
    FM_RETURN_IF_ERROR(ConvertFaceApi(path, fo, &g));
    if (fo.features_only) {
      if (!options.labels.empty()) return Errorf(path, ": a feature extractor has no labels");
      g.metadata["kind"] = "features";
      *out = std::move(g);
      return Status::Ok();
    }
    std::vector<std::string> labels = options.labels;
    if (labels.empty()) labels = FaceApiExpressionLabels();
    if (labels.size() != FaceApiExpressionLabels().size())
      return Errorf(path, ": the model has 7 outputs but ", labels.size(), " labels were given");
    std::string joined;
    for (const std::string& l : labels) joined += (joined.empty() ? "" : ",") + l;
    g.metadata["kind"] = "classifier";
    g.metadata["labels"] = joined;
    *out = std::move(g);
    return Status::Ok();
  }
  if (format == ModelFormat::kTfjsGraph) {
    FM_RETURN_IF_ERROR(ConvertTfjsGraph(path, TfjsConvertOptions(), &g));
  } else if (format == ModelFormat::kTfjsLayers) {
    FM_RETURN_IF_ERROR(ConvertTfjsLayers(path, KerasConvertOptions(), &g));
  } else {
    FM_RETURN_IF_ERROR(ConvertKerasH5(path, KerasConvertOptions(), &g));
  }
  if (g.outputs.size() != 1)
    return Errorf(path, ": a classifier needs one output, the model has ", g.outputs.size());
  const Shape os = g.ShapeOf(g.outputs[0]);
  if (os.size() != 2 || os[0] != 1)
    return Errorf(path, ": a classifier's output must be [1, classes], got ", ShapeToString(os));
  std::vector<std::string> labels = options.labels;
  if (labels.empty()) {
    if (os[1] == 1) labels = {"no", "yes"};
    for (int64_t k = 0; os[1] > 1 && k < os[1]; ++k) labels.push_back(std::to_string(k));
  }
  for (const std::string& l : labels)
    if (l.empty() || l.find(',') != std::string::npos)
      return Errorf("labels must be non-empty and contain no commas");
  if (os[1] == 1) {
    if (labels.size() != 2)
      return Errorf(path, ": the model has one output (a probability): give two labels, got ",
                    labels.size());
    FM_RETURN_IF_ERROR(ExpandSigmoidOutput(&g).Prefix(path + ": "));
  } else if (int64_t(labels.size()) != os[1]) {
    return Errorf(path, ": the model has ", os[1], " outputs but ", labels.size(),
                  " labels were given");
  }
  std::string joined;
  for (const std::string& l : labels) joined += (joined.empty() ? "" : ",") + l;
  auto num = [](float v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
  };
  g.metadata["kind"] = "classifier";
  g.metadata["labels"] = joined;
  g.metadata["norm_scale"] = num(options.scale);
  g.metadata["norm_offset"] = num(-options.mean);
  g.metadata["channel_order"] = options.bgr ? "bgr" : "rgb";
  g.metadata["source_format"] = ModelFormatName(format);
  *out = std::move(g);
  return Status::Ok();
}

}  // namespace fm
