// lib.mjs - what the Chromium scripts share (tests/e2e/run.mjs, tests/e2e/soak.mjs): the repo
// paths, playwright-core (from FM_NPM_DIR, default build/npm/, installed by tools/e2e and
// tools/soak-browser), the Chromium flags and a static server for build/web under a sub-path.
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB = path.join(ROOT, 'build/web');
export const OUT = path.join(ROOT, 'build/e2e');

export function playwright() {
  const dir = path.resolve(process.env.FM_NPM_DIR || path.join(ROOT, 'build/npm'));
  try {
    return createRequire(path.join(dir, 'package.json'))('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is not installed in ${dir} (tools/e2e and tools/soak-browser install it): ${e.message}`);
  }
}

// Debian's Chromium, headless, quiet (no background traffic to other origins).
export const CHROMIUM = '/usr/bin/chromium';
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// A fake webcam that plays a y4m file (looped), with the permission prompt auto-accepted.
export const cameraFlags = (y4m) => ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-video-capture=${y4m}`];

// A static server for `dir` under the URL path `sub` (e.g. /some/sub/path/: proves the page's URLs
// are relative); a directory serves its index.html. Resolves to the listening server (127.0.0.1, a
// free port). cacheControl: the Cache-Control header of every response (default no-cache). hold: a
// function of the file's path under `sub`; when it returns a promise, the response waits for it (a
// test that needs the page to still be loading holds the models until it is done).
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.wasm': 'application/wasm', '.fmm': 'application/octet-stream', '.png': 'image/png',
  '.webmanifest': 'application/manifest+json' };
export function serveStatic(dir, sub, { cacheControl = 'no-cache', hold = () => null } = {}) {
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    let rel = decodeURIComponent(u.pathname);
    if (!rel.startsWith(sub)) { res.writeHead(404).end(); return; }
    rel = rel.slice(sub.length) || 'index.html';
    let file = path.join(dir, rel);
    if (file.startsWith(dir) && fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) { res.writeHead(404).end(); return; }
    const wait = hold(rel);
    if (wait) await wait;
    res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream', 'Cache-Control': cacheControl });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
