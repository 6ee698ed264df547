// convert_util.h - what every converter and exporter in tools/convert shares:
//   - ConvertError and Fail(...): inside a converter every error is thrown, with a message built
//     from Fail's arguments;
//   - CatchToStatus: the one catch ladder that turns what a converter threw into a Status at its
//     public boundary (each caller says how its messages start);
//   - type-checked JSON members (nlohmann-json), for model.json, model_config and friends;
//   - writing files through "<path>.tmp", renamed only when everything was written;
//   - reading the weight shards of a tfjs weightsManifest group;
//   - base64, which GraphDef JSON uses for strings.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "status.h"

namespace fm::convert_util {

using json = nlohmann::json;

// ---- errors ----

struct ConvertError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string Concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
[[noreturn]] void Fail(const Args&... args) {
  throw ConvertError(Concat(args...));
}

// How a public entry point words what its converter threw. Every message starts with `prefix`;
// a kind whose text is nullptr is treated as the next, more general kind (JSON syntax errors as
// malformed JSON, malformed JSON and out of memory as any other exception); with `other` nullptr,
// other exceptions are not caught.
struct Catches {
  std::string prefix;
  const char* error = "";                // before a ConvertError's message
  const char* invalid_json = nullptr;    // before nlohmann's parse_error
  const char* malformed_json = nullptr;  // before nlohmann's other exceptions
  const char* out_of_memory = nullptr;   // the whole message for std::bad_alloc
  const char* other = nullptr;           // before any other std::exception's what()

  Catches& Prefix(std::string s) { return prefix = std::move(s), *this; }
  Catches& Error(const char* s) { return error = s, *this; }
  Catches& Json(const char* invalid, const char* malformed) {
    return invalid_json = invalid, malformed_json = malformed, *this;
  }
  Catches& OutOfMemory(const char* s) { return out_of_memory = s, *this; }
  Catches& Other(const char* s) { return other = s, *this; }
};

// Runs fn(), returning Ok, or the Status `catches` makes of what it threw.
template <typename Fn>
Status CatchToStatus(const Catches& catches, Fn&& fn) {
  const std::string& p = catches.prefix;
  const char* text = nullptr;
  std::string what;
  try {
    fn();
    return Status::Ok();
  } catch (const ConvertError& e) {
    return Status::Error(p + catches.error + e.what());
  } catch (const json::parse_error& e) {
    what = e.what();
    text = catches.invalid_json ? catches.invalid_json : catches.malformed_json;
    if (!text) text = catches.other;
    if (!text) throw;
  } catch (const json::exception& e) {
    what = e.what();
    text = catches.malformed_json ? catches.malformed_json : catches.other;
    if (!text) throw;
  } catch (const std::bad_alloc& e) {
    if (catches.out_of_memory) return Status::Error(p + catches.out_of_memory);
    what = e.what();
    text = catches.other;
    if (!text) throw;
  } catch (const std::exception& e) {
    what = e.what();
    text = catches.other;
    if (!text) throw;
  }
  return Status::Error(p + text + what);
}

// ---- JSON members: every access is type-checked ----

// obj[key], or nullptr when obj is not an object or has no (or a null) `key`.
inline const json* Optional(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// obj[key]; fails when obj is not an object or has no `key` (nor, with null_is_missing, when its
// value is null).
inline const json& Member(const json& obj, const char* key, const std::string& where,
                          bool null_is_missing = false) {
  if (!obj.is_object()) Fail(where, ": expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || (null_is_missing && it->is_null())) Fail(where, ": missing '", key, "'");
  return *it;
}

// TensorFlow serialises int64 attributes and dims as strings; accept numbers too.
inline int64_t JsonInt(const json& v, const std::string& where) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d != std::floor(d) || std::fabs(d) > 9e15) Fail(where, ": ", d, " is not an integer");
    return int64_t(d);
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    errno = 0;
    const long long r = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0) Fail(where, ": '", s, "' is not an integer");
    return r;
  }
  Fail(where, ": expected an integer, got ", v.type_name());
}

