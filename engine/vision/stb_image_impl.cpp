// stb_image_impl.cpp - the one translation unit holding stb_image's decoder (Debian's libstb-dev).
// Built without UBSan's nonnull-attribute check: stb calls memcpy(NULL, src, 0) for empty PNG data
// chunks (found by fuzzing; harmless, and not ours to patch). Our own code stays fully checked.
// Options: no stdio (we pass bytes), no HDR/PSD/PIC.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
// (a false positive in stb's GIF code once our realloc wrapper is inlined into it)
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
#include <cstdlib>

// stb's allocations go through these, so a decode that failed for want of memory says so (stb's
// own failure reason is then often a leftover of an earlier format probe, e.g. "no SOI").
namespace {
thread_local bool g_stb_out_of_memory = false;
void* StbMalloc(size_t n) {
  void* p = std::malloc(n);
  if (!p && n) g_stb_out_of_memory = true;
  return p;
}
void* StbRealloc(void* p, size_t n) {
  void* q = std::realloc(p, n);
  if (!q && n) g_stb_out_of_memory = true;
  return q;
}
}  // namespace

namespace fm {
// Did an stb allocation fail since the last call? (image.cpp)
bool StbTakeOutOfMemory() {
  const bool oom = g_stb_out_of_memory;
  g_stb_out_of_memory = false;
  return oom;
}
}  // namespace fm

#define STBI_MALLOC(sz) StbMalloc(sz)
#define STBI_REALLOC(p, newsz) StbRealloc(p, newsz)
#define STBI_FREE(p) std::free(p)
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PSD
#define STBI_NO_PIC
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
