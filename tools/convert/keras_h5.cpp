// keras_h5.cpp - see keras_h5.h. HDF5 handles live in a small RAII wrapper; errors are thrown as
// ConvertError (convert_util.h) inside this file and returned as a Status at the boundary.
#include "keras_h5.h"

#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "convert_util.h"

namespace fm {
namespace {

constexpr hssize_t kMaxStrings = 1 << 16;
constexpr size_t kMaxStringBytes = size_t(64) << 20;
constexpr int64_t kMaxTotalWeights = int64_t(128) << 20;  // 512 MiB of float32, as .fmm allows

// HDF5's innermost error description of the current error stack (empty when none).
std::string LastH5Error() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        if (e && e->desc && *e->desc) *static_cast<std::string*>(data) = e->desc;
        return 0;
      },
      &msg);
  return msg;
}

// convert_util::Fail with HDF5's own description of what went wrong, when it has one.
template <typename... Args>
[[noreturn]] void Fail(const Args&... args) {
  std::string message = convert_util::Concat(args...);
  const std::string h5 = LastH5Error();
  if (!h5.empty()) message += " (HDF5: " + h5 + ")";
  H5Eclear2(H5E_DEFAULT);
  convert_util::Fail(message);
}

// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Id {
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Id() {
    if (id_ >= 0) close_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// The strings of an attribute (scalar or 1-D; fixed or variable length). An attribute that holds
// no strings but has no elements (Keras writes empty weight_names as float64[0]) gives {}.
std::vector<std::string> ReadStrings(hid_t obj, const char* name, const std::string& where) {
  H5Id attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) Fail(where, ": cannot open attribute '", name, "'");
  H5Id type(H5Aget_type(attr.get()), H5Tclose);
  H5Id space(H5Aget_space(attr.get()), H5Sclose);
  if (!type.ok() || !space.ok()) Fail(where, ": cannot read attribute '", name, "'");
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > kMaxStrings) Fail(where, ": attribute '", name, "' has a bad size");
  std::vector<std::string> out;
  if (H5Tget_class(type.get()) != H5T_STRING) {
    if (n == 0) return out;
    Fail(where, ": attribute '", name, "' does not hold strings");
  }
  if (n == 0) return out;
  const htri_t variable = H5Tis_variable_str(type.get());
  if (variable < 0) Fail(where, ": attribute '", name, "' has a bad string type");
  if (variable) {
    H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!mem.ok() || H5Tset_size(mem.get(), H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem.get(), H5Tget_cset(type.get())) < 0)
      Fail(where, ": cannot make a string type");
    std::vector<char*> ptrs(size_t(n), nullptr);
    if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0)
      Fail(where, ": cannot read attribute '", name, "'");
    size_t total = 0;
    bool too_long = false;
    for (char* p : ptrs) {
      const size_t len = p ? std::strlen(p) : 0;
      total += len;
      if (total > kMaxStringBytes) too_long = true;
      if (!too_long) out.emplace_back(p ? p : "", len);
    }
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    if (too_long) Fail(where, ": attribute '", name, "' is too large");
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  if (size == 0 || size > kMaxStringBytes / size_t(n))
    Fail(where, ": attribute '", name, "' is too large");
  std::vector<char> buf(size * size_t(n));
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0)
    Fail(where, ": cannot read attribute '", name, "'");
  const bool space_pad = H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD;
  for (hssize_t k = 0; k < n; ++k) {
    const char* p = buf.data() + size_t(k) * size;
    size_t len = 0;
    while (len < size && p[len] != '\0') ++len;
    if (space_pad)
      while (len > 0 && p[len - 1] == ' ') --len;
    out.emplace_back(p, len);
  }
  return out;
}

