// tfjs_cpu.mjs - loads @tensorflow/tfjs from the parity node_modules (tools/npm-install) on its
// pure JS CPU backend, the reference the parity checks compare the engine with.
import { createRequire } from 'node:module';
import { join } from 'node:path';

export async function loadTfjsCpu(nodeModules) {
  const require = createRequire(join(nodeModules, '..', 'package.json'));
  // Quiet the "install the node backend" banner: these checks want the pure JS CPU kernels.
  const quiet = (print) => (...a) => {
    if (!String(a[0]).includes('tfjs-node') && !/^=+$/.test(String(a[0]).trim())) print(...a);
  };
  console.log = quiet(console.log);
  console.warn = quiet(console.warn);
  const tf = require('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  return tf;
}
