// The neutral model every exposition format is written from, and the one derivation they share:
// classic (cumulative `le`) buckets computed exactly from native base-2 exponential buckets.

import { upperBound } from './buckets.js';
import type { Exemplar } from './exemplars.js';
import { PackedCounts } from './packed-counts.js';
import type { Labels } from './types.js';

export interface NativeHistogram {
  /** All observations, including the zero bucket and overflow. */
  count: number;
  /** In the family's base unit (seconds, bytes). */
  sum: number;
  /** -4..8; bucket index i covers (2^((i-1)*2^-schema), 2^(i*2^-schema)] (Prometheus convention). */
  schema: number;
  /** Observations <= this are in zeroCount. */
  zeroThreshold: number;
  zeroCount: number;
  /** Non-cumulative, ascending index; zero counts may be omitted. */
  buckets: ReadonlyArray<{ index: number; count: number }>;
  /**
   * The same buckets in compact form (what a monitor exports: no object per bucket). When present,
   * the writers read this instead of `buckets`, which must then list the same non-zero counts.
   */
  dense?: DenseBuckets;
  /**
   * Observations above the resolved range: in count, sum and +Inf of the classic buckets. The
   * native (protobuf) exposition puts them in the first bucket above `overflowThreshold`, because
   * Prometheus (2.48 on) rejects a native histogram whose buckets do not add up to its count.
   */
  overflowCount: number;
  /**
   * Upper end of the resolved range: every overflow observation is > this. Optional; when given,
   * classic boundaries above it are left out (their cumulative count would not be exact). When
   * absent, overflow observations are taken to lie above every classic boundary.
   */
  overflowThreshold?: number;
  /**
   * Smallest and largest observation in the base unit, when known (a monitor's histograms carry
   * them when read through withExtremes(); absent when empty).
   */
  min?: number;
  max?: number;
  /**
   * Observations linked to traces (see exemplars.ts): OpenMetrics writes the latest one of each
   * classic bucket after that bucket's line; protobuf puts it on the classic Bucket and all of them
   * on the histogram (its native exemplars). Text format 0.0.4 has no place for them.
   */
  exemplars?: ReadonlyArray<Exemplar>;
}

/** A run of consecutive native buckets: `counts[k]` is the count of bucket `offset + k` (zeros allowed). */
export interface DenseBuckets {
  readonly offset: number;
  readonly counts: Float64Array;
}

export interface Summary {
  count: number;
  sum: number;
  quantiles: ReadonlyArray<{ quantile: number; value: number }>;
}

export interface Metric {
  labels: Labels;
  value?: number;
  histogram?: NativeHistogram;
  summary?: Summary;
  timestampMs?: number;
}

export interface MetricFamily {
  /** Base name without prefix, without _total, e.g. 'requests', 'request_duration_seconds'. */
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** 'seconds', 'bytes', 'ratio' ... (OpenMetrics UNIT; the name must end with _<unit>). */
  unit?: string;
  /**
   * The prefix of this family instead of the render's: `''` for names an ecosystem fixes
   * (`grpc_server_handled_total`, `process_cpu_user_seconds_total`) that dashboards look for as they are.
   */
  prefix?: string;
  /**
   * A histogram's classic bucket boundaries in its own unit (bytes, counts), instead of the render's
   * seconds ladder; each snapped to the first native boundary at or above it.
   */
  classicBoundaries?: readonly number[];
  metrics: ReadonlyArray<Metric>;
}

/** A latency ladder in seconds, 0.5 ms .. 60 s; snapped to native boundaries before use. */
export const DEFAULT_CLASSIC_BOUNDARIES_SECONDS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

const MIN_SCHEMA = -4;
const MAX_SCHEMA = 8;

function checkSchema(schema: number, argName = 'schema'): void {
  if (!Number.isInteger(schema) || schema < MIN_SCHEMA || schema > MAX_SCHEMA) {
    throw new RangeError(`${argName} must be an integer in ${MIN_SCHEMA}..${MAX_SCHEMA}, got ${schema}`);
  }
}

/**
 * Index of the first native bucket wholly above `threshold` (its lower bound >= threshold): where a
 * native exposition puts observations known only to be above it.
 */
