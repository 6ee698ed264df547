// package.mjs - the npm package as another app uses it (added to tests/e2e/run.mjs's list by
// register()): a scratch app in a temp dir installs build/facemask-VERSION.tgz (tools/build-web
// packs it) with npm, type-checks its TypeScript against the package's facemask.d.ts with
// `tsc --strict` (and a wrong option must fail to compile), bundles with esbuild, serves the
// package's worker, engines and models under baseUrl, and finds the faces of a photo in Chromium.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ROOT, serveStatic } from './lib.mjs';

const MAIN_TS = `import { createFaceMask, type FaceMask, type Result } from 'facemask';

declare global {
  interface Window { facemaskResult?: Result; }
}

const status = document.getElementById('status') as HTMLElement;

async function run(): Promise<void> {
  // The bundle holds facemask.js; its worker, engines and models are served from ./facemask/.
  const fm: FaceMask = createFaceMask({ baseUrl: './facemask/', threads: 1, detectEvery: 2 });
  await fm.ready;
  const img = document.getElementById('photo') as HTMLImageElement;
  await img.decode();
  const result: Result = await fm.detect(img);
  const labels: string[] = result.faces.map((f) => \`\${f.label ?? 'face'}\${f.confident === false ? '?' : ''}\`);
  window.facemaskResult = result;
  status.textContent = \`\${result.faces.length} faces: \${labels.join(', ')} (engine \${fm.info?.version})\`;
  status.dataset.faces = String(result.faces.length);
  fm.destroy();
}

run().catch((e: unknown) => {
  status.textContent = \`error: \${e instanceof Error ? e.message : String(e)}\`;
  status.dataset.faces = '-1';
});
`;

// Must not compile: a wrong option value and a wrong result field.
const BAD_TS = `import { createFaceMask } from 'facemask';
const fm = createFaceMask({ threads: 9 });
fm.detect(new ImageData(1, 1)).then((r) => r.faces[0].mask);
`;

const INDEX = `<!doctype html><meta charset="utf-8"><title>scratch app</title><link rel="icon" href="data:,">
<img id="photo" src="photo.jpg" alt=""><p id="status">loading</p>
<script type="module" src="main.js"></script>
`;

