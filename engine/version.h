// version.h - the engine's version: fm_version(), the page's footer, the npm package's version
// (web/assemble.py reads it from here).
#pragma once

#define FM_VERSION "0.1.0"