export function firstIndexAbove(schema: number, threshold: number): number {
  const x = Math.log2(threshold) * 2 ** schema;
  const nearest = Math.round(x);
  // A threshold on a boundary (as a monitor's range top is) must not be pushed one bucket up by rounding.
  const upper = Math.abs(x - nearest) < 1e-9 ? nearest : Math.ceil(x);
  return upper + 1;
}

/** Index of the first native boundary at or above `value`. */
function nativeIndexAtOrAbove(schema: number, value: number): number {
  const x = Math.log2(value) * 2 ** schema;
  const nearest = Math.round(x);
  // A value on a boundary (a power of two, say) is that boundary, whatever log2's last bit says.
  const i = Math.abs(x - nearest) < 1e-9 ? nearest : Math.ceil(x);
  return upperBound(i, schema) < value ? i + 1 : i;
}

/** Index of the native boundary nearest to `value` (nearest on the log scale, where buckets are even). */
function nearestNativeIndex(schema: number, value: number): number {
  return Math.round(Math.log2(value) * 2 ** schema);
}

/** Classic boundaries snapped to one schema's native boundaries: ascending, distinct. */
interface SnappedBoundaries {
  readonly schema: number;
  /** Native bucket index whose upper bound each boundary is. */
  readonly indices: readonly number[];
  /** The boundary values themselves (what `le` prints). */
  readonly bounds: readonly number[];
}

/**
 * Snaps `boundaries` (positive, finite, ascending) to native boundaries of `schema`. Boundaries
 * that snap to the same native boundary are merged, so the result can be shorter.
 */
export function snapBoundaries(
  boundaries: readonly number[],
  schema: number,
  snap: Snap = 'nearest',
): SnappedBoundaries {
  checkSchema(schema);
  checkBoundaries(boundaries);
  const indices: number[] = [];
  const bounds: number[] = [];
  for (const b of boundaries) {
    const i = snap === 'up' ? nativeIndexAtOrAbove(schema, b) : nearestNativeIndex(schema, b);
    if (indices.length > 0 && indices[indices.length - 1] === i) continue;
    indices.push(i);
    bounds.push(upperBound(i, schema));
  }
  return { schema, indices, bounds };
}

function checkBoundaries(boundaries: readonly number[], argName = 'classicBoundariesSeconds'): void {
  if (!Array.isArray(boundaries as unknown)) throw new TypeError(`${argName} must be an array of numbers`);
  let prev = 0;
  for (let k = 0; k < boundaries.length; k++) {
    const b = boundaries[k];
    if (typeof b !== 'number' || !Number.isFinite(b) || b <= 0) {
      throw new RangeError(`${argName}[${k}] must be a positive finite number, got ${String(b)}`);
    }
    if (b <= prev) throw new RangeError(`${argName} must be strictly ascending (at index ${k})`);
    prev = b;
  }
}

/**
 * How a classic boundary becomes a native one: the nearest (a seconds ladder), or the first at or
 * above it (a ladder of counts or bytes, so that `le="5"`'s bucket holds the value 5 itself).
 */
type Snap = 'nearest' | 'up';

/** Classic boundaries for byte sizes: powers of 4 from 64 B to 4 GiB (exact native boundaries at every schema). */
export const BYTES_CLASSIC_BOUNDARIES: readonly number[] = Object.freeze(
  Array.from({ length: 14 }, (_, k) => 64 * 4 ** k),
);

/** Classic boundaries for counts (messages, items): 1, 2, 5, 10, 20, 50, … 1,000,000. */
export const COUNT_CLASSIC_BOUNDARIES: readonly number[] = Object.freeze(
  Array.from({ length: 19 }, (_, k) => [1, 2, 5][k % 3] * 10 ** Math.floor(k / 3)),
);

/**
 * One set of configured boundaries, snapped lazily per schema. Create one per render (or keep it
 * across renders): snapping costs a log2 per boundary, done once per schema, not per series.
 */
export class ClassicLadder {
  readonly boundaries: readonly number[];
  private readonly bySchema = new Map<number, SnappedBoundaries>();

