// run.mjs - the side-by-side browser benchmark (run by tools/bench-browser, which builds the page
// and the native CLI and installs the npm packages of tests/bench/package-lock.json into
// build/npm-bench/, passed as FM_NPM_DIR). First exports our models with the native CLI
// (`facemask export`, into build/bench-browser/export/): all three to ONNX, the classifier also to
// a tfjs graph model. Serves tests/bench/page/ with our engine (build/web), our models (model/),
// the exports, the tfjs graph files the detectors were converted from
// (~/.cache/facemask/npm/human-models-3.0.4) and the TensorFlow.js and onnxruntime-web bundles,
// all from one local origin, and drives Debian's Chromium (headless) to run in one page load, on
// the same inputs:
//   ours (wasm SIMD, 1 thread; raw model API), ours-dense (the same with XNNPACK's sparse path
//   off), tfjs-backend-wasm (SIMD, 1 thread), tfjs CPU and onnxruntime-web (wasm SIMD, 1 thread)
//   on BlazeFace short (128), full (192) and our classifier (its input size; tfjs runs its export);
//   and our pipeline on a 640x480 frame with 5 faces: a photo, and video frames with the engine's
//   default detect_every and with the detector on every frame (per-frame median, p90 and mean).
// Then, when build/web has the threads build, a second page load (?threads=N, default 2) runs ours
// (facemask-engine-simd-threads), tfjs-backend-wasm (its threaded SIMD binary) and
// onnxruntime-web (numThreads N) with N threads each on the same models and the pipeline: rows
// marked "N threads".
// Warm-up by time, then timed runs in interleaved rounds (a load spike hits every runtime alike).
// Prints a table (also written to build/bench-browser.md) and one JSON line {"bench": "browser",
// ...} (also build/bench-browser.json). Exits 1 when the runtimes disagree or something fails.
//
//   node tests/bench/run.mjs [--runs N] [--warmup SECONDS] [--rounds R] [--no-cpu] [--threads N (1: none)]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback; };
const RUNS = Number(opt('--runs', '200'));
const WARMUP = Number(opt('--warmup', '3'));
const ROUNDS = Number(opt('--rounds', '4'));
const NO_CPU = args.includes('--no-cpu');
const TOLERANCE = Number(opt('--tolerance', '1e-3'));
const THREADS = Number(opt('--threads', '2'));

const NPM = path.resolve(process.env.FM_NPM_DIR || path.join(ROOT, 'build/npm-bench'));
const require = createRequire(path.join(NPM, 'package.json'));
const { chromium } = require('playwright-core');
const NODE_MODULES = path.join(NPM, 'node_modules');
const WEB = path.join(ROOT, 'build/web');
const MODEL_DIR = path.resolve(process.env.FM_MODEL_DIR || path.join(ROOT, 'model'));
const TFJS_MODELS = path.resolve(process.env.FM_TFJS_MODELS || path.join(os.homedir(), '.cache/facemask/npm/human-models-3.0.4'));
const PAGE = path.join(ROOT, 'tests/bench/page');
const OUT = path.join(ROOT, 'build/bench-browser');
const CLI = path.join(ROOT, 'build/native-release/tools/facemask');
const SOURCE = path.resolve(ROOT, '../shared/data/demo/group_nomask_sample5.jpg');
const FRAME = path.join(OUT, 'frame-640x480.png');
const log = (...a) => console.log('[bench-browser]', ...a);

