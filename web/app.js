// app.js - the page: camera mode and photo mode over facemask.js, drawn with draw.js.
// URL parameters: ?simd=0|1 forces the non-SIMD / SIMD engine; ?threads=1..4 the engine threads
// (default: 2 when the page is cross-origin isolated and the device has >= 4 cores, else 1);
// ?coi=0 keeps the service worker from isolating the page; ?mode=photos opens photo mode;
// ?progress=0 loads without the download progress bar (tests/bench/coldstart.mjs compares).
// For tests, <body> carries data-engine="loading|ready|failed", data-flavor, data-threads, and the camera
// stats element carries data-frames, data-ms (worker ms per frame: pixels + engine), data-engine-ms
// and data-fps (medians over the last 2 s), data-wasm-heap and data-wasm-used (the engine's wasm
// memory and the part of it malloc'd, bytes).
import { autoThreads, createFaceMask, wasmSupport } from './facemask.js';
import { drawResult, summary, counts } from './draw.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const body = document.body;
let fm = null;

function banner(text) { $('banner').textContent = text; $('banner').hidden = false; }
function message(el, text, isError = false) { el.textContent = text; el.classList.toggle('error', isError); }

// ---- modes
function showMode(mode) {
  for (const m of ['camera', 'photos']) {
    $(m).hidden = m !== mode;
    $(`tab-${m}`).setAttribute('aria-selected', String(m === mode));
  }
  if (mode !== 'camera') camera.pause(true);
}
$('tab-camera').onclick = () => showMode('camera');
$('tab-photos').onclick = () => showMode('photos');

// ---- engine
// own: {bytes, name, scope: 'face'|'image'} - a user's converted classifier (facemask convert), run
// on each face crop in place of ours, or on each whole photo.
async function startEngine(own = null) {
  body.dataset.engine = 'loading';
  const support = wasmSupport();
  if (!support) {
    body.dataset.engine = 'failed';
    $('engine-status').textContent = 'Engine unavailable';
    banner('This browser cannot run WebAssembly (or it is switched off), so face-mask detection cannot run here. Try a current Chrome, Edge, Firefox or Safari.');
    return;
  }
  const simd = params.get('simd') === '0' ? false : params.get('simd') === '1' ? true : 'auto';
  const threads = /^[1-4]$/.test(params.get('threads') || '') ? Number(params.get('threads')) : 'auto';
  // Download progress of the engine and the models, summed (the bar shows once any total is known).
  const downloads = {};
  const bar = $('load-progress');
  const onProgress = ({ what, loaded, total }) => {
    downloads[what] = { loaded, total };
    const all = Object.values(downloads);
    const sum = (k) => all.reduce((s, d) => s + d[k], 0);
    if (all.some((d) => !d.total)) return;
    const pct = Math.min(100, Math.round(100 * sum('loaded') / sum('total')));
    bar.value = pct;
    bar.hidden = pct >= 100 && body.dataset.engine !== 'loading';
    body.dataset.loadProgress = pct;
    $('engine-status').textContent = `Loading the engine… ${pct}% (${(sum('loaded') / 1e6).toFixed(1)} of ${(sum('total') / 1e6).toFixed(1)} MB)`;
  };
  bar.hidden = params.get('progress') === '0';
  try {
    const options = { simd, threads };
    // ?precision=int8: the models' int8-weight files (smaller downloads; README "Int8 weights").
    if (['float', 'int8'].includes(params.get('precision'))) options.precision = params.get('precision');
    if (params.get('progress') !== '0') options.onProgress = onProgress;  // ?progress=0: none (the cold-start bench compares)
    if (own && own.scope === 'face') options.classifier = own.bytes.slice();
    if (own && own.scope === 'image') options.imageClassifier = own.bytes.slice();
    fm = createFaceMask(options);
    await fm.ready;
  } catch (e) {
    if (own) {  // the user's model was refused: say why, keep working with ours
      message($('own-model-status'), `Your model could not be used: ${e.message.replace(/^facemask: /, '')}`, true);
      return startEngine(null);
    }
    body.dataset.engine = 'failed';
    bar.hidden = true;
    $('engine-status').textContent = 'Engine failed to start';
    banner(e.message);
    return;
  }
  const { flavor, classifier, version } = fm.info;
  bar.hidden = true;
  body.dataset.engine = 'ready';
  body.dataset.flavor = flavor;
  body.dataset.threads = fm.info.threads;
  $('engine-status').textContent = `Engine ready (${flavor === 'simd' ? 'WebAssembly SIMD' : 'WebAssembly, no SIMD'}` +
    `${fm.info.threads > 1 ? `, ${fm.info.threads} threads` : ''})` +
    (classifier ? '' : ' - detection only: the mask classifier is not in this build');
  if (own) {
    message($('own-model-status'), `Using your model ${own.name} ${own.scope === 'face' ? 'on each face' : 'on each whole photo'}.`);
    body.dataset.ownModel = own.scope;
  } else {
    delete body.dataset.ownModel;
  }
  $('version').textContent = `facemask engine ${version}`;
}

