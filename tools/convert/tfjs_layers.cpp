// tfjs_layers.cpp - see tfjs_layers.h. Errors are thrown as ConvertError (convert_util.h) inside
// this file and returned as a Status at the boundary.
#include "tfjs_layers.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "convert_util.h"
#include "model/model_format.h"

namespace fm {
namespace {

using json = nlohmann::json;

using convert_util::Fail;

// A layers model's members: null counts as missing, and type errors do not name the type found.
const json& Member(const json& obj, const char* key, const std::string& where) {
  return convert_util::Member(obj, key, where, /*null_is_missing=*/true);
}
std::string String(const json& v, const std::string& where) {
  return convert_util::JsonString(v, where, /*say_type=*/false);
}

// "conv2d/kernel" -> "conv2d"; "sequential/conv2d_1/kernel" -> "conv2d_1".
std::string LayerOf(const std::string& weight) {
  const size_t last = weight.rfind('/');
  if (last == std::string::npos || last == 0) return "";
  const size_t prev = weight.rfind('/', last - 1);
  return weight.substr(prev == std::string::npos ? 0 : prev + 1,
                       last - (prev == std::string::npos ? 0 : prev + 1));
}

std::vector<uint8_t> ReadShards(const json& paths, const std::string& dir,
                                const std::string& group) {
  if (!paths.is_array()) Fail(group, ": 'paths' must be a list");
  return convert_util::ReadShards(paths, dir, group, /*say_type=*/false);
}

KerasArray Decode(const json& w, const std::vector<uint8_t>& bytes, uint64_t* offset,
                  const std::string& group) {
  KerasArray a;
  a.name = String(Member(w, "name", group), group + " weight name");
  const std::string where = "weight '" + a.name + "'";
  const json& js = Member(w, "shape", where);
  if (!js.is_array() || js.size() > size_t(kMaxRank)) Fail(where, ": bad 'shape'");
  int64_t n = 1;
  for (const json& d : js) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxDim)
      Fail(where, ": bad dimension in 'shape'");
    a.shape.push_back(d.get<int64_t>());
    n *= a.shape.back();
    if (n > kMaxTensorElements) Fail(where, ": too many elements");
  }
  std::string stored = String(Member(w, "dtype", where), where + " dtype");
  if (stored != "float32") Fail(where, ": dtype '", stored, "' is not supported (float32)");
  double scale = 1, min = 0;
  if (const json* q = w.contains("quantization") ? &w["quantization"] : nullptr) {
    stored = String(Member(*q, "dtype", where + " quantization"), where + " quantization");
    if (stored == "uint8" || stored == "uint16") {
      const json& s = Member(*q, "scale", where);
      const json& m = Member(*q, "min", where);
      if (!s.is_number() || !m.is_number()) Fail(where, ": bad quantization scale/min");
      scale = s.get<double>();
      min = m.get<double>();
    } else if (stored != "float16") {
      Fail(where, ": quantization dtype '", stored, "' is not supported");
    }
  }
  const uint64_t width = stored == "uint8" ? 1 : stored == "float32" ? 4 : 2;
  const uint64_t need = uint64_t(n) * width;
  if (*offset + need > bytes.size())
    Fail(where, ": needs bytes [", *offset, ", ", *offset + need, ") but the shards of ", group,
         " hold only ", bytes.size(), " bytes (missing or truncated shard?)");
  const uint8_t* p = bytes.data() + *offset;
  *offset += need;
  a.data.resize(size_t(n));
  for (size_t k = 0; k < size_t(n); ++k) {
    const uint8_t* e = p + k * width;
    float f;
    if (stored == "float32")
      std::memcpy(&f, e, 4);
    else if (stored == "float16")
      f = HalfToFloat(uint16_t(e[0] | (e[1] << 8)));
    else if (stored == "uint16")
      f = float(uint16_t(e[0] | (e[1] << 8)) * scale + min);
    else
      f = float(e[0] * scale + min);
    if (!std::isfinite(f)) Fail(where, ": contains NaN or infinity");
    a.data[k] = f;
  }
  return a;
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("cannot open the file");
  std::ostringstream text;
  text << f.rdbuf();
  return text.str();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  return dir.empty() ? "/" : dir;
}

// Every weight of every group of a weightsManifest, in manifest order.
std::vector<KerasArray> ReadManifest(const json& manifest, const std::string& dir) {
  if (!manifest.is_array()) Fail("weightsManifest must be a list");
  std::vector<KerasArray> arrays;
  for (size_t g = 0; g < manifest.size(); ++g) {
    const std::string group = "weightsManifest[" + std::to_string(g) + "]";
    const std::vector<uint8_t> bytes = ReadShards(Member(manifest[g], "paths", group), dir, group);
    const json& weights = Member(manifest[g], "weights", group);
    if (!weights.is_array()) Fail(group, ": 'weights' must be a list");
    uint64_t offset = 0;
    for (const json& w : weights) arrays.push_back(Decode(w, bytes, &offset, group));
    if (offset != bytes.size())
      Fail(group, ": the manifest describes ", offset, " bytes but the shards hold ", bytes.size());
  }
  return arrays;
}

void Read(const std::string& path, KerasModelSource* out) {
  const json model = json::parse(ReadText(path));
  if (!model.is_object()) Fail("expected a JSON object");
  if (model.contains("format") && model["format"] != "layers-model")
    Fail("format is not 'layers-model'");
  const json& topo = Member(model, "modelTopology", "model.json");
  const json& config = topo.contains("model_config") ? topo["model_config"] : topo;
  if (!config.is_object() || !config.contains("class_name"))
    Fail("modelTopology holds no Keras model config");
  out->config_json = config.dump();
  for (KerasArray& a : ReadManifest(Member(model, "weightsManifest", "model.json"), DirOf(path))) {
    const std::string layer = LayerOf(a.name);
    if (layer.empty()) Fail("weight '", a.name, "': the name does not say its layer");
    out->weights[layer].push_back(std::move(a));
  }
}

template <typename Fn>
Status Guard(const std::string& path, Fn fn) {
  return convert_util::CatchToStatus(convert_util::Catches()
                                         .Prefix(path + ": ")
                                         .Json("not valid JSON: ", "malformed field: ")
                                         .OutOfMemory("out of memory while reading"),
                                     fn);
}

}  // namespace

Status ReadTfjsLayers(const std::string& model_json_path, KerasModelSource* out) {
  KerasModelSource src;
  FM_RETURN_IF_ERROR(Guard(model_json_path, [&] { Read(model_json_path, &src); }));
  *out = std::move(src);
  return Status::Ok();
}

Status ReadWeightsManifest(const std::string& manifest_path, std::vector<KerasArray>* out) {
  std::vector<KerasArray> arrays;
  FM_RETURN_IF_ERROR(Guard(manifest_path, [&] {
    arrays = ReadManifest(json::parse(ReadText(manifest_path)), DirOf(manifest_path));
  }));
  *out = std::move(arrays);
  return Status::Ok();
}

Status ConvertTfjsLayers(const std::string& model_json_path, const KerasConvertOptions& options,
                         Graph* out) {
  KerasModelSource src;
  FM_RETURN_IF_ERROR(ReadTfjsLayers(model_json_path, &src));
  return ConvertKerasModel(src, options, out).Prefix(model_json_path + ": ");
}

}  // namespace fm
