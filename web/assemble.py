#!/usr/bin/env python3
"""assemble.py - assembles the static site build/web/ (run by tools/build-web).

  assemble.py SRC_WEB_DIR MODEL_DIR SIMD_DIR NOSIMD_DIR OUT_DIR [THREADS_DIR]
  assemble.py --service-worker SRC_WEB_DIR OUT_DIR   (refills OUT_DIR/sw.js for OUT_DIR's files)
  assemble.py --package SRC_WEB_DIR OUT_DIR PACKAGE_DIR   (the npm package folder from OUT_DIR)

Copies the page (web/*.html, *.js, *.css), the two engine builds (facemask-engine-{simd,nosimd}
.{js,wasm}), the threads build from THREADS_DIR when given (facemask-engine-simd-threads.{js,wasm,
worker.js}: used only on cross-origin isolated pages; not in the single file) and every model/*.fmm (into models/, with models/models.json naming the detector and
the classifier, if any); fills in sw.js (every asset with its SHA-256; cache version = a hash of
them); then writes
facemask-single.html: the same page in one file for file:// (scripts, wasm and models inlined;
modules and the worker started from blob: URLs; a CSP with the inline scripts' hashes).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import zlib

PAGE_FILES = ["index.html", "app.js", "facemask.js", "tally.js", "draw.js", "worker.js", "style.css"]
FLAVORS = ["simd", "nosimd"]
DETECTORS = ["detector.fmm", "blazeface-full.fmm", "blazeface-short.fmm"]  # preference order


def main(src, model_dir, simd_dir, nosimd_dir, out, threads_dir=None):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "models"))
    for f in PAGE_FILES:
        shutil.copy(os.path.join(src, f), out)
    for flavor, d in zip(FLAVORS, [simd_dir, nosimd_dir]):
        for ext in ["js", "wasm"]:
            shutil.copy(os.path.join(d, f"facemask-engine-{flavor}.{ext}"), out)
    if threads_dir:
        for ext in ["js", "wasm", "worker.js"]:
            shutil.copy(os.path.join(threads_dir, f"facemask-engine-simd-threads.{ext}"), out)

    write_manifest_and_icons(out)
    models = sorted(f for f in os.listdir(model_dir) if f.endswith(".fmm")) if os.path.isdir(model_dir) else []
    for m in models:
        shutil.copy(os.path.join(model_dir, m), os.path.join(out, "models", m))
    if os.path.isfile(os.path.join(model_dir, "NOTICE")):  # the models' licences travel with them
        shutil.copy(os.path.join(model_dir, "NOTICE"), os.path.join(out, "models", "NOTICE"))
    detector = next((d for d in DETECTORS if d in models), None)
    if detector is None:
        detector = next((m for m in models if "classifier" not in m), None)
    manifest = {"detector": detector, "classifier": "classifier.fmm" if "classifier.fmm" in models else None,
                "files": models}
    with open(os.path.join(out, "models", "models.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)
    if detector is None:
        print("assemble: WARNING: no detector model in model/ (the page will say so)", file=sys.stderr)

    # First visit: the browser fetches the page's modules and default models while it parses the
    # page, instead of after app.js -> facemask.js -> models.json (single() drops these lines).
    hints = ['<link rel="modulepreload" href="facemask.js">', '<link rel="modulepreload" href="tally.js">',
             '<link rel="modulepreload" href="draw.js">',
             '<link rel="preload" href="models/models.json" as="fetch" crossorigin>']
    hints += [f'<link rel="preload" href="models/{m}" as="fetch" crossorigin>'
              for m in [manifest["detector"], manifest["classifier"]] if m]
    html = read(out, "index.html")
    tag = '<script type="module" src="app.js"></script>'
    if tag not in html:
        raise SystemExit(f"assemble: index.html no longer contains {tag!r}")
    with open(os.path.join(out, "index.html"), "w") as fp:
        # app.js first: a browser opens 6 connections per host, and the models must not hold it up.
        fp.write(html.replace(tag, "\n".join([tag] + hints)))

    version = write_service_worker(src, out)
    single(out, manifest, models)
    print(f"assemble: {out} (version {version}; models: {', '.join(models) or 'none'})")


def write_service_worker(src, out):
    """Fills SRC/sw.js into OUT/sw.js: ASSETS = every file of OUT (but sw.js and the single-file
    page, which is for file://) with its SHA-256; VERSION = a hash of them all. Returns VERSION."""
    assets = {}
    for root, _, files in os.walk(out):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out).replace(os.sep, "/")
            if rel in ("sw.js", "facemask-single.html"):
                continue
            with open(os.path.join(out, rel), "rb") as fp:
                assets[rel] = hashlib.sha256(fp.read()).hexdigest()
    assets = dict(sorted(assets.items()))
    h = hashlib.sha256()
    for a, digest in assets.items():
        h.update(a.encode() + b"\0" + digest.encode())
    version = h.hexdigest()[:12]
    with open(os.path.join(src, "sw.js")) as fp:
        sw = fp.read()
    sw = sw.replace("'__FM_VERSION__'", json.dumps(version)).replace("__FM_ASSETS__", json.dumps(assets, indent=1))
    with open(os.path.join(out, "sw.js"), "w") as fp:
        fp.write(sw)
    return version


