// faceapi_parity.mjs - checks `facemask convert` on face-api.js's face_expression_model against
// TensorFlow.js: the network is written here again with tf ops, transcribed from face-api.js's
// own source (FaceFeatureExtractor + denseBlock4 + FaceExpressionNet, @vladmandic/face-api
// 1.7.15), its weights decoded by tf.io.decodeWeights (uint8 dequantisation included), and run on
// the same 0..255 pixel tensors that our converted models get after their normalisation
// metadata. Compared: the expression probabilities (whole model) and the pooled 256 features
// (--features 4), both backends, fp32 conversion within --tolerance (default 1e-4), and the
// default fp16 conversion within 5e-3 (float16 rounding of 8-bit weights; reported).
//
//   node faceapi_parity.mjs --facemask BUILD/tools/facemask --run-raw BUILD/tools/convert/fm_run_raw
//        [--manifest ~/.cache/facemask/npm/face-api-1.7.15/face_expression_model-weights_manifest.json]
//        [--node-modules ~/.cache/facemask/npm/parity/node_modules] [--image PHOTO]...
//
// Exit codes: 0 agree, 1 disagree or error, 77 skipped (npm packages or face-api files missing).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { loadTfjsCpu } from './tfjs_cpu.mjs';

const SKIP = 77;
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const cache = join(homedir(), '.cache', 'facemask', 'npm');
const nodeModules = opt('--node-modules', join(cache, 'parity', 'node_modules'));
const manifestPath = opt('--manifest',
  join(cache, 'face-api-1.7.15', 'face_expression_model-weights_manifest.json'));
const facemask = opt('--facemask', 'build/native-release/tools/facemask');
const runRaw = opt('--run-raw', 'build/native-release/tools/convert/fm_run_raw');
const tolerance = Number(opt('--tolerance', '1e-4'));
const fp16Tolerance = 5e-3;

if (!existsSync(join(nodeModules, '@tensorflow', 'tfjs'))) {
  console.log(`SKIP: @tensorflow/tfjs is not installed in ${nodeModules} (run tools/npm-install)`);
  process.exit(SKIP);
}
if (!existsSync(manifestPath)) {
  console.log(`SKIP: ${manifestPath} is missing (run tools/fetch-models)`);
  process.exit(SKIP);
}
const tf = await loadTfjsCpu(nodeModules);

// --- the reference network, as face-api.js writes it ---
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const specs = manifest.flatMap((g) => g.weights);
const bytes = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dirname(manifestPath), p)))));
const W = tf.io.decodeWeights(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), specs);

const sep = (x, p, stride) =>
  tf.add(tf.separableConv2d(x, W[`${p}/depthwise_filter`], W[`${p}/pointwise_filter`], stride, 'same'), W[`${p}/bias`]);
function denseBlock4(x, p, isFirst) {
  const out1 = tf.relu(isFirst
    ? tf.add(tf.conv2d(x, W[`${p}/conv0/filters`], [2, 2], 'same'), W[`${p}/conv0/bias`])
    : sep(x, `${p}/conv0`, [2, 2]));
  const out2 = sep(out1, `${p}/conv1`, [1, 1]);
  const in3 = tf.relu(tf.add(out1, out2));
  const out3 = sep(in3, `${p}/conv2`, [1, 1]);
  const in4 = tf.relu(tf.add(out1, tf.add(out2, out3)));
  const out4 = sep(in4, `${p}/conv3`, [1, 1]);
  return tf.relu(tf.add(out1, tf.add(out2, tf.add(out3, out4))));
}
const MEAN = [122.782, 117.001, 104.298];
function features(pixels) {  // pixels: [1, 112, 112, 3] in 0..255
  const normalized = tf.div(tf.sub(pixels, tf.tensor1d(MEAN)), tf.scalar(255));
  let out = denseBlock4(normalized, 'dense0', true);
  out = denseBlock4(out, 'dense1');
  out = denseBlock4(out, 'dense2');
  out = denseBlock4(out, 'dense3');
  return tf.avgPool(out, [7, 7], [2, 2], 'valid').as2D(1, -1);
}
const expressions = (pixels) => tf.softmax(tf.add(tf.matMul(features(pixels), W['fc/weights']), W['fc/bias']));

