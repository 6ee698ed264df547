// soak.mjs - the page under a long camera run: FRAMES frames from Chromium's fake webcam through the
// camera mode of build/web, with the memory sampled every EVERY frames. Run by tools/soak-browser
// (10,000 frames) and, short (600 frames), by tests/e2e/run.mjs.
//
//   node tests/e2e/soak.mjs [FRAMES] [--every N] [--warmup N] [--js-tolerance MB] [--query Q]
//
// The camera plays a y4m made with ffmpeg from the two committed fixture photos (3 faces each),
// 2 s each, panning so faces move and partly leave the view; the cut between them ends every track
// and starts new ones. Frames counted are the ones the engine processed: the page's #cam-perf
// data-frames (one per detect() result). Each sample, after forcing a full garbage collection in
// the page and in the worker (CDP HeapProfiler.collectGarbage, twice):
//   wasm heap    the engine's WebAssembly memory (worker -> fm.wasmHeapBytes -> data-wasm-heap),
//                and the bytes malloc'd in it (fm_heap_used -> fm.wasmHeapUsed -> data-wasm-used)
//   JS heaps     V8 heap used by the page and by the engine's worker (CDP Runtime.getHeapUsage; the
//                worker through a Target.attachToTarget session); the Blink (embedder) heaps too
//   renderer     resident memory of the renderer process running the page and its worker (/proc:
//                RssAnon, its private memory, and VmRSS, which adds mapped files and shared
//                memory such as the camera's frame buffers; the renderer is the one that used the
//                most CPU since the camera started); reported, not judged
// Verdict, against the first sample at or after WARMUP frames: the wasm memory must not grow at
// all, the malloc'd bytes at most +64 KB (tracks come and go), each JS heap (V8 and Blink) at most
// +JS_TOLERANCE MB (default 2) in any later sample; every sample must see faces; no console error
// or page error (nor a VideoFrame garbage collected unclosed). Prints a table, the verdict and one
// JSON line {"soak": {...}, "samples": [...]}; exits 1 when the verdict fails.
// The page runs as it does for a visitor: its service worker may reload it once to make it
// cross-origin isolated (the threads build then runs); --query Q appends ?Q to its URL (e.g.
// threads=1, coi=0).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHROMIUM, FLAGS, OUT, ROOT, WEB, cameraFlags, playwright, serveStatic } from './lib.mjs';

const FIX = path.join(ROOT, 'tests/e2e/fixtures');
export const SOAK_PHOTOS = ['chandrikadeb7_pic2_1mask_1nomask_1chin.jpg', 'group_nomask_sample1_960.jpg'].map((f) => path.join(FIX, f));
const MB = 1024 * 1024;
export const WASM_USED_TOLERANCE = 64 * 1024;  // bytes
// Each run keeps its camera file and Chromium's log (--log-file) in a temporary folder of its own
// (runs at the same time must not rewrite each other's camera); a failed run's log is kept here:
export const FAILED_LOG = path.join(OUT, 'soak-chromium.log');
const log = (...a) => console.log('[soak]', ...a);

