// draw.js - draws an engine result over its image and words it. The engine decides (boxes, labels,
// probabilities); this file only paints: a box per face in the label's colour, with the label's
// text and confidence (colour is never the only cue), and a one-line summary of the counts.
// A face the engine marks `confident: false` (its top probability is under the classifier's
// unsure_below) is drawn as a guess: its own colour, a dotted box and "Unsure: mask?".

export const STYLES = {
  with_mask: { text: 'Mask', color: '#1a9850', dash: [] },
  without_mask: { text: 'No mask', color: '#d7301f', dash: [] },
  mask_worn_incorrectly: { text: 'Worn incorrectly', color: '#e08214', dash: [10, 5] },
  face: { text: 'Face', color: '#2171b5', dash: [] },  // detection only (no classifier)
};
const UNSURE = { color: '#6a51a3', dash: [3, 3] };
const UNSURE_WORDS = { with_mask: 'mask?', without_mask: 'no mask?', mask_worn_incorrectly: 'worn incorrectly?' };

const CLASSES = ['with_mask', 'without_mask', 'mask_worn_incorrectly'];

// A label is whatever text a model carries ("constructor" or "__proto__" from your own model
// must never reach Object.prototype): own properties only; other labels keep their own words.
export function styleOf(label) {
  if (!label) return STYLES.face;
  if (Object.prototype.hasOwnProperty.call(STYLES, label)) return STYLES[label];
  return { ...STYLES.face, text: String(label).slice(0, 40) };
}

// The style of one face: its label's, or the unsure style when the engine doubts the label.
export function faceStyle(face) {
  const style = styleOf(face.label);
  if (!face.label || face.confident !== false) return style;
  const own = Object.prototype.hasOwnProperty.call(UNSURE_WORDS, face.label);
  return { ...UNSURE, text: `Unsure: ${own ? UNSURE_WORDS[face.label] : style.text + '?'}` };
}

export function counts(result) {
  const c = { faces: result.faces.length, with_mask: 0, without_mask: 0, mask_worn_incorrectly: 0,
    unsure: 0 };
  for (const f of result.faces) {
    if (f.label && f.confident === false) c.unsure++;
    else if (CLASSES.includes(f.label)) c[f.label]++;
  }
  return c;
}

// "3 faces: 2 masked, 1 without" / "1 face" (without a classifier) / "No faces".
export function summary(result) {
  const c = counts(result);
  if (c.faces === 0) return 'No faces';
  const head = `${c.faces} face${c.faces === 1 ? '' : 's'}`;
  if (!result.faces.some((f) => f.label)) return head;
  const parts = [];
  if (c.with_mask) parts.push(`${c.with_mask} masked`);
  if (c.without_mask) parts.push(`${c.without_mask} without`);
  if (c.mask_worn_incorrectly) parts.push(`${c.mask_worn_incorrectly} worn incorrectly`);
  if (c.unsure) parts.push(`${c.unsure} unsure`);
  return parts.length ? `${head}: ${parts.join(', ')}` : head;
}

export function faceText(face) {
  const style = faceStyle(face);
  const p = face.label && face.probs && Object.prototype.hasOwnProperty.call(face.probs, face.label)
    ? face.probs[face.label] : face.score;
  return `${style.text} ${Math.round(p * 100)}%`;
}

// Draws `image` (anything drawImage takes) scaled to the canvas and the result's faces over it.
// result.width/height give the coordinate frame of the boxes; mirror flips the picture (selfie
// view) but keeps the text readable.
export function drawResult(ctx, image, result, { mirror = false } = {}) {
  const W = ctx.canvas.width, H = ctx.canvas.height;
  ctx.save();
  if (mirror) { ctx.translate(W, 0); ctx.scale(-1, 1); }
  if (image) ctx.drawImage(image, 0, 0, W, H);
  ctx.restore();
  if (!result) return;
  const sx = W / result.width, sy = H / result.height;
  const lw = Math.max(2, Math.round(Math.min(W, H) / 250));
  const font = Math.max(12, Math.round(Math.max(W, H) / 32));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'bottom';
  for (const face of result.faces) {
    const style = faceStyle(face);
    let [x0, y0, x1, y1] = face.box;
    x0 *= sx; x1 *= sx; y0 *= sy; y1 *= sy;
    if (mirror) [x0, x1] = [W - x1, W - x0];
    ctx.lineWidth = lw;
    ctx.strokeStyle = style.color;
    ctx.setLineDash(style.dash.map((d) => d * lw / 2));
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.setLineDash([]);
    const text = faceText(face);
    const tw = ctx.measureText(text).width + 2 * lw;
    const th = font + lw;
    const ty = y0 - th >= 0 ? y0 - th : y1;  // above the box, or below when at the top edge
    const tx = Math.min(Math.max(0, x0 - lw / 2), W - tw);
    ctx.fillStyle = style.color;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, tx + lw, ty + th - lw / 2);
  }
}
