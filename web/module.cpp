// module.cpp - the browser module's translation unit. The exported functions are the engine's C
// API (engine/api/facemask.h, listed in web/CMakeLists.txt), plus fm_heap_used for leak checks.
#include <emscripten/emscripten.h>
#include <malloc.h>

#include <cstddef>

#include "api/facemask.h"

// Bytes malloc has handed out and not had back (dlmalloc's mallinfo().uordblks). worker.js reports
// it with every result; tools/soak-browser checks it stays flat, which shows a leak long before the
// wasm memory would have to grow.
extern "C" EMSCRIPTEN_KEEPALIVE size_t fm_heap_used() {
  return mallinfo().uordblks;
}
