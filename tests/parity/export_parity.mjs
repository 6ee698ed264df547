// export_parity.mjs - checks `facemask export` against runtimes that share no code with ours: each
// model (the three shipped .fmm files, plus any --model) is exported to a TensorFlow.js graph
// model and to ONNX by the CLI; @tensorflow/tfjs 4.22.0 (pure JS CPU backend, model loaded from
// memory) runs the tfjs export, onnxruntime-web 1.30.0 (wasm, 1 thread, in node) runs the ONNX
// file, and our engine (fm_run_raw, XNNPACK) runs the .fmm, on the same inputs (a deterministic
// pattern and a pseudo-random tensor); every output must agree within --tolerance (default 1e-3,
// max abs error). A wrong weight layout, padding, layout transpose or op mapping in an exporter
// shows up here as a large error.
//
//   node export_parity.mjs --facemask BUILD/tools/facemask --run-raw BUILD/tools/convert/fm_run_raw
//        [--fmm-dir model] [--model EXTRA.fmm]... [--node-modules ~/.cache/facemask/npm/parity/node_modules]
//
// Exit codes: 0 agree, 1 disagree or error, 77 skipped (npm packages missing: tools/npm-install).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { patternInput, randomInput } from './inputs.mjs';
import { loadTfjsCpu } from './tfjs_cpu.mjs';

const SKIP = 77;
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const extra = args.flatMap((a, i) => (a === '--model' && i + 1 < args.length ? [args[i + 1]] : []));
const nodeModules = opt('--node-modules', join(homedir(), '.cache', 'facemask', 'npm', 'parity', 'node_modules'));
const fmmDir = opt('--fmm-dir', 'model');
const cli = opt('--facemask', 'build/native-release/tools/facemask');
const runRaw = opt('--run-raw', 'build/native-release/tools/convert/fm_run_raw');
const tolerance = Number(opt('--tolerance', '1e-3'));

for (const pkg of ['@tensorflow/tfjs', 'onnxruntime-web']) {
  if (!existsSync(join(nodeModules, pkg))) {
    console.log(`SKIP: ${pkg} is not installed in ${nodeModules} (run tools/npm-install)`);
    process.exit(SKIP);
  }
}
const tf = await loadTfjsCpu(nodeModules);
const ort = await import(createRequire(join(nodeModules, '..', 'package.json')).resolve('onnxruntime-web'));
ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

const models = [
  ...['blazeface-short.fmm', 'blazeface-full.fmm', 'classifier.fmm'].map((f) => join(fmmDir, f)),
  ...extra,
];

async function loadTfjs(dir) {
  const model = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(readFileSync(join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const graph = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology,
      weightSpecs: specs,
      weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      format: model.format,
      generatedBy: model.generatedBy,
      convertedBy: model.convertedBy,
      signature: model.signature,
      userDefinedMetadata: model.userDefinedMetadata,
    }),
  );
  return { graph, outputs: model.userDefinedMetadata.outputs, inputs: model.userDefinedMetadata.inputs };
}

function readF32(path) {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function compare(ours, ref) {
  if (ours.length !== ref.length) throw new Error(`${ours.length} output values, the reference gives ${ref.length}`);
  let err = 0;
  for (let i = 0; i < ref.length; ++i) {
    const d = Math.abs(ours[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err;
}
function concat(arrays) {
  const out = new Float32Array(arrays.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const a of arrays) { out.set(a, at); at += a.length; }
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'fm-export-parity-'));
let failed = false;
const worst = {};
try {
  for (const fmm of models) {
    if (!existsSync(fmm)) throw new Error(`${fmm} is missing`);
    const name = basename(fmm, '.fmm');
    const tfjsDir = join(work, `${name}-tfjs`), onnxPath = join(work, `${name}.onnx`);
    execFileSync(cli, ['export', fmm, '--tfjs', tfjsDir, '--onnx', onnxPath], { stdio: ['ignore', 'ignore', 'inherit'] });
    const tfm = await loadTfjs(tfjsDir);
    const session = await ort.InferenceSession.create(readFileSync(onnxPath), { executionProviders: ['wasm'] });
    if (tfm.inputs.length !== 1) throw new Error(`${name}: fm_run_raw runs single-input models only`);
    const shape = tfm.graph.inputs[0].shape;
    if (JSON.stringify(session.inputNames) !== JSON.stringify(tfm.inputs) || JSON.stringify(session.outputNames) !== JSON.stringify(tfm.outputs))
      throw new Error(`${name}: the exports name different inputs/outputs: tfjs ${tfm.inputs} -> ${tfm.outputs}, ONNX ${session.inputNames} -> ${session.outputNames}`);
    const n = shape.reduce((a, b) => a * b, 1);
    for (const [label, data] of [['pattern', patternInput(shape)], ['random', randomInput(n)]]) {
      const inPath = join(work, 'in.f32'), outPath = join(work, 'out.f32');
      writeFileSync(inPath, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      execFileSync(runRaw, [fmm, '--input', inPath, '--out', outPath]);
      const ours = readF32(outPath);

      const t = tf.tensor(data, shape);
      let ys = tfm.graph.execute(t, tfm.outputs);
      if (!Array.isArray(ys)) ys = [ys];
      const tfjsOut = concat(await Promise.all(ys.map((y) => y.data())));
      tf.dispose([t, ...ys]);

      const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
      const ortOut = concat(session.outputNames.map((o) => res[o].data));

      let maxRef = 0;
      for (const v of ours) maxRef = Math.max(maxRef, Math.abs(v));
      const line = [`${name.padEnd(16)} ${label.padEnd(8)} |ours| <= ${maxRef.toFixed(2).padStart(7)}`];
      for (const [rt, ref] of [['tfjs-cpu', tfjsOut], ['onnxruntime-web', ortOut]]) {
        const err = compare(ours, ref);
        const key = `${name} ${rt}`;
        worst[key] = Math.max(worst[key] || 0, err);
        if (!(err <= tolerance)) failed = true;
        line.push(`${rt} max abs err ${err.toExponential(2)}${err <= tolerance ? '' : ' FAIL'}`);
      }
      console.log(line.join('  '));
    }
    await session.release();
    tfm.graph.dispose();
  }
} catch (e) {
  console.error(`export parity: ${e.stack || e.message}`);
  failed = true;
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`worst: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
console.log(failed ? `FAIL (tolerance ${tolerance})` : `OK: all within ${tolerance}`);
process.exit(failed ? 1 : 0);
