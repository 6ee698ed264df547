// facemask.d.ts - types of the JS API (facemask.js), written by hand; `tsc --strict` checks a
// consumer against them in tools/e2e (tests/e2e/package.mjs).

/** The labels of the shipped classifier; a user's own classifier may have others. */
export type MaskLabel = 'with_mask' | 'without_mask' | 'mask_worn_incorrectly';

export interface Face {
  /** [x0, y0, x1, y1] in the source's pixels. */
  box: [number, number, number, number];
  /** Face detector score, 0..1. */
  score: number;
  /** Six [x, y] points: eyes, nose tip, mouth, ears (BlazeFace order). */
  keypoints: Array<[number, number]>;
  /** The most likely class (with a classifier). */
  label?: MaskLabel | string;
  /** One probability per label (with a classifier). */
  probs?: Record<string, number>;
  /** false when the top probability is under the classifier's `unsure_below`: show it as a guess. */
  confident?: boolean;
  /** With {track: true}: stays with the person across frames. */
  id?: number;
}

export interface Result {
  width: number;
  height: number;
  /** Left to right. */
  faces: Face[];
  /** With options.imageClassifier, for still images: the whole photo's class. */
  image?: { label: string; probs: Record<string, number> };
}

/** An image: decoded pixels, a DOM image or video, or an encoded file (JPEG, PNG, BMP, GIF). */
export type Source =
  | ImageBitmap | ImageData | HTMLImageElement | HTMLVideoElement | HTMLCanvasElement
  | OffscreenCanvas | VideoFrame | Blob | ArrayBuffer | ArrayBufferView;

export interface DetectOptions {
  /** Video: faces get an id and smoothed labels; the detector runs every detectEvery-th frame. */
  track?: boolean;
  /** Video frame time in ms (default performance.now()); must be finite. */
  timestamp?: number;
}

export interface FaceMaskOptions {
  /** Where worker.js, facemask-engine-* and models/ are (default: next to facemask.js). */
  baseUrl?: string;
  /** A model name of models/models.json, or the .fmm bytes. */
  detector?: string | ArrayBuffer | Uint8Array;
  /** A model name, the .fmm bytes, or null for detection only. */
  classifier?: string | ArrayBuffer | Uint8Array | null;
  /** A whole-photo classifier (.fmm bytes): still images also get result.image. */
  imageClassifier?: ArrayBuffer | Uint8Array;
  /** Face detector score threshold, 0..1. */
  minScore?: number;
  /** 'int8': the named models' int8-weight files (NAME-int8.fmm; smaller downloads, same speed). */
  precision?: 'float' | 'int8';
  simd?: boolean | 'auto';
  /** 1..4; more than 1 needs a cross-origin isolated page. */
  threads?: 'auto' | 1 | 2 | 3 | 4;
  /** Video: run the face detector on every n-th frame, 1..30 (default 2). */
  detectEvery?: number;
  /** Download progress of the engine and each model (total 0 when unknown; ends loaded === total). */
  onProgress?: (progress: { what: 'engine' | 'detector' | 'classifier'; loaded: number; total: number }) => void;
}

export interface EngineInfo {
  version: string;
  flavor: 'simd' | 'nosimd';
  threads: number;
  classifier: boolean;
  imageClassifier: boolean;
  tracking: boolean;
  startup: { engineWaitMs: number; pipelineMs: number };
}

/** Errors are plain Errors whose message starts with "facemask: ". */
export interface FaceMaskError extends Error {
  /** Set when the engine crashed on this call and a new engine takes the next one. */
  engineRestarted?: boolean;
}

export interface TallySummary {
  /** Unique people (tracks seen in at least 8 results). */
  people: number;
  with_mask: number;
  without_mask: number;
  mask_worn_incorrectly: number;
  /** People never labelled with confidence. */
  unsure: number;
  /** Every settled label (a user's own classifier may have others); no prototype. */
  byLabel: Record<string, number>;
  /** with_mask / (people - unsure), or null when no one has a sure label. */
  maskedShare: number | null;
  /** When counting started (ms since the epoch). */
  since: number;
}

export interface TallyPerson {
  n: number;
  id: number;
  first: number;
  last: number;
  frames: number;
  label: string;
}

/** People seen in video: fm.tally is fed by every detect(..., {track: true}). */
export class Tally {
  constructor();
  reset(): void;
  add(result: Result, now?: number, epoch?: number): void;
  summary(): TallySummary;
  people(): TallyPerson[];
  /** The masked share per bucket over the last minutes (null: no labelled face in it). */
  history(options?: { minutes?: number; bucketSeconds?: number; now?: number }): Array<{ t: number; share: number | null }>;
  toJSON(): {
    since: string;
    summary: Omit<TallySummary, 'since'> & { since: string };
    people: Array<{ person: number; first_seen: string; last_seen: string; frames: number; label: string }>;
    history: Array<{ time: string; masked_share: number | null }>;
  };
  /** person,first_seen,last_seen,frames,label (labels quoted, never a spreadsheet formula). */
  toCSV(): string;
}

export interface FaceMask {
  /** People seen in video by this instance. */
  readonly tally: Tally;
  /** Resolves when detect() can run; rejects with a clear Error if the engine or models fail. */
  readonly ready: Promise<FaceMask>;
  /** Set once ready. */
  readonly info: EngineInfo | null;
  /** Milliseconds of the last detect(): in the engine, and in the worker in all. */
  readonly lastTiming: { engineMs: number; totalMs: number } | null;
  /** The engine's WebAssembly memory after the last detect() (bytes; never shrinks). */
  readonly wasmHeapBytes: number;
  /** Bytes malloc'd in it. */
  readonly wasmHeapUsed: number | null;
  /** Engines that crashed and were replaced. */
  readonly restarts: number;
  /** Why the last replaced engine crashed (null before any crash). */
  readonly lastCrash: string | null;
  /** Queued: calls run one at a time. */
  detect(source: Source, options?: DetectOptions): Promise<Result>;
  /** Frees the engine; later calls reject. */
  destroy(): void;
}

/** Starts loading at once; await .ready before detect(). Throws on bad options. */
export function createFaceMask(options?: FaceMaskOptions): FaceMask;

/** What this browser's WebAssembly supports, or null without WebAssembly. */
export function wasmSupport(): { simd: boolean; threads: boolean } | null;

/** The engine threads 'auto' would ask for here (2 with 4+ cores, else 1). */
export function autoThreads(): number;