// A name from the file as it may appear in a message: control bytes and bytes >= 0x80 as \xNN
// (a damaged file must not put raw binary into messages or JSON).
std::string Printable(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(char(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out.size() > 200 ? out.substr(0, 200) + "..." : out;
}

bool HasAttr(hid_t obj, const char* name) {
  return H5Aexists(obj, name) > 0;
}

// A model file must not make the converter read other files: a link that leaves the file is
// refused by name (RefuseLinksOut), and the access property lists used to open groups and
// datasets refuse to follow an external link anywhere on a path (intermediate ones too).
herr_t RefuseExternalTraversal(const char*, const char*, const char*, const char*, unsigned*, hid_t,
                               void*) {
  return -1;
}

hid_t NoExternalLinks(hid_t plist_class) {
  const hid_t p = H5Pcreate(plist_class);
  if (p < 0) Fail("cannot set up HDF5 link access");
  if (H5Pset_elink_cb(p, RefuseExternalTraversal, nullptr) < 0) {
    H5Pclose(p);
    Fail("cannot set up HDF5 link access");
  }
  return p;
}

void RefuseLinksOut(hid_t loc, const std::string& name, const std::string& what) {
  H5L_info_t info;
  if (H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT) < 0) return;  // missing: said later
  if (info.type == H5L_TYPE_EXTERNAL)
    Fail(what, " is an external link to another file (refused: a model must be one file)");
  if (info.type != H5L_TYPE_HARD)
    Fail(what, " is a soft or user-defined link (refused: a model must be one file)");
}

KerasArray ReadArray(hid_t group, const std::string& name, const std::string& where) {
  if (name.empty()) Fail(where, ": empty weight name");
  const std::string shown = Printable(name);
  RefuseLinksOut(group, name, where + ": weight '" + shown + "'");
  const H5Id dapl(NoExternalLinks(H5P_DATASET_ACCESS), H5Pclose);
  H5Id ds(H5Dopen2(group, name.c_str(), dapl.get()), H5Dclose);
  if (!ds.ok()) Fail(where, ": weight '", shown, "' is missing (or behind a link)");
  H5Id dcpl(H5Dget_create_plist(ds.get()), H5Pclose);
  if (!dcpl.ok()) Fail(where, ": weight '", shown, "' is unreadable");
  if (H5Pget_external_count(dcpl.get()) != 0)
    Fail(where, ": weight '", shown,
         "' keeps its data in external files (refused: a model must be one file)");
  if (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL)
    Fail(where, ": weight '", shown,
         "' is a virtual dataset mapping other files (refused: a model must be one file)");
  H5Id type(H5Dget_type(ds.get()), H5Tclose);
  H5Id space(H5Dget_space(ds.get()), H5Sclose);
  if (!type.ok() || !space.ok()) Fail(where, ": weight '", shown, "' is unreadable");
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    Fail(where, ": weight '", shown, "' is not a floating-point array");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > kMaxRank) Fail(where, ": weight '", shown, "' has rank ", rank);
  hsize_t dims[kMaxRank] = {};
  if (H5Sget_simple_extent_dims(space.get(), dims, nullptr) != rank)
    Fail(where, ": weight '", shown, "' has unreadable dimensions");
  KerasArray a;
  a.name = name;
  int64_t n = 1;
  for (int k = 0; k < rank; ++k) {
    if (dims[k] < 1 || dims[k] > hsize_t(kMaxDim))
      Fail(where, ": weight '", shown, "' has a dimension of ", dims[k]);
    a.shape.push_back(int64_t(dims[k]));
    n *= int64_t(dims[k]);
    if (n > kMaxTensorElements) Fail(where, ": weight '", shown, "' is too large");
  }
  a.data.resize(size_t(n));
  if (H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()) < 0)
    Fail(where, ": cannot read weight '", name, "'");
  for (float f : a.data)
    if (!std::isfinite(f)) Fail(where, ": weight '", shown, "' contains NaN or infinity");
  return a;
}

void Read(const std::string& path, KerasModelSource* out) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // no printing: errors become messages
  H5Eclear2(H5E_DEFAULT);
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
  if (is_h5 == 0) {
    H5Eclear2(H5E_DEFAULT);
    convert_util::Fail("not an HDF5 file");
  }
  if (is_h5 < 0) Fail("cannot open the file");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) Fail("cannot open the HDF5 file (truncated or damaged?)");
  H5Id root(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
  if (!root.ok()) Fail("cannot open the root group");
  if (!HasAttr(root.get(), "model_config"))
    Fail(
        "no 'model_config' attribute: a weights-only file (save_weights) has no architecture; "
        "save the whole model with model.save('model.h5')");
  const std::vector<std::string> config = ReadStrings(root.get(), "model_config", "model_config");
  if (config.size() != 1) Fail("model_config must be one string");
  out->config_json = config[0];
  const bool nested = H5Lexists(root.get(), "model_weights", H5P_DEFAULT) > 0;
  if (nested) RefuseLinksOut(root.get(), "model_weights", "model_weights");
  const H5Id gapl(NoExternalLinks(H5P_GROUP_ACCESS), H5Pclose);
  H5Id weights(H5Gopen2(root.get(), nested ? "model_weights" : "/", gapl.get()), H5Gclose);
  if (!weights.ok()) Fail("cannot open model_weights");
  if (!HasAttr(weights.get(), "layer_names")) Fail("model_weights has no 'layer_names'");
  const std::vector<std::string> layers =
      ReadStrings(weights.get(), "layer_names", "model_weights");
  out->weights.clear();
  int64_t total = 0;
  for (const std::string& layer : layers) {
    const std::string where = "model_weights/" + Printable(layer);
    if (layer.empty() || out->weights.count(layer)) Fail(where, ": bad or repeated layer name");
    RefuseLinksOut(weights.get(), layer, where);
    H5Id group(H5Gopen2(weights.get(), layer.c_str(), gapl.get()), H5Gclose);
    if (!group.ok()) Fail(where, ": layer group is missing");
    std::vector<KerasArray>& arrays = out->weights[layer];
    if (!HasAttr(group.get(), "weight_names")) continue;
    for (const std::string& w : ReadStrings(group.get(), "weight_names", where)) {
      arrays.push_back(ReadArray(group.get(), w, where));
      total += int64_t(arrays.back().data.size());
      if (total > kMaxTotalWeights) Fail(where, ": the weights exceed 512 MiB");
    }
  }
}

}  // namespace

Status ReadKerasH5(const std::string& path, KerasModelSource* out) {
  KerasModelSource src;
  FM_RETURN_IF_ERROR(convert_util::CatchToStatus(convert_util::Catches()
                                                     .Prefix(path + ": ")
                                                     .OutOfMemory("out of memory while reading")
                                                     .Other(""),
                                                 [&] { Read(path, &src); }));
  *out = std::move(src);
  return Status::Ok();
}

Status ConvertKerasH5(const std::string& path, const KerasConvertOptions& options, Graph* out) {
  KerasModelSource src;
  FM_RETURN_IF_ERROR(ReadKerasH5(path, &src));
  return ConvertKerasModel(src, options, out).Prefix(path + ": ");
}

}  // namespace fm