// ---- your own model (a .fmm from `facemask convert`)
async function useOwnModel() {
  const file = $('own-model').files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  camera.stop();
  if (fm) fm.destroy();
  fm = null;
  message($('own-model-status'), `Loading ${file.name}...`);
  await startEngine({ bytes, name: file.name, scope: $('own-scope').value });
}
// One switch at a time: a scope change and a new file in quick succession must not race.
let ownQueue = Promise.resolve();
const queueOwnModel = () => { ownQueue = ownQueue.then(useOwnModel, useOwnModel); };
$('own-model').onchange = queueOwnModel;
$('own-scope').onchange = queueOwnModel;

// ---- camera mode
const camera = {
  stream: null, running: false, paused: false, mirror: true, frames: 0, times: [], engineMs: [], workerMs: [],
  video: $('cam-video'), canvas: $('cam-canvas'),

  async start(choice) {
    this.stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return message($('cam-message'), 'No camera access here (the page needs https or localhost, and a browser with camera support). Photo mode still works.', true);
    }
    const video = choice === 'user' || choice === 'environment'
      ? { facingMode: { ideal: choice } } : { deviceId: { exact: choice } };
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { ...video, width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (e) {
      const why = e.name === 'NotAllowedError' ? 'Camera permission was denied.'
        : e.name === 'NotFoundError' || e.name === 'OverconstrainedError' ? 'No camera was found.'
          : `The camera could not be opened (${e.name}: ${e.message}).`;
      return message($('cam-message'), `${why} Photo mode still works.`, true);
    }
    message($('cam-message'), '');
    const track = this.stream.getVideoTracks()[0];
    // Unplugged, or taken by another app: say so and get ready to start again.
    track.addEventListener('ended', () => {
      if (!this.stream || !this.stream.getVideoTracks().includes(track)) return;  // an old stream
      this.stop();
      message($('cam-message'), 'The camera stopped (unplugged or in use elsewhere?). Choose a camera or press Start camera again. Photo mode still works.', true);
    });
    const facing = track.getSettings().facingMode;
    this.mirror = facing ? facing === 'user' : choice !== 'environment';
    $('cam-mirror').checked = this.mirror;
    this.video.srcObject = this.stream;
    await this.video.play();
    await this.listDevices(track.getSettings().deviceId);
    for (const id of ['cam-pause', 'cam-snapshot']) $(id).disabled = false;
    $('cam-select').disabled = false;
    $('cam-start').textContent = 'Stop camera';
    this.running = true;
    this.paused = false;
    $('cam-pause').textContent = 'Pause';
    this.loop();
  },

  async listDevices(currentId) {
    const sel = $('cam-select');
    const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
    for (const o of [...sel.options]) if (o.dataset.device) o.remove();
    devices.forEach((d, i) => {
      const o = new Option(d.label || `Camera ${i + 1}`, d.deviceId);
      o.dataset.device = '1';
      sel.add(o);
    });
    if (currentId && devices.some((d) => d.deviceId === currentId)) sel.value = currentId;
  },

  stop() {
    this.running = false;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    $('cam-start').textContent = 'Start camera';
    for (const id of ['cam-pause', 'cam-snapshot']) $(id).disabled = true;
  },

  pause(on) {
    if (!this.running) return;
    this.paused = on;
    $('cam-pause').textContent = on ? 'Resume' : 'Pause';
    if (on) this.video.pause();
    else { this.video.play(); this.loop(); }
  },

  nextFrame() {
    return new Promise((resolve) => {
      if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(() => resolve());
      else requestAnimationFrame(() => resolve());
    });
  },

  async loop() {
    if (this.looping) return;
    this.looping = true;
    const ctx = this.canvas.getContext('2d');
    let fresh = this.nextFrame();
    let restartsShown = null;
    try {
      await ownQueue;  // the camera can start before the engine is ready
      restartsShown = fm ? fm.restarts : 0;
      while (this.running && !this.paused && fm && fm.info) {
        await fresh;                  // a frame that arrived while the last one was analysed counts
        fresh = this.nextFrame();
        if (!this.running || this.paused || this.video.readyState < 2) continue;
        const t0 = performance.now();
        // A VideoFrame costs nothing to take (the worker reads RGBA out of it); else an ImageBitmap.
        const frame = typeof VideoFrame === 'function' ? new VideoFrame(this.video) : await createImageBitmap(this.video);
        const [fw, fh] = frame.visibleRect ? [frame.visibleRect.width, frame.visibleRect.height] : [frame.width, frame.height];
        let result;
        try {
          result = await fm.detect(frame, { track: true, timestamp: t0 });
        } catch (e) {
          frame.close();
          message($('cam-message'), e.message, true);
          restartsShown = fm.restarts;
          if (e.engineRestarted) continue;  // a new engine takes the next frame
          break;
        }
        if (this.canvas.width !== fw || this.canvas.height !== fh) {
          this.canvas.width = fw;
          this.canvas.height = fh;
        }
        // An engine that crashed between two frames failed no call: say so all the same.
        if (fm.restarts !== restartsShown) {
          restartsShown = fm.restarts;
          message($('cam-message'), `The engine crashed (${fm.lastCrash}); a new engine took over.`, true);
        }
        drawResult(ctx, frame, result, { mirror: this.mirror });
        frame.close();
        this.stats(result, performance.now());
      }
    } finally {
      this.looping = false;
    }
  },

  stats(result, now) {
    this.frames++;
    this.lastResult = result;
    this.times.push(now);
    this.engineMs.push(fm.lastTiming.engineMs);
    this.workerMs.push(fm.lastTiming.totalMs);
    while (this.times.length > 1 && now - this.times[0] > 2000) {
      this.times.shift(); this.engineMs.shift(); this.workerMs.shift();
    }
    const n = this.times.length;
    const fps = n > 1 ? (n - 1) * 1000 / (this.times[n - 1] - this.times[0]) : 0;
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    const ms = median(this.workerMs), engineMs = median(this.engineMs);
    $('cam-summary').textContent = summary(result);
    const perf = $('cam-perf');
    perf.textContent = `${ms.toFixed(1)} ms per frame (engine ${engineMs.toFixed(1)} ms) - ${fps.toFixed(1)} FPS`;
    Object.assign(perf.dataset, { frames: this.frames, ms: ms.toFixed(2), engineMs: engineMs.toFixed(2), fps: fps.toFixed(2),
      wasmHeap: fm.wasmHeapBytes, wasmUsed: fm.wasmHeapUsed });
    $('cam-summary').dataset.faces = result.faces.length;
    this.tally(now);
  },

  // The tally of people (fm.tally, fed by every tracked frame), redrawn at most twice a second.
  tally(now) {
    if (this.tallyDrawn && now - this.tallyDrawn < 500) return;
    this.tallyDrawn = now;
    drawTally();
  },

  snapshot() {
    this.canvas.toBlob((blob) => download(blob, `facemask-${new Date().toISOString().replace(/[:.]/g, '-')}.png`));
  },
};

