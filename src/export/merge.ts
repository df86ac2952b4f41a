// The one merge of cumulative series state, for snapshots (mergeSnapshots) and for the cluster
// primary (its workers' reports): counters and error types summed, latency histograms added bucket
// by bucket at the coarsest scale among them, never by averaging quantiles. A histogram here is
// one run of counts (no object per bucket): a primary merges thousands of series per scrape.
import { upperBound } from '../core/buckets.js';
import { type DenseBuckets, type NativeHistogram, withLazyBuckets } from '../core/family-model.js';

/** One series' cumulative state, as merged. */
export interface SeriesPart {
  /** seriesKey(labels, kind): parts with the same key merge. */
  key: string;
  /** COUNTER_FIELDS order. */
  counters: number[];
  errorsByType: Record<string, number>;
  /** The latency histogram (NativeHistogram's fields; seconds), its buckets as `counts`. */
  schema: number;
  count: number;
  sum: number;
  zeroThreshold: number;
  zeroCount: number;
  overflowCount: number;
  overflowThreshold: number;
  /** Latency extremes in ms; NaN when nothing was recorded. */
  minMs: number;
  maxMs: number;
  /** Bucket index of counts[0]. */
  offset: number;
  counts: Float64Array;
}

/** A series' state as a part; a dense histogram's counts are taken as they are, not copied. */
export function partOf(
  key: string,
  counters: number[],
  errorsByType: Record<string, number>,
  h: NativeHistogram,
  minMs: number,
  maxMs: number,
): SeriesPart {
  const { offset, counts } = h.dense ?? denseOf(h.buckets);
  return {
    key,
    counters,
    errorsByType,
    schema: h.schema,
    count: h.count,
    sum: h.sum,
    zeroThreshold: h.zeroThreshold,
    zeroCount: h.zeroCount,
    overflowCount: h.overflowCount,
    overflowThreshold: h.overflowThreshold ?? Number.POSITIVE_INFINITY,
    minMs,
    maxMs,
    offset,
    counts,
  };
}

/** Buckets listed in any order, an index maybe more than once (a snapshot built by hand), as one run. */
function denseOf(buckets: ReadonlyArray<{ index: number; count: number }>): DenseBuckets {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const b of buckets) {
    if (b.index < lo) lo = b.index;
    if (b.index > hi) hi = b.index;
  }
  if (!(hi >= lo)) return { offset: 0, counts: new Float64Array(0) };
  const counts = new Float64Array(hi - lo + 1);
  for (const b of buckets) counts[b.index - lo] += b.count;
  return { offset: lo, counts };
}

/** A part's latency histogram, its buckets listed only if read. */
export function histogramOf(p: SeriesPart): NativeHistogram {
  return withLazyBuckets({
    schema: p.schema,
    count: p.count,
    sum: p.sum,
    zeroThreshold: p.zeroThreshold,
    zeroCount: p.zeroCount,
    overflowCount: p.overflowCount,
    overflowThreshold: p.overflowThreshold,
    dense: { offset: p.offset, counts: p.counts },
  });
}

/** The bucket runs of `parts` as one range of indexes at `schema` (no coarser than any part's). */
export function spanAt(parts: Iterable<SeriesPart>, schema: number): { lo: number; counts: Float64Array } {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const p of parts) {
    if (p.counts.length === 0) continue;
    lo = Math.min(lo, coarser(p.offset, p.schema - schema));
    hi = Math.max(hi, coarser(p.offset + p.counts.length - 1, p.schema - schema));
  }
  return hi >= lo ? { lo, counts: new Float64Array(hi - lo + 1) } : { lo: 0, counts: new Float64Array(0) };
}

/** Bucket i at a scale `shift` finer lies inside bucket ceil(i / 2^shift). */
function coarser(index: number, shift: number): number {
  return shift === 0 ? index : Math.ceil(index / 2 ** shift);
}

/** Adds `sign` × the part's bucket counts into `counts` (index `lo` first) at `schema` (<= the part's). */
export function addCounts(counts: Float64Array, lo: number, schema: number, p: SeriesPart, sign: number): void {
  const c = p.counts;
  const n = c.length;
  if (p.schema === schema) {
    const at = p.offset - lo;
    for (let k = 0; k < n; k++) counts[at + k] += sign * c[k];
    return;
  }
  const div = 2 ** (p.schema - schema);
  for (let k = 0; k < n; k++) if (c[k] !== 0) counts[Math.ceil((p.offset + k) / div) - lo] += sign * c[k];
}

/** Exact combined state of parts with the same key. */
export function mergeParts(group: readonly SeriesPart[]): SeriesPart {
  const only = group[0];
  // One part is its own merge, unless buckets below its zero threshold must join the zero bucket.
  if (group.length === 1 && (only.counts.length === 0 || upperBound(only.offset, only.schema) > only.zeroThreshold))
    return only;
  const schema = Math.min(...group.map((p) => p.schema));
  const { lo, counts } = spanAt(group, schema);
  for (const p of group) addCounts(counts, lo, schema, p, 1);
  // Every zero bucket holds values <= its own threshold, so <= the largest; a bucket wholly below
  // that largest threshold joins the zero bucket too (ascending: stop at the first one above it).
  const zeroThreshold = Math.max(...group.map((p) => p.zeroThreshold));
  let zeroCount = group.reduce((n, p) => n + p.zeroCount, 0);
  for (let k = 0; k < counts.length && upperBound(lo + k, schema) <= zeroThreshold; k++) {
    zeroCount += counts[k];
    counts[k] = 0;
  }
  const errorsByType: Record<string, number> = {};
  for (const p of group)
    for (const [t, n] of Object.entries(p.errorsByType)) errorsByType[t] = (errorsByType[t] ?? 0) + n;
  const mins = group.map((p) => p.minMs).filter((x) => !Number.isNaN(x));
  const maxs = group.map((p) => p.maxMs).filter((x) => !Number.isNaN(x));
  return {
    key: only.key,
    counters: only.counters.map((_, f) => group.reduce((n, p) => n + p.counters[f], 0)),
    errorsByType,
    schema,
    count: group.reduce((n, p) => n + p.count, 0),
    sum: group.reduce((n, p) => n + p.sum, 0),
    zeroThreshold,
    zeroCount,
    overflowCount: group.reduce((n, p) => n + p.overflowCount, 0),
    overflowThreshold: Math.min(...group.map((p) => p.overflowThreshold)),
    // NaN (nothing recorded) unless some part recorded something.
    minMs: mins.length > 0 ? Math.min(...mins) : Number.NaN,
    maxMs: maxs.length > 0 ? Math.max(...maxs) : Number.NaN,
    offset: lo,
    counts,
  };
}

/** Parts merged by key, in the order each key first appears. */
export function mergeByKey(parts: Iterable<SeriesPart>): Map<string, SeriesPart> {
  const groups = new Map<string, SeriesPart[]>();
  for (const p of parts) {
    const g = groups.get(p.key);
    if (g) g.push(p);
    else groups.set(p.key, [p]);
  }
  const out = new Map<string, SeriesPart>();
  for (const [key, g] of groups) out.set(key, mergeParts(g));
  return out;
}