const EXPORT = path.join(OUT, 'export');
// The pipeline rows run the detector the page and the CLI ship (model/detector.fmm, trained from
// the full-range BlazeFace with the same graph and sparsity), else the converted BlazeFace.
const PIPELINE_DETECTOR = fs.existsSync(path.join(MODEL_DIR, 'detector.fmm')) ? '/models/detector.fmm' : '/models/blazeface-full.fmm';
// label: the row's model; tfjs: the url prefix of the tfjs files (for the download sizes).
const ALL_MODELS = [
  { name: 'short', label: 'blazeface-short', size: 128, fmm: '/models/blazeface-short.fmm', json: '/tfjs-models/facemesh-detection-short.json',
    tfjs: '/tfjs-models/facemesh-detection-short.', onnx: '/export/blazeface-short.onnx', output: 'Identity' },
  // The full model's tfjs file has two outputs; only Identity is the detector's (NOTES-build.md).
  { name: 'full', label: 'blazeface-full', size: 192, fmm: '/models/blazeface-full.fmm', json: '/tfjs-models/facemesh-detection-full.json',
    tfjs: '/tfjs-models/facemesh-detection-full.', onnx: '/export/blazeface-full.onnx', output: 'Identity' },
  // Our classifier has no tfjs original: tfjs runs its export.
  { name: 'classifier', label: 'classifier', size: 0 /* from the model */, fmm: '/models/classifier.fmm', json: '/export/classifier-tfjs/model.json',
    tfjs: '/export/classifier-tfjs/', onnx: '/export/classifier.onnx', output: 'probs', exportTfjs: true },
];
const MODELS = ALL_MODELS.filter((m) => fs.existsSync(path.join(MODEL_DIR, path.basename(m.fmm))));
const RUNTIMES = ['ours', 'ours-dense', 'tfjs-wasm', ...(NO_CPU ? [] : ['tfjs-cpu']), 'ort-wasm'];

// ---- the frame: a group photo with 5 faces, scaled to cover 640x480 and centre-cropped
function makeFrame() {
  fs.mkdirSync(OUT, { recursive: true });
  if (!fs.existsSync(SOURCE)) throw new Error(`${SOURCE} is missing (../shared/data/demo)`);
  const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', '-i', SOURCE, '-vf',
    'scale=640:480:force_original_aspect_ratio=increase:flags=lanczos,crop=640:480', '-frames:v', '1', FRAME], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
  const c = spawnSync(CLI, ['detect', '--json', FRAME], { encoding: 'utf8', env: { ...process.env, FACEMASK_MODEL_DIR: MODEL_DIR } });
  if (c.status !== 0) throw new Error(`the CLI failed on ${FRAME}: ${c.stderr}`);
  return JSON.parse(c.stdout.trim().split('\n')[0]).faces.map((f) => f.label || 'face').sort().join(',');
}

// ---- our models in the peer runtimes' formats, written by the native CLI (tools/convert/export_*)
function exportModels() {
  fs.rmSync(EXPORT, { recursive: true, force: true });
  fs.mkdirSync(EXPORT, { recursive: true });
  for (const m of MODELS) {
    const base = path.basename(m.fmm, '.fmm');
    const a = ['export', path.join(MODEL_DIR, `${base}.fmm`), '--onnx', path.join(EXPORT, `${base}.onnx`)];
    if (m.exportTfjs) a.push('--tfjs', path.join(EXPORT, `${base}-tfjs`));
    const r = spawnSync(CLI, a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`facemask ${a.join(' ')} failed: ${r.stderr}`);
  }
}

// ---- one origin for everything; COOP/COEP make the page cross-origin isolated (performance.now()
// then has 5 us resolution instead of 100 us); tfjs-wasm is still told to use its 1-thread build.
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm',
  '.png': 'image/png', '.fmm': 'application/octet-stream', '.bin': 'application/octet-stream', '.onnx': 'application/octet-stream' };
