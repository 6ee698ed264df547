// sw.js - the service worker: caches every asset of the page at install, so it works offline
// after the first visit. tools/build-web fills in VERSION (a hash of the build, which names the
// cache, so a new build replaces the old cache) and ASSETS (every file of build/web, relative).
// Cross-origin isolation on hosts that cannot set headers (the "coi-serviceworker" technique): it
// adds COOP/COEP (+ CORP) to what it serves, so a page loaded through it is cross-origin isolated
// and may use the threads build. app.js reloads once when this worker first takes control. A page
// opened with ?coi=0 gets no COOP/COEP (it then runs the single-thread engine).
const VERSION = '__FM_VERSION__';
const ASSETS = __FM_ASSETS__;
const CACHE = `facemask-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(['./', ...ASSETS])).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('facemask-') && k !== CACHE).map((k) => caches.delete(k))))
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