# The npm package: the JS API, its worker, the engines and the models (not the page).
PACKAGE_FILES = ["facemask.js", "tally.js", "worker.js"]


THEME = (0x1F, 0x5F, 0xBF)


def icon_png(size):
    """The app icon, drawn here (no binary in git): a white face wearing a light-blue mask on a
    theme-coloured disc, as an RGBA PNG of size x size."""
    def pixel(x, y):
        u, v = (x + 0.5) / size * 2 - 1, (y + 0.5) / size * 2 - 1  # -1..1
        if u * u + v * v > 1:
            return (0, 0, 0, 0)
        face = (u / 0.55) ** 2 + ((v + 0.02) / 0.68) ** 2 <= 1
        mask = face and v > 0.05 and abs(u) < 0.58
        strap = 0.02 < v < 0.1 and 0.5 < abs(u) < 0.8
        eye = v > -0.3 and v < -0.16 and 0.12 < abs(u) < 0.3
        if mask or strap:
            return (0x9E, 0xD0, 0xF5, 255)
        if eye:
            return THEME + (255,)
        if face:
            return (255, 255, 255, 255)
        return THEME + (255,)

    rows = b"".join(b"\0" + bytes(c for x in range(size) for c in pixel(x, y)) for y in range(size))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) +
            chunk(b"IEND", b""))


def write_manifest_and_icons(out):
    """manifest.webmanifest and icons/icon-{192,512}.png: the page can be installed as an app
    (it works offline through sw.js). Every URL is relative, so it installs from any sub-path."""
    os.makedirs(os.path.join(out, "icons"))
    icons = []
    for size in (192, 512):
        with open(os.path.join(out, "icons", f"icon-{size}.png"), "wb") as fp:
            fp.write(icon_png(size))
        icons.append({"src": f"icons/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png",
                      "purpose": "any"})
    manifest = {
        "name": "facemask - face-mask detection in your browser",
        "short_name": "facemask",
        "description": "Boxes and mask / no mask / worn incorrectly labels for every face, from the camera or photos. "
                       "Nothing leaves the device; works offline.",
        "start_url": "./",
        "scope": "./",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#%02x%02x%02x" % THEME,
        "icons": icons,
    }
    with open(os.path.join(out, "manifest.webmanifest"), "w") as fp:
        json.dump(manifest, fp, indent=1)


def engine_version(src):
    """FM_VERSION from engine/version.h (next to web/)."""
    with open(os.path.join(src, "..", "engine", "version.h")) as fp:
        m = re.search(r'#define FM_VERSION "([0-9A-Za-z.+-]+)"', fp.read())
    if not m:
        raise SystemExit("assemble: no FM_VERSION in engine/version.h")
    return m.group(1)


def package(src, out, pkg):
    """Writes the npm package folder PKG from the assembled site OUT: package.json (exports,
    types, version = the engine's), facemask.d.ts, the JS API, its worker, every engine build and
    models/ with their licences. `npm pack` in PKG makes the tarball (tools/build-web)."""
    if os.path.isdir(pkg):
        shutil.rmtree(pkg)
    os.makedirs(pkg)
    files = list(PACKAGE_FILES) + sorted(f for f in os.listdir(out) if f.startswith("facemask-engine-"))
    for f in files:
        shutil.copy(os.path.join(out, f), pkg)
    shutil.copytree(os.path.join(out, "models"), os.path.join(pkg, "models"))
    shutil.copy(os.path.join(src, "facemask.d.ts"), pkg)
    version = engine_version(src)
    meta = {
        "name": "facemask",
        "version": version,
        "description": "Face-mask detection in the browser: every face gets a box and a label (mask, no mask, "
                       "mask worn incorrectly), in a Web Worker running a WebAssembly engine. Nothing leaves the page.",
        "type": "module",
        "main": "./facemask.js",
        "types": "./facemask.d.ts",
        "exports": {".": {"types": "./facemask.d.ts", "default": "./facemask.js"},
                    "./package.json": "./package.json"},
        "files": sorted(files + ["facemask.d.ts", "models", "README.md"]),
        "sideEffects": False,
        "license": "UNLICENSED",
        "keywords": ["face-mask", "face-detection", "webassembly", "wasm-simd", "web-worker"],
    }
    with open(os.path.join(pkg, "package.json"), "w") as fp:
        json.dump(meta, fp, indent=2)
        fp.write("\n")
    with open(os.path.join(pkg, "README.md"), "w") as fp:
        fp.write(PACKAGE_README.replace("VERSION", version))
    return version