// h: {test, assert, log, watch, waitReady, want(), base(), PIC2}
export function register(h) {
  const { test, assert, log, watch, waitReady, PIC2 } = h;

  test('load progress: onProgress reports the engine and each model as they download, ending at their file sizes; the page shows a bar', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    const pageProgress = await page.evaluate(() => ({ pct: document.body.dataset.loadProgress, hidden: document.getElementById('load-progress').hidden }));
    const r = await page.evaluate(async () => {
      const { createFaceMask } = await import('./facemask.js');
      const events = [];
      let bad = 'no error';
      try { createFaceMask({ onProgress: 'yes' }); } catch (e) { bad = `${e.name}: ${e.message}`; }
      const fm = createFaceMask({ onProgress: (p) => events.push(p), simd: true });
      await fm.ready;
      fm.destroy();
      const models = await (await fetch('models/models.json')).json();
      return { events, bad, models };
    });
    const web = path.join(ROOT, 'build/web');
    const size = { engine: fs.statSync(path.join(web, 'facemask-engine-simd.wasm')).size,
      detector: fs.statSync(path.join(web, 'models', r.models.detector)).size,
      classifier: fs.statSync(path.join(web, 'models', r.models.classifier)).size };
    const by = {};
    for (const e of r.events) (by[e.what] = by[e.what] || []).push(e);
    const summary = Object.entries(by).map(([k, v]) => `${k}: ${v.length} events, last ${v[v.length - 1].loaded}/${v[v.length - 1].total}`);
    log(`load progress: ${summary.join('; ')}; page bar ${pageProgress.pct}% (hidden ${pageProgress.hidden}); bad option: ${r.bad}`);
    for (const what of ['engine', 'detector', 'classifier']) {
      const v = by[what] || [];
      assert(v.length >= 1, `no progress for the ${what}`);
      const last = v[v.length - 1];
      assert(last.loaded === size[what] && last.total === size[what], `${what}: last ${last.loaded}/${last.total}, file ${size[what]}`);
      assert(v.every((e, i) => i === 0 || e.loaded >= v[i - 1].loaded), `${what}: loaded went back`);
    }
    assert(/TypeError: facemask: options.onProgress must be a function/.test(r.bad), r.bad);
    assert(pageProgress.pct === '100' && pageProgress.hidden, `page bar: ${JSON.stringify(pageProgress)}`);
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
  });

  test('tally: the people of the fake camera are counted once each with their settled labels; exports (CSV, JSON) and reset; the rules (blips, gaps, formula-safe CSV)', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base());
    await waitReady(page);
    await page.click('#cam-start');
    await page.waitForFunction(() => Number(document.getElementById('cam-perf').dataset.frames) >= 40, null, { timeout: 60000 });
    await page.click('#cam-pause');
    await page.waitForTimeout(600);  // the tally redraws at most twice a second
    const r = await page.evaluate(() => {
      const fm = window.facemaskPage.engine();
      const last = window.facemaskPage.camera.lastResult;
      const want = { people: last.faces.length, with_mask: 0, without_mask: 0, mask_worn_incorrectly: 0, unsure: 0 };
      for (const f of last.faces) want[f.confident === false ? 'unsure' : f.label]++;
      return { want, got: fm.tally.summary(), shown: { ...document.getElementById('tally-summary').dataset },
        text: document.getElementById('tally-summary').textContent, ids: last.faces.map((f) => f.id) };
    });
    log(`tally: "${r.text}"; last frame ids ${r.ids}`);
    for (const k of ['people', 'with_mask', 'without_mask', 'mask_worn_incorrectly', 'unsure']) {
      assert(r.got[k] === r.want[k], `${k}: tally ${r.got[k]}, the camera's faces ${r.want[k]} (${JSON.stringify(r.got)})`);
      assert(Number(r.shown[k]) === r.want[k], `${k}: page shows ${r.shown[k]}`);
    }
    const n = h.want()[path.basename(PIC2)].faces.length;
    assert(r.got.people === n, `people ${r.got.people}, faces in the photo ${n}`);
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#tally-csv')]);
    const csvText = fs.readFileSync(await csv.path(), 'utf8').trim().split('\n');
    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#tally-json')]);
    const j = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
    assert(csvText[0] === 'person,first_seen,last_seen,frames,label' && csvText.length === n + 1, `CSV: ${csvText.join(' | ')}`);
    assert(j.people.length === n && j.summary.people === n && Array.isArray(j.history), `JSON: ${JSON.stringify(j).slice(0, 200)}`);
    await page.click('#tally-reset');
    const afterReset = await page.evaluate(() => window.facemaskPage.engine().tally.summary().people);
    assert(afterReset === 0, `after reset: ${afterReset} people`);
    // The rules, on made-up results.
    const rules = await page.evaluate(async () => {
      const { Tally } = await import('./facemask.js');
      const t = new Tally();
      let now = 1e12;
      const frame = (faces) => { now += 40; t.add({ width: 1, height: 1, faces }, now); };
      for (let i = 0; i < 3; i++) frame([{ id: 1, label: 'with_mask', confident: true }]);  // a blip
      for (let i = 0; i < 10; i++) frame([{ id: 2, label: '=HYPERLINK("x")', confident: true }]);
      now += 5000;  // id 2 gone for 5 s, then back: a new person
      for (let i = 0; i < 10; i++) frame([{ id: 2, label: 'without_mask', confident: i < 3 }]);
      return { s: t.summary(), csv: t.toCSV() };
    });
    log(`tally rules: ${JSON.stringify(rules.s)}; CSV ${JSON.stringify(rules.csv)}`);
    assert(rules.s.people === 2 && rules.s.without_mask === 1, `rules: ${JSON.stringify(rules.s)}`);
    assert(rules.csv.includes(`"'=HYPERLINK(""x"")"`), `CSV escaping: ${rules.csv}`);
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
  });

  test('installable page: the web app manifest parses without errors, its icons load at their sizes, start_url opens offline', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    const cdp = await context.newCDPSession(page);
    const m = await cdp.send('Page.getAppManifest');
    assert(m.url && m.url.endsWith('/manifest.webmanifest'), `manifest url: ${m.url}`);
    assert(m.errors.length === 0, `manifest errors: ${JSON.stringify(m.errors)}`);
    const manifest = JSON.parse(m.data);
    const icons = await page.evaluate(async ([base, icons]) => Promise.all(icons.map(async (i) => {
      const r = await fetch(new URL(i.src, base));
      const b = await createImageBitmap(await r.blob());
      return { sizes: i.sizes, got: `${b.width}x${b.height}`, type: r.headers.get('content-type') };
    })), [m.url, manifest.icons]);
    const start = new URL(manifest.start_url, m.url).href;
    log(`manifest: ${manifest.short_name}, display ${manifest.display}, theme ${manifest.theme_color}, icons ${icons.map((i) => i.got).join(' ')}, start_url ${start}`);
    assert(icons.length >= 2 && icons.every((i) => i.sizes === i.got), `icons: ${JSON.stringify(icons)}`);
    assert(icons.some((i) => i.got === '512x512') && icons.some((i) => i.got === '192x192'), 'icons of 192 and 512 px');
    assert(manifest.display === 'standalone' && manifest.name && manifest.theme_color, `manifest: ${m.data}`);
    // Offline, from the service worker's cache.
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30000 });
    await context.setOffline(true);
    try {
      await page.goto(start);
      await waitReady(page);
    } finally {
      await context.setOffline(false);
    }
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
  });

  test('npm package: a scratch app installs the packed tarball, passes tsc --strict (a wrong option fails), bundles with esbuild and finds the faces of a photo', async ({ context }) => {
    const npmDir = path.resolve(process.env.FM_NPM_DIR || path.join(ROOT, 'build/npm'));
    const tgz = fs.readdirSync(path.join(ROOT, 'build')).filter((f) => /^facemask-.*\.tgz$/.test(f));
    assert(tgz.length === 1, `build/facemask-*.tgz: ${tgz.join(', ') || 'none'} (tools/build-web packs it)`);
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-app-'));
    const run = (cmd, args, what) => {
      const r = spawnSync(cmd, args, { cwd: app, encoding: 'utf8' });
      return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim(), what };
    };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
      name: 'scratch-app', private: true, type: 'module',
      dependencies: { facemask: `file:${path.join(ROOT, 'build', tgz[0])}` } }, null, 2));
    const installed = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], 'npm install');
    assert(installed.ok, `npm install: ${installed.out}`);
    const pkg = path.join(app, 'node_modules/facemask');
    const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
    fs.mkdirSync(path.join(app, 'src'));
    fs.writeFileSync(path.join(app, 'src/main.ts'), MAIN_TS);
    fs.writeFileSync(path.join(app, 'src/bad.ts'), BAD_TS);
    const tsc = path.join(npmDir, 'node_modules/typescript/bin/tsc');
    const tscArgs = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'es2022', '--moduleResolution', 'bundler',
      '--lib', 'es2022,dom,dom.iterable'];
    const good = run(process.execPath, [tsc, ...tscArgs, 'src/main.ts'], 'tsc');
    assert(good.ok, `tsc --strict src/main.ts: ${good.out}`);
    const bad = run(process.execPath, [tsc, ...tscArgs, 'src/bad.ts'], 'tsc');
    assert(!bad.ok && /bad.ts\(2,\d+\): error TS2322/.test(bad.out) && /Property 'mask' does not exist/.test(bad.out), `tsc accepted wrong code: ${bad.out}`);
    // Bundle with esbuild; the package's assets go next to the bundle under ./facemask/.
    const esbuild = createRequire(path.join(npmDir, 'package.json'))('esbuild');
    const dist = path.join(app, 'dist');
    esbuild.buildSync({ entryPoints: [path.join(app, 'src/main.ts')], bundle: true, format: 'esm', target: 'es2022',
      outfile: path.join(dist, 'main.js'), absWorkingDir: app, logLevel: 'silent' });
    fs.mkdirSync(path.join(dist, 'facemask'));
    for (const f of fs.readdirSync(pkg)) {
      if (f === 'worker.js' || f.startsWith('facemask-engine-') || f === 'models') {
        fs.cpSync(path.join(pkg, f), path.join(dist, 'facemask', f), { recursive: true });
      }
    }
    fs.writeFileSync(path.join(dist, 'index.html'), INDEX);
    fs.copyFileSync(PIC2, path.join(dist, 'photo.jpg'));
    const server = await serveStatic(dist, '/app/');
    const page = await context.newPage();
    const w = watch(context, page);
    try {
      await page.goto(`http://127.0.0.1:${server.address().port}/app/`);
      await page.waitForFunction(() => document.getElementById('status').dataset.faces, null, { timeout: 60000 });
      const status = await page.textContent('#status');
      const faces = await page.evaluate(() => window.facemaskResult ? window.facemaskResult.faces.length : -1);
      const n = h.want()[path.basename(PIC2)].faces.length;
      const bundle = fs.statSync(path.join(dist, 'main.js')).size;
      log(`npm package: ${tgz[0]} (${fs.statSync(path.join(ROOT, 'build', tgz[0])).size} bytes), version ${meta.version}; ` +
        `bundle main.js ${bundle} bytes; "${status}"`);
      assert(faces === n, `the scratch app found ${faces} faces, the CLI ${n}: ${status}`);
      assert(w.errors.length === 0, w.errors.join('; '));
    } finally {
      await page.close();
      server.close();
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
}
