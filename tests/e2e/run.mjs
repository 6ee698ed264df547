// run.mjs - end-to-end tests of build/web in Debian's Chromium, driven by playwright-core (run by
// tools/e2e, which installs it into build/npm and passes FM_NPM_DIR). The page is served by a
// small server in this process under a sub-path (proving the URLs are relative). The native CLI
// (build/native-release/tools/facemask detect --json) is the oracle for face counts and labels.
// A fake webcam plays a y4m made with ffmpeg from a demo photo. Screenshots go to build/e2e/.
// The short soak (tests/e2e/soak.mjs, in its own browser) plays a moving y4m of the fixtures.
// Ends with the line "e2e: N passed, M failed"; exits 1 when something failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FLAGS, serveStatic } from './lib.mjs';
import { soak, table } from './soak.mjs';
import { register as registerHostile } from './hostile.mjs';
import { register as registerPackage } from './package.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WEB = path.join(ROOT, 'build/web');
const MODEL_DIR = process.env.FM_MODEL_DIR || path.join(ROOT, 'model');
const OUT = path.join(ROOT, 'build/e2e');
const CLI = path.join(ROOT, 'build/native-release/tools/facemask');
const require = createRequire(path.resolve(process.env.FM_NPM_DIR || path.join(ROOT, 'build/npm'), 'package.json'));
const { chromium } = require('playwright-core');

// ---- inputs: the demo photos, or the committed fixtures when ../shared/data is absent (or
// FM_E2E_FIXTURES=1)
const DEMO = path.resolve(ROOT, '../shared/data/demo');
const FIX = path.join(ROOT, 'tests/e2e/fixtures');
const haveDemo = !process.env.FM_E2E_FIXTURES && fs.existsSync(path.join(DEMO, 'chandrikadeb7_pic2_1mask_1nomask_1chin.jpg'));
const PIC2 = path.join(haveDemo ? DEMO : FIX, 'chandrikadeb7_pic2_1mask_1nomask_1chin.jpg');
const GROUPS = haveDemo
  ? fs.readdirSync(DEMO).filter((f) => /^group_nomask_.*\.jpg$/.test(f)).sort().map((f) => path.join(DEMO, f))
  : [path.join(FIX, 'group_nomask_sample1_960.jpg')];
const PHOTOS = [PIC2, ...GROUPS];

fs.mkdirSync(OUT, { recursive: true });
const log = (...a) => console.log('[e2e]', ...a);

// ---- oracle: the native CLI
function oracle(files, args = []) {
  // FM_MODEL_DIR: the models tools/build-web was given (default model/).
  const env = { ...process.env, FACEMASK_MODEL_DIR: MODEL_DIR };
  const r = spawnSync(CLI, ['detect', '--json', ...args, ...files], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`the CLI failed (${r.status}): ${r.stderr}`);
  const out = {};
  for (const line of r.stdout.trim().split('\n')) {
    const j = JSON.parse(line);
    out[path.basename(j.file)] = j;
  }
  return out;
}
const labelsOf = (res) => {  // "face x3" / "with_mask x1, without_mask x2"
  const n = {};
  for (const f of res.faces) n[f.label || 'face'] = (n[f.label || 'face'] || 0) + 1;
  return Object.keys(n).sort().map((k) => `${k} x${n[k]}`).join(', ');
};

// ---- the fake webcam: PIC2 letterboxed into 640x480, 30 fps, as y4m
const Y4M = path.join(OUT, 'camera.y4m');
function makeVideo() {
  const vf = 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,format=yuv420p';
  const r = spawnSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', PIC2, '-vf', vf,
    '-r', '30', '-t', '1', '-pix_fmt', 'yuv420p', Y4M], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

// ---- a static server for build/web under /some/sub/path/
const SUB = '/some/sub/path/';
const serve = () => serveStatic(WEB, SUB);

// ---- browser
async function launch(extra = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-e2e-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', headless: true, args: [...FLAGS, ...extra],
    viewport: { width: 1100, height: 900 }, acceptDownloads: true,
  });
  const close = async () => { await context.close(); fs.rmSync(dir, { recursive: true, force: true }); };
  return { context, close };
}