  constructor(
    boundaries: readonly number[] = DEFAULT_CLASSIC_BOUNDARIES_SECONDS,
    readonly snap: Snap = 'nearest',
  ) {
    checkBoundaries(boundaries);
    this.boundaries = boundaries.slice();
  }

  forSchema(schema: number): SnappedBoundaries {
    let snapped = this.bySchema.get(schema);
    if (snapped === undefined) {
      snapped = snapBoundaries(this.boundaries, schema, this.snap);
      this.bySchema.set(schema, snapped);
    }
    return snapped;
  }
}

const ladderCache = new WeakMap<readonly number[], ClassicLadder>();
const ladderUpCache = new WeakMap<readonly number[], ClassicLadder>();

/**
 * The ladder for `boundaries`, reused across renders while the caller passes the same array with
 * the same contents (a changed array is re-snapped, so mutating it in place is still safe).
 */
export function ladderFor(
  boundaries: readonly number[] = DEFAULT_CLASSIC_BOUNDARIES_SECONDS,
  snap: Snap = 'nearest',
): ClassicLadder {
  const cache = snap === 'up' ? ladderUpCache : ladderCache;
  const cached = cache.get(boundaries);
  if (cached !== undefined && sameNumbers(cached.boundaries, boundaries)) return cached;
  const ladder = new ClassicLadder(boundaries, snap);
  cache.set(boundaries, ladder);
  return ladder;
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface ClassicBuckets {
  /** Upper bounds, ascending, finite; `+Inf` is implied and equals the histogram's count. */
  bounds: number[];
  /** Cumulative counts at each bound. */
  counts: number[];
}

/**
 * Checks the invariants the exact derivation relies on; a violation is a bug in whoever built
 * the model, so it throws rather than export wrong counts.
 */
export function checkNativeHistogram(h: NativeHistogram, argName = 'histogram'): void {
  checkHeader(h, argName);
  const total = h.dense === undefined ? checkBucketList(h, argName) : checkDense(h.dense, `${argName}.dense`);
  checkTotal(h, total, argName);
}

/** Everything checkNativeHistogram checks except the buckets themselves. */
function checkHeader(h: NativeHistogram, argName: string): void {
  if (h === null || typeof h !== 'object') throw new TypeError(`${argName} must be an object`);
  checkSchema(h.schema, `${argName}.schema`);
  checkCount(h.count, `${argName}.count`);
  checkCount(h.zeroCount, `${argName}.zeroCount`);
  checkCount(h.overflowCount, `${argName}.overflowCount`);
  if (typeof h.sum !== 'number') throw new TypeError(`${argName}.sum must be a number`);
  if (typeof h.zeroThreshold !== 'number' || !(h.zeroThreshold >= 0) || !Number.isFinite(h.zeroThreshold)) {
    throw new RangeError(`${argName}.zeroThreshold must be a finite number >= 0`);
  }
}

function checkTotal(h: NativeHistogram, bucketTotal: number, argName: string): void {
  if (bucketTotal + h.zeroCount + h.overflowCount !== h.count) {
    throw new RangeError(
      `${argName}.count (${h.count}) must equal zeroCount + bucket counts + overflowCount (${bucketTotal + h.zeroCount + h.overflowCount})`,
    );
  }
}

/** Checks `buckets` (ascending integer indices, non-negative integer counts); returns their total. */
function checkBucketList(h: NativeHistogram, argName: string): number {
  if (!Array.isArray(h.buckets as unknown)) throw new TypeError(`${argName}.buckets must be an array`);
  let total = 0;
  let prev = -Infinity;
  const buckets = h.buckets;
  // Hot for large histograms: plain comparisons instead of Number.isInteger per field.
  for (let k = 0; k < buckets.length; k++) {
    const b = buckets[k];
    const index = b.index;
    const count = b.count;
    if (!((index | 0) === index && index > prev)) {
      throw new RangeError(`${argName}.buckets[${k}].index must be an integer above the previous index`);
    }
    if (!(count >= 0 && Math.floor(count) === count)) {
      throw new RangeError(`${argName}.buckets[${k}].count must be a non-negative integer`);
    }
    prev = index;
    total += count;
  }
  return total;
}

function checkDense(d: DenseBuckets, argName: string): number {
  checkDenseShape(d, argName);
  return checkDenseCounts(d.counts, 0, d.counts.length, argName);
}

function checkDenseShape(d: DenseBuckets, argName: string): void {
  if (d === null || typeof d !== 'object' || !(d.counts instanceof Float64Array)) {
    throw new TypeError(`${argName} must be { offset, counts: Float64Array }`);
  }
  if ((d.offset | 0) !== d.offset || ((d.offset + d.counts.length) | 0) !== d.offset + d.counts.length) {
    throw new RangeError(`${argName}.offset must be an integer (32-bit, with the whole run)`);
  }
}

/** Checks counts[from..to) (non-negative integers); returns their sum. */
function checkDenseCounts(counts: Float64Array, from: number, to: number, argName: string): number {
  let total = 0;
  for (let k = from; k < to; k++) {
    const count = counts[k];
    if (!(count >= 0 && Math.floor(count) === count)) {
      throw new RangeError(`${argName}.counts[${k}] must be a non-negative integer`);
    }
    total += count;
  }
  return total;
}

/**
 * counts[from..to) added up, unchecked (see MonitorCounts). Four sums side by side, so that each
 * add need not wait for the one before; whole counts below 2^53 add up exactly in any order.
 */
function sumCounts(counts: Float64Array, from: number, to: number, _argName: string): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let k = from;
  for (; k + 4 <= to; k += 4) {
    a += counts[k];
    b += counts[k + 1];
    c += counts[k + 2];
    d += counts[k + 3];
  }
  for (; k < to; k++) a += counts[k];
  return a + b + c + d;
}