const ROUTES = [
  ['/bench/', PAGE], ['/engine/', WEB], ['/models/', MODEL_DIR], ['/tfjs-models/', TFJS_MODELS], ['/export/', EXPORT],
  ['/npm/@tensorflow/', path.join(NODE_MODULES, '@tensorflow')], ['/npm/onnxruntime-web/', path.join(NODE_MODULES, 'onnxruntime-web')],
  ['/frame/', OUT],
];
const served = new Map();  // url path -> bytes
function serve() {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const route = ROUTES.find(([p]) => rel.startsWith(p));
    const file = route && path.join(route[1], rel.slice(route[0].length));
    if (!route || !file.startsWith(route[1]) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    const body = fs.readFileSync(file);
    served.set(rel, { bytes: body.length, gzip: zlib.gzipSync(body, { level: 9 }).length });
    res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store',
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin' });
    res.end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f1 = (x) => (x == null ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const kb = (b) => `${(b / 1024).toFixed(0)} KB`;

// The N-thread rows, in their own page load (each runtime picks its binary when it starts). Same
// warm-up, rounds and agreement check as the 1-thread rows. -> {rows, agreement, problems}
async function threadRows(browser, base, errors, { haveClassifier, cliLabels, cliFaces }) {
  const out = { rows: [], agreement: {}, problems: [] };
  if (THREADS < 2) return out;
  if (!fs.existsSync(path.join(WEB, 'facemask-engine-simd-threads.wasm'))) {
    log('build/web has no threads build (facemask-engine-simd-threads): no thread rows');
    return out;
  }
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${base}/bench/index.html?threads=${THREADS}`);
  await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 60000 });
  const info = await page.evaluate((a) => window.bench.init(a), { frame: '/frame/frame-640x480.png', sizes: MODELS.map((m) => m.size) });
  log(`${THREADS} threads: cross-origin isolated ${info.crossOriginIsolated}; tfjs-wasm threaded binary ${info.tfjsWasmMultithread}, threads ${info.tfjsWasmThreads}; onnxruntime-web numThreads ${info.ortThreads}`);
  if (!info.crossOriginIsolated) { out.problems.push('the threads page is not cross-origin isolated'); return out; }
  const rts = ['ours', 'tfjs-wasm', 'ort-wasm'];
  const threadsOf = { ours: THREADS, 'tfjs-wasm': info.tfjsWasmThreads, 'ort-wasm': info.ortThreads };  // what tfjs really got
  const n = Math.ceil(RUNS / ROUNDS);
  for (const m of MODELS) {
    const rows = {};
    for (const rt of rts) {
      const r = await page.evaluate(([rt, m]) => window.bench.load(rt, m), [rt, m]);
      rows[rt] = { model: m.label, input: m.size, runtime: rt, threads: threadsOf[rt], load_ms: r.loadMs, first_ms: r.firstMs, times: [] };
    }
    const a = out.agreement[m.name] = await page.evaluate(([nm, s, r]) => window.bench.agree(nm, s, r), [m.name, m.size, rts]);
    for (const [which, d] of Object.entries(a)) {
      for (const pair of ['tfjs-wasm vs ours', 'ort-wasm vs ours']) {
        const diff = d[pair];
        log(`agreement ${m.name}, ${THREADS} threads (${which} input): ${pair} max abs diff ${diff.toExponential(2)}`);
        if (!(diff <= TOLERANCE)) out.problems.push(`${m.name} ${THREADS} threads: ${pair}: outputs differ by ${diff}`);
      }
    }
    for (const rt of rts) rows[rt].warmup_runs = await page.evaluate(([k, s]) => window.bench.warm(k, s), [`${rt}/${m.name}`, WARMUP]);
    for (let round = 0; round < ROUNDS; ++round) {
      for (const rt of rts) rows[rt].times.push(...(await page.evaluate(([k, n]) => window.bench.timed(k, n), [`${rt}/${m.name}`, n])));
    }
    for (const rt of rts) {
      out.rows.push(rows[rt]);
      log(`${m.name} ${rt} ${threadsOf[rt]} threads: median ${f1(median(rows[rt].times))} ms, p90 ${f1(quantile(rows[rt].times, 0.9))} ms`);
    }
  }
  const pl = await page.evaluate((a) => window.bench.loadPipeline(a), { detector: PIPELINE_DETECTOR, classifier: haveClassifier ? '/models/classifier.fmm' : null });
  for (const mode of ['photo', 'video']) {
    const key = `ours/pipeline-${mode}`;
    const row = { model: `pipeline-${mode}`, input: '640x480', runtime: 'ours', threads: THREADS, load_ms: pl.loadMs, first_ms: pl[mode].firstMs,
      faces: pl[mode].faces, classifier: haveClassifier, times: [] };
    row.warmup_runs = await page.evaluate(([k, s]) => window.bench.warm(k, s), [key, WARMUP]);
    for (let round = 0; round < ROUNDS; ++round) row.times.push(...(await page.evaluate(([k, n]) => window.bench.timed(k, n), [key, n])));
    out.rows.push(row);
    log(`pipeline ${mode} ${THREADS} threads: ${row.faces} faces (CLI ${cliFaces}); median ${f1(median(row.times))} ms, p90 ${f1(quantile(row.times, 0.9))} ms`);
    const labels = [...pl[mode].labels].sort().join(',');
    if (mode === 'photo' && labels !== cliLabels) out.problems.push(`${THREADS} threads: the pipeline found ${labels}, the native CLI ${cliLabels}`);
  }
  await page.close();
  return out;
}

async function main() {
  for (const f of [path.join(WEB, 'facemask-engine-simd.wasm'), path.join(MODEL_DIR, 'blazeface-short.fmm'),
    path.join(MODEL_DIR, 'blazeface-full.fmm'), path.join(TFJS_MODELS, 'facemesh-detection-full.json'), CLI,
    path.join(NODE_MODULES, 'onnxruntime-web/dist/ort.wasm.min.js')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing (tools/bench-browser builds and fetches everything)`);
  }
  const haveClassifier = fs.existsSync(path.join(MODEL_DIR, 'classifier.fmm'));
  exportModels();
  // The classifier's input side comes from the model (its tfjs export's signature), not a constant.
  for (const m of MODELS.filter((x) => x.exportTfjs)) {
    const sig = JSON.parse(fs.readFileSync(path.join(EXPORT, path.relative('/export', m.json)), 'utf8')).signature;
    const dims = Object.values(sig.inputs)[0].tensorShape.dim.map((d) => Number(d.size));
    if (dims.length !== 4 || dims[1] !== dims[2] || !(dims[1] > 0)) throw new Error(`classifier input shape ${dims}`);
    m.size = dims[1];
  }
  log(`exported ${MODELS.map((m) => m.label).join(', ')} with ${path.relative(ROOT, CLI)} export into ${path.relative(ROOT, EXPORT)}/`);
  const cliLabels = makeFrame();
  const cliFaces = cliLabels ? cliLabels.split(',').length : 0;
  log(`frame: ${path.relative(ROOT, FRAME)} from ${path.basename(SOURCE)}; the native CLI finds ${cliFaces} faces (${cliLabels})`);
  log(`load average: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; runs ${RUNS} in ${ROUNDS} rounds, warm-up ${WARMUP} s`);

  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-bench-'));
  const browser = await chromium.launchPersistentContext(dir, { executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
  const errors = [];
  let failed = false;
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${base}/bench/index.html`);
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 60000 });
    const chromiumVersion = browser.browser() ? browser.browser().version() : (await page.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)[1];
    const info = await page.evaluate((a) => window.bench.init(a), { frame: '/frame/frame-640x480.png', sizes: MODELS.map((m) => m.size) });
    log(`Chromium ${chromiumVersion}; engine ${info.version}, tfjs ${info.tfjsVersion} (wasm SIMD ${info.tfjsWasmSimd}, threads ${info.tfjsWasmThreads}), onnxruntime-web ${info.ortVersion} (threads ${info.ortThreads}); cross-origin isolated ${info.crossOriginIsolated}`);

    // Load every model in every runtime (first inference right after load), check agreement.
    const results = [];
    const agreement = {};
    for (const m of MODELS) {
      const rows = {};
      for (const rt of RUNTIMES) {
        const r = await page.evaluate(([rt, m]) => window.bench.load(rt, m), [rt, m]);
        rows[rt] = { model: m.label, input: m.size, runtime: rt, load_ms: r.loadMs, first_ms: r.firstMs, times: [] };
      }
      agreement[m.name] = await page.evaluate(([n, s, rts]) => window.bench.agree(n, s, rts), [m.name, m.size, RUNTIMES]);
      for (const [which, a] of Object.entries(agreement[m.name])) {
        for (const [k, d] of Object.entries(a)) {
          if (k === 'maxAbsRef') continue;
          const ok = d <= TOLERANCE;
          if (!ok) failed = true;
          log(`agreement ${m.name} (${which} input, |output| <= ${a.maxAbsRef.toFixed(1)}): ${k} max abs diff ${d.toExponential(2)}${ok ? '' : ` > ${TOLERANCE}: FAIL`}`);
        }
      }
      // Warm-up by time, then interleaved rounds.
      for (const rt of RUNTIMES) {
        const n = await page.evaluate(([k, s]) => window.bench.warm(k, s), [`${rt}/${m.name}`, WARMUP]);
        rows[rt].warmup_runs = n;
      }
      for (let round = 0; round < ROUNDS; ++round) {
        const n = Math.ceil(RUNS / ROUNDS);
        for (const rt of RUNTIMES) {
          rows[rt].times.push(...(await page.evaluate(([k, n]) => window.bench.timed(k, n), [`${rt}/${m.name}`, n])));
        }
      }
      for (const rt of RUNTIMES) {
        results.push(rows[rt]);
        log(`${m.name} ${rt}: median ${f1(median(rows[rt].times))} ms, p90 ${f1(quantile(rows[rt].times, 0.9))} ms (${rows[rt].times.length} runs after ${rows[rt].warmup_runs} warm-up)`);
      }
    }

    // The pipeline on the whole frame.
    // Video: the engine's default (the detector on every detect_every-th frame, so the per-frame
    // times alternate; the mean is the cost per frame) and the detector on every frame.
    const pl = await page.evaluate((a) => window.bench.loadPipeline(a), { detector: PIPELINE_DETECTOR, classifier: haveClassifier ? '/models/classifier.fmm' : null, everyFrame: true });
    for (const mode of ['photo', 'video', 'video-every-frame']) {
      const key = `ours/pipeline-${mode}`;
      const row = { model: `pipeline-${mode}`, input: '640x480', runtime: 'ours', load_ms: pl.loadMs, first_ms: pl[mode].firstMs, faces: pl[mode].faces,
        classifier: haveClassifier, times: [] };
      row.warmup_runs = await page.evaluate(([k, s]) => window.bench.warm(k, s), [key, WARMUP]);
      for (let round = 0; round < ROUNDS; ++round) row.times.push(...(await page.evaluate(([k, n]) => window.bench.timed(k, n), [key, Math.ceil(RUNS / ROUNDS)])));
      results.push(row);
      log(`pipeline ${mode}: ${row.faces} faces (CLI ${cliFaces}); median ${f1(median(row.times))} ms, p90 ${f1(quantile(row.times, 0.9))} ms, mean ${f1(mean(row.times))} ms`);
      const labels = [...pl[mode].labels].sort().join(',');
      if (mode === 'photo' && labels !== cliLabels) { failed = true; log(`FAIL: the pipeline found ${labels}, the native CLI ${cliLabels}`); }
    }
    const heaps = await page.evaluate(() => window.bench.heaps());
    const threaded = await threadRows(browser, base, errors, { haveClassifier, cliLabels, cliFaces });
    results.push(...threaded.rows);
    for (const p of threaded.problems) { failed = true; log(`FAIL: ${p}`); }

    // ---- summary
    for (const r of results) {
      r.median_ms = median(r.times);
      r.p90_ms = quantile(r.times, 0.9);
      r.mean_ms = mean(r.times);
      r.runs = r.times.length;
      delete r.times;
    }
    for (const r of results) {
      const ours = results.find((o) => o.runtime === 'ours' && o.model === r.model && (o.threads || 1) === (r.threads || 1));
      r.ratio_to_ours = r.median_ms / ours.median_ms;
    }
    const sum = (pred) => {
      let bytes = 0, gzip = 0;
      const files = [];
      for (const [u, s] of served) if (pred(u)) { bytes += s.bytes; gzip += s.gzip; files.push(u); }
      return { bytes, gzip, files };
    };
    const downloads = {
      ours: { code: sum((u) => u.startsWith('/engine/facemask-engine-simd.')) },
      'tfjs-wasm': { code: sum((u) => /tfjs-(core|converter)\/|tf-backend-wasm\.min\.js|tfjs-backend-wasm-simd\.wasm/.test(u)) },
      'tfjs-cpu': { code: sum((u) => /tfjs-(core|converter|backend-cpu)\//.test(u)) },
      // onnxruntime-web's single wasm binary is its threaded SIMD build, 1 thread or N.
      'ort-wasm': { code: sum((u) => /^\/npm\/onnxruntime-web\/dist\/(ort\.wasm\.min\.js|ort-wasm-simd-threaded\.(mjs|wasm))$/.test(u)) },
    };
    for (const m of MODELS) {
      downloads.ours[m.name] = sum((u) => u === m.fmm);
      downloads['tfjs-wasm'][m.name] = downloads['tfjs-cpu'][m.name] = sum((u) => u.startsWith(m.tfjs));
      downloads['ort-wasm'][m.name] = sum((u) => u === m.onnx);
    }
    const load = os.loadavg();

    const md = [];
    md.push(`Chromium ${chromiumVersion} headless, ${os.cpus()[0].model.trim()} (${os.cpus().length} cores), load average ${load.map((x) => x.toFixed(2)).join(' ')} at the end; ` +
      `${RUNS} timed runs each after ${WARMUP} s of warm-up, in ${ROUNDS} interleaved rounds; one thread except rows marked "N threads" ` +
      `(a second page load, \`vs ours\` against ours at the same thread count); same input tensor for every runtime ` +
      `(the 640x480 frame letterboxed to the model's size). ms: median / p90; first: the first inference after load.`);
    md.push('');
    md.push('| model | runtime | median ms | p90 ms | vs ours | first ms | load ms |');
    md.push('|---|---|---|---|---|---|---|');
    const rtName = { ours: 'ours (wasm SIMD, XNNPACK)', 'ours-dense': 'ours, sparse path off (XNNPACK_DENSE)', 'tfjs-wasm': 'tfjs-backend-wasm 4.22 (SIMD)', 'tfjs-cpu': 'tfjs 4.22 CPU',
      'ort-wasm': `onnxruntime-web ${info.ortVersion || ''} (wasm SIMD)` };
    for (const r of results) {
      const model = r.model.startsWith('pipeline')
        ? `pipeline ${{ 'pipeline-photo': 'photo (run_pixels, with tiles)', 'pipeline-video': `video frame (track_pixels, default detect_every; mean ${f1(r.mean_ms)} ms)`,
          'pipeline-video-every-frame': `video frame (track_pixels, detector on every frame; mean ${f1(r.mean_ms)} ms)` }[r.model]}, 640x480, ${r.faces} faces${r.classifier ? ' + classifier' : ''}`
        : `${r.model} (${r.input})`;
      md.push(`| ${model} | ${rtName[r.runtime]}${r.threads > 1 ? `, ${r.threads} threads` : ''} | ${f1(r.median_ms)} | ${f1(r.p90_ms)} | ${r.ratio_to_ours.toFixed(2)}x | ${f1(r.first_ms)} | ${f1(r.load_ms)} |`);
    }
    md.push('');
    md.push('Raw model outputs, max abs difference (frame input; pseudo-random input). tfjs runs the detectors\' original tfjs files and ' +
      'our classifier\'s `facemask export --tfjs`; onnxruntime-web runs `facemask export --onnx` of all three:');
    md.push('');
    for (const m of MODELS) {
      const a = agreement[m.name];
      const pairs = Object.keys(a.frame).filter((k) => k !== 'maxAbsRef');
      md.push(`- ${m.name}: ${pairs.map((k) => `${k} ${a.frame[k].toExponential(1)}; ${a.random[k].toExponential(1)}`).join(', ')} (|output| up to ${a.frame.maxAbsRef.toFixed(0)})`);
    }
    md.push('');
    md.push('Downloads (raw / gzip -9):');
    md.push('');
    md.push(`| runtime | code (JS + wasm) | ${MODELS.map((m) => `${m.label} model`).join(' | ')} |`);
    md.push(`|---|---|${MODELS.map(() => '---|').join('')}`);
    for (const [rt, d] of Object.entries(downloads)) {
      if (!RUNTIMES.includes(rt)) continue;
      md.push(`| ${rtName[rt]} | ${kb(d.code.bytes)} / ${kb(d.code.gzip)} | ${MODELS.map((m) => `${kb(d[m.name].bytes)} / ${kb(d[m.name].gzip)}`).join(' | ')} |`);
    }
    md.push('');
    md.push(`Wasm heap after everything ran: ours ${(heaps.ours / 1048576).toFixed(1)} MiB (each model twice, sparse hint and dense, + 2 pipelines${haveClassifier ? ' with the classifier' : ''})` +
      (heaps.tfjsWasm ? `, tfjs-backend-wasm ${(heaps.tfjsWasm / 1048576).toFixed(1)} MiB` : '') + '.');
    const coldFile = path.join(OUT, 'coldstart.json');  // tests/bench/coldstart.mjs, run just before
    const cold = fs.existsSync(coldFile) ? JSON.parse(fs.readFileSync(coldFile, 'utf8')) : null;
    if (cold) {
      md.push('');
      const f = (k) => `${cold[k].result_median_ms.toFixed(0)} ms median (worst ${cold[k].result_worst_ms.toFixed(0)}, engine ready at ${cold[k].ready_median_ms.toFixed(0)})`;
      md.push(`First result after a cold load of the app page (tests/bench/coldstart.mjs: first visits, ${cold.camera.runs} runs each; ` +
        `target ${cold.target_ms} ms): in a browser already running, camera ${f('camera')}, photo ${f('photo')}; ` +
        `in a Chromium started for the visit, camera ${f('camera_new_browser')}, photo ${f('photo_new_browser')}.`);
    }
    const table = md.join('\n');
    fs.writeFileSync(path.join(ROOT, 'build/bench-browser.md'), table + '\n');
    console.log('\n' + table + '\n');
    if (errors.length) { failed = true; log(`page errors: ${errors.join('; ')}`); }
    const line = JSON.stringify({ bench: 'browser', chromium: chromiumVersion, date: new Date().toISOString(), load_average: load, runs: RUNS, warmup_s: WARMUP,
      engine: info.version, tfjs: info.tfjsVersion, onnxruntime_web: info.ortVersion, cross_origin_isolated: info.crossOriginIsolated, results, agreement,
      agreement_threads: threaded.agreement, downloads: Object.fromEntries(
        Object.entries(downloads).filter(([rt]) => RUNTIMES.includes(rt)).map(([rt, d]) => [rt, Object.fromEntries(Object.entries(d).map(([k, v]) => [k, { bytes: v.bytes, gzip: v.gzip }]))])),
      wasm_heap_bytes: heaps, cold_start: cold });
    fs.writeFileSync(path.join(ROOT, 'build/bench-browser.json'), line + '\n');
    console.log(line);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
    server.close();
  }
  if (failed) { log('FAILED'); process.exit(1); }
}

main().catch((e) => { console.error('[bench-browser]', e.stack || e.message); process.exit(1); });