// Watches a page: console errors, page errors, and every request (URL) it or its workers make.
function watch(context, page) {
  const w = { errors: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error') w.errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
  context.on('request', (r) => w.requests.push(r.url()));
  return w;
}

async function waitReady(page, timeout = 30000) {
  await page.waitForFunction(() => ['ready', 'failed'].includes(document.body.dataset.engine), null, { timeout });
  const state = await page.evaluate(() => document.body.dataset.engine);
  if (state !== 'ready') throw new Error(`engine ${state}: ${await page.textContent('#banner')}`);
}

async function uploadAndCollect(page, files, extraFiles = []) {
  await page.click('#tab-photos');
  const payload = files.map((f) => ({ name: path.basename(f), mimeType: 'image/' + path.extname(f).slice(1).replace('jpg', 'jpeg'), buffer: fs.readFileSync(f) }));
  await page.setInputFiles('#file-input', [...payload, ...extraFiles]);
  const n = files.length + extraFiles.length;
  await page.waitForFunction((n) => [...document.querySelectorAll('.card')].filter((c) => c.result || c.dataset.error).length === n,
    n, { timeout: 120000 });
  return page.evaluate(() => [...document.querySelectorAll('.card')].map((c) => ({
    name: c.dataset.name, result: c.result || null, error: c.dataset.error ? c.querySelector('.count').textContent : null })));
}

function compare(cards, want, tolerancePx) {
  const problems = [];
  for (const c of cards) {
    const o = want[c.name];
    if (!o) continue;
    if (!c.result) { problems.push(`${c.name}: ${c.error}`); continue; }
    if (c.result.faces.length !== o.faces.length) {
      problems.push(`${c.name}: ${c.result.faces.length} faces, CLI ${o.faces.length}`);
      continue;
    }
    // The page decodes a JPEG with the browser or stb, the CLI with libjpeg-turbo: pixels differ
    // slightly, so a face the CLI finds a coin toss (its top two probabilities within 0.1) may go
    // either way; every other face must get the CLI's label. Faces are in the same (left to
    // right) order.
    c.result.faces.forEach((f, i) => {
      const p = Object.values(o.faces[i].probs || {}).sort((a, b) => b - a);
      const tossUp = p.length >= 2 && p[0] - p[1] < 0.1;
      if (f.label !== o.faces[i].label && !tossUp) {
        problems.push(`${c.name}: face ${i} ${f.label}, CLI ${o.faces[i].label} (${p.map((v) => v.toFixed(2))}); ` +
          `labels ${labelsOf(c.result)}, CLI ${labelsOf(o)}`);
      }
    });
    // Native and wasm float arithmetic differ in the last bits, and weighted NMS averages
    // boxes: a tolerance in photo pixels, at least 0.1% of the photo's longer side.
    const tol = Math.max(tolerancePx, 0.001 * Math.max(o.width || 0, o.height || 0));
    c.result.faces.forEach((f, i) => {
      const d = Math.max(...f.box.map((v, k) => Math.abs(v - o.faces[i].box[k])));
      if (d > tol) problems.push(`${c.name}: face ${i} box differs by ${d.toFixed(2)} px (tolerance ${tol.toFixed(2)})`);
    });
  }
  return problems;
}

// ---- tests
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const assert = (ok, msg) => { if (!ok) throw new Error(msg); };
let base, want, simdCards;
const measured = {};

test('photos (SIMD): counts and labels match the native CLI; a corrupt file is reported, the rest go on', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?mode=photos');
  await waitReady(page);
  assert(await page.evaluate(() => document.body.dataset.flavor) === 'simd', 'expected the SIMD engine');
  const broken = { name: 'broken.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is not a JPEG at all') };
  const cards = await uploadAndCollect(page, PHOTOS, [broken]);
  simdCards = cards;
  const bad = cards.find((c) => c.name === 'broken.jpg');
  assert(bad && bad.error && /not a supported image/i.test(bad.error), `broken.jpg: expected a clear message, got ${JSON.stringify(bad)}`);
  const problems = compare(cards, want, 1.0);
  assert(problems.length === 0, problems.join('; '));
  const groupFaces = cards.filter((c) => /^group_nomask_/.test(c.name)).reduce((s, c) => s + c.result.faces.length, 0);
  log(`photos: ${cards.map((c) => `${c.name}=${c.result ? c.result.faces.length : 'error'}`).join(' ')}; group photos: ${groupFaces} faces`);
  await page.screenshot({ path: path.join(OUT, 'photos.png'), fullPage: true });
  // "Download annotated" gives a full-size JPEG.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('.card button')]);
  await download.saveAs(path.join(OUT, 'annotated.jpg'));
  assert(/-annotated\.jpg$/.test(download.suggestedFilename()), `download name ${download.suggestedFilename()}`);
  assert(fs.statSync(path.join(OUT, 'annotated.jpg')).size > 10000, 'the annotated download is too small');
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('photos (no SIMD, ?simd=0): same results as the SIMD build', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?simd=0&mode=photos');
  await waitReady(page);
  assert(await page.evaluate(() => document.body.dataset.flavor) === 'nosimd', 'expected the non-SIMD engine');
  const cards = await uploadAndCollect(page, PHOTOS);
  const problems = compare(cards, want, 1.0);
  if (simdCards) {
    const simd = Object.fromEntries(simdCards.filter((c) => c.result).map((c) => [c.name, c.result]));
    problems.push(...compare(cards, simd, 0.5).map((p) => `vs SIMD: ${p}`));
  }
  assert(problems.length === 0, problems.join('; '));
  await page.screenshot({ path: path.join(OUT, 'photos-nosimd.png'), fullPage: true });
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('int8 weights (?precision=int8): the page loads the -int8.fmm models and matches the CLI with --precision int8', async ({ context }) => {
  const files = ['detector-int8.fmm', 'classifier-int8.fmm'];
  if (!files.every((f) => fs.existsSync(path.join(MODEL_DIR, f)))) {
    log(`int8: skipped, ${MODEL_DIR} has no ${files.join(' / ')}`);
    return;
  }
  const want8 = oracle(PHOTOS, ['--precision', 'int8']);
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?mode=photos&precision=int8');
  await waitReady(page);
  const cards = await uploadAndCollect(page, PHOTOS);
  const problems = compare(cards, want8, 1.0);
  const fetched = w.requests.map((u) => new URL(u).pathname.split('/').pop());
  for (const f of files) if (!fetched.includes(f)) problems.push(`${f} was not fetched`);
  assert(problems.length === 0, problems.join('; '));
  // The same labels as the float models on the demo photos (the README's accuracy numbers say how
  // close they are elsewhere); a face count may differ only where a score is at the threshold.
  const differ = Object.keys(want8).filter((k) => labelsOf(want8[k]) !== labelsOf(want[k]));
  log(`int8: ${cards.map((c) => `${c.name}=${c.result.faces.length}`).join(' ')}; labels differing from float: ${differ.join(' ') || 'none'}`);
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('threads: the service worker isolates the page, which runs 2 threads with ?threads=2 (by default only with >= 4 cores); same faces (0.5 px) as 1 thread and as without isolation (?coi=0)', async ({ context }) => {
  const photos = PHOTOS.slice(0, 3);
  const run = async (query, isolated, threads) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(base + '?mode=photos' + query);
    await waitReady(page);
    const got = await page.evaluate(() => ({ isolated: self.crossOriginIsolated, threads: Number(document.body.dataset.threads),
      flavor: document.body.dataset.flavor, cores: navigator.hardwareConcurrency }));
    const wantThreads = threads !== 'auto' ? threads : isolated && got.cores >= 4 ? 2 : 1;
    assert(got.isolated === isolated && got.threads === wantThreads && got.flavor === 'simd',
      `${query || 'default'}: ${JSON.stringify(got)}, expected isolated ${isolated}, ${wantThreads} threads, simd`);
    const cards = await uploadAndCollect(page, photos);
    let apiError = null;
    if (!isolated) {  // asking for threads where there are none is a clear error, not a silent fallback
      apiError = await page.evaluate(async () => {
        const { createFaceMask } = await import('./facemask.js');
        const fm = createFaceMask({ threads: 2 });
        return fm.ready.then(() => 'no error', (e) => e.message).finally(() => fm.destroy());
      });
      assert(/not cross-origin isolated/.test(apiError), `createFaceMask({threads: 2}) without isolation: ${apiError}`);
    }
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
    return { cards, got };
  };
  const two = await run('&threads=2', true, 2);
  const one = await run('', true, 'auto');
  const plain = await run('&coi=0', false, 'auto');
  const ref = Object.fromEntries(two.cards.filter((c) => c.result).map((c) => [c.name, c.result]));
  const problems = [...compare(two.cards, want, 1.0),
    ...compare(one.cards, ref, 0.5).map((p) => `1 thread vs ${two.got.threads}: ${p}`),
    ...compare(plain.cards, ref, 0.5).map((p) => `not isolated vs ${two.got.threads} threads: ${p}`)];
  assert(problems.length === 0, problems.join('; '));
  log(`threads: isolated page ran ${two.got.threads} threads with ?threads=2, ${one.got.threads} by default (${two.got.cores} cores), ?coi=0 one; ` +
    `${two.cards.reduce((s, c) => s + c.result.faces.length, 0)} faces alike in ${photos.length} photos`);
});

test('camera: fake webcam gives boxes (and labels), FPS and ms per frame are shown', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base);
  await waitReady(page);
  await page.click('#cam-start');
  await page.waitForFunction(() => Number(document.getElementById('cam-perf').dataset.frames) >= 5, null, { timeout: 20000 });
  // V8 tiers up over the first seconds: measure after warming up by time.
  await page.waitForTimeout(4000);
  const samples = [];
  for (let i = 0; i < 5; i++) {
    await page.waitForTimeout(1000);
    samples.push(await page.evaluate(() => ({ ...document.getElementById('cam-perf').dataset,
      faces: Number(document.getElementById('cam-summary').dataset.faces), summary: document.getElementById('cam-summary').textContent })));
  }
  const last = samples[samples.length - 1];
  // The oracle is the CLI on the photo itself (on a still photo the engine also looks at tiles,
  // which video frames never do, so the CLI on the frame is not comparable).
  const frame = want[path.basename(PIC2)];
  log(`camera: "${last.summary}" (CLI on the photo: ${frame.faces.length} faces, ${labelsOf(frame)}); ` +
    samples.map((s) => `${s.ms} ms (engine ${s.engineMs}) ${s.fps} FPS`).join(' | '));
  measured.ms = samples.map((s) => Number(s.ms)).sort((a, b) => a - b)[2];
  measured.engineMs = samples.map((s) => Number(s.engineMs)).sort((a, b) => a - b)[2];
  measured.fps = samples.map((s) => Number(s.fps)).sort((a, b) => a - b)[2];
  assert(measured.fps > 0 && measured.ms > 0, 'no FPS / ms per frame shown');
  assert(samples.every((s) => s.faces === frame.faces.length), `camera face counts ${samples.map((s) => s.faces)}, CLI ${frame.faces.length}`);
  const lastResult = await page.evaluate(() => window.facemaskPage.camera.lastResult);
  if (frame.faces.some((f) => f.label)) {  // with the classifier: the same labels as the CLI
    // A video frame (640x480, through YUV) is not the JPEG: a face the CLI itself is unsure of
    // (top probability < 0.8) may go either way; a face it is sure of must get the same label, or
    // be marked unsure on the camera (doubt is allowed, a sure contradiction is not), and at
    // least two must agree. Faces are paired left to right (the frame is the photo scaled, so the
    // order is the same).
    const byX = (faces) => [...faces].sort((a, b) => (a.box[0] + a.box[2]) - (b.box[0] + b.box[2]));
    const cli = byX(frame.faces), cam = byX(lastResult.faces);
    const sure = cli.map((f, i) => i).filter((i) => Math.max(...Object.values(cli[i].probs)) >= 0.8);
    assert(sure.length >= 2, `the CLI is sure of only ${sure.length} faces: ${labelsOf(frame)}`);
    const differ = sure.filter((i) => cam[i].label !== cli[i].label);
    const contradicted = differ.filter((i) => cam[i].confident !== false);
    assert(contradicted.length === 0 && sure.length - differ.length >= 2,
      `camera labels ${labelsOf(lastResult)}, CLI ${labelsOf(frame)}; faces the CLI is sure of that differ: ` +
      differ.map((i) => `#${i} ${cam[i].label}${cam[i].confident === false ? ' (unsure)' : ''} vs ${cli[i].label}`).join(', '));
    if (differ.length) log(`camera: the CLI's sure ${differ.map((i) => cli[i].label).join(', ')} is unsure on the camera (${differ.map((i) => cam[i].label).join(', ')})`);
    assert(/masked|without|incorrectly/.test(last.summary), `no labels in the camera summary: ${last.summary}`);
  }
  const ids = lastResult.faces.map((f) => f.id);
  assert(ids.every((id) => Number.isInteger(id)), `video faces without a tracking id: ${ids}`);
  await page.screenshot({ path: path.join(OUT, 'camera.png'), fullPage: true });
  // Pause stops the frame counter.
  await page.click('#cam-pause');
  const f0 = await page.evaluate(() => Number(document.getElementById('cam-perf').dataset.frames));
  await page.waitForTimeout(500);
  const f1 = await page.evaluate(() => Number(document.getElementById('cam-perf').dataset.frames));
  assert(f1 - f0 <= 1, `frames went on while paused (${f0} -> ${f1})`);
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('camera faults: the track ends mid-stream, then repeated camera switches; the page recovers', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base);
  await waitReady(page);
  const frames = () => page.evaluate(() => Number(document.getElementById('cam-perf').dataset.frames || 0));
  await page.click('#cam-start');
  await page.waitForFunction(() => Number(document.getElementById('cam-perf').dataset.frames) >= 3, null, { timeout: 20000 });
  // Unplug: the browser ends the track (simulated with the event the browser fires).
  await page.evaluate(() => document.getElementById('cam-video').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended')));
  await page.waitForFunction(() => /camera stopped/.test(document.getElementById('cam-message').textContent), null, { timeout: 5000 });
  assert((await page.textContent('#cam-start')) === 'Start camera', 'start button not reset after the track ended');
  // Start again, then switch cameras five times in a row (each switch reopens the stream).
  await page.click('#cam-start');
  const options = await page.evaluate(() => [...document.getElementById('cam-select').options].map((o) => o.value));
  assert(options.length >= 2, `camera choices: ${options}`);
  for (let i = 0; i < 5; i++) await page.selectOption('#cam-select', options[i % options.length]);
  const before = await frames();
  await page.waitForFunction((n) => Number(document.getElementById('cam-perf').dataset.frames) >= n + 5, before, { timeout: 20000 });
  const faces = await page.evaluate(() => Number(document.getElementById('cam-summary').dataset.faces));
  assert(faces === want[path.basename(PIC2)].faces.length, `faces after the switches: ${faces}`);
  assert(!/camera stopped/.test(await page.textContent('#cam-message')), 'stale fault message after recovery');
  await page.click('#cam-start');  // stop
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('soak: 600 frames of a moving fake camera; after 200 frames the wasm memory does not grow, malloc\'d bytes within +64 KB, JS heaps within +2 MB; no errors', async () => {
  // The same sampler and checks as tools/soak-browser (10,000 frames), in its own browser.
  const r = await soak({ base, frames: 600, every: 100, warmup: 200, jsToleranceMB: 2 });
  const g = r.growth;
  log(`soak (600 frames):\n${table(r.samples, r.baseline)}` + (g ? `\n[e2e] growth after frame ${r.samples[r.baseline].frames}: ` +
    `wasm ${g.wasmHeapBytes} bytes (malloc'd ${g.wasmUsedBytes}), JS page ${g.pageJsMB} MB, worker ${g.workerJsMB} MB, Blink page ${g.pageBlinkMB} MB, worker ${g.workerBlinkMB} MB` : ''));
  assert(r.problems.length === 0, r.problems.join('; '));
});

test('your own model: a converted Keras classifier on each face, and a digit model on whole photos', async ({ context }) => {
  const K = path.resolve(ROOT, '../shared/fixtures/keras');
  if (!fs.existsSync(K)) { log('your own model: ../shared/fixtures/keras is absent; nothing to convert'); return; }
  const run = (args) => {
    const r = spawnSync(CLI, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`facemask ${args[0]} failed: ${r.stderr}`);
    return r.stdout;
  };
  // 1. convert (the CLI), 2. the CLI's answers are the oracle, 3. load them in the page.
  const mask = path.join(OUT, 'own-mask.fmm'), digits = path.join(OUT, 'own-digits.fmm');
  run(['convert', path.join(K, 'facemask_vaddi_tfkeras2.8/face_mask_model.h5'), '-o', mask,
    '--labels', 'no_mask,mask', '--scale', '0.0039215686', '--bgr']);
  run(['convert', path.join(K, 'tfjs_mnist_mrinal_tfkeras2.2.4/model_layers/model.json'), '-o', digits]);
  const faces = JSON.parse(run(['detect', '--json', '--classifier', mask, PIC2]).trim());
  const digit = path.join(K, 'data/mnist_test/first200/0000.png');
  const digitWant = JSON.parse(run(['classify', '--json', '--model', digits, digit]).trim());
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?mode=photos');
  await waitReady(page);
  await page.click('#tab-photos');
  await page.setInputFiles('#own-model', mask);
  await page.waitForFunction(() => /Using your model own-mask.fmm on each face/.test(document.getElementById('own-model-status').textContent), null, { timeout: 30000 });
  let cards = await uploadAndCollect(page, [PIC2]);
  const problems = compare(cards, { [path.basename(PIC2)]: faces }, 1.0);
  assert(problems.length === 0, problems.join('; '));
  assert(cards[0].result.faces.every((f) => ['mask', 'no_mask'].includes(f.label)), `labels: ${labelsOf(cards[0].result)}`);
  await page.selectOption('#own-scope', 'image');
  await page.setInputFiles('#own-model', digits);
  await page.waitForFunction(() => /Using your model own-digits.fmm on each whole photo/.test(document.getElementById('own-model-status').textContent), null, { timeout: 30000 });
  await page.evaluate(() => { document.getElementById('grid').textContent = ''; });
  cards = await uploadAndCollect(page, [digit]);
  const got = cards[0].result && cards[0].result.image;
  assert(got && got.label === digitWant.label, `whole photo: ${JSON.stringify(cards)}, CLI ${JSON.stringify(digitWant)}`);
  const maxDiff = Math.max(...Object.keys(digitWant.probs).map((k) => Math.abs(digitWant.probs[k] - got.probs[k])));
  assert(maxDiff < 1e-3, `whole-photo probabilities differ from the CLI by ${maxDiff}`);
  log(`your own model: faces ${labelsOf(cards.length ? faces : faces)}; digit ${got.label} (CLI ${digitWant.label})`);
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('network: only this origin, nothing after load; offline reload works (service worker)', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?mode=photos');
  await waitReady(page);
  await page.evaluate(() => navigator.serviceWorker.ready);
  const origin = new URL(base).origin;
  const foreign = w.requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert(foreign.length === 0, `requests to other origins: ${foreign.join(', ')}`);
  const before = w.requests.length;
  await uploadAndCollect(page, [PIC2]);
  const after = w.requests.slice(before).filter((u) => !u.startsWith('blob:'));  // (a card's picture is a blob: URL)
  assert(after.length === 0, `requests after load: ${after.join(', ')}`);
  // Offline: reload from the service worker's cache.
  await context.setOffline(true);
  try {
    await page.reload();
    await waitReady(page);
    const cards = await uploadAndCollect(page, [PIC2]);
    const problems = compare(cards, want, 1.0);
    assert(problems.length === 0, `offline: ${problems.join('; ')}`);
    await page.screenshot({ path: path.join(OUT, 'offline.png'), fullPage: true });
  } finally {
    await context.setOffline(false);
  }
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('photos by drag-and-drop and by paste, while the engine is still loading', async () => {
  // The engine must still be loading when the photos arrive, however fast this machine is: a fresh
  // browser profile (no service worker cache) against a server that holds the models until the
  // photos were dropped and pasted.
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const heldFiles = new Set();
  const server = await serveStatic(WEB, SUB, { hold: (rel) => (/\.fmm$/.test(rel) ? (heldFiles.add(rel), held) : null) });
  const { context, close } = await launch();
  try {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(`http://127.0.0.1:${server.address().port}${SUB}?mode=photos`, { waitUntil: 'commit' });
    // As soon as the page's script runs (data-engine is set when the engine starts loading).
    await page.waitForFunction(() => document.body && document.body.dataset.engine, null, { timeout: 30000, polling: 5 });
    const b64 = fs.readFileSync(PIC2).toString('base64');
    const engineAtDrop = await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = () => { const d = new DataTransfer(); d.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' })); return d; };
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt(), bubbles: true, cancelable: true }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt(), bubbles: true, cancelable: true }));
      return document.body.dataset.engine;
    }, b64);
    assert(engineAtDrop === 'loading', `the engine was already ${engineAtDrop} when the photos arrived`);
    log(`photos arrived while the engine was ${engineAtDrop}; models held: ${[...heldFiles].join(' ') || 'none requested yet'}`);
    release();
    await page.waitForFunction(() => [...document.querySelectorAll('.card')].filter((c) => c.result).length === 2, null, { timeout: 30000 });
    const faces = await page.evaluate(() => [...document.querySelectorAll('.card')].map((c) => c.result.faces.length));
    const n = want[path.basename(PIC2)].faces.length;
    assert(faces.every((f) => f === n), `faces ${faces}, CLI ${n}`);
    assert(w.errors.length === 0, w.errors.join('; '));
  } finally {
    release();
    await close();
    server.close();
  }
});

test('JS API: argument checks give clear errors, calls are queued, destroy is final', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(base + '?mode=photos');
  await waitReady(page);
  const out = await page.evaluate(async () => {
    const { createFaceMask } = await import('./facemask.js');
    const r = {};
    const msg = async (p) => { try { await p; return 'no error'; } catch (e) { return `${e.name}: ${e.message}`; } };
    r.badOption = await msg((async () => createFaceMask({ nope: 1 }))());
    r.badScore = await msg((async () => createFaceMask({ minScore: 2 }))());
    r.badPrecision = await msg((async () => createFaceMask({ precision: 'int4' }))());
    const fm = createFaceMask();
    r.beforeReady = await msg(fm.detect(new ImageData(4, 4)));
    await fm.ready;
    r.nothing = await msg(fm.detect());
    r.object = await msg(fm.detect({}));
    r.string = await msg(fm.detect('photo.jpg'));
    const c0 = document.createElement('canvas'); c0.width = 0;
    r.zeroCanvas = await msg(fm.detect(c0));
    const bmp = await createImageBitmap(new ImageData(8, 8)); bmp.close();
    r.closedBitmap = await msg(fm.detect(bmp));
    r.emptyBytes = await msg(fm.detect(new Uint8Array(0)));
    r.garbage = await msg(fm.detect(new Uint8Array([1, 2, 3, 4, 5])));
    r.img = await msg(fm.detect(new Image()));
    r.badTimestamp = await msg(fm.detect(new ImageData(8, 8), { track: true, timestamp: NaN }));
    // Concurrent calls are queued: all resolve, in order.
    const c = document.createElement('canvas'); c.width = 64; c.height = 48;
    const all = await Promise.all([fm.detect(c), fm.detect(new ImageData(32, 32)), fm.detect(c)]);
    r.queued = all.map((x) => `${x.width}x${x.height}:${x.faces.length}`).join(',');
    r.afterGarbageStillWorks = (await fm.detect(c)).width === 64;
    fm.destroy();
    r.afterDestroy = await msg(fm.detect(c));
    const fm2 = createFaceMask(); fm2.destroy();
    r.destroyWhileLoading = await msg(fm2.ready);
    // Labels are a model's text: prototype names must be drawn as words, not looked up.
    const draw = await import('./draw.js');
    const hostile = { width: 64, height: 48, faces: ['constructor', '__proto__', 'toString', 'máscara'].map((label, i) =>
      ({ box: [i * 10, 0, i * 10 + 8, 8], score: 0.9, label, probs: { [label]: 0.7 } })) };
    const canvas = document.createElement('canvas'); canvas.width = 64; canvas.height = 48;
    r.hostileLabels = await msg((async () => {
      draw.drawResult(canvas.getContext('2d'), null, hostile);
      return hostile.faces.map((f) => draw.faceText(f)).join('|') + ' / ' + draw.summary(hostile);
    })().then((t) => { throw new Error(t); }));
    // A face the engine doubts is worded as a guess and counted apart.
    const doubt = { width: 64, height: 48, faces: [
      { box: [0, 0, 8, 8], score: 0.9, label: 'with_mask', probs: { with_mask: 0.55 }, confident: false },
      { box: [10, 0, 18, 8], score: 0.9, label: 'without_mask', probs: { without_mask: 0.95 }, confident: true },
      { box: [20, 0, 28, 8], score: 0.9, label: 'constructor', probs: { constructor: 0.4 }, confident: false }] };
    draw.drawResult(canvas.getContext('2d'), null, doubt);
    r.unsure = doubt.faces.map((f) => draw.faceText(f)).join('|') + ' / ' + draw.summary(doubt);
    return r;
  });
  log('api:', JSON.stringify(out));
  const expect = {
    badOption: /TypeError: facemask: unknown option 'nope'/, badScore: /RangeError: .*minScore/,
    badPrecision: /TypeError: facemask: options.precision must be 'float' or 'int8'/,
    beforeReady: /not ready yet/, nothing: /needs an image/, object: /TypeError: .*got Object/,
    string: /TypeError: .*got String/, zeroCanvas: /no pixels/, closedBitmap: /no pixels/,
    emptyBytes: /empty/, garbage: /could not process/, img: /no pixels|not finished loading/,
    badTimestamp: /timestamp/, queued: /^64x48:\d+,32x32:\d+,64x48:\d+$/, afterGarbageStillWorks: /^true$/,
    afterDestroy: /after destroy/, destroyWhileLoading: /destroyed before/,
    hostileLabels: /^Error: constructor 70%\|__proto__ 70%\|toString 70%\|máscara 70% \/ 4 faces$/,
    unsure: /^Unsure: mask\? 55%\|No mask 95%\|Unsure: constructor\? 40% \/ 3 faces: 1 without, 2 unsure$/,
  };
  const problems = Object.entries(expect).filter(([k, re]) => !re.test(String(out[k]))).map(([k]) => `${k}: ${out[k]}`);
  assert(problems.length === 0, problems.join('; '));
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('single file (file://): the inlined page detects the same faces', async ({ context }) => {
  const page = await context.newPage();
  const w = watch(context, page);
  await page.goto(pathToFileURL(path.join(WEB, 'facemask-single.html')).href + '?mode=photos');
  await waitReady(page, 60000);
  const cards = await uploadAndCollect(page, [PIC2]);
  const problems = compare(cards, want, 1.0);
  assert(problems.length === 0, problems.join('; '));
  await page.screenshot({ path: path.join(OUT, 'single-file.png'), fullPage: true });
  const foreign = w.requests.filter((u) => !u.startsWith('file:') && !u.startsWith('blob:') && !u.startsWith('data:'));
  assert(foreign.length === 0, `requests: ${foreign.join(', ')}`);
  assert(w.errors.length === 0, w.errors.join('; '));
  await page.close();
});

test('camera denied: a clear message, photo mode still works', async () => {
  const { context, close } = await launch(['--use-fake-device-for-media-stream']);
  try {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(base);
    await waitReady(page);
    await page.click('#cam-start');
    await page.waitForFunction(() => document.getElementById('cam-message').textContent.length > 0, null, { timeout: 15000 });
    const text = await page.textContent('#cam-message');
    assert(/denied|No camera|could not be opened/.test(text) && /Photo mode still works/.test(text), `message: ${text}`);
    const cards = await uploadAndCollect(page, [PIC2]);
    assert(compare(cards, want, 1.0).length === 0, 'photo mode after camera denial');
    assert(w.errors.length === 0, w.errors.join('; '));
  } finally {
    await close();
  }
});

test('no WebAssembly: a clear message instead of the engine', async () => {
  // Chromium 156 ignores --js-flags=--noexpose-wasm: take WebAssembly away from the page instead.
  const { context, close } = await launch();
  try {
    await context.addInitScript(() => { delete globalThis.WebAssembly; });
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(base);
    await page.waitForFunction(() => document.body.dataset.engine === 'failed', null, { timeout: 15000 });
    const text = await page.textContent('#banner');
    assert(/cannot run WebAssembly/.test(text), `banner: ${text}`);
    assert(w.errors.length === 0, w.errors.join('; '));
  } finally {
    await close();
  }
});

// ---- main
registerHostile({ test, assert, log, watch, waitReady, uploadAndCollect, compare, want: () => want, base: () => base, PIC2, OUT });
registerPackage({ test, assert, log, watch, waitReady, want: () => want, base: () => base, PIC2 });

async function main() {
  for (const f of [path.join(WEB, 'index.html'), path.join(WEB, 'facemask-single.html'), CLI]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing (tools/e2e builds it: run tools/e2e)`);
  }
  makeVideo();
  want = oracle(PHOTOS);
  log(`inputs: ${haveDemo ? DEMO : FIX + ' (the committed fixtures)'}; CLI: ` +
    Object.entries(want).map(([k, v]) => `${k}=${v.faces.length}`).join(' '));
  const server = await serve();
  base = `http://127.0.0.1:${server.address().port}${SUB}`;
  const { context, close } = await launch(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-video-capture=${Y4M}`]);
  let passed = 0, failed = 0;
  // FM_E2E_ONLY=REGEX runs only the tests whose names match (while working on them).
  const only = process.env.FM_E2E_ONLY ? new RegExp(process.env.FM_E2E_ONLY) : null;
  for (const t of tests) {
    if (only && !only.test(t.name)) continue;
    const t0 = Date.now();
    try {
      await t.fn({ context });
      passed++;
      log(`PASS ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      log(`FAIL ${t.name}: ${e.message.split('\n')[0]}`);
    }
  }
  await close();
  server.close();
  if (measured.ms) log(`Chromium, camera 640x480: ${measured.ms} ms per frame in the worker (engine ${measured.engineMs} ms), ${measured.fps} FPS (medians)`);
  log(`screenshots: ${fs.readdirSync(OUT).filter((f) => f.endsWith('.png')).map((f) => path.join('build/e2e', f)).join(' ')}`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error('[e2e]', e.stack || e.message);
  console.log('e2e: 0 passed, 1 failed');
  process.exit(1);
});
