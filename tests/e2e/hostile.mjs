// hostile.mjs - end-to-end tests of the page against hostile input and faults (issue 15), added
// to tests/e2e/run.mjs's list by register(): photos too large to hold, a 300-photo drop, a model
// file that decodes to too much, out of memory in the engine, engine crashes, a service-worker
// update while a tab is open, a deployment changing under the install, and two deployments on
// one origin.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ROOT, WEB, serveStatic } from './lib.mjs';

// A valid RGB PNG of w x h mid-grey pixels (deflated: small file, w*h*3 bytes once decoded).
function greyPng(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2;  // 8-bit RGB
  const row = w * 3 + 1;
  const raw = Buffer.alloc(row * h, 128);
  for (let y = 0; y < h; y++) raw[y * row] = 0;  // filter: none
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
}

// h: {test, assert, log, watch, waitReady, uploadAndCollect, compare, want(), base(), PIC2, OUT}
export function register(h) {
  const { test, assert, log, watch, waitReady, uploadAndCollect, compare, PIC2, OUT } = h;
  const cardsDone = (page, n, timeout = 120000) => page.waitForFunction(
    (n) => [...document.querySelectorAll('.card')].filter((c) => c.result || c.dataset.error).length >= n, n, { timeout });

  test('hostile photos: a 50 MP PNG and a 130 MB file are refused before the page decodes or reads them; the next photo works', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    const png = greyPng(7072, 7072);  // 50.0 megapixels, 150 MB decoded
    const cards = await uploadAndCollect(page, [PIC2], [{ name: 'fifty-megapixels.png', mimeType: 'image/png', buffer: png }]);
    // (made in the page: playwright passes at most 50 MB per file)
    await page.evaluate(() => window.facemaskPage.addFiles([new File([new Uint8Array(130 << 20)], 'huge.jpg', { type: 'image/jpeg' })]));
    await cardsDone(page, 3);
    const big = cards.find((c) => c.name === 'fifty-megapixels.png');
    const huge = await page.evaluate(() => {
      const c = [...document.querySelectorAll('.card')].find((x) => x.dataset.name === 'huge.jpg');
      return { error: c.dataset.error ? c.querySelector('.count').textContent : null };
    });
    assert(big.error && /limit of 40000000 pixels|megapixels/.test(big.error), `50 MP PNG: ${big.error || 'no error'}`);
    assert(huge.error && /files over 128 MB are refused/.test(huge.error), `130 MB file: ${huge.error || 'no error'}`);
    const problems = compare(cards.filter((c) => c.name === path.basename(PIC2)), h.want(), 1.0);
    assert(problems.length === 0, problems.join('; '));
    // The engine never held the 150 MB of pixels (its memory starts at 32 MB).
    const heap = await page.evaluate(() => window.facemaskPage.engine().wasmHeapBytes);
    log(`hostile photos: ${big.error} | ${huge.error} | wasm memory ${(heap / 2 ** 20).toFixed(0)} MB`);
    assert(heap < 96 * 2 ** 20, `the engine's memory grew to ${heap} bytes`);
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
  });

  test('300 photos dropped at once: every card done, each a small JPEG <img> (no canvas kept), memory bounded', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    const t0 = Date.now();
    const b64 = fs.readFileSync(path.join(ROOT, 'tests/fixtures/three_faces_1mask_1nomask_1chin.jpg')).toString('base64');
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const files = Array.from({ length: 300 }, (_, i) => new File([bytes], `photo-${i}.jpg`, { type: 'image/jpeg' }));
      window.facemaskPage.addFiles(files);
    }, b64);
    await cardsDone(page, 300, 400000);
    const r = await page.evaluate(() => {
      const cards = [...document.querySelectorAll('.card')];
      return {
        done: cards.filter((c) => c.result).length, faces: cards.map((c) => (c.result ? c.result.faces.length : -1)),
        canvases: document.querySelectorAll('#grid canvas').length,
        blobs: [...document.querySelectorAll('#grid img')].filter((i) => i.src.startsWith('blob:')).length,
        jsHeap: performance.memory ? performance.memory.usedJSHeapSize : 0,
        wasm: window.facemaskPage.engine().wasmHeapBytes,
      };
    });
    log(`300 photos: ${((Date.now() - t0) / 1000).toFixed(1)} s; ${r.done} done, ${r.canvases} canvases, ${r.blobs} <img>s; ` +
      `JS heap ${(r.jsHeap / 2 ** 20).toFixed(1)} MB, wasm memory ${(r.wasm / 2 ** 20).toFixed(0)} MB`);
    assert(r.done === 300, `${r.done} of 300 photos done`);
    assert(new Set(r.faces).size === 1 && r.faces[0] === 3, `faces per photo: ${[...new Set(r.faces)]}`);
    assert(r.canvases === 0 && r.blobs === 300, `${r.canvases} canvases, ${r.blobs} blob images in the grid`);
    assert(r.jsHeap < 100 * 2 ** 20, `JS heap ${r.jsHeap} bytes`);
    assert(r.wasm <= 64 * 2 ** 20, `wasm memory ${r.wasm} bytes`);
    assert(w.errors.length === 0, w.errors.join('; '));
    await page.close();
  });

  test('your own model that decodes to 384 MiB: refused with the reason before any decoding; ours keeps working', async ({ context }) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-fixtures-'));
    const made = spawnSync(path.join(ROOT, 'build/native-release/tests/fm_cli_fixtures'), [path.join(ROOT, 'model'), dir], { encoding: 'utf8' });
    assert(made.status === 0, `fm_cli_fixtures: ${made.stderr}`);
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    await page.setInputFiles('#own-model', path.join(dir, 'decoded-bomb.fmm'));
    await page.waitForFunction(() => /could not be used/.test(document.getElementById('own-model-status').textContent), null, { timeout: 30000 });
    const status = await page.textContent('#own-model-status');
    log(`own model bomb: ${status}`);
    assert(/decode to 402653184 bytes, over the limit of 268435456/.test(status), status);
    await waitReady(page);
    const cards = await uploadAndCollect(page, [PIC2]);
    const problems = compare(cards, h.want(), 1.0);
    assert(problems.length === 0, problems.join('; '));
    assert(w.errors.length === 0, w.errors.join('; '));
    fs.rmSync(dir, { recursive: true, force: true });
    await page.close();
  });

  test('engine faults: out of memory is an ordinary error (no restart); a crash rejects that call, a new engine runs the next; 3 in a row fail for good; the page (photos, camera) goes on', async ({ context }) => {
    const page = await context.newPage();
    const w = watch(context, page);
    await page.goto(h.base() + '?mode=photos');
    await waitReady(page);
    const pic = fs.readFileSync(PIC2).toString('base64');
    // Out of memory: the engine's WebAssembly memory refuses to grow, then a 5000 x 5000 PNG
    // (75 MB of pixels; the memory starts at 32 MB).
    const bigPng = greyPng(5000, 5000).toString('base64');
    const api = await page.evaluate(async ([pic, bigPng]) => {
      const { createFaceMask } = await import('./facemask.js');
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const msg = async (p) => { try { const r = await p; return `faces ${r.faces.length}`; } catch (e) { return `Error: ${e.message}`; } };
      const fm = createFaceMask();
      await fm.ready;
      window.__fm = fm;
      return { first: await msg(fm.detect(bytes(pic))), big: bytes(bigPng).length };
    }, [pic, bigPng]);
    // The instance's worker is the newest engine worker (the page's own came first).
    const worker = page.workers().filter((x) => x.url().endsWith('/worker.js')).pop();
    assert(worker, `no engine worker among ${page.workers().map((x) => x.url())}`);
    await worker.evaluate(() => { WebAssembly.Memory.prototype.grow = () => { throw new RangeError('test: no more memory'); }; });
    const oom = await page.evaluate(async (bigPng) => {
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      try { await window.__fm.detect(bytes(bigPng)); return 'no error'; } catch (e) { return e.message; }
    }, bigPng);
    const after = await page.evaluate(async (pic) => {
      const fm = window.__fm;
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const msg = async (p) => { try { const r = await p; return `faces ${r.faces.length}`; } catch (e) { return `Error: ${e.message}`; } };
      const r = { oomNext: await msg(fm.detect(bytes(pic))), restartsAfterOom: fm.restarts };
      // A crash (the engine reads outside its memory) while a photo is being analysed.
      fm._worker.postMessage({ type: 'crash' });
      r.crashed = await msg(fm.detect(bytes(pic)));
      r.next = await msg(fm.detect(bytes(pic)));
      r.restarts = fm.restarts;
      // Three crashes in a row: the instance gives up with a clear message.
      for (let i = 0; i < 3; i++) {
        fm._worker.postMessage({ type: 'crash' });
        r[`again${i}`] = await msg(fm.detect(bytes(pic)));
      }
      r.final = await msg(fm.detect(bytes(pic)));
      return r;
    }, pic);
    log(`engine faults: oom "${oom}"; then ${after.oomNext}; crash "${after.crashed}"; next ${after.next}; ` +
      `3 in a row: "${after.again2}"; then "${after.final}"`);
    const n = h.want()[path.basename(PIC2)].faces.length;
    assert(api.first === `faces ${n}`, `first detect: ${api.first}`);
    assert(/out of memory|outofmem|bad_alloc|allocat/i.test(oom) && !/crashed/.test(oom), `out of memory: ${oom}`);
    assert(after.oomNext === `faces ${n}` && after.restartsAfterOom === 0, `after out of memory: ${after.oomNext}, ${after.restartsAfterOom} restarts`);
    assert(/the engine crashed on this image/.test(after.crashed), `crash: ${after.crashed}`);
    assert(after.next === `faces ${n}` && after.restarts === 1, `after the crash: ${after.next}, ${after.restarts} restarts`);
    assert(/crashed 3 times in a row/.test(after.again2) && /not usable/.test(after.final), `3 crashes: ${after.again2} / ${after.final}`);
    // The page: a crash during a photo, and the next photo still works.
    await page.evaluate(() => window.facemaskPage.engine()._worker.postMessage({ type: 'crash' }));
    const cards = await uploadAndCollect(page, [PIC2]);  // may meet the crash
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      window.facemaskPage.addFiles([new File([bytes], 'next.jpg', { type: 'image/jpeg' })]);
    }, pic);
    await cardsDone(page, 2);
    const next = await page.evaluate(() => { const c = [...document.querySelectorAll('.card')].pop(); return c.result ? c.result.faces.length : c.querySelector('.count').textContent; });
    log(`engine faults, page: first card ${cards[0].error || `${cards[0].result.faces.length} faces`}; next photo ${next}`);
    assert(next === n, `the photo after a crash: ${next}`);
    // The camera: a crash mid-stream is reported and the frames go on with a new engine.
    await page.click('#tab-camera');
    await page.click('#cam-start');
    const frames = () => page.evaluate(() => Number(document.getElementById('cam-perf').dataset.frames || 0));
    await page.waitForFunction(() => Number(document.getElementById('cam-perf').dataset.frames) >= 5, null, { timeout: 20000 });
    await page.evaluate(() => window.facemaskPage.engine()._worker.postMessage({ type: 'crash' }));
    await page.waitForFunction(() => window.facemaskPage.engine().restarts >= 1, null, { timeout: 20000 });
    const f0 = await frames();
    await page.waitForFunction((f0) => Number(document.getElementById('cam-perf').dataset.frames) >= f0 + 10, f0, { timeout: 30000 });
    const camMessage = await page.textContent('#cam-message');
    log(`engine faults, camera: after the crash ${(await frames()) - f0} more frames; message "${camMessage}"`);
    assert(/the engine crashed/i.test(camMessage), `camera message: ${camMessage}`);
    await page.click('#cam-start');  // stop
    const unexpected = w.errors.filter((e) => !/crash|RuntimeError|memory access out of bounds/i.test(e));
    assert(unexpected.length === 0, unexpected.join('; '));
    await page.close();
  });

  // Service worker: copies of build/web served with a long HTTP cache lifetime (a stale HTTP cache
  // must not leak into a new version), under /a/ (updated), /c/ (changing under the install),
  // /one/ and /two/ (two deployments on one origin).
  let dep = null, server = null, origin = null;
  const deploy = async () => {
    if (server) return;
    dep = fs.mkdtempSync(path.join(os.tmpdir(), 'facemask-deploy-'));
    for (const d of ['a', 'c', 'one', 'two']) fs.cpSync(WEB, path.join(dep, d), { recursive: true });
    server = await serveStatic(dep, '/', { cacheControl: 'max-age=3600' });
    origin = `http://127.0.0.1:${server.address().port}`;
  };
  const controlled = (page) => page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30000 });
  const marker = '// deployment v2';
  const fetchText = (page, file) => page.evaluate(async (file) => (await fetch(file)).text(), file);
  const redeploy = (dir, files, after = null) => {
    for (const f of files) fs.appendFileSync(path.join(dep, dir, f), `\n${marker}\n`);
    const r = spawnSync('/usr/bin/python3', [path.join(ROOT, 'web/assemble.py'), '--service-worker', path.join(ROOT, 'web'), path.join(dep, dir)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`assemble.py --service-worker: ${r.stderr}`);
    if (after) after();
  };

  test('service worker update while a tab is open: both tabs keep the old version until "Reload to update", then both run the new one', async ({ context }) => {
    await deploy();
    const a = await context.newPage();
    const w = watch(context, a);
    await a.goto(`${origin}/a/?mode=photos`);
    await waitReady(a);
    await controlled(a);
    redeploy('a', ['worker.js', 'facemask.js']);
    const state = await a.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      await reg.update();
      return reg.installing ? 'installing' : reg.waiting ? 'waiting' : 'none';
    });
    await a.waitForFunction(() => document.body.dataset.update === 'ready', null, { timeout: 30000 });
    const b = await context.newPage();
    await b.goto(`${origin}/a/?mode=photos`);
    await waitReady(b);
    const before = [];
    for (const p of [a, b]) for (const f of ['worker.js', 'facemask.js']) before.push((await fetchText(p, f)).includes(marker));
    assert(before.every((x) => !x), `old tabs got new files: ${before}`);
    assert(await a.isVisible('#update-reload'), 'no "Reload to update" offered');
    await Promise.all([a.waitForEvent('load', { timeout: 30000 }), b.waitForEvent('load', { timeout: 30000 }), a.click('#update-reload')]);
    await waitReady(a);
    await waitReady(b);
    const after = [];
    for (const p of [a, b]) for (const f of ['worker.js', 'facemask.js']) after.push((await fetchText(p, f)).includes(marker));
    log(`service worker update: ${state}; before update ${before}; after ${after}`);
    assert(after.every((x) => x), `after the update, new files: ${after}`);
    const cards = await uploadAndCollect(a, [PIC2]);
    const problems = compare(cards, h.want(), 1.0);
    assert(problems.length === 0, problems.join('; '));
    assert(w.errors.length === 0, w.errors.join('; '));
    await a.close();
    await b.close();
  });

  test('service worker install against a deployment that changes under it: refused by content hash, the first visit does not wait for it', async ({ context }) => {
    await deploy();
    // The manifest says one thing, the server serves another (an upload in progress).
    redeploy('c', ['worker.js'], () => fs.appendFileSync(path.join(dep, 'c', 'worker.js'), '\n// half uploaded\n'));
    const page = await context.newPage();
    const w = watch(context, page);
    // As a 4-core device would: the first visit waits for the worker (to isolate the page for
    // threads) unless its install fails.
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 }));
    const t0 = Date.now();
    await page.goto(`${origin}/c/?mode=photos`);
    await waitReady(page);
    const ms = Date.now() - t0;
    const r = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration();
      return { controlled: !!navigator.serviceWorker.controller, active: !!(reg && reg.active), threads: document.body.dataset.threads,
        caches: (await caches.keys()).filter((k) => k.includes('/c/')) };
    });
    log(`changing deployment: engine ready after ${ms} ms; ${JSON.stringify(r)}`);
    assert(!r.controlled && !r.active && r.caches.length === 0, `a mixed version was installed: ${JSON.stringify(r)}`);
    assert(ms < 9000, `the first visit waited ${ms} ms`);
    assert(r.threads === '1', `threads ${r.threads}`);
    const errors = w.errors.filter((e) => !/not version|service ?worker|sw\.js/i.test(e));
    assert(errors.length === 0, errors.join('; '));
    await page.close();
  });

  test('two deployments on one origin (/one/ and /two/): each keeps its own cache; both reload offline', async ({ context }) => {
    await deploy();
    redeploy('two', ['facemask.js']);  // another version: activating it must not evict /one/'s cache
    const one = await context.newPage();
    await one.goto(`${origin}/one/?mode=photos`);
    await waitReady(one);
    await controlled(one);
    const two = await context.newPage();
    await two.goto(`${origin}/two/?mode=photos`);
    await waitReady(two);
    await controlled(two);
    const keys = await two.evaluate(() => caches.keys());
    log(`two deployments: caches ${keys.join(' ')}`);
    assert(keys.some((k) => k.startsWith(`facemask:${origin}/one/:`)) && keys.some((k) => k.startsWith(`facemask:${origin}/two/:`)),
      `caches: ${keys}`);
    await context.setOffline(true);
    try {
      for (const p of [one, two]) {
        await p.reload();
        await waitReady(p);
        const cards = await uploadAndCollect(p, [PIC2]);
        const problems = compare(cards, h.want(), 1.0);
        assert(problems.length === 0, problems.join('; '));
      }
    } finally {
      await context.setOffline(false);
    }
    await one.close();
    await two.close();
    server.close();
    fs.rmSync(dep, { recursive: true, force: true });
    server = null;
  });
}
