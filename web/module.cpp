// module.cpp - the browser module's translation unit. The exported functions are the engine's C
// API (engine/facemask.h, listed in web/CMakeLists.txt); nothing browser-specific is needed here.
#include "facemask.h"
