// facemask.js - the JS API: face-mask detection in a Web Worker, for this page and other apps.
//
//   import { createFaceMask } from './facemask.js';
//   const fm = createFaceMask();            // starts loading; fm.ready resolves when it can run
//   await fm.ready;
//   const result = await fm.detect(imageOrVideoOrCanvasOrBitmap);  // {width, height, faces:[...]}
//   fm.destroy();
//
// It validates its arguments and turns every engine failure into an Error with a message; it
// never lets a wasm trap escape. Calls to detect() are queued and run one at a time. If the engine
// crashes (a trap or an abort: a bug, not a bad image), the detect() it was running rejects, a new
// worker with a new engine takes over (fm.restarts counts them) and the next detect() runs there;
// after 3 crashes in a row without a good result the instance fails for good.
// Assets (worker.js, facemask-engine-{simd,nosimd,simd-threads}.{js,wasm}, models/) are found next
// to this file, or under options.baseUrl; the single-file page supplies them inline instead (and
// has no threads build).

import { Tally } from './tally.js';

export { Tally };

// WebAssembly.validate of a tiny module using SIMD (i8x16 splat + popcnt): true when supported.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1,
  0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
const MAX_SIDE = 16384;
const MAX_PIXELS = 40000000;        // as the engine (engine/vision/image.h): checked before any copy
const MAX_FILE_BYTES = 128 << 20;   // encoded files: larger ones are refused before reading them
const MAX_CRASHES_IN_A_ROW = 3;
const MAX_DETECT_EVERY = 30;  // as fm_pipeline_set_detect_every (engine/api/facemask.h)

// threads: the page may use the threads build (SIMD, shared memory: needs SharedArrayBuffer,
// which browsers give only to cross-origin isolated pages: COOP/COEP headers, see web/README.md).
export function wasmSupport() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') return null;
  let simd = false;
  try { simd = WebAssembly.validate(SIMD_PROBE); } catch { /* no SIMD */ }
  const threads = simd && globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function' &&
    !globalThis.__FACEMASK_INLINE__;
  return { simd, threads };
}
const MAX_THREADS = 4;
// What threads: 'auto' asks for where the threads build is possible (also used by the page to
// decide whether cross-origin isolation is worth a reload).
export function autoThreads() {
  return (globalThis.navigator?.hardwareConcurrency || 1) >= 4 ? 2 : 1;
}

// options.threads -> the number of engine threads (1: the single-thread builds), or throws.
function threadCount(options, support) {
  const t = options.threads === undefined ? 'auto' : options.threads;
  if (t === 'auto') {
    // 2 threads only with cores to spare: on 2 cores the second thread measured no faster for a
    // whole camera frame and much slower whenever anything else runs (tools/bench-browser).
    return support && support.threads && options.simd !== false && autoThreads() > 1 ? 2 : 1;
  }
  if (t === 1 || !support) return 1;
  if (globalThis.__FACEMASK_INLINE__) throw fail(`options.threads is ${t} but the single-file page has no threads build`);
  if (options.simd === false || !support.simd) throw fail(`options.threads is ${t} but the threads build needs WebAssembly SIMD${options.simd === false ? ' (options.simd is false)' : ''}`);
  if (!support.threads) {
    throw fail(`options.threads is ${t} but this page is not cross-origin isolated (no SharedArrayBuffer): serve it with ` +
      "'Cross-Origin-Opener-Policy: same-origin' and 'Cross-Origin-Embedder-Policy: require-corp', or let its service worker add them (web/README.md)");
  }
  return t;
}

const fail = (msg) => new Error(`facemask: ${msg}`);

function isInstance(x, name) {
  return typeof globalThis[name] === 'function' && x instanceof globalThis[name];
}

function checkSize(w, h, what) {
  if (!(w > 0 && h > 0)) throw fail(`${what} has no pixels (${w}x${h}); is it loaded, or closed?`);
  if (w > MAX_SIDE || h > MAX_SIDE) throw fail(`${what} is ${w}x${h}; the largest side allowed is ${MAX_SIDE}`);
  if (w * h > MAX_PIXELS) {
    throw fail(`${what} is ${w}x${h} = ${(w * h / 1e6).toFixed(1)} megapixels; the limit is ${MAX_PIXELS / 1e6} megapixels`);
  }
}