// ---- the tally (people seen in camera mode; tally.js)
function drawTally() {
  if (!fm) return;
  const s = fm.tally.summary();
  const el = $('tally-summary');
  const pct = (x) => `${Math.round(100 * x)}%`;
  el.textContent = s.people === 0 ? 'none yet'
    : `${s.people}: ${s.with_mask} masked${s.maskedShare === null ? '' : ` (${pct(s.maskedShare)})`}, ${s.without_mask} without, ` +
      `${s.mask_worn_incorrectly} worn incorrectly${s.unsure ? `, ${s.unsure} unsure` : ''}`;
  Object.assign(el.dataset, { people: s.people, with_mask: s.with_mask, without_mask: s.without_mask,
    mask_worn_incorrectly: s.mask_worn_incorrectly, unsure: s.unsure });
  const canvas = $('tally-chart'), ctx = canvas.getContext('2d');
  const h = fm.tally.history({ minutes: 5, bucketSeconds: 10 });
  const W = canvas.width, H = canvas.height, bw = W / h.length;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = '#8882';
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#1a9850';
  h.forEach((b, i) => { if (b.share !== null) ctx.fillRect(i * bw + 1, H * (1 - b.share), bw - 2, H * b.share); });
}
$('tally-reset').onclick = () => { if (fm) { fm.tally.reset(); drawTally(); } };
const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');
$('tally-csv').onclick = () => fm && download(new Blob([fm.tally.toCSV()], { type: 'text/csv' }), `facemask-tally-${stamp()}.csv`);
$('tally-json').onclick = () => fm && download(new Blob([JSON.stringify(fm.tally.toJSON(), null, 1)], { type: 'application/json' }), `facemask-tally-${stamp()}.json`);

