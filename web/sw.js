// sw.js - the service worker: caches every asset of the page at install, so it works offline
// after the first visit. tools/build-web fills in VERSION (a hash of the build, which names the
// cache, so a new build replaces the old cache) and ASSETS (every file of build/web, relative).
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

// Cache first (ignoring ?simd=0 and the like), then the network; only this origin is handled.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith(caches.open(CACHE)
    .then((c) => c.match(event.request, { ignoreSearch: true }))
    .then((hit) => hit || fetch(event.request)));
});
