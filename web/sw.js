// sw.js - the service worker: caches every asset of the page at install, so it works offline
// after the first visit. tools/build-web (web/assemble.py) fills in VERSION (a hash of the whole
// build) and ASSETS (every file of build/web with its SHA-256).
// - By content: install fetches each asset past the HTTP cache and checks its SHA-256 against
//   ASSETS, so a stale copy (HTTP cache, a deployment half uploaded) can never enter a version's
//   cache; a mismatch fails the install and the page goes on without this version.
// - One version per tab: a new version waits while a tab of the old one is open (no skipWaiting
//   on updates); the page offers "reload to update", which activates it and reloads every tab.
//   Only the very first install takes control at once (nothing older to mix with).
// - Per deployment: cache names carry the registration's scope, so two copies of the page on one
//   origin (/a/ and /b/) keep their own caches; activate deletes only this scope's old versions.
// Cross-origin isolation on hosts that cannot set headers (the "coi-serviceworker" technique): it
// adds COOP/COEP (+ CORP) to what it serves, so a page loaded through it is cross-origin isolated
// and may use the threads build. app.js reloads once when this worker first takes control. A page
// opened with ?coi=0 gets no COOP/COEP (it then runs the single-thread engine).
const VERSION = '__FM_VERSION__';
const ASSETS = __FM_ASSETS__;
const PREFIX = `facemask:${self.registration.scope}:`;
const CACHE = PREFIX + VERSION;

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

async function fetchChecked(cache, path, key = path) {
  const response = await fetch(new Request(path, { cache: 'no-store', credentials: 'same-origin' }));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const digest = hex(await crypto.subtle.digest('SHA-256', await response.clone().arrayBuffer()));
  if (digest !== ASSETS[path]) throw new Error(`${path}: its content is not version ${VERSION}'s (a mixed or changing deployment)`);
  await cache.put(key, response);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    try {
      for (const path of Object.keys(ASSETS)) await fetchChecked(cache, path);
      await fetchChecked(cache, 'index.html', './');  // the scope's URL is the page too
    } catch (e) {
      await caches.delete(CACHE);
      throw e;
    }
    if (!self.registration.active) await self.skipWaiting();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data === 'skip-waiting') self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Subresources always get the headers (harmless when the page is not isolated; workers need them
// when it is); a page only when it was not opened with ?coi=0.
function isolated(response, coi) {
  if (!coi || response.status === 0 || response.type === 'opaque' || response.type === 'opaqueredirect') return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

// Cache first (ignoring ?simd=0 and the like), then the network; only this origin is handled.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const coi = event.request.mode !== 'navigate' || url.searchParams.get('coi') !== '0';
  event.respondWith(caches.open(CACHE)
    .then((c) => c.match(event.request, { ignoreSearch: true }))
    .then((hit) => hit || fetch(event.request))
    .then((r) => isolated(r, coi)));
});