PACKAGE_README = """# facemask VERSION

Face-mask detection that runs in the browser: a Web Worker runs a WebAssembly engine (SIMD where
the browser has it) with a face detector and a mask classifier. Types: `facemask.d.ts`.

```js
import { createFaceMask } from 'facemask';

// The worker, the engines and models/ are found next to facemask.js; a bundler that does not
// copy them needs them served somewhere and baseUrl pointing there (a folder URL ending in /).
const fm = createFaceMask({ baseUrl: '/facemask/' });
await fm.ready;
const result = await fm.detect(document.querySelector('video'), { track: true });
for (const f of result.faces) console.log(f.box, f.label, f.probs, f.confident);
```

Files to serve: `worker.js`, `facemask-engine-*`, `models/` (the licences of the shipped models
are in `models/NOTICE`). Options, results and errors: see `facemask.d.ts` and the project's
web/README.md.
"""


def read(out, name, mode="r"):
    with open(os.path.join(out, name), mode) as fp:
        return fp.read()


def csp_hash(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


BOOT = """
// The single-file page: modules, the worker, the engine and the models come from the JSON block
// above; modules run from blob: URLs, with their relative imports pointed at each other.
const A = JSON.parse(document.getElementById('fm-assets').textContent);
const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
globalThis.__FACEMASK_INLINE__ = {
  workerSource: (f) => A.worker[f], manifest: A.manifest,
  wasm: (f) => bytes(A.wasm[f]), model: (name) => bytes(A.models[name]),
};
const url = (src) => URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
const mods = {};
for (const name of ['draw.js', 'tally.js', 'facemask.js', 'app.js']) {
  let src = A.modules[name];
  for (const [dep, u] of Object.entries(mods)) src = src.split(`'./${dep}'`).join(JSON.stringify(u));
  mods[name] = url(src);
}
import(mods['app.js']);
"""


def classic_engine(js):
    """The Emscripten ES6 module as a classic script defining self.createFaceMaskEngine."""
    export = "export default createFaceMaskEngine;"
    if export not in js or js.count("import.meta.url") != 2:
        raise SystemExit("assemble: the engine's JS no longer looks as expected (export / import.meta.url)")
    js = js.replace(export, "self.createFaceMaskEngine = createFaceMaskEngine;")
    return js.replace("import.meta.url", "self.location.href")  # unused: worker.js passes locateFile


def single(out, manifest, models):
    assets = {
        "manifest": manifest,
        "modules": {m: read(out, m) for m in ["draw.js", "tally.js", "facemask.js", "app.js"]},
        # file:// pages cannot start module workers from blob: URLs (opaque origin), so the worker
        # is one classic script per flavour: the engine, made a classic script, then worker.js.
        "worker": {f: classic_engine(read(out, f"facemask-engine-{f}.js")) + "\n" + read(out, "worker.js")
                   for f in FLAVORS},
        "wasm": {f: base64.b64encode(read(out, f"facemask-engine-{f}.wasm", "rb")).decode() for f in FLAVORS},
        "models": {m: base64.b64encode(read(out, f"models/{m}", "rb")).decode() for m in models},
    }
    data = json.dumps(assets).replace("</", "<\\/")  # never close the <script> early
    style = read(out, "style.css")
    # (no manifest, icon files or theme from file://: the page inlines everything)
    html = "".join(line for line in read(out, "index.html").splitlines(True)
                   if not line.startswith(('<link rel="modulepreload"', '<link rel="preload"', '<link rel="manifest"')))
    html = html.replace('<link rel="icon" href="icons/icon-192.png">', '<link rel="icon" href="data:,">')
    csp = ("default-src 'none'; script-src " + csp_hash(BOOT) + " blob: 'wasm-unsafe-eval'; "
           "worker-src blob:; connect-src blob: data:; img-src blob: data:; media-src blob: mediastream:; "
           "style-src " + csp_hash(style) + "; object-src 'none'; base-uri 'none'; form-action 'none'")
    start = html.index('<meta http-equiv="Content-Security-Policy"')
    end = html.index(">", start) + 1
    html = html[:start] + f'<meta http-equiv="Content-Security-Policy" content="{csp}">' + html[end:]
    for old, new in [
        ('<link rel="stylesheet" href="style.css">', f"<style>{style}</style>"),
        ('<script type="module" src="app.js"></script>',
         f'<script type="application/json" id="fm-assets">{data}</script>\n<script type="module">{BOOT}</script>'),
    ]:
        if old not in html:
            raise SystemExit(f"assemble: index.html no longer contains {old!r}")
        html = html.replace(old, new)
    with open(os.path.join(out, "facemask-single.html"), "w") as fp:
        fp.write(html)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--service-worker":  # refill OUT/sw.js (tests)
        print(write_service_worker(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) == 5 and sys.argv[1] == "--package":  # SRC_WEB_DIR OUT_DIR PACKAGE_DIR
        print(package(*sys.argv[2:]))
        sys.exit(0)
    if len(sys.argv) not in (6, 7):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
