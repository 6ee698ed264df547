// worker.js - the Web Worker that owns the wasm engine (one fm_pipeline). facemask.js talks to it
// with messages; this file only moves pixels and bytes into the wasm heap and JSON text out:
//   {type:'load', engineUrl, wasmUrl|wasmBytes, threads, poolSize, progress} (optional, first): starts
//       loading and compiling the engine while the page still fetches the models; with progress,
//       {type:'progress', loaded, total} messages follow as the wasm arrives
//   {type:'init', engineUrl, wasmUrl|wasmBytes, detector, classifier, imageClassifier, minScore,
//    flavor, threads, detectEvery} -> {type:'ready', version, flavor, threads, classifier, imageClassifier,
//              tracking, startup} or {type:'fatal', error}
//   (threads > 1: flavor 'simd-threads', whose pthreads are more workers started by the engine)
//   {type:'detect', id, frame | bitmap | pixels{data,width,height} | encoded, track, timestamp}
//       -> {type:'result', id, json, imageJson?, engineMs, totalMs, heapBytes, heapUsed} or {type:'result', id, error}
//          (for leak checks: heapBytes the size of the engine's WebAssembly memory, heapUsed the
//          bytes malloc'd in it)
//   {type:'destroy'} -> frees the pipeline and closes the worker.
//   {type:'crash'} (tests only) -> makes the engine read outside its memory, as a bug would.
// A crashed engine (a wasm trap, an abort, a C++ exception no one caught) is never called again:
// the worker answers {type:'crashed', id, error} and facemask.js starts a new worker. C++ errors,
// out of memory included, come back as ordinary errors (the engine catches C++ exceptions, see
// CMakeLists.txt).
// Frames arrive transferred: a VideoFrame is copied as RGBA straight into one reused buffer in the
// wasm heap; an ImageBitmap is drawn to one OffscreenCanvas to read its RGBA, then copied there.

let M = null;          // the Emscripten module
let pipeline = 0;      // fm_pipeline*
let wholeImage = 0;    // fm_classifier* (a user's whole-photo classifier), or 0
let buf = 0, bufSize = 0;  // reused pixel / file buffer in the wasm heap
let canvas = null, ctx = null;
let aborted = null;    // the engine's abort message, once it aborted
let initialized = null;  // resolves when 'init' is done
// Photos: a pixel or file buffer larger than this is freed after the photo (camera frames reuse it).
const KEEP_BUFFER_BYTES = 16 << 20;

const lastError = () => M.UTF8ToString(M._fm_last_error());

function heapBuffer(size) {
  if (size > bufSize) {
    if (buf) M._free(buf);
    buf = M._malloc(size);
    bufSize = buf ? size : 0;
    if (!buf) throw new Error(`out of memory (asked for ${size} bytes)`);
  }
  return buf;
}

function copyIn(bytes) {  // Uint8Array -> (pointer, size) in the heap (model bytes: freed by caller)
  const p = M._malloc(Math.max(1, bytes.length));
  if (!p) throw new Error(`out of memory (asked for ${bytes.length} bytes)`);
  M.HEAPU8.set(bytes, p);
  return p;
}

// The Emscripten module, loading: started by 'load' (sent as the page starts, so the engine's
// download and compilation overlap the models' download) or else by 'init'.
let engine = null;
function loadEngine(msg) {
  if (!engine) {
    engine = instantiate(msg);
    engine.catch(() => {});  // 'init' reports the failure
  }
  return engine;
}

async function instantiate(msg) {
  const threads = msg.threads || 1;
  if (threads > 1 && !(self.crossOriginIsolated && typeof SharedArrayBuffer === 'function')) {
    throw new Error(`${threads} threads need a cross-origin isolated page (SharedArrayBuffer)`);
  }
  // The single-file page runs this file as a classic worker with the engine prepended.
  const factory = self.createFaceMaskEngine || (await import(msg.engineUrl)).default;
  return factory({
    print: (s) => console.log('[engine]', s),
    printErr: (s) => console.warn('[engine]', s),
    onAbort: (what) => { aborted = String(what || 'aborted'); },
    // The wasm, and (threads build) the pthread worker script next to the engine's JS; a blob:
    // module has no directory to resolve against.
    locateFile: (path) => (path.endsWith('.wasm') ? msg.wasmUrl || path : new URL(path, msg.engineUrl).href),
    // Threads build: every pool's workers must exist before pthreadpool_create (it waits for
    // them): threads - 1 for each runtime (detector, classifier, whole-photo classifier).
    fmPoolSize: msg.poolSize ?? (threads - 1) * (1 + (msg.classifier ? 1 : 0) + (msg.imageClassifier ? 1 : 0)),
    instantiateWasm(imports, receive) {
      const done = (r) => receive(r.instance, r.module);
      if (msg.wasmBytes) {
        if (msg.progress) postMessage({ type: 'progress', loaded: msg.wasmBytes.byteLength, total: msg.wasmBytes.byteLength });
        WebAssembly.instantiate(msg.wasmBytes, imports).then(done, fail);
      } else {
        fetch(msg.wasmUrl, { credentials: 'same-origin' })
          .then((r) => (msg.progress ? counted(r) : r))
          .then((r) => {
            if (!r.ok) throw new Error(`could not load ${msg.wasmUrl}: HTTP ${r.status}`);
            // Streaming compile needs Content-Type application/wasm; fall back to bytes otherwise.
            return (r.headers.get('Content-Type') || '').startsWith('application/wasm')
              ? WebAssembly.instantiateStreaming(r, imports)
              : r.arrayBuffer().then((b) => WebAssembly.instantiate(b, imports));
          })
          .then(done, fail);
      }
      return {};
    },
  });
}

