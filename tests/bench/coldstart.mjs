// coldstart.mjs - how long a first visit takes to its first result (issue 6 target: <= 1 s after a
// cold page load from localhost). Run by tools/bench-browser after run.mjs; needs build/web and
// playwright-core (FM_NPM_DIR). Each run starts a new Chromium (empty HTTP cache, no service
// worker, no compiled-wasm cache), loads the app page from a local static server and acts at once,
// as a visitor would who clicks as soon as the page's script has run:
//   camera  click "Start camera" (Chromium's fake webcam: the soak video, 640x480) -> the first
//           frame drawn with its faces and labels (#cam-perf data-frames >= 1)
//   photo   hand the page a photo (chandrikadeb7_pic2, 824x431, 3 faces) in photo mode -> its card
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

function marker() {
  window.__cold = {};
  const mark = (k) => { if (!(k in window.__cold)) window.__cold[k] = performance.now(); };
  new MutationObserver(() => {
    if (document.body && document.body.dataset.engine === 'ready') mark('ready');
    const perf = document.getElementById('cam-perf');
    if (perf && Number(perf.dataset.frames) >= 1) mark('result');
    if ([...document.querySelectorAll('.card')].some((c) => c.dataset.faces !== undefined)) mark('result');
  }).observe(document, { subtree: true, childList: true, attributes: true });
}

async function once(chromium, base, y4m, path_) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, ...cameraFlags(y4m)] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(marker);
    // The page's script has run once body has data-engine (set when the engine starts loading):
    // from then on its buttons work.
    const scripted = () => page.waitForFunction(() => document.body && document.body.dataset.engine, null, { timeout: 30000, polling: 5 });
    if (path_ === 'camera') {
      await page.goto(base, { waitUntil: 'commit' });
      await scripted();
      await page.click('#cam-start');
    } else {
      await page.goto(base + '?mode=photos', { waitUntil: 'commit' });
      await scripted();
      await page.setInputFiles('#file-input', PHOTO);
    }
    const acted = await page.evaluate(() => performance.now());
    await page.waitForFunction(() => window.__cold && window.__cold.result !== undefined, null, { timeout: 30000 });
    const cold = await page.evaluate(() => window.__cold);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return { ready: cold.ready, result: cold.result, acted };
  } finally {
    await browser.close();
  }
}

async function main() {
  if (!fs.existsSync(path.join(WEB, 'index.html'))) throw new Error('build/web is missing (tools/build-web)');
  if (!fs.existsSync(PHOTO)) throw new Error(`${PHOTO} is missing`);
  const { chromium } = playwright();
  const y4m = makeSoakVideo(path.join(OUT, 'coldstart.y4m'));
  const server = await serveStatic(WEB, '/app/');
  const base = `http://127.0.0.1:${server.address().port}/app/`;
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const summary = {};
  try {
    for (const p of ['camera', 'photo']) {
      const runs = [];
      for (let i = 0; i < RUNS; ++i) runs.push(await once(chromium, base, y4m, p));
      const res = runs.map((r) => r.result), ready = runs.map((r) => r.ready);
      summary[p] = { runs: RUNS, result_median_ms: +median(res).toFixed(1), result_worst_ms: +Math.max(...res).toFixed(1),
        ready_median_ms: +median(ready).toFixed(1), acted_median_ms: +median(runs.map((r) => r.acted)).toFixed(1) };
      log(`${p}: first result ${median(res).toFixed(0)} ms median, ${Math.max(...res).toFixed(0)} ms worst ` +
          `(engine ready ${median(ready).toFixed(0)} ms; the page took the ${p === 'camera' ? 'click' : 'photo'} at ` +
          `${summary[p].acted_median_ms.toFixed(0)} ms) over ${RUNS} cold loads`);
    }
  } finally {
    server.close();
  }
  const line = JSON.stringify({ bench: 'coldstart', target_ms: 1000, ...summary });
  fs.mkdirSync(path.join(ROOT, 'build/bench-browser'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'build/bench-browser/coldstart.json'), line + '\n');  // run.mjs adds it to its table
  console.log(line);
}

main().catch((e) => { console.error('[coldstart] FAILED:', e.message); process.exit(1); });