$('cam-start').onclick = () => (camera.running ? camera.stop() : camera.start($('cam-select').value));
$('cam-select').onchange = () => camera.running && camera.start($('cam-select').value);
$('cam-mirror').onchange = () => { camera.mirror = $('cam-mirror').checked; };
$('cam-pause').onclick = () => camera.pause(!camera.paused);
$('cam-snapshot').onclick = () => camera.snapshot();

function download(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- photo mode
const photos = { done: 0, faces: 0, failed: 0 };
const MAX_PREVIEW = 960;  // longest side of a card's picture; downloads are full size
// Engine refusals that mean "too large": the browser must not decode such a file either.
const TOO_LARGE = /megapixels|exceeds the limit|largest side|files over/;

function updatePhotoSummary() {
  $('photo-summary').textContent = `${photos.done} photo${photos.done === 1 ? '' : 's'}, ${photos.faces} face${photos.faces === 1 ? '' : 's'}` +
    (photos.failed ? `, ${photos.failed} could not be read` : '');
  $('photo-summary').dataset.photos = photos.done;
  $('photo-summary').dataset.faces = photos.faces;
}

function newCard(file) {
  const card = document.createElement('figure');
  card.className = 'card';
  // The picture is a small JPEG (an <img> of a blob), not a canvas: hundreds of cards stay light.
  card.innerHTML = '<img alt=""><figcaption><p class="count">Analysing&hellip;</p><p class="name"></p></figcaption>';
  card.querySelector('.name').textContent = file.name || 'pasted image';
  card.dataset.name = file.name || '';
  $('grid').append(card);
  return card;
}

// The browser's decode, upright; scaled to at most MAX_PREVIEW when the size is known (w, h).
async function decodeForDisplay(file, w = 0, h = 0) {
  const s = w && h ? Math.min(1, MAX_PREVIEW / Math.max(w, h)) : 1;
  const size = s < 1 ? { resizeWidth: Math.max(1, Math.round(w * s)), resizeHeight: Math.max(1, Math.round(h * s)), resizeQuality: 'medium' } : {};
  try { return await createImageBitmap(file, { imageOrientation: 'from-image', ...size }); } catch { return null; }
}

// The card's picture: the photo with its boxes, as a JPEG of at most MAX_PREVIEW a side.
async function previewOf(bitmap, result) {
  const s = Math.min(1, MAX_PREVIEW / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * s)), Math.max(1, Math.round(bitmap.height * s)));
  drawResult(canvas.getContext('2d'), bitmap, result);
  return canvas.convertToBlob({ type: 'image/jpeg', quality: 0.85 });
}

async function analysePhoto(file) {
  await ownQueue;  // the engine's start or a model switch in progress finishes first
  const card = newCard(file);
  const countEl = card.querySelector('.count');
  let result = null, bitmap = null, preview = null;
  try {
    if (!fm || !fm.info) throw new Error('The engine is not available.');
    try {
      result = await fm.detect(file);  // the engine decodes it (as the CLI does), EXIF applied
    } catch (e) {
      // Too large for the engine is too large for the page: the browser never decodes it.
      if (TOO_LARGE.test(e.message) || e.engineRestarted || !fm.info) throw e;
      bitmap = await decodeForDisplay(file);  // a format only the browser reads (WebP, AVIF, ...)
      if (!bitmap) throw Object.assign(new Error('Not a supported image (or the file is damaged).'), { unreadable: true });
      result = await fm.detect(bitmap);
    }
    if (!bitmap) bitmap = await decodeForDisplay(file, result.width, result.height);
    if (bitmap) preview = await previewOf(bitmap, result);
  } catch (e) {
    card.classList.add('error');
    countEl.textContent = e.unreadable ? e.message : `Could not analyse: ${e.message.replace(/^facemask: /, '')}`;
    card.dataset.error = '1';
    photos.failed++;
    updatePhotoSummary();
    card.querySelector('img').remove();
    return;
  } finally {
    if (bitmap) bitmap.close();
  }
  const c = counts(result);
  card.result = result;
  countEl.textContent = summary(result);
  if (result.image) {  // a whole-photo classifier's answer
    const p = result.image.probs[result.image.label];
    countEl.textContent += ` - whole photo: ${result.image.label} ${Math.round(p * 100)}%`;
    card.dataset.imageLabel = result.image.label;
  }
  card.dataset.faces = c.faces;
  for (const k of ['with_mask', 'without_mask', 'mask_worn_incorrectly', 'unsure']) card.dataset[k] = c[k];
  const img = card.querySelector('img');
  if (preview) {
    img.src = URL.createObjectURL(preview);
    img.alt = `${file.name || 'photo'}: ${summary(result)}`;
    const btn = document.createElement('button');
    btn.textContent = 'Download annotated';
    btn.onclick = () => downloadAnnotated(file, result);
    card.querySelector('figcaption').append(btn);
  } else {
    img.remove();
  }
  photos.done++;
  photos.faces += c.faces;
  updatePhotoSummary();
}