// ---- the fake webcam: 640x480, 30 fps, 4 s (looped by Chromium): each photo 2 s, the 640x480
// window sweeping across it and back (x and y follow sin(pi t): one smooth period per photo).
export function makeSoakVideo(file) {
  for (const f of SOAK_PHOTOS) if (!fs.existsSync(f)) throw new Error(`${f} is missing`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const filter =
    "[0:v]scale=800:-2,pad=800:560:(ow-iw)/2:(oh-ih)/2,crop=640:480:x='80+80*sin(PI*t)':y='40+40*sin(PI*t)',setsar=1,format=yuv420p[a];" +
    "[1:v]scale=720:480,crop=640:480:x='40+40*sin(PI*t)':y=0,setsar=1,format=yuv420p[b];[a][b]concat=n=2:v=1[v]";
  const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error',
    '-loop', '1', '-framerate', '30', '-t', '2', '-i', SOAK_PHOTOS[0],
    '-loop', '1', '-framerate', '30', '-t', '2', '-i', SOAK_PHOTOS[1],
    '-filter_complex', filter, '-map', '[v]', '-r', '30', '-pix_fmt', 'yuv420p', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg failed making ${file}: ${r.stderr || r.error}`);
  return file;
}

// A CDP session to a dedicated worker, through the page's session (Target.attachToTarget without
// flatten: the commands and answers travel inside Target.sendMessageToTarget /
// receivedMessageFromTarget, because Playwright only hands out sessions for pages and frames).
async function workerSession(cdp, urlSuffix) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  const workers = targetInfos.filter((t) => t.type === 'worker' && t.url.endsWith(urlSuffix));
  if (workers.length !== 1) {
    throw new Error(`expected one worker *${urlSuffix}, found ${workers.length}: ${targetInfos.map((t) => `${t.type} ${t.url}`).join(', ')}`);
  }
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: workers[0].targetId, flatten: false });
  let nextId = 1;
  const pending = new Map();
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    if (e.sessionId !== sessionId) return;
    const m = JSON.parse(e.message);
    const p = m.id !== undefined && pending.get(m.id);
    if (!p) return;  // an event
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.reject(new Error(`worker ${p.method}: ${m.error.message}`));
    else p.resolve(m.result);
  });
  const call = (method, params = {}) => new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`the worker did not answer ${method} within 30 s`)); }, 30000);
    pending.set(id, { resolve, reject, timer, method });
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) })
      .catch((e) => { pending.delete(id); clearTimeout(timer); reject(new Error(`could not reach the worker (${method}): ${e.message}`)); });
  });
  return { call, detach: () => cdp.send('Target.detachFromTarget', { sessionId }).catch(() => {}) };
}

// {rss, anon} MB of a process: all resident memory, and its private part (RssAnon: the heaps; the
// rest is mapped files and memory shared with other processes, e.g. the camera's frame buffers).
function rssMB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => { const m = new RegExp(`${k}:\\s+(\\d+) kB`).exec(status); return m ? Number(m[1]) / 1024 : null; };
    return { rss: kb('VmRSS'), anon: kb('RssAnon') };
  } catch {
    return { rss: null, anon: null };  // the process is gone, or /proc is not readable
  }
}

// The last lines of Chromium's log about the camera or video, for a failure message.
function chromiumSays(log) {
  let lines = [];
  try {
    fs.mkdirSync(OUT, { recursive: true });
    fs.copyFileSync(log, FAILED_LOG);
    lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /captur|video|media/i.test(l) && !/user_preference_ranking/.test(l));
  } catch { /* no log */ }
  return `; Chromium's log (${path.relative(ROOT, FAILED_LOG)})` + (lines.length ? ` ends: ${lines.slice(-5).join(' | ')}` : ' says nothing about the camera');
}

const round = (x, d = 3) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

// The flatness checks; samples as soak() returns them. Returns {baseline, growth, problems}.
export function judge(samples, { warmup, jsToleranceMB }) {
  const problems = [];
  const b = samples.findIndex((s) => s.frames >= warmup);
  if (b < 0 || b === samples.length - 1) {
    return { baseline: null, growth: null, problems: [`need samples after the warm-up sample (frame ${warmup}); got samples at ${samples.map((s) => s.frames).join(', ')}`] };
  }
  const base = samples[b], after = samples.slice(b + 1);
  const max = (k) => Math.max(...after.map((s) => s[k]));
  const growth = {
    wasmHeapBytes: max('wasmHeapBytes') - base.wasmHeapBytes, wasmUsedBytes: max('wasmUsedBytes') - base.wasmUsedBytes,
    pageJsMB: round(max('pageJsMB') - base.pageJsMB), workerJsMB: round(max('workerJsMB') - base.workerJsMB),
    pageBlinkMB: round(max('pageBlinkMB') - base.pageBlinkMB), workerBlinkMB: round(max('workerBlinkMB') - base.workerBlinkMB),
    rendererPrivateMB: base.rendererPrivateMB === null || after.some((s) => s.rendererPrivateMB === null) ? null : round(max('rendererPrivateMB') - base.rendererPrivateMB, 1),
    rendererRssMB: base.rendererRssMB === null || after.some((s) => s.rendererRssMB === null) ? null : round(max('rendererRssMB') - base.rendererRssMB, 1),
  };
  if (!(base.wasmHeapBytes > 0)) problems.push('the page reports no wasm heap size (#cam-perf data-wasm-heap); is build/web current? (tools/build-web)');
  if (growth.wasmHeapBytes !== 0) {
    const grew = after.find((s) => s.wasmHeapBytes !== base.wasmHeapBytes);
    problems.push(`the wasm heap grew after warm-up: ${(base.wasmHeapBytes / MB).toFixed(2)} MB at frame ${base.frames}, ` +
      `${(grew.wasmHeapBytes / MB).toFixed(2)} MB at frame ${grew.frames}`);
  }
  if (!(base.wasmUsedBytes > 0)) {
    problems.push('the page reports no malloc\'d bytes (#cam-perf data-wasm-used: fm_heap_used); is build/web current? (tools/build-web)');
  } else if (growth.wasmUsedBytes > WASM_USED_TOLERANCE) {
    const worst = after.reduce((w, s) => (s.wasmUsedBytes > w.wasmUsedBytes ? s : w));
    problems.push(`the engine's malloc'd bytes grew ${growth.wasmUsedBytes} after warm-up (tolerance ${WASM_USED_TOLERANCE}): ` +
      `${base.wasmUsedBytes} at frame ${base.frames}, ${worst.wasmUsedBytes} at frame ${worst.frames}`);
  }
  for (const [k, what] of [['pageJsMB', 'page JS heap'], ['workerJsMB', 'worker JS heap'], ['pageBlinkMB', 'page Blink heap'], ['workerBlinkMB', 'worker Blink heap']]) {
    if (growth[k] > jsToleranceMB) {
      const worst = after.reduce((w, s) => (s[k] > w[k] ? s : w));
      problems.push(`the ${what} grew ${growth[k].toFixed(2)} MB after warm-up (tolerance ${jsToleranceMB} MB): ` +
        `${base[k].toFixed(2)} MB at frame ${base.frames}, ${worst[k].toFixed(2)} MB at frame ${worst.frames}`);
    }
  }
  const faceless = samples.filter((s) => !(s.faces > 0));
  if (faceless.length) problems.push(`no faces found in the frame at sample(s) ${faceless.map((s) => s.frames).join(', ')} (every camera frame has faces)`);
  return { baseline: b, growth, problems };
}

export function table(samples, baseline = -1) {
  const head = ['frames', 'time s', 'wasm heap MB', 'wasm malloc\'d MB', 'page JS MB', 'worker JS MB', 'page Blink MB', 'worker Blink MB', 'renderer private MB', 'renderer RSS MB', 'ms/frame', 'FPS', 'faces'];
  const rows = samples.map((s, i) => [String(s.frames) + (i === baseline ? '*' : ''), s.seconds.toFixed(0), (s.wasmHeapBytes / MB).toFixed(2),
    (s.wasmUsedBytes / MB).toFixed(3), s.pageJsMB.toFixed(3), s.workerJsMB.toFixed(3), s.pageBlinkMB.toFixed(3), s.workerBlinkMB.toFixed(3),
    s.rendererPrivateMB === null ? '-' : s.rendererPrivateMB.toFixed(1), s.rendererRssMB === null ? '-' : s.rendererRssMB.toFixed(1), s.msPerFrame.toFixed(2), s.fps.toFixed(1), String(s.faces)]);
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// Runs the soak in its own headless Chromium with its own camera file; `base` is the page's URL
// (build/web served).
// Returns {frames, samples, baseline, growth, problems, errors, flavor, threads, isolated, browser,
// rendererPid}.
export async function soak({ base, frames = 10000, every = 500, warmup = 1000, jsToleranceMB = 2, query = '', progress = () => {} }) {
  if (!(every > 0 && warmup + every <= frames)) {
    throw new Error(`bad soak parameters: ${frames} frames, a sample every ${every}, warm-up ${warmup}: samples must follow the warm-up (warm-up + every <= frames)`);
  }
  const { chromium } = playwright();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-soak-'));
  const chromiumLog = path.join(tmp, 'chromium.log');
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: [...FLAGS, ...cameraFlags(makeSoakVideo(path.join(tmp, 'camera.y4m'))), '--enable-precise-memory-info',
        '--enable-logging', `--log-file=${chromiumLog}`] });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const errors = [];
  const watchConsole = (where) => (m) => {
    // A VideoFrame collected without close() is a leak (Chromium warns about it).
    if (m.type() === 'error' || /garbage collected without/i.test(m.text())) errors.push(`${where} console ${m.type()}: ${m.text()}`);
  };
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    page.on('console', watchConsole('page'));
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('crash', () => errors.push('the page crashed'));
    page.on('worker', (w) => {
      w.on('console', watchConsole('worker'));
      w.on('close', () => errors.push(`the worker ${w.url()} ended`));
    });
    await page.goto(base + (query ? `?${query}` : ''));
    // The engine starts, possibly after the service worker has reloaded the page once.
    let engine = null;
    for (const t = Date.now(); Date.now() - t < 60000; await new Promise((r) => setTimeout(r, 200))) {
      engine = await page.evaluate(() => ({ state: document.body.dataset.engine, flavor: document.body.dataset.flavor,
        threads: Number(document.body.dataset.threads || 1), isolated: self.crossOriginIsolated,
        banner: document.getElementById('banner').textContent })).catch(() => null);  // null: navigating
      if (engine && ['ready', 'failed'].includes(engine.state)) break;
    }
    if (!engine || engine.state !== 'ready') throw new Error(`the engine did not start within 60 s: ${engine ? `${engine.state}: ${engine.banner}` : 'the page never settled'}`);
    const { flavor, threads, isolated } = engine;
    const cdp = await context.newCDPSession(page);
    const bcdp = await browser.newBrowserCDPSession();
    const cpu = async () => new Map((await bcdp.send('SystemInfo.getProcessInfo')).processInfo
      .filter((p) => p.type === 'renderer').map((p) => [p.id, p.cpuTime]));

    const state = () => page.evaluate(() => {
      const d = document.getElementById('cam-perf').dataset;
      return { frames: Number(d.frames || 0), ms: Number(d.ms), engineMs: Number(d.engineMs), wasmHeap: Number(d.wasmHeap), wasmUsed: Number(d.wasmUsed),
        faces: Number(document.getElementById('cam-summary').dataset.faces), message: document.getElementById('cam-message').textContent };
    });
    const cpu0 = await cpu();
    await page.click('#cam-start');
    // Wait for n processed frames; a camera loop that stops (an error, a stall) fails with what the page says.
    const waitFrames = async (n) => {
      let last = -1, since = Date.now();
      for (;;) {
        const s = await state();
        if (s.frames >= n) return s;
        if (s.frames !== last) { last = s.frames; since = Date.now(); }
        if (Date.now() - since > 20000) {
          throw new Error(`no frame processed for 20 s at frame ${s.frames} (waiting for ${n}); the page says: "${s.message || 'nothing'}"` +
            (errors.length ? `; errors: ${errors.join('; ')}` : '') + chromiumSays(chromiumLog));
        }
        await page.waitForTimeout(200);
      }
    };
    await waitFrames(1);
    const worker = await workerSession(cdp, '/worker.js');
    const heap = async (call) => {
      await call('HeapProfiler.collectGarbage');
      await call('HeapProfiler.collectGarbage');  // a second pass takes what the first one's finalizers released
      const u = await call('Runtime.getHeapUsage');
      return { js: u.usedSize / MB, blink: (u.embedderHeapUsedSize || 0) / MB };
    };
    const pageCall = (method, params) => cdp.send(method, params);

    const samples = [];
    const t0 = Date.now();
    let prev = { frames: 0, time: t0 }, rendererPid = null;
    for (let next = every; next <= frames; next += every) {
      const s = await waitFrames(next);
      const now = Date.now();
      if (rendererPid === null) {  // the renderer that ran the page (and its worker): the busiest since the start
        const cpu1 = await cpu();
        let best = -1;
        for (const [pid, t] of cpu1) if (t - (cpu0.get(pid) || 0) > best) { best = t - (cpu0.get(pid) || 0); rendererPid = pid; }
      }
      const [p, w] = [await heap(pageCall), await heap(worker.call)];
      const rss = rendererPid === null ? { rss: null, anon: null } : rssMB(rendererPid);
      const sample = {
        frames: s.frames, seconds: (now - t0) / 1000, wasmHeapBytes: s.wasmHeap, wasmUsedBytes: s.wasmUsed,
        pageJsMB: round(p.js), workerJsMB: round(w.js), pageBlinkMB: round(p.blink), workerBlinkMB: round(w.blink),
        rendererPrivateMB: round(rss.anon, 1), rendererRssMB: round(rss.rss, 1),
        msPerFrame: s.ms, engineMs: s.engineMs, fps: round((s.frames - prev.frames) * 1000 / (now - prev.time), 2), faces: s.faces,
      };
      samples.push(sample);
      progress(sample);
      prev = { frames: s.frames, time: now };
    }
    await page.click('#cam-start');  // stop the camera
    await worker.detach();
    const { baseline, growth, problems } = judge(samples, { warmup, jsToleranceMB });
    if (errors.length) problems.push(`${errors.length} console/page error(s): ${[...new Set(errors)].join('; ')}`);
    return { frames, every, warmup, jsToleranceMB, samples, baseline, growth, problems, errors, flavor, threads, isolated,
      browser: browser.version(), rendererPid };
  } finally {
    await browser.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- the command line (tools/soak-browser)
async function main() {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number, got ${args[i + 1]}`);
    args.splice(i, 2);
    return v;
  };
  const every = opt('--every', 500), warmup = opt('--warmup', 1000), jsToleranceMB = opt('--js-tolerance', 2);
  let query = '';
  const qi = args.indexOf('--query');
  if (qi >= 0) {
    query = String(args[qi + 1] || '').replace(/^\?/, '');
    if (!query) throw new Error('--query needs URL parameters, e.g. --query threads=1');
    args.splice(qi, 2);
  }
  if (args.length > 1 || (args.length === 1 && !/^\d+$/.test(args[0]))) {
    throw new Error(`usage: soak.mjs [FRAMES] [--every N] [--warmup N] [--js-tolerance MB] [--query Q]; got ${args.join(' ')}`);
  }
  const frames = args.length ? Number(args[0]) : 10000;
  if (!fs.existsSync(path.join(WEB, 'index.html'))) throw new Error(`${WEB}/index.html is missing (tools/soak-browser builds it)`);
  const sub = '/soak/';
  const server = await serveStatic(WEB, sub);
  const base = `http://127.0.0.1:${server.address().port}${sub}`;
  log(`${frames} frames from the fake camera (a y4m made from ${SOAK_PHOTOS.map((f) => path.basename(f)).join(' and ')}: 640x480, 30 fps, 3 faces each, panning); ` +
    `sample every ${every}, warm-up ${warmup}; about ${Math.ceil(frames / 30 / 60)} min at 30 FPS`);
  let r;
  try {
    r = await soak({ base, frames, every, warmup, jsToleranceMB, query,
      progress: (s) => log(`frame ${s.frames}: wasm ${(s.wasmHeapBytes / MB).toFixed(2)} MB (${s.wasmUsedBytes} bytes malloc'd), page JS ${s.pageJsMB.toFixed(3)} MB, ` +
        `worker JS ${s.workerJsMB.toFixed(3)} MB, renderer ${s.rendererPrivateMB ?? '-'} MB private / ${s.rendererRssMB ?? '-'} MB RSS, ${s.msPerFrame} ms/frame, ${s.fps} FPS`) });
  } finally {
    server.close();
  }
  log(`Chromium ${r.browser}, engine ${r.flavor}, ${r.threads} thread(s), page ${r.isolated ? '' : 'not '}cross-origin isolated${query ? ` (?${query})` : ''}, ` +
    `renderer pid ${r.rendererPid}; * = the warm-up sample the others are compared with`);
  console.log(table(r.samples, r.baseline));
  const g = r.growth;
  if (g) {
    log(`after warm-up (frame ${r.samples[r.baseline].frames} -> ${r.samples[r.samples.length - 1].frames}), largest growth: ` +
      `wasm heap ${g.wasmHeapBytes} bytes (must be 0), malloc'd ${g.wasmUsedBytes} bytes (tolerance ${WASM_USED_TOLERANCE}); JS heap page ${g.pageJsMB.toFixed(3)} MB, worker ${g.workerJsMB.toFixed(3)} MB; ` +
      `Blink heap page ${g.pageBlinkMB.toFixed(3)} MB, worker ${g.workerBlinkMB.toFixed(3)} MB (tolerance ${jsToleranceMB} MB each); ` +
      `renderer private memory ${g.rendererPrivateMB ?? '-'} MB, RSS ${g.rendererRssMB ?? '-'} MB (not judged)`);
  }
  const ok = r.problems.length === 0;
  log(ok ? 'verdict: PASS (flat after warm-up, no errors)' : `verdict: FAIL: ${r.problems.join('; ')}`);
  console.log(JSON.stringify({ soak: { frames: r.frames, every: r.every, warmup: r.warmup, jsToleranceMB: r.jsToleranceMB,
    wasmUsedToleranceBytes: WASM_USED_TOLERANCE, ok, growth: r.growth, problems: r.problems, browser: r.browser, flavor: r.flavor,
    threads: r.threads, isolated: r.isolated, query }, samples: r.samples }));
  process.exit(ok ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error('[soak]', e.stack || e.message);
    console.log(`[soak] verdict: FAIL: ${e.message.split('\n')[0]}`);
    process.exit(1);
  });
}