inline double JsonNumber(const json& v, const std::string& where) {
  if (!v.is_number()) Fail(where, ": expected a number, got ", v.type_name());
  return v.get<double>();
}

// With say_type, the message names the JSON type found instead.
inline std::string JsonString(const json& v, const std::string& where, bool say_type = true) {
  if (!v.is_string()) {
    if (say_type) Fail(where, ": expected a string, got ", v.type_name());
    Fail(where, ": expected a string");
  }
  return v.get<std::string>();
}

// ---- files ----

// Writes a whole file.
inline Status WriteFile(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f.write(static_cast<const char*>(data), std::streamsize(size));
  f.close();
  if (!f) return Errorf("cannot write '", path, "'");
  return Status::Ok();
}

// "Write <path>.tmp, then rename": Write() writes each file under its temporary name; Commit()
// renames them all, in order; whatever temporary is left (a failed write or rename, or no
// Commit) is removed when the AtomicFiles goes away. Readers never see half a file.
class AtomicFiles {
 public:
  AtomicFiles() = default;
  AtomicFiles(const AtomicFiles&) = delete;
  AtomicFiles& operator=(const AtomicFiles&) = delete;
  ~AtomicFiles() {
    for (const std::string& path : pending_) std::remove((path + ".tmp").c_str());
  }

  // write(tmp) writes the file under the temporary name it is given.
  Status Write(const std::string& path, const std::function<Status(const std::string&)>& write) {
    pending_.push_back(path);
    return write(path + ".tmp");
  }
  Status Write(const std::string& path, const void* data, size_t size) {
    return Write(path, [&](const std::string& tmp) { return WriteFile(tmp, data, size); });
  }

  // Renames every written file; on a failure stops there and remembers errno (rename_errno()).
  Status Commit() {
    while (!pending_.empty()) {
      const std::string path = pending_.front(), tmp = path + ".tmp";
      if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        rename_errno_ = errno;
        return Errorf("cannot rename '", tmp, "' to '", path, "'");
      }
      pending_.erase(pending_.begin());
    }
    return Status::Ok();
  }
  int rename_errno() const { return rename_errno_; }

 private:
  std::vector<std::string> pending_;
  int rename_errno_ = 0;
};

// Writes one file through <path>.tmp: write(tmp) writes it, and it is renamed when that worked.
inline Status WriteAtomically(const std::string& path,
                              const std::function<Status(const std::string&)>& write) {
  AtomicFiles files;
  Status s = files.Write(path, write);
  if (s.ok()) s = files.Commit();
  return s;
}

// ---- tfjs weight shards ----

constexpr uint64_t kMaxShardBytes = uint64_t(512) << 20;

// A path inside the model's directory: relative, without "..".
inline bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos) return false;
  std::stringstream in(p);
  std::string part;
  while (std::getline(in, part, '/'))
    if (part == "..") return false;
  return true;
}

// The shards of one weightsManifest group (`paths`, a JSON list of paths relative to dir), read
// and concatenated; say_type as for JsonString.
inline std::vector<uint8_t> ReadShards(const json& paths, const std::string& dir,
                                       const std::string& group, bool say_type) {
  std::vector<uint8_t> bytes;
  for (const json& pj : paths) {
    const std::string rel = JsonString(pj, group + " path", say_type);
    if (!SafeRelativePath(rel))
      Fail(group, ": shard path '", rel, "' is not a plain relative path");
    const std::string path = dir.empty() ? rel : dir + "/" + rel;
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) Fail(group, ": cannot open weight shard '", path, "'");
    const std::streamoff size = f.tellg();
    if (size < 0 || uint64_t(size) + bytes.size() > kMaxShardBytes)
      Fail(group, ": shard '", path, "' is unreadable or too large");
    f.seekg(0);
    const size_t at = bytes.size();
    bytes.resize(at + size_t(size));
    if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data() + at), size))
      Fail(group, ": cannot read weight shard '", path, "'");
  }
  return bytes;
}

// ---- base64 ----

inline std::string Base64(const std::string& s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(k[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(k[(acc << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

}  // namespace fm::convert_util
