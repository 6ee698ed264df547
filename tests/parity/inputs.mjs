// inputs.mjs - the deterministic model inputs the parity checks share (blazeface_parity.mjs,
// export_parity.mjs), in [-1, 1]: a smooth pattern over an NHWC shape, and a portable LCG.
export function patternInput(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = shape[shape.length - 1], W = shape.length >= 3 ? shape[shape.length - 2] : 1;
  const x = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    const c = i % C, p = Math.floor(i / C), yy = Math.floor(p / W), xx = p % W;
    x[i] = Math.sin(0.11 * xx + 0.7 * c) * Math.cos(0.07 * yy - 0.3 * c);
  }
  return x;
}

export function randomInput(n) {
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s >>> 8) / (1 << 24) * 2 - 1;
  }
  return x;
}