// `buckets` of a dense histogram: its list form, made on first read and kept as a plain property.
// One descriptor for all (an object literal with its own getter costs ~20× more to make).
const lazyBuckets: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: NativeHistogram) {
    const buckets = bucketList(this);
    Object.defineProperty(this, 'buckets', { value: buckets, enumerable: true, writable: true, configurable: true });
    return buckets;
  },
};

/** `h` (dense) with its `buckets` list made when first read. */
export function withLazyBuckets(h: Omit<NativeHistogram, 'buckets'> & { dense: DenseBuckets }): NativeHistogram {
  return Object.defineProperty(h, 'buckets', lazyBuckets) as NativeHistogram;
}

/** The non-zero buckets of `h` as a list, whichever form it carries (for readers that are not hot). */
export function bucketList(h: NativeHistogram): Array<{ index: number; count: number }> {
  if (h.dense === undefined) return h.buckets.filter((b) => b.count !== 0);
  const out: Array<{ index: number; count: number }> = [];
  const { offset, counts } = h.dense;
  for (let k = 0; k < counts.length; k++) if (counts[k] !== 0) out.push({ index: offset + k, count: counts[k] });
  return out;
}

function checkCount(v: unknown, argName: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${argName} must be a non-negative safe integer, got ${String(v)}`);
  }
}

/**
 * Cumulative classic buckets, exact by construction: every bound is a native boundary, so each
 * native bucket lies wholly below or wholly above it. Bounds below the zero threshold (the zero
 * bucket straddles them) and above `overflowThreshold` are left out. Which bounds appear depends
 * only on the schema and thresholds, never on the counts, so the `le` series stay stable.
 * `h` must satisfy checkNativeHistogram.
 */
export function classicBuckets(h: NativeHistogram, ladder: ClassicLadder): ClassicBuckets {
  if (h.dense !== undefined) return denseClassic(h, h.dense, ladder, sumCounts, '').classic;
  const snapped = ladder.forSchema(h.schema);
  const indices = snapped.indices;
  const allBounds = snapped.bounds;
  const top = h.overflowThreshold ?? Infinity;
  const bounds: number[] = [];
  const counts: number[] = [];
  let cumulative = h.zeroCount;
  const buckets = h.buckets;
  let j = 0;
  for (let k = 0; k < indices.length; k++) {
    const bound = allBounds[k];
    if (bound < h.zeroThreshold) continue;
    if (bound > top) break;
    const index = indices[k];
    while (j < buckets.length && buckets[j].index <= index) {
      cumulative += buckets[j].count;
      j++;
    }
    bounds.push(bound);
    counts.push(cumulative);
  }
  return { bounds, counts };
}

/**
 * The dense counts a monitor exported from its own memory (monitor.nativeHistogram): every count is
 * a whole number ≥ 0 by construction, so the writers only add them up (and still check the total).
 * Any other counts, a copy ({ ...h.dense }) among them, are checked one by one. Told apart by class:
 * a mark in a WeakSet, or as a property, costs ~0.4 µs per histogram and scrape.
 */
export class MonitorCounts implements DenseBuckets {
  readonly offset: number;
  readonly counts: Float64Array;

  constructor(offset: number, counts: Float64Array) {
    this.offset = offset;
    this.counts = counts;
  }
}

/**
 * checkNativeHistogram and classicBuckets in one: for dense buckets, one pass over the counts that
 * checks them and cumulates them at the classic bounds (what a writer does for every histogram of
 * every scrape).
 */
export function checkedClassicBuckets(
  h: NativeHistogram,
  ladder: ClassicLadder,
  argName = 'histogram',
): ClassicBuckets {
  if (h === null || typeof h !== 'object' || h.dense === undefined) {
    checkNativeHistogram(h, argName);
    return classicBuckets(h, ladder);
  }
  if (h.dense instanceof ClassicOnly) return keptClassic(h, h.dense, ladder, argName);
  checkHeader(h, argName);
  const where = `${argName}.dense`;
  checkDenseShape(h.dense, where);
  const { classic, total } = denseClassic(
    h,
    h.dense,
    ladder,
    h.dense instanceof MonitorCounts || h.dense instanceof PackedCounts ? sumCounts : checkDenseCounts,
    where,
  );
  checkTotal(h, total, argName);
  return classic;
}

/**
 * The classic buckets of dense counts, in one pass that adds them up with `add` (which may check
 * them too), and the total of all the counts. With `shareBounds`, the bounds are boundsOf's array,
 * shared by every histogram of the same shape and ladder (for a scrape's own use only).
 */
function denseClassic(
  h: NativeHistogram,
  d: DenseBuckets,
  ladder: ClassicLadder,
  add: (counts: Float64Array, from: number, to: number, argName: string) => number,
  where: string,
  shareBounds = false,
): { classic: ClassicBuckets; total: number } {
  const { offset, counts: dense } = d;
  const snapped = ladder.forSchema(h.schema);
  const indices = snapped.indices;
  const allBounds = snapped.bounds;
  const top = h.overflowThreshold ?? Infinity;
  // The bounds are ascending: those printed are a run of them, from the zero bucket to the overflow.
  let first = 0;
  while (first < indices.length && allBounds[first] < h.zeroThreshold) first++;
  let last = first;
  while (last < indices.length && !(allBounds[last] > top)) last++;
  const counts: number[] = [];
  let sum = 0; // of dense[0..j)
  let j = 0;
  for (let k = first; k < last; k++) {
    const end = Math.min(Math.max(indices[k] - offset + 1, j), dense.length);
    sum += add(dense, j, end, where);
    j = end;
    counts.push(h.zeroCount + sum);
  }
  sum += add(dense, j, dense.length, where);
  const bounds = shareBounds ? boundsOf(snapped, first, last) : allBounds.slice(first, last);
  return { classic: { bounds, counts }, total: sum };
}

/**
 * Dense buckets of which only the cumulative counts at one ladder's bounds were kept: what a text
 * render of a monitor reads (see keepClassicOnly), where every native bucket would be read, kept and
 * added up again for a few classic ones. Its native counts are not there: `counts` throws.
 */
export class ClassicOnly implements DenseBuckets {
  readonly offset: number;
  readonly ladder: ClassicLadder;
  readonly classic: ClassicBuckets;
  /** All the dense counts added up (for the check against the histogram's count). */
  readonly total: number;

  constructor(offset: number, ladder: ClassicLadder, classic: ClassicBuckets, total: number) {
    this.offset = offset;
    this.ladder = ladder;
    this.classic = classic;
    this.total = total;
  }

  get counts(): Float64Array {
    throw new Error('streamgauge: only the classic buckets of this histogram were read (a text render)');
  }
}

/**
 * `h`, whose dense counts a monitor exported, with only its classic buckets at `ladder` kept in
 * place of them (for a render in a text format; the counts' array may be reused after this).
 */
export function keepClassicOnly(h: NativeHistogram, ladder: ClassicLadder): NativeHistogram {
  const d = h.dense;
  if (d === undefined) return h;
  const { classic, total } = denseClassic(h, d, ladder, sumCounts, '', true);
  h.dense = new ClassicOnly(d.offset, ladder, classic, total);
  return h;
}

// The bounds depend on the ladder and the histogram's shape alone: the series of one family share
// one array (and a writer its text), never changed once made.
let lastSnapped: SnappedBoundaries | undefined;
let lastFirst = 0;
let lastEnd = 0;
let lastBounds: number[] = [];

/** bounds[first..end) of `snapped`, the same array while they are the same. */
function boundsOf(snapped: SnappedBoundaries, first: number, end: number): number[] {
  if (snapped !== lastSnapped || first !== lastFirst || end !== lastEnd) {
    lastSnapped = snapped;
    lastFirst = first;
    lastEnd = end;
    lastBounds = snapped.bounds.slice(first, end);
  }
  return lastBounds;
}

function keptClassic(h: NativeHistogram, kept: ClassicOnly, ladder: ClassicLadder, argName: string): ClassicBuckets {
  checkHeader(h, argName);
  // The collect and the render take their ladders from the same options.
  const same = kept.ladder;
  if (same !== ladder && (same.snap !== ladder.snap || !sameNumbers(same.boundaries, ladder.boundaries))) {
    throw new Error('streamgauge: the classic buckets kept for a text render are of another ladder');
  }
  checkTotal(h, kept.total, argName);
  return kept.classic;
}

/** OpenMetrics' bound on an exemplar's label names and values together (UTF-8 characters). */
export const EXEMPLAR_LABELS_MAX_CHARS = 128;

/** Checks a histogram's exemplars (when it has any) before a writer writes them. */
export function checkExemplars(exemplars: ReadonlyArray<Exemplar> | undefined, argName: string): void {
  if (exemplars === undefined) return;
  if (!Array.isArray(exemplars as unknown)) throw new TypeError(`${argName} must be an array when given`);
  for (let k = 0; k < exemplars.length; k++) {
    const e = exemplars[k];
    const at = `${argName}[${k}]`;
    if (e === null || typeof e !== 'object') throw new TypeError(`${at} must be an object`);
    if (typeof e.value !== 'number' || Number.isNaN(e.value)) throw new TypeError(`${at}.value must be a number`);
    if (e.timestampMs !== undefined && !Number.isSafeInteger(e.timestampMs)) {
      throw new RangeError(`${at}.timestampMs must be an integer number of milliseconds`);
    }
    if (e.labels === null || typeof e.labels !== 'object') throw new TypeError(`${at}.labels must be an object`);
    let chars = 0;
    for (const name in e.labels) {
      const value = e.labels[name];
      if (typeof value !== 'string') throw new TypeError(`${at}.labels.${name} must be a string`);
      chars += [...name].length + [...value].length;
    }
    if (chars > EXEMPLAR_LABELS_MAX_CHARS) {
      throw new RangeError(
        `${at}.labels: names and values together must be at most ${EXEMPLAR_LABELS_MAX_CHARS} characters (got ${chars})`,
      );
    }
  }
}

/**
 * The exemplar each classic bucket shows: the latest (by timestamp, then by position) of those whose
 * value lies in the bucket, i.e. above the bound before it and at or below its own; index
 * `bounds.length` is the +Inf bucket. Undefined where a bucket has none.
 */
export function exemplarsByBucket(
  exemplars: ReadonlyArray<Exemplar>,
  bounds: readonly number[],
): (Exemplar | undefined)[] {
  const out: (Exemplar | undefined)[] = new Array(bounds.length + 1).fill(undefined);
  for (const e of exemplars) {
    let k = 0;
    while (k < bounds.length && e.value > bounds[k]) k++;
    const seen = out[k];
    if (seen === undefined || (e.timestampMs ?? 0) >= (seen.timestampMs ?? 0)) out[k] = e;
  }
  return out;
}
