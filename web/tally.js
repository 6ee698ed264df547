// tally.js - a count over time for camera mode (a door, a waiting room): unique people by the
// engine's tracking id, each with a settled label, the session's counts and masked share, the
// share over the last minutes, and exports (CSV, JSON). It lives in the page; nothing leaves it.
// facemask.js feeds one per instance (fm.tally) with every detect(..., {track: true}) result.
//
// Rules (documented in web/README.md, "Tally"):
// - a track becomes a person once seen in MIN_FRAMES results (fewer: a passing false detection);
// - a person's label is the label the engine gave most often while confident; never confident:
//   'unsure';
// - an id unseen for GAP_MS and seen again counts as a new person; ids of a restarted engine are
//   kept apart (the epoch);
// - the share over time: of the labelled, confident faces in each bucket's frames, the part
//   with_mask.

export const MIN_FRAMES = 8;
export const GAP_MS = 3000;
const HISTORY_MS = 10 * 60 * 1000;  // the samples kept for history()
const LABELS = ['with_mask', 'without_mask', 'mask_worn_incorrectly', 'unsure'];

function settled(votes) {
  let best = 'unsure', n = 0;
  for (const [label, v] of Object.entries(votes)) if (v > n) { best = label; n = v; }
  return best;
}

export class Tally {
  constructor() { this.reset(); }

  reset() {
    this._tracks = new Map();  // `${epoch}:${id}` -> {first, last, frames, votes, person}
    this._people = [];         // {n, id, first, last, frames, label}
    this._samples = [];        // one per frame: {t, masked, labelled}
    this.since = Date.now();
  }

  // result: a detect(..., {track: true}) result; now: ms since the epoch; epoch: the engine.
  add(result, now = Date.now(), epoch = 0) {
    if (!result || !Array.isArray(result.faces)) return;
    let masked = 0, labelled = 0;
    for (const f of result.faces) {
      if (typeof f.id !== 'number') continue;
      const key = `${epoch}:${f.id}`;
      let t = this._tracks.get(key);
      if (t && now - t.last > GAP_MS) t = null;
      if (!t) {
        t = { first: now, last: now, frames: 0, votes: Object.create(null), person: null };
        this._tracks.set(key, t);
      }
      t.last = now;
      t.frames++;
      const sure = typeof f.label === 'string' && f.confident !== false;
      if (sure) t.votes[f.label] = (t.votes[f.label] || 0) + 1;
      if (!t.person && t.frames >= MIN_FRAMES) {
        t.person = { n: this._people.length + 1, id: f.id, first: t.first, last: now, frames: 0, label: 'unsure' };
        this._people.push(t.person);
      }
      if (t.person) {
        t.person.last = now;
        t.person.frames = t.frames;
        t.person.label = settled(t.votes);
      }
      if (sure) {
        labelled++;
        if (f.label === 'with_mask') masked++;
      }
    }
    this._samples.push({ t: now, masked, labelled });
    while (this._samples.length && now - this._samples[0].t > HISTORY_MS) this._samples.shift();
    for (const [key, t] of this._tracks) if (now - t.last > GAP_MS) this._tracks.delete(key);
  }

  // {people, with_mask, without_mask, mask_worn_incorrectly, unsure, maskedShare (0..1 of the
  // people with a sure label; null without any), since}
  // byLabel: every label (a user's own classifier may have others), a prototype-free object.
  summary() {
    const s = { people: this._people.length, since: this.since, byLabel: Object.create(null) };
    for (const l of LABELS) s[l] = 0;
    for (const p of this._people) {
      s.byLabel[p.label] = (s.byLabel[p.label] || 0) + 1;
      if (LABELS.includes(p.label)) s[p.label]++;
    }
    const sure = s.people - s.unsure;
    s.maskedShare = sure > 0 ? s.with_mask / sure : null;
    return s;
  }

  people() { return this._people.map((p) => ({ ...p })); }

  // The masked share per bucket over the last `minutes`: [{t (bucket start, ms), share|null}].
  history({ minutes = 5, bucketSeconds = 10, now = Date.now() } = {}) {
    const size = bucketSeconds * 1000, n = Math.max(1, Math.round(minutes * 60 / bucketSeconds));
    const start = Math.floor(now / size) * size - (n - 1) * size;
    const buckets = Array.from({ length: n }, (_, i) => ({ t: start + i * size, masked: 0, labelled: 0 }));
    for (const s of this._samples) {
      const i = Math.floor((s.t - start) / size);
      if (i >= 0 && i < n) { buckets[i].masked += s.masked; buckets[i].labelled += s.labelled; }
    }
    return buckets.map((b) => ({ t: b.t, share: b.labelled ? b.masked / b.labelled : null }));
  }

  toJSON() {
    const iso = (t) => new Date(t).toISOString();
    return {
      since: iso(this.since), summary: { ...this.summary(), since: iso(this.since) },
      people: this._people.map((p) => ({ person: p.n, first_seen: iso(p.first), last_seen: iso(p.last), frames: p.frames, label: p.label })),
      history: this.history().map((h) => ({ time: iso(h.t), masked_share: h.share })),
    };
  }

  toCSV() {
    // Labels are a model's text: quoted when needed, and never read as a spreadsheet formula.
    const cell = (v) => {
      let x = String(v);
      if (/^[=+\-@\t\r]/.test(x)) x = `'${x}`;
      return /[",\n\r]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x;
    };
    const rows = ['person,first_seen,last_seen,frames,label'];
    for (const p of this.toJSON().people) rows.push([p.person, p.first_seen, p.last_seen, p.frames, p.label].map(cell).join(','));
    return rows.join('\n') + '\n';
  }
}
