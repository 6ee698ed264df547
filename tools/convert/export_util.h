// export_util.h - what the exporters (export_tfjs.cpp, export_onnx.cpp) and the converter tests
// share: the exception an exporter throws internally (each public entry turns it into a Status),
// writing a file, and base64, which GraphDef JSON uses for strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "status.h"

namespace fm::export_util {

struct ExportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void Fail(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  throw ExportError(out.str());
}

// Writes a whole file (the exporters write to a temporary name, then rename).
inline Status WriteFile(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (f) f.write(static_cast<const char*>(data), std::streamsize(size));
  f.close();
  if (!f) return Errorf("cannot write '", path, "'");
  return Status::Ok();
}

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

}  // namespace fm::export_util