async function downloadAnnotated(file, result) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  drawResult(canvas.getContext('2d'), bitmap, result);
  bitmap.close();
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
  download(blob, `${(file.name || 'photo').replace(/\.[^.]*$/, '')}-annotated.jpg`);
}

let photoQueue = Promise.resolve();
function addFiles(files) {
  showMode('photos');
  for (const f of files) photoQueue = photoQueue.then(() => analysePhoto(f)).catch((e) => console.warn(e));
  return photoQueue;
}
$('file-input').onchange = (e) => { addFiles([...e.target.files]); e.target.value = ''; };
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles([...e.dataTransfer.files]); };
document.addEventListener('dragover', (e) => e.preventDefault());  // a miss-drop must not navigate away
document.addEventListener('drop', (e) => e.preventDefault());
document.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData ? e.clipboardData.files : [])];
  if (files.length) { e.preventDefault(); addFiles(files); }
});
window.facemaskPage = { addFiles, camera, engine: () => fm };  // for tests and the console

// ---- offline: the service worker caches every asset (not from file://). It also makes the page
// cross-origin isolated (for the threads build) when the host sends no COOP/COEP, but only for
// pages it serves: on the first visit, when threads would be used (>= 4 cores, or ?threads=2..4),
// the engine waits (up to 10 s, not at all once its install failed) for it to take control, then
// the page reloads, once per tab (sessionStorage); ?coi=0 opts out. On 2 cores the first visit
// starts at once, single-threaded. Otherwise it is registered 2 s after the engine is ready: its
// install downloads every asset, which on a first visit must not compete with the engine's start.
// Updates: a new version waits while this tab runs the old one (one version per tab); the page
// offers "Reload to update", which activates it, and every tab of the page then reloads.
const swUsable = () => 'serviceWorker' in navigator && location.protocol.startsWith('http') && !globalThis.__FACEMASK_INLINE__;
let hadController = swUsable() && !!navigator.serviceWorker.controller;
if (swUsable()) {
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (hadController) location.reload();  // a new version took over: load all of it
    hadController = true;
  });
}
function offerUpdate(worker) {
  if (!worker || !navigator.serviceWorker.controller) return;  // a first install is no update
  body.dataset.update = 'ready';
  $('update').hidden = false;
  $('update-reload').onclick = () => worker.postMessage('skip-waiting');
}
function registerServiceWorker() {
  const registered = navigator.serviceWorker.register('./sw.js');
  registered.then((reg) => {
    if (reg.waiting) offerUpdate(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      if (w) w.addEventListener('statechange', () => { if (w.state === 'installed') offerUpdate(w); });
    });
  }, (e) => console.warn('facemask: offline cache unavailable:', e.message));
  return registered;
}
// Resolves false as soon as the worker being installed fails (e.g. a mixed deployment).
const installFailed = (reg) => new Promise((resolve) => {
  const w = reg.installing || reg.waiting;
  if (w) w.addEventListener('statechange', () => { if (w.state === 'redundant') resolve(false); });
});
async function serviceWorker() {
  if (!swUsable()) return;
  const sw = navigator.serviceWorker;
  let tab = null;
  try { tab = sessionStorage; } catch { /* storage disabled */ }
  const wantsThreads = Number(params.get('threads')) > 1 || (!params.get('threads') && autoThreads() > 1);
  if (!wantsThreads || self.crossOriginIsolated || params.get('coi') === '0' || sw.controller || !tab ||
      tab.getItem('facemask-coi-reload')) return;
  const registered = registerServiceWorker();
  const controlled = await Promise.race([
    new Promise((resolve) => sw.addEventListener('controllerchange', () => resolve(true), { once: true })),
    registered.then((reg) => Promise.race([installFailed(reg), new Promise((resolve) => setTimeout(resolve, 10000, false))]), () => false),
  ]);
  if (!controlled) return;
  tab.setItem('facemask-coi-reload', '1');
  location.reload();
  await new Promise(() => {});  // the engine starts after the reload
}

showMode(params.get('mode') === 'photos' ? 'photos' : 'camera');
// The engine's start is the first entry of ownQueue: a photo dropped or a camera started while it
// loads waits for it instead of failing.
ownQueue = serviceWorker().finally(() => startEngine());
ownQueue.then(() => { if (swUsable()) setTimeout(registerServiceWorker, 2000); });