// progress(loaded, total): called as the bytes arrive (total 0 when the server sends no
// Content-Length), last with loaded === total.
async function fetchBytes(url, what, progress = null) {
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) throw fail(`could not load the ${what} (${url}): HTTP ${r.status}`);
  if (!progress || !r.body) {
    const bytes = await r.arrayBuffer();
    if (progress) progress(bytes.byteLength, bytes.byteLength);
    return bytes;
  }
  const total = Number(r.headers.get('Content-Length')) || 0;
  const chunks = [];
  let loaded = 0;
  for (const reader = r.body.getReader(); ;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    if (loaded < total) progress(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  progress(loaded, loaded);
  return out.buffer;
}

// options.onProgress({what: 'engine' | 'detector' | 'classifier', loaded, total}) -> a reporter
// for one download; a throwing callback is the caller's bug and must not stop the load.
function reporter(options, what) {
  if (typeof options.onProgress !== 'function') return null;
  return (loaded, total) => {
    try { options.onProgress({ what, loaded, total }); } catch (e) { console.warn('facemask: onProgress threw:', e); }
  };
}

function bytesOption(v, name) {
  if (v instanceof ArrayBuffer) return v.slice(0);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice().buffer;
  throw fail(`options.${name} must be a model name, an ArrayBuffer or a Uint8Array`);
}

// Loads the models and the engine; posts 'init' to the worker; resolves with its 'ready' message.
async function start(self, options, inline, flavor, threads) {
  if (!flavor) throw fail('this browser has no WebAssembly, which the engine needs');
  if (threads instanceof Error) throw threads;
  if (options.simd === true && !flavor.startsWith('simd')) throw fail('options.simd is true but this browser has no WebAssembly SIMD');
  const base = new URL(options.baseUrl || '.', inline ? location.href : import.meta.url);

  // Models: explicit bytes, or names resolved through models/models.json (written by the build).
  let manifest = null;
  const getManifest = async () => {
    if (!manifest) {
      manifest = inline ? inline.manifest
        : JSON.parse(new TextDecoder().decode(await fetchBytes(new URL('models/models.json', base), 'model list')));
    }
    return manifest;
  };
  const model = async (value, name) => {
    const progress = reporter(options, name);
    if (typeof value !== 'string') {
      const bytes = bytesOption(value, name);
      if (progress) progress(bytes.byteLength, bytes.byteLength);
      return bytes;
    }
    const m = await getManifest();
    let file = value.endsWith('.fmm') ? value : `${value}.fmm`;
    // precision 'int8': the named model's int8-weight file (NAME-int8.fmm, `facemask quantize`).
    if (options.precision === 'int8' && !file.endsWith('-int8.fmm')) file = file.replace(/\.fmm$/, '-int8.fmm');
    if (!m.files.includes(file)) throw fail(`no model '${file}' in this build (have: ${m.files.join(', ')})`);
    if (!inline) return fetchBytes(new URL(`models/${file}`, base), `model ${file}`, progress);
    const bytes = inline.model(file).slice().buffer;
    if (progress) progress(bytes.byteLength, bytes.byteLength);
    return bytes;
  };
  let det = options.detector, cls = options.classifier;
  if (det === undefined) det = (await getManifest()).detector;
  if (!det) throw fail('no detector model in this build (models/models.json names none)');
  if (cls === undefined) cls = (await getManifest()).classifier;  // null: detection only
  const [detector, classifier] = await Promise.all([model(det, 'detector'), cls ? model(cls, 'classifier') : null]);

  const imageClassifier = options.imageClassifier ? bytesOption(options.imageClassifier, 'imageClassifier') : null;
  const init = { type: 'init', flavor, threads, detector, classifier, imageClassifier, minScore: options.minScore, detectEvery: options.detectEvery };
  if (!inline) {  // (the single-file page sent the wasm's bytes with 'load')
    init.engineUrl = new URL(`facemask-engine-${flavor}.js`, base).href;
    init.wasmUrl = new URL(`facemask-engine-${flavor}.wasm`, base).href;
  }
  if (self._state !== 'loading') return self._started;  // failed or destroyed meanwhile
  self._init = init;  // kept (the worker gets copies): a restarted engine gets the same models
  self._postInit();
  return self._started;
}

class FaceMask {
  constructor(options) {
    const inline = globalThis.__FACEMASK_INLINE__ || null;
    this.info = null;          // {version, flavor:'simd'|'nosimd', threads, classifier, tracking} once ready
    this.lastTiming = null;    // {engineMs, totalMs} of the last detect()
    this.wasmHeapBytes = 0;    // the engine's WebAssembly memory after the last detect() (never shrinks)
    this.wasmHeapUsed = 0;     // and the bytes malloc'd in it
    this._state = 'loading';   // loading | ready | failed | destroyed
    this._pending = new Map(); // id -> {resolve, reject}
    this._queue = Promise.resolve();
    this._nextId = 1;
    this._error = null;
    this.restarts = 0;         // engines that crashed and were replaced (see above)
    this.lastCrash = null;     // why the last one crashed (also when no call was running on it)
    this.tally = new Tally();  // people seen in video (detect with {track: true}); see tally.js
    this._crashesInARow = 0;
    this._restarting = null;   // Promise while a new engine starts after a crash
    this._onRestarted = null;
    this._started = new Promise((res, rej) => { this._onReady = res; this._onFatal = rej; });
    this._started.catch(() => {});
    const support = wasmSupport();
    let threads;
    try { threads = threadCount(options, support); } catch (e) { threads = e; }  // start() rejects with it
    const flavor = !support ? null : threads > 1 ? 'simd-threads' : support.simd && options.simd !== false ? 'simd' : 'nosimd';
    // The single-file page has the worker inline: a classic script (file:// forbids module workers).
    this._newWorker = () => (inline
      ? new Worker(URL.createObjectURL(new Blob([inline.workerSource(flavor || 'nosimd')], { type: 'text/javascript' })))
      : new Worker(new URL('worker.js', new URL(options.baseUrl || '.', import.meta.url)), { type: 'module' }));
    this._load = null;
    this._engineProgress = reporter(options, 'engine');
    // The engine's download and compilation start now, beside the models' download in start().
    if (flavor && !(threads instanceof Error)) {
      const load = { type: 'load', threads, progress: typeof options.onProgress === 'function',
        poolSize: (threads - 1) * (1 + (options.classifier !== null ? 1 : 0) + (options.imageClassifier ? 1 : 0)) };
      if (inline) {
        load.wasmBytes = inline.wasm(flavor);
      } else {
        const base = new URL(options.baseUrl || '.', import.meta.url);
        load.engineUrl = new URL(`facemask-engine-${flavor}.js`, base).href;
        load.wasmUrl = new URL(`facemask-engine-${flavor}.wasm`, base).href;
      }
      this._load = load;
    }
    this._spawn();
    this.ready = start(this, options, inline, flavor, threads).then(
      (info) => { if (this._state === 'loading') { this._state = 'ready'; this.info = info; } return this; },
      (err) => { const e = err.message && err.message.startsWith('facemask:') ? err : fail(err.message || err); this._die(e); throw e; });
    this.ready.catch(() => {});  // callers see the error when they await fm.ready or call detect()
  }

  // A worker, its 'load' sent (the engine starts downloading and compiling at once).
  _spawn() {
    const worker = this._newWorker();
    this._worker = worker;
    worker.onmessage = (e) => { if (worker === this._worker) this._message(e.data); };
    worker.onerror = (e) => {
      e.preventDefault();
      if (worker === this._worker) this._die(fail(`the worker failed: ${e.message || 'could not start it (module workers unsupported?)'}`));
    };
    if (this._load) worker.postMessage(this._load);
  }

  // 'init' with copies of the models (the originals stay for a restart).
  _postInit() {
    const init = { ...this._init };
    const transfer = [];
    for (const k of ['detector', 'classifier', 'imageClassifier']) {
      if (init[k]) transfer.push(init[k] = init[k].slice(0));
    }
    this._worker.postMessage(init, transfer);
  }

  // The engine crashed running msg.id: that call rejects; a new worker and engine take over.
  _crashed(msg) {
    const why = String(msg.error || 'unknown').slice(0, 300);
    if (this._state !== 'ready' || this._restarting) {  // while starting: no engine to go back to
      this._die(fail(`the engine crashed while starting (${why})`));
      return;
    }
    // Every call in flight went to the dead worker: each rejects (at most one: calls are queued).
    const pending = [...this._pending.values()];
    this._pending.clear();
    if (++this._crashesInARow >= MAX_CRASHES_IN_A_ROW) {
      const err = fail(`the engine crashed ${this._crashesInARow} times in a row (last: ${why}); reload the page`);
      for (const p of pending) p.reject(err);
      this._die(err);
      return;
    }
    this.restarts++;
    this.lastCrash = why;
    console.warn(`facemask: the engine crashed (${why}); starting a new one`);
    for (const p of pending) {
      p.reject(Object.assign(fail(`the engine crashed on this image (${why}); a new engine takes the next one`), { engineRestarted: true }));
    }
    this._worker.terminate();
    this._restarting = new Promise((resolve) => { this._onRestarted = resolve; });
    this._spawn();
    this._postInit();
  }

  _message(msg) {
    if (msg.type === 'crashed') return this._crashed(msg);
    if (msg.type === 'progress') {
      if (!this._restarting && this._engineProgress) this._engineProgress(msg.loaded, msg.total);
      return;
    }
    if (this._restarting && (msg.type === 'ready' || msg.type === 'fatal')) {
      if (msg.type === 'fatal') this._die(fail(`the engine did not restart: ${msg.error}`));
      this._restarting = null;
      this._onRestarted();
      return;
    }
    // info.flavor is the instruction set ('simd' also for the threads build); info.threads says which build.
    if (msg.type === 'ready') this._onReady({ version: msg.version, flavor: msg.flavor.replace('-threads', ''), threads: msg.threads, classifier: msg.classifier, imageClassifier: msg.imageClassifier, tracking: msg.tracking, startup: msg.startup });
    else if (msg.type === 'fatal') this._onFatal(fail(`the engine did not start: ${msg.error}`));
    else if (msg.type === 'result') {
      const p = this._pending.get(msg.id);
      if (!p) return;
      this._pending.delete(msg.id);
      if (msg.error) p.reject(fail(`the engine could not process this image: ${msg.error}`));
      else {
        this._crashesInARow = 0;
        this.lastTiming = { engineMs: msg.engineMs, totalMs: msg.totalMs };
        this.wasmHeapBytes = msg.heapBytes;
        this.wasmHeapUsed = msg.heapUsed;
        const result = JSON.parse(msg.json);
        if (msg.imageJson) result.image = JSON.parse(msg.imageJson);
        p.resolve(result);
      }
    }
  }

  _die(err) {
    if (this._state === 'destroyed' || this._state === 'failed') return;
    this._state = 'failed';
    this._error = err;
    this._worker.terminate();
    this._onFatal(err);
    for (const p of this._pending.values()) p.reject(err);
    this._pending.clear();
    if (this._restarting) { this._restarting = null; this._onRestarted(); }
  }

  _check() {
    if (this._state === 'destroyed') throw fail('detect() after destroy(); create a new instance');
    if (this._state === 'failed') throw fail(`not usable: ${this._error.message.replace(/^facemask: /, '')}`);
    if (this._state === 'loading') throw fail('not ready yet; await fm.ready before detect()');
  }

  // source: ImageBitmap | ImageData | HTMLImageElement | HTMLVideoElement | HTMLCanvasElement |
  // OffscreenCanvas | VideoFrame, or an encoded file (Blob/File, ArrayBuffer, Uint8Array: JPEG, PNG, BMP, GIF;
  // decoded by the engine, EXIF orientation applied).
  // options: {track: true, timestamp: ms} for video: faces get an "id", labels are smoothed.
  detect(source, options = {}) {
    try {
      this._check();
      if (options === null || typeof options !== 'object') throw fail('detect(source, options): options must be an object');
      if (options.track && !Number.isFinite(options.timestamp ?? performance.now())) throw fail('options.timestamp must be a finite number (ms)');
    } catch (e) {
      return Promise.reject(e);
    }
    // Grab the pixels now (the caller may change the canvas or the video may move on), then queue.
    let prepared;
    try {
      prepared = this._prepare(source);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = async () => {
      this._check();
      const msg = await prepared;
      while (this._restarting) await this._restarting;  // a crashed engine is being replaced
      this._check();
      msg.type = 'detect';
      msg.id = this._nextId++;
      msg.track = !!options.track;
      msg.timestamp = options.track ? (options.timestamp ?? performance.now()) : 0;
      const transfer = [msg.frame || msg.bitmap || msg.encoded || msg.pixels.data.buffer];
      const epoch = this.restarts;  // a new engine's ids start again: kept apart in the tally
      const out = await new Promise((resolve, reject) => {
        this._pending.set(msg.id, { resolve, reject });
        this._worker.postMessage(msg, transfer);
      });
      if (msg.track) this.tally.add(out, Date.now(), epoch);
      return out;
    };
    const result = this._queue.then(run, run);
    this._queue = result.catch(() => {});
    return result;
  }

  // -> Promise of {bitmap} | {pixels} | {encoded}; throws synchronously on a bad argument.
  _prepare(src) {
    if (src === null || src === undefined) throw fail('detect() needs an image, got ' + src);
    if (isInstance(src, 'VideoFrame')) {
      if (!src.visibleRect) throw fail('the VideoFrame is closed');
      checkSize(src.visibleRect.width, src.visibleRect.height, 'the VideoFrame');
      return Promise.resolve({ frame: src.clone() });  // the caller keeps (and closes) theirs
    }
    if (isInstance(src, 'ImageBitmap')) {
      checkSize(src.width, src.height, 'the ImageBitmap');
      return createImageBitmap(src).then((bitmap) => ({ bitmap }));  // a copy: the caller keeps theirs
    }
    if (isInstance(src, 'ImageData')) {
      checkSize(src.width, src.height, 'the ImageData');
      const data = new Uint8ClampedArray(src.data);  // a copy, transferred
      return Promise.resolve({ pixels: { data, width: src.width, height: src.height } });
    }
    if (isInstance(src, 'HTMLImageElement')) {
      if (!src.complete) throw fail('the <img> has not finished loading; await img.decode() first');
      checkSize(src.naturalWidth, src.naturalHeight, 'the <img> (broken or not an image?)');
    } else if (isInstance(src, 'HTMLVideoElement')) {
      if (src.readyState < 2) throw fail('the <video> has no frame yet (readyState < HAVE_CURRENT_DATA)');
      checkSize(src.videoWidth, src.videoHeight, 'the <video>');
      if (typeof VideoFrame === 'function') {  // no canvas round trip: the worker copies RGBA out of it
        try { return Promise.resolve({ frame: new VideoFrame(src) }); } catch { /* below */ }
      }
    } else if (isInstance(src, 'HTMLCanvasElement') || isInstance(src, 'OffscreenCanvas')) {
      checkSize(src.width, src.height, 'the canvas');
    } else if (isInstance(src, 'Blob')) {
      if (src.size === 0) throw fail(`the file${src.name ? ` '${src.name}'` : ''} is empty`);
      if (src.size > MAX_FILE_BYTES) throw fail(`the file${src.name ? ` '${src.name}'` : ''} is ${(src.size / 2 ** 20).toFixed(0)} MB; files over ${MAX_FILE_BYTES / 2 ** 20} MB are refused`);
      return src.arrayBuffer().then((encoded) => ({ encoded }));
    } else if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) {
      if (src.byteLength === 0) throw fail('the encoded image is empty (0 bytes)');
      if (src.byteLength > MAX_FILE_BYTES) throw fail(`the encoded image is ${(src.byteLength / 2 ** 20).toFixed(0)} MB; files over ${MAX_FILE_BYTES / 2 ** 20} MB are refused`);
      const u8 = src instanceof ArrayBuffer ? new Uint8Array(src) : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
      return Promise.resolve({ encoded: u8.slice().buffer });
    } else {
      const kind = Object.prototype.toString.call(src).slice(8, -1);
      throw new TypeError(`facemask: detect() takes an ImageBitmap, ImageData, <img>, <video>, <canvas>, OffscreenCanvas, VideoFrame, Blob or bytes; got ${kind}`);
    }
    return createImageBitmap(src).then((bitmap) => ({ bitmap }),
      (e) => { throw fail(`could not read the pixels: ${e.message}`); });
  }

  destroy() {
    if (this._state === 'destroyed') return;
    const err = fail('destroyed while this detect() was waiting');
    for (const p of this._pending.values()) p.reject(err);
    this._pending.clear();
    if (this._state !== 'failed') {
      this._worker.postMessage({ type: 'destroy' });
      setTimeout(() => this._worker.terminate(), 1000);
    }
    if (this._state === 'loading') this._onFatal(fail('destroyed before it was ready'));
    this._state = 'destroyed';
    if (this._restarting) { this._restarting = null; this._onRestarted(); }
  }
}

// options: {baseUrl, detector: name|bytes, classifier: name|bytes|null, minScore: 0..1,
//           simd: 'auto'|true|false, threads: 'auto'|1..4 (more than 1: the threads build, only
//           on cross-origin isolated pages; 'auto': 2 there when the CPU has 2+ cores, else 1),
//           imageClassifier: bytes (a whole-photo classifier: still images then also get
//           result.image = {label, probs}), detectEvery: 1..30 (video, {track: true}: the face
//           detector runs on every n-th frame, default 2; the frames between follow the faces it
//           found and classify them; 1 = every frame), onProgress: ({what: 'engine' |
//           'detector' | 'classifier', loaded, total}) => void as the downloads arrive (total 0
//           when unknown; each ends with loaded === total), precision: 'float' | 'int8' (the
//           named models' int8-weight files, NAME-int8.fmm)}. Returns at once; await .ready
//           before detect().
export function createFaceMask(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError('facemask: createFaceMask(options): options must be an object');
  const known = ['baseUrl', 'detector', 'classifier', 'imageClassifier', 'minScore', 'simd', 'threads', 'detectEvery', 'onProgress', 'precision'];
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) throw new TypeError(`facemask: unknown option '${k}' (known: ${known.join(', ')})`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new TypeError('facemask: options.onProgress must be a function ({what, loaded, total}) => void');
  }
  if (options.minScore !== undefined && !(typeof options.minScore === 'number' && options.minScore >= 0 && options.minScore <= 1)) {
    throw new RangeError('facemask: options.minScore must be a number in 0..1');
  }
  if (options.detectEvery !== undefined && !(Number.isInteger(options.detectEvery) && options.detectEvery >= 1 && options.detectEvery <= MAX_DETECT_EVERY)) {
    throw new RangeError(`facemask: options.detectEvery must be an integer 1..${MAX_DETECT_EVERY} (1 = the face detector on every video frame)`);
  }
  if (options.precision !== undefined && !['float', 'int8'].includes(options.precision)) {
    throw new TypeError("facemask: options.precision must be 'float' or 'int8'");
  }
  if (options.simd !== undefined && ![true, false, 'auto'].includes(options.simd)) {
    throw new TypeError("facemask: options.simd must be true, false or 'auto'");
  }
  if (options.threads !== undefined && options.threads !== 'auto' &&
      !(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= MAX_THREADS)) {
    throw new RangeError(`facemask: options.threads must be 'auto' or an integer 1..${MAX_THREADS}`);
  }
  return new FaceMask(options);
}