// The wasm response, its bytes counted as they arrive: {type:'progress', loaded, total} messages
// (total 0 without Content-Length), the last with loaded === total. A clone is counted and the
// fetched Response itself goes to the compiler: it keeps its URL, which Chromium's compiled-code
// cache for wasm needs (a Response built from a counting stream has none, so every visit would
// compile the engine again).
function counted(r) {
  if (!r.ok || !r.body) return r;
  const total = Number(r.headers.get('Content-Length')) || 0;
  const reader = r.clone().body.getReader();
  let loaded = 0;
  (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      loaded += value.byteLength;
      if (loaded < total) postMessage({ type: 'progress', loaded, total });
    }
    postMessage({ type: 'progress', loaded, total: loaded });
  })().catch(() => {});  // a failed download fails the compile, which reports it
  return r;
}

async function init(msg) {
  const threads = msg.threads || 1;
  const t0 = performance.now();
  M = await loadEngine(msg);
  const t1 = performance.now();
  const det = new Uint8Array(msg.detector);
  const cls = msg.classifier ? new Uint8Array(msg.classifier) : null;
  const pd = copyIn(det), pc = cls ? copyIn(cls) : 0;
  const minScore = typeof msg.minScore === 'number' ? msg.minScore : -1;
  pipeline = M._fm_pipeline_create(pd, det.length, pc, cls ? cls.length : 0, minScore, threads);
  M._free(pd);
  if (pc) M._free(pc);
  if (!pipeline) throw new Error(`the engine rejected the models: ${lastError()}`);
  if (msg.detectEvery !== undefined && M._fm_pipeline_set_detect_every(pipeline, msg.detectEvery) !== 0) {
    throw new Error(`the engine refused detectEvery: ${lastError()}`);
  }
  if (msg.imageClassifier) {
    const ic = new Uint8Array(msg.imageClassifier);
    const pi = copyIn(ic);
    wholeImage = M._fm_classifier_create(pi, ic.length, threads);
    M._free(pi);
    if (!wholeImage) throw new Error(`the engine rejected the whole-photo classifier: ${lastError()}`);
  }
  postMessage({
    type: 'ready',
    version: M.UTF8ToString(M._fm_version()),
    flavor: msg.flavor,
    threads,
    classifier: !!cls,
    imageClassifier: !!wholeImage,
    tracking: typeof M._fm_pipeline_track_pixels === 'function',
    // ms spent waiting for the engine (after the models arrived) and creating the pipeline
    startup: { engineWaitMs: t1 - t0, pipelineMs: performance.now() - t1 },
  });
}

// After a photo: give back a large buffer and the canvas (the wasm memory itself cannot shrink,
// but freed memory is reused by the next photo instead of growing it again).
function releasePhotoMemory() {
  if (bufSize > KEEP_BUFFER_BYTES) {
    M._free(buf);
    buf = bufSize = 0;
  }
  if (canvas && canvas.width * canvas.height * 4 > KEEP_BUFFER_BYTES) {
    canvas.width = canvas.height = 1;
  }
}

// Did this error come from a dead engine (trap, abort, uncaught C++ exception)?
function crashed(err) {
  return aborted !== null || err instanceof WebAssembly.RuntimeError ||
    (typeof WebAssembly.Exception === 'function' && err instanceof WebAssembly.Exception);
}

function fail(e) {
  postMessage({ type: 'fatal', error: String((e && e.message) || e) });
}

function rgbaOf(bitmap, width = bitmap.width, height = bitmap.height) {  // ImageBitmap | VideoFrame -> ImageData
  if (!canvas) {
    canvas = new OffscreenCanvas(width, height);
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  } else if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  ctx.clearRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, width, height);
}