// --- inputs: 0..255 pixels ---
const N = 112 * 112 * 3;
function pattern() {
  const x = new Float32Array(N);
  for (let i = 0; i < N; ++i) {
    const c = i % 3, p = Math.floor(i / 3), yy = Math.floor(p / 112), xx = p % 112;
    x[i] = 127.5 + 127.5 * Math.sin(0.11 * xx + 0.7 * c) * Math.cos(0.07 * yy - 0.3 * c);
  }
  return x;
}
function random() {
  const x = new Float32Array(N);
  let s = 4321;
  for (let i = 0; i < N; ++i) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = Math.floor((s >>> 8) / (1 << 24) * 256);
  }
  return x;
}

const work = mkdtempSync(join(tmpdir(), 'fm-faceapi-'));
let failed = false;
try {
  const models = [];
  for (const [name, extra, tol] of [
    ['expressions fp32', ['--fp32'], tolerance],
    ['features fp32', ['--fp32', '--features', '4'], tolerance],
    ['expressions fp16', [], fp16Tolerance],
  ]) {
    const out = join(work, `${models.length}.fmm`);
    execFileSync(facemask, ['convert', manifestPath, '-o', out, ...extra]);
    models.push({ name, fmm: out, features: extra.includes('--features'), tol });
  }
  const inputs = [['pattern', pattern()], ['random', random()]];
  for (const img of args.flatMap((a, i) => (a === '--image' && i + 1 < args.length ? [args[i + 1]] : []))) {
    // The photo letterboxed by our engine into 112x112 (its normalised tensor), back to pixels.
    const path = join(work, 'img.f32');
    execFileSync(runRaw, [models[0].fmm, '--image', img, '--write-input', path]);
    const b = readFileSync(path);
    const t = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    inputs.push([img.split('/').pop(), t.map((v, i) => v * 255 + MEAN[i % 3])]);
  }
  for (const [label, px] of inputs) {
    const t = tf.tensor(px, [1, 112, 112, 3]);
    const ref = { feat: await features(t).data(), expr: await expressions(t).data() };
    const normalized = Float32Array.from(px, (v, i) => Math.fround(Math.fround(v * Math.fround(1 / 255)) + Math.fround(-MEAN[i % 3] / 255)));
    const inPath = join(work, 'in.f32');
    writeFileSync(inPath, Buffer.from(normalized.buffer));
    const line = [`${label.padEnd(36)}`];
    for (const m of models) {
      const r = m.features ? ref.feat : ref.expr;
      for (const backend of ['xnnpack', 'reference']) {
        const outPath = join(work, 'out.f32');
        execFileSync(runRaw, [m.fmm, '--input', inPath, '--out', outPath, '--backend', backend]);
        const b = readFileSync(outPath);
        const ours = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        if (ours.length !== r.length) throw new Error(`${m.name}: ${ours.length} outputs, tfjs gives ${r.length}`);
        let err = 0;
        for (let i = 0; i < r.length; ++i) {
          const d = Math.abs(ours[i] - r[i]);
          if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
        }
        const ok = err <= m.tol;
        if (!ok) failed = true;
        line.push(`${m.name} ${backend} ${err.toExponential(1)}${ok ? '' : ' FAIL'}`);
      }
    }
    console.log(line.join('  '));
    t.dispose();
  }
} catch (e) {
  console.error(`faceapi parity: ${e.message}`);
  failed = true;
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(failed ? 'FAIL' : `OK: fp32 within ${tolerance}, fp16 within ${fp16Tolerance}`);
process.exit(failed ? 1 : 0);
