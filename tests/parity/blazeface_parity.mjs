// blazeface_parity.mjs - checks that our converted BlazeFace models compute what TensorFlow.js
// computes from the original tfjs files: the same input tensors (a deterministic pattern, a
// pseudo-random tensor and letterboxed photos written by fm_run_raw) go through
// @tensorflow/tfjs 4.22.0 (pure JS CPU backend, model loaded from memory, no network) and through
// our engine (fm_run_raw: XNNPACK, XNNPACK with the sparse hint, reference); the raw outputs must agree within
// --tolerance (default 1e-3, max abs error).
//
//   node blazeface_parity.mjs --run-raw BUILD/tools/convert/fm_run_raw --fmm-dir model
//        [--tfjs-dir ~/.cache/facemask/npm/human-models-3.0.4]
//        [--node-modules ~/.cache/facemask/npm/parity/node_modules] [--image PHOTO]...
//
// Exit codes: 0 agree, 1 disagree or error, 77 skipped (npm packages or tfjs files missing).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

import { patternInput, randomInput } from './inputs.mjs';
import { loadTfjsCpu } from './tfjs_cpu.mjs';

const SKIP = 77;
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const images = args.flatMap((a, i) => (a === '--image' && i + 1 < args.length ? [args[i + 1]] : []));
const cache = join(homedir(), '.cache', 'facemask', 'npm');
const nodeModules = opt('--node-modules', join(cache, 'parity', 'node_modules'));
const tfjsDir = opt('--tfjs-dir', join(cache, 'human-models-3.0.4'));
const fmmDir = opt('--fmm-dir', 'model');
const runRaw = opt('--run-raw', 'build/native-release/tools/convert/fm_run_raw');
const tolerance = Number(opt('--tolerance', '1e-3'));

if (!existsSync(join(nodeModules, '@tensorflow', 'tfjs'))) {
  console.log(`SKIP: @tensorflow/tfjs is not installed in ${nodeModules} (run tools/npm-install)`);
  process.exit(SKIP);
}
if (!existsSync(join(tfjsDir, 'facemesh-detection-short.json'))) {
  console.log(`SKIP: the tfjs model files are not in ${tfjsDir} (run tools/fetch-models)`);
  process.exit(SKIP);
}
const tf = await loadTfjsCpu(nodeModules);

const MODELS = [
  { name: 'short', tfjs: 'facemesh-detection-short', fmm: 'blazeface-short.fmm', output: 'Identity' },
  { name: 'full', tfjs: 'facemesh-detection-full', fmm: 'blazeface-full.fmm', output: 'Identity' },
];

async function loadTfjs(base) {
  const model = JSON.parse(readFileSync(join(tfjsDir, `${base}.json`), 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(readFileSync(join(tfjsDir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology,
      weightSpecs: specs,
      weightData,
      format: model.format,
      generatedBy: model.generatedBy,
      convertedBy: model.convertedBy,
      signature: model.signature,
    }),
  );
}

function readF32(path) {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

const work = mkdtempSync(join(tmpdir(), 'fm-parity-'));
let failed = false;
try {
  for (const m of MODELS) {
    const fmm = join(fmmDir, m.fmm);
    if (!existsSync(fmm)) throw new Error(`${fmm} is missing`);
    const model = await loadTfjs(m.tfjs);
    const shape = model.inputs[0].shape.map((d) => (d === -1 || d === null ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const inputs = [
      ['pattern', patternInput(shape)],
      ['random', randomInput(n)],
    ];
    for (const img of images) {
      const path = join(work, `${m.name}-image.f32`);
      execFileSync(runRaw, [fmm, '--image', img, '--write-input', path]);
      inputs.push([img.split('/').pop(), readF32(path)]);
    }
    for (const [label, data] of inputs) {
      const t = tf.tensor(data, shape);
      const y = model.execute(t, m.output);
      const ref = await y.data();
      tf.dispose([t, y]);
      const inPath = join(work, 'in.f32');
      writeFileSync(inPath, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const line = [`${m.name.padEnd(5)} ${label.padEnd(40)} |ref| <= ${maxAbs(ref).toFixed(1)}`];
      for (const backend of ['xnnpack', 'xnnpack-sparse', 'reference']) {
        const outPath = join(work, 'out.f32');
        execFileSync(runRaw, [fmm, '--input', inPath, '--out', outPath, '--backend', backend]);
        const ours = readF32(outPath);
        if (ours.length !== ref.length)
          throw new Error(`${m.name}: ${ours.length} outputs, tfjs gives ${ref.length}`);
        let err = 0;
        for (let i = 0; i < ref.length; ++i) {
          const d = Math.abs(ours[i] - ref[i]);
          if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
        }
        if (!(err <= tolerance)) failed = true;
        line.push(`${backend} max abs err ${err.toExponential(2)}${err <= tolerance ? '' : ' FAIL'}`);
      }
      console.log(line.join('  '));
    }
  }
} catch (e) {
  console.error(`parity: ${e.message}`);
  failed = true;
} finally {
  rmSync(work, { recursive: true, force: true });
}
function maxAbs(a) {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}
console.log(failed ? `FAIL (tolerance ${tolerance})` : `OK: all within ${tolerance}`);
process.exit(failed ? 1 : 0);