// VideoFrame -> RGBA straight into the heap buffer (no canvas); false if this browser cannot
// convert to RGBA in copyTo (then the caller draws it to the canvas instead).
async function copyFrame(frame, p) {
  const { width, height } = frame.visibleRect;
  try {
    await frame.copyTo(new Uint8Array(M.HEAPU8.buffer, p, width * height * 4),
      { format: 'RGBA', layout: [{ offset: 0, stride: width * 4 }] });
    frame.close();
    return true;
  } catch {
    return false;
  }
}

async function detect(msg) {
  const t0 = performance.now();
  let out, engineMs;
  let image = null;  // the whole-photo classifier's JSON pointer; false when it failed
  if (msg.frame && msg.frame.visibleRect) {
    const { width, height } = msg.frame.visibleRect;
    const p = heapBuffer(width * height * 4);
    if (!(await copyFrame(msg.frame, p))) {
      const img = rgbaOf(msg.frame, width, height);
      M.HEAPU8.set(img.data, p);
    }
    const t1 = performance.now();
    out = msg.track && M._fm_pipeline_track_pixels
      ? M._fm_pipeline_track_pixels(pipeline, p, width, height, 4, width * 4, msg.timestamp)
      : M._fm_pipeline_run_pixels(pipeline, p, width, height, 4, width * 4);
    engineMs = performance.now() - t1;
  } else if (msg.encoded) {
    const bytes = new Uint8Array(msg.encoded);
    const p = heapBuffer(bytes.length);
    M.HEAPU8.set(bytes, p);
    const t1 = performance.now();
    out = M._fm_pipeline_run_encoded(pipeline, p, bytes.length);
    if (out && wholeImage) image = M._fm_classifier_run_encoded(wholeImage, p, bytes.length) || false;
    engineMs = performance.now() - t1;
  } else {
    const img = msg.bitmap ? rgbaOf(msg.bitmap) : msg.pixels;
    const { width, height } = img;
    const p = heapBuffer(width * height * 4);
    M.HEAPU8.set(new Uint8Array(img.data.buffer, img.data.byteOffset, width * height * 4), p);
    const t1 = performance.now();
    if (msg.track && M._fm_pipeline_track_pixels) {
      out = M._fm_pipeline_track_pixels(pipeline, p, width, height, 4, width * 4, msg.timestamp);
    } else {
      out = M._fm_pipeline_run_pixels(pipeline, p, width, height, 4, width * 4);
    }
    if (out && wholeImage && !msg.track) {
      const json = M.UTF8ToString(out);  // copy: the next engine call may reuse the buffer
      image = M._fm_classifier_run_pixels(wholeImage, p, width, height, 4, width * 4) || false;
      out = json;
    }
    engineMs = performance.now() - t1;
  }
  if (!out) return { type: 'result', id: msg.id, error: lastError() || 'the engine failed' };
  const json = typeof out === 'string' ? out : M.UTF8ToString(out);
  if (image === false) return { type: 'result', id: msg.id, error: `whole-photo classifier: ${lastError()}` };
  // The whole-photo answer travels as its own JSON; facemask.js sets it as result.image.
  const imageJson = image ? M.UTF8ToString(image) : undefined;
  return { type: 'result', id: msg.id, json, imageJson, engineMs, totalMs: performance.now() - t0,
    heapBytes: (M.wasmMemory || M.HEAPU8).buffer.byteLength, heapUsed: M._fm_heap_used ? M._fm_heap_used() >>> 0 : null };
}

onmessage = async (e) => {
  const msg = e.data;
  try {
    if (msg.type === 'load') {
      loadEngine(msg);
    } else if (msg.type === 'init') {
      await (initialized = init(msg));
    } else if (msg.type === 'detect') {
      if (aborted !== null) throw new WebAssembly.RuntimeError(aborted);
      const reply = await detect(msg);
      if (!msg.track) releasePhotoMemory();
      postMessage(reply);
    } else if (msg.type === 'crash') {
      await initialized;
      M._fm_pipeline_run_pixels(pipeline, 0xfffff000, 64, 64, 4, 256);  // far outside the heap: a trap
    } else if (msg.type === 'destroy') {
      if (pipeline) M._fm_pipeline_free(pipeline);
      if (wholeImage) M._fm_classifier_free(wholeImage);
      if (buf) M._free(buf);
      pipeline = buf = bufSize = 0;
      close();
    }
  } catch (err) {
    if (M && crashed(err)) {
      const why = aborted || String((err && err.message) || err || 'unknown');
      aborted = aborted || why;
      postMessage({ type: 'crashed', id: msg.id, during: msg.type, error: why });
      return;
    }
    if (msg.type === 'detect') postMessage({ type: 'result', id: msg.id, error: String(err && err.message || err) });
    else fail(err);
  }
};
