// coldstart.mjs - how long a first visit takes to its first result (issue 6 target: <= 1 s after a
// cold page load from localhost). Run by tools/bench-browser after run.mjs; needs build/web and
// playwright-core (FM_NPM_DIR). Each visit is a first visit (a new browser context: empty HTTP
// cache, no service worker, no compiled-wasm cache), twice over: in a browser that is already
// running (a visitor's case), and in a Chromium started for the visit (the worst case: a fresh
// renderer spends ~0.1 s on its first style and layout alone). It loads the app page from a local
// static server and acts at once,
// as a visitor would who clicks or drops a photo the moment the page's script has run:
//   camera  click "Start camera" (Chromium's fake webcam: the soak video, 640x480) -> the first
//           frame drawn with its faces and labels (#cam-perf data-frames >= 1)
//   photo   drop a photo (the three-face fixture, 412x215) in photo mode -> its card
//           shows the faces
// Times are the page's performance.now() (from navigation start, so they include the downloads,
// wasm compilation, model loading and the camera's start), marked in the page by a
// MutationObserver; "ready" is when the engine reports ready. Prints median and worst of RUNS runs
// per path and one JSON line {"bench": "coldstart", ...} (also build/bench-browser/coldstart.json,
// which run.mjs adds to its table when tools/bench-browser runs both).
//
//   node tests/bench/coldstart.mjs [--runs N]
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM, FLAGS, OUT, ROOT, WEB, cameraFlags, playwright, serveStatic } from '../e2e/lib.mjs';
import { makeSoakVideo } from '../e2e/soak.mjs';

const args = process.argv.slice(2);
const RUNS = Number(args.includes('--runs') ? args[args.indexOf('--runs') + 1] : 5);
const PHOTO = path.join(ROOT, 'tests/fixtures/three_faces_1mask_1nomask_1chin.jpg');
const log = (...a) => console.log('[coldstart]', ...a);
let PHOTO_BASE64 = '';  // read once in main()

// In the page, before its scripts: marks the times, and acts as soon as the page's script has run
// (DOMContentLoaded comes after module scripts): clicks "Start camera", or drops the photo (the
// page's drop handler calls facemaskPage.addFiles, as here). No harness round trip is timed.
function marker({ action, photo }) {
  window.__cold = {};
  const mark = (k) => { if (!(k in window.__cold)) window.__cold[k] = performance.now(); };
  new MutationObserver(() => {
    if (document.body && document.body.dataset.engine === 'ready') mark('ready');
    const perf = document.getElementById('cam-perf');
    if (perf && Number(perf.dataset.frames) >= 1) mark('result');
    if ([...document.querySelectorAll('.card')].some((c) => c.dataset.faces !== undefined)) mark('result');
  }).observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener('DOMContentLoaded', () => {
    mark('acted');
    if (action === 'camera') {
      document.getElementById('cam-start').click();
    } else {
      const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
      window.facemaskPage.addFiles([new File([bytes], 'photo.jpg', { type: 'image/jpeg' })]);
    }
  });
}

// One cold visit. With `running`, a browser that is already up (a new context: empty HTTP cache, no
// service worker, no compiled-wasm cache, as a first visit); else a browser started for it.
async function once(chromium, base, y4m, path_, running, extra = '') {
  const browser = running || await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, ...cameraFlags(y4m)] });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(marker, { action: path_, photo: PHOTO_BASE64 });
    await page.goto(base + (path_ === 'camera' ? `?${extra}` : `?mode=photos&${extra}`), { waitUntil: 'commit' });
    await page.waitForFunction(() => window.__cold && window.__cold.result !== undefined, null, { timeout: 30000 });
    const cold = await page.evaluate(() => window.__cold);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return { ready: cold.ready, result: cold.result, acted: cold.acted };
  } finally {
    await context.close();
    if (!running) await browser.close();
  }
}

async function main() {
  if (!fs.existsSync(path.join(WEB, 'index.html'))) throw new Error('build/web is missing (tools/build-web)');
  if (!fs.existsSync(PHOTO)) throw new Error(`${PHOTO} is missing`);
  PHOTO_BASE64 = fs.readFileSync(PHOTO).toString('base64');
  const { chromium } = playwright();
  const y4m = makeSoakVideo(path.join(OUT, 'coldstart.y4m'));
  const server = await serveStatic(WEB, '/app/');
  const base = `http://127.0.0.1:${server.address().port}/app/`;
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const summary = {};
  // A browser already running (it has shown a page once: its renderer machinery, fonts and the
  // like are warm, as in a visitor's browser), and a browser started for each visit.
  const running = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, ...cameraFlags(y4m)] });
  try {
    const warm = await running.newPage();
    await warm.setContent('<p>warm-up</p>');
    await warm.close();
    for (const [browserKind, b] of [['running', running], ['new', null]]) {
      for (const p of ['camera', 'photo']) {
        const runs = [];
        for (let i = 0; i < RUNS; ++i) runs.push(await once(chromium, base, y4m, p, b));
        const res = runs.map((r) => r.result), ready = runs.map((r) => r.ready);
        const key = browserKind === 'running' ? p : `${p}_new_browser`;
        summary[key] = { runs: RUNS, result_median_ms: +median(res).toFixed(1), result_worst_ms: +Math.max(...res).toFixed(1),
          ready_median_ms: +median(ready).toFixed(1), acted_median_ms: +median(runs.map((r) => r.acted)).toFixed(1) };
        log(`${p}, ${browserKind === 'running' ? 'browser already running' : 'browser started for the visit'}: first result ` +
            `${median(res).toFixed(0)} ms median, ${Math.max(...res).toFixed(0)} ms worst (engine ready ${median(ready).toFixed(0)} ms; ` +
            `the page took the ${p === 'camera' ? 'click' : 'photo'} at ${summary[key].acted_median_ms.toFixed(0)} ms) over ${RUNS} cold loads`);
      }
    }
    // The page's download progress bar (onProgress: the wasm counted as it streams into the
    // compiler, the models read chunk by chunk) against none (?progress=0), photo path, runs
    // alternating in the running browser: the ratio of the medians should be ~1.
    const withBar = [], without = [];
    for (let i = 0; i < RUNS; ++i) {
      withBar.push((await once(chromium, base, y4m, 'photo', running)).result);
      without.push((await once(chromium, base, y4m, 'photo', running, 'progress=0')).result);
    }
    summary.progress_bar = { runs: RUNS, with_median_ms: +median(withBar).toFixed(1), without_median_ms: +median(without).toFixed(1),
      ratio: +(median(withBar) / median(without)).toFixed(3) };
    log(`photo with the progress bar ${median(withBar).toFixed(0)} ms median, without ${median(without).toFixed(0)} ms ` +
        `(ratio ${summary.progress_bar.ratio}; ranges ${Math.min(...withBar).toFixed(0)}-${Math.max(...withBar).toFixed(0)} / ` +
        `${Math.min(...without).toFixed(0)}-${Math.max(...without).toFixed(0)} ms)`);
  } finally {
    await running.close();
    server.close();
  }
  const line = JSON.stringify({ bench: 'coldstart', target_ms: 1000, ...summary });
  fs.mkdirSync(path.join(ROOT, 'build/bench-browser'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'build/bench-browser/coldstart.json'), line + '\n');  // run.mjs adds it to its table
  console.log(line);
}

main().catch((e) => { console.error('[coldstart] FAILED:', e.message); process.exit(1); });
