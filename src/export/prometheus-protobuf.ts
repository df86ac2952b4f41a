// The Prometheus protobuf exposition (`io.prometheus.client.MetricFamily`, length-delimited),
// the only format that carries native histograms. Histograms carry both the native buckets
// (schema, zero bucket, spans + deltas) and classic cumulative buckets, so a scraper without
// native-histogram support still gets a usable classic histogram from the same message.
//
// A small purpose-built encoder rather than protobufjs: the message set is fixed and tiny, and
// writing straight into one growing byte array avoids building an object tree per series on every
// scrape. Tests decode the output with protobufjs against a schema written from metrics.proto.

import {
  type ClassicLadder,
  bucketList,
  type ClassicBuckets,
  checkedClassicBuckets,
  checkExemplars,
  type DenseBuckets,
  exemplarsByBucket,
  firstIndexAbove,
  ladderFor,
  type MetricFamily,
  type NativeHistogram,
} from '../core/family-model.js';
import type { Exemplar } from '../core/exemplars.js';
import { keptBytes } from './slabs.js';
import {
  checkedFamilyBase,
  familyLadder,
  checkRenderArgs,
  checkSummary,
  checkTimestamp,
  checkValue,
  labelCache,
  metricAt,
  reservedLabel,
  resolvePrefix,
  type TextRenderOptions,
} from './prometheus-text.js';

export const PROTOBUF_CONTENT_TYPE =
  'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

type ProtobufRenderOptions = TextRenderOptions;

// Field numbers of io.prometheus.client (metrics.proto).
const F = {
  // MetricFamily
  FamilyName: 1,
  FamilyHelp: 2,
  FamilyType: 3,
  FamilyMetric: 4,
  // Metric
  MetricLabel: 1,
  MetricGauge: 2,
  MetricCounter: 3,
  MetricSummary: 4,
  MetricTimestampMs: 6,
  MetricHistogram: 7,
  // LabelPair
  LabelName: 1,
  LabelValue: 2,
  // Gauge / Counter
  Value: 1,
  // Summary
  SummaryCount: 1,
  SummarySum: 2,
  SummaryQuantile: 3,
  // Quantile
  QuantileQuantile: 1,
  QuantileValue: 2,
  // Histogram
  HistCount: 1,
  HistSum: 2,
  HistBucket: 3,
  HistSchema: 5,
  HistZeroThreshold: 6,
  HistZeroCount: 7,
  HistPositiveSpan: 12,
  HistPositiveDelta: 13,
  HistExemplars: 16,
  // Bucket
  BucketCumulativeCount: 1,
  BucketUpperBound: 2,
  BucketExemplar: 3,
  // Exemplar (its labels are field 1, as a Metric's)
  ExemplarValue: 2,
  ExemplarTimestamp: 3,
  // google.protobuf.Timestamp
  TimestampSeconds: 1,
  TimestampNanos: 2,
  // BucketSpan
  SpanOffset: 1,
  SpanLength: 2,
} as const;

const MetricType = { counter: 0, gauge: 1, summary: 2, histogram: 4 } as const;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;

/**
 * Gaps of up to this many empty buckets are sent as zero counts rather than as a new span: a zero
 * costs a byte, a span 6 to 8, and finding short gaps in dense counts costs more than writing them
 * (see putSmallDeltas: a longer gap always holds a whole empty block of four, wherever the blocks
 * start, and that block is what sets off a measurement).
 */
const MAX_GAP_IN_SPAN = 11;

/** Sized from the previous render so a steady scrape allocates once. */
let capacityHint = 64 * 1024;

/** Renders the families as length-delimited `MetricFamily` messages. */
export function renderProtobuf(families: Iterable<MetricFamily>, options: ProtobufRenderOptions = {}): Uint8Array {
  checkRenderArgs(families, options);
  const prefix = resolvePrefix(options.prefix);
  const ladder = ladderFor(options.classicBoundariesSeconds);
  const w = new Writer(capacityHint);
  const seen = new Set<string>();
  let f = 0;
  for (const family of families) {
    const where = `families[${f++}]`;
    const base = checkedFamilyBase(prefix, family, where, seen);
    const start = w.beginLength(); // the delimiter: a varint length before each message
    w.string(F.FamilyName, family.type === 'counter' ? base + '_total' : base);
    if (family.help.length > 0) w.string(F.FamilyHelp, family.help);
    w.tag(F.FamilyType, WIRE_VARINT);
    w.varint(MetricType[family.type]);
    writeMetrics(w, family, where, familyLadder(family, ladder));
    w.endLength(start);
  }
  const out = w.finish();
  capacityHint = Math.max(capacityHint, out.length + (out.length >>> 2));
  return out;
}

let labelScratch: Writer | undefined;

/** A metric's labels (checked, sanitised) as encoded Metric.label fields. */
const encodedLabels = labelCache((pairs) => {
  const w = (labelScratch ??= new Writer(256));
  w.position = 0;
  for (let p = 0; p < pairs.length; p += 2) {
    w.tag(F.MetricLabel, WIRE_LEN);
    const s = w.beginLength();
    w.string(F.LabelName, pairs[p]);
    w.string(F.LabelValue, pairs[p + 1]);
    w.endLength(s);
  }
  // Kept for as long as the label set lives (see slabs.ts).
  const bytes = w.finish();
  const kept = keptBytes(bytes.length);
  kept.set(bytes);
  return kept;
});

function writeMetrics(w: Writer, family: MetricFamily, where: string, ladder: ClassicLadder): void {
  const reserved = reservedLabel(family);
  for (let m = 0; m < family.metrics.length; m++) {
    const metric = family.metrics[m];
    if (metric === null || typeof metric !== 'object') throw new TypeError(`${metricAt(where, m)} must be an object`);
    const labels = encodedLabels(metric.labels, where, m, reserved);
    if (metric.timestampMs === undefined && (family.type === 'counter' || family.type === 'gauge')) {
      const value = metric.value;
      writeValueMetric(
        w,
        labels,
        family.type === 'counter' ? COUNTER_TAG : GAUGE_TAG,
        typeof value === 'number' ? value : checkValue(metric, metricAt(where, m)),
      );
      continue;
    }
    const at = metricAt(where, m);
    const timestamp = checkTimestamp(metric, at);
    w.tag(F.FamilyMetric, WIRE_LEN);
    const metricStart = w.beginLength();
    w.raw(labels);
    switch (family.type) {
      case 'counter':
      case 'gauge': {
        // With a timestamp (the other case is writeValueMetric's).
        const value = checkValue(metric, at);
        w.tag(family.type === 'counter' ? F.MetricCounter : F.MetricGauge, WIRE_LEN);
        const s = w.beginLength();
        w.double(F.Value, value);
        w.endLength(s);
        break;
      }
      case 'summary': {
        const summary = metric.summary;
        if (summary === undefined || summary === null || typeof summary !== 'object') {
          throw new TypeError(`${at}.summary is required in a summary family`);
        }
        checkSummary(summary, `${at}.summary`);
        w.tag(F.MetricSummary, WIRE_LEN);
        const s = w.beginLength();
        w.tag(F.SummaryCount, WIRE_VARINT);
        w.varint(summary.count);
        w.double(F.SummarySum, summary.sum);
        for (const { quantile, value } of summary.quantiles) {
          w.tag(F.SummaryQuantile, WIRE_LEN);
          const q = w.beginLength();
          w.double(F.QuantileQuantile, quantile);
          w.double(F.QuantileValue, value);
          w.endLength(q);
        }
        w.endLength(s);
        break;
      }
      case 'histogram': {
        const h = metric.histogram;
        if (h === undefined) throw new TypeError(`${at}.histogram is required in a histogram family`);
        // Checked (with the classic buckets worked out in the same pass) before anything is written.
        const classic = checkedClassicBuckets(h, ladder, `${at}.histogram`);
        const exemplars = h.exemplars !== undefined && h.exemplars.length > 0 ? h.exemplars : undefined;
        checkExemplars(exemplars, `${at}.histogram.exemplars`);
        w.tag(F.MetricHistogram, WIRE_LEN);
        const s = w.beginLength();
        writeHistogram(w, h, classic, exemplars, at);
        w.endLength(s);
        break;
      }
    }
    if (timestamp !== undefined) {
      w.tag(F.MetricTimestampMs, WIRE_VARINT);
      w.int64(timestamp);
    }
    w.endLength(metricStart);
  }
}

const METRIC_TAG = F.FamilyMetric * 8 + WIRE_LEN;
const COUNTER_TAG = F.MetricCounter * 8 + WIRE_LEN;
const GAUGE_TAG = F.MetricGauge * 8 + WIRE_LEN;
const VALUE_TAG = F.Value * 8 + WIRE_I64;
/** A Counter or Gauge message: the value's tag and its 8 bytes. */
const VALUE_MESSAGE_BYTES = 9;

/**
 * A whole counter or gauge Metric (labels, then the value; no timestamp): the most common metric,
 * whose length is known before it is written, so it takes one claim and plain stores.
 */
function writeValueMetric(w: Writer, labels: Uint8Array, typeTag: number, value: number): void {
  const length = labels.length + 2 + VALUE_MESSAGE_BYTES;
  const buf = w.claim(length + 6);
  let pos = w.position;
  buf[pos++] = METRIC_TAG;
  pos = putVarint(buf, pos, length);
  buf.set(labels, pos);
  pos += labels.length;
  buf[pos++] = typeTag;
  buf[pos++] = VALUE_MESSAGE_BYTES;
  buf[pos++] = VALUE_TAG;
  w.dataView.setFloat64(pos, value, true);
  w.position = pos + 8;
}

function writeHistogram(
  w: Writer,
  h: NativeHistogram,
  classic: ClassicBuckets,
  exemplars: ReadonlyArray<Exemplar> | undefined,
  at: string,
): void {
  w.tag(F.HistCount, WIRE_VARINT);
  w.varint(h.count);
  w.double(F.HistSum, h.sum);
  // Classic buckets; +Inf is implied by the count (scrapers add it), so it is not sent.
  if (exemplars === undefined) writeClassicBuckets(w, classic);
  else writeClassicBucketsWithExemplars(w, h, classic, exemplars, at);
  w.tag(F.HistSchema, WIRE_VARINT);
  w.varint(zigzag(h.schema));
  w.double(F.HistZeroThreshold, h.zeroThreshold);
  w.tag(F.HistZeroCount, WIRE_VARINT);
  w.varint(h.zeroCount);
  const top = h.overflowThreshold;
  if (h.overflowCount > 0 && top !== undefined && top > 0 && Number.isFinite(top)) {
    // Overflow observations go in the first bucket above the range, so that the buckets add up to
    // the count (the rare case: the list form, with one more bucket).
    const buckets = bucketList(h);
    const last = buckets.length > 0 ? buckets[buckets.length - 1].index : -Infinity;
    buckets.push({ index: Math.max(firstIndexAbove(h.schema, top), last + 1), count: h.overflowCount });
    writeSpansAndDeltas(w, buckets);
  } else if (h.dense !== undefined) writeDenseSpansAndDeltas(w, h as NativeHistogram & { dense: DenseBuckets });
  else writeSpansAndDeltas(w, h.buckets);
  // The native histogram's own exemplars (Prometheus 2.42 reads only the classic buckets' ones;
  // later versions read these first).
  if (exemplars !== undefined) {
    for (const e of exemplars) {
      w.tag(F.HistExemplars, WIRE_LEN);
      const start = w.beginLength();
      writeExemplar(w, e, at);
      w.endLength(start);
    }
  }
}

/**
 * The classic buckets when exemplars are to go with them: each bucket carries the latest exemplar
 * whose value it holds, and a +Inf bucket is written when one lies above the last bound.
 */
function writeClassicBucketsWithExemplars(
  w: Writer,
  h: NativeHistogram,
  classic: ClassicBuckets,
  exemplars: ReadonlyArray<Exemplar>,
  at: string,
): void {
  const { counts, bounds } = classic;
  const picks = exemplarsByBucket(exemplars, bounds);
  for (let k = 0; k <= bounds.length; k++) {
    const e = picks[k];
    if (k === bounds.length && e === undefined) break;
    w.tag(F.HistBucket, WIRE_LEN);
    const start = w.beginLength();
    w.tag(F.BucketCumulativeCount, WIRE_VARINT);
    w.varint(k < bounds.length ? counts[k] : h.count);
    w.double(F.BucketUpperBound, k < bounds.length ? bounds[k] : Infinity);
    if (e !== undefined) {
      w.tag(F.BucketExemplar, WIRE_LEN);
      const ex = w.beginLength();
      writeExemplar(w, e, at);
      w.endLength(ex);
    }
    w.endLength(start);
  }
}

/** An Exemplar message's fields: labels, value, timestamp (when known). */
function writeExemplar(w: Writer, e: Exemplar, at: string): void {
  w.raw(encodedLabels(e.labels, `${at}.histogram.exemplar`, -1, ''));
  w.double(F.ExemplarValue, e.value);
  const t = e.timestampMs;
  if (t !== undefined) {
    const seconds = Math.floor(t / 1000);
    w.tag(F.ExemplarTimestamp, WIRE_LEN);
    const start = w.beginLength();
    w.tag(F.TimestampSeconds, WIRE_VARINT);
    w.int64(seconds);
    const nanos = (t - seconds * 1000) * 1_000_000;
    if (nanos > 0) {
      w.tag(F.TimestampNanos, WIRE_VARINT);
      w.varint(nanos);
    }
    w.endLength(start);
  }
}

const BUCKET_TAG = F.HistBucket * 8 + WIRE_LEN;
const BUCKET_COUNT_TAG = F.BucketCumulativeCount * 8 + WIRE_VARINT;
const BUCKET_BOUND_TAG = F.BucketUpperBound * 8 + WIRE_I64;
/** Most bytes of one Bucket field: tag, length, count tag + varint (≤ 10), bound tag + f64. */
const BUCKET_MAX_BYTES = 2 + 11 + 9;

/** Histogram.bucket fields (cumulative count, upper bound) straight into the message: a few dozen per histogram. */
function writeClassicBuckets(w: Writer, classic: ClassicBuckets): void {
  const { counts, bounds } = classic;
  const buf = w.claim(counts.length * BUCKET_MAX_BYTES);
  const view = w.dataView;
  let pos = w.position;
  for (let k = 0; k < counts.length; k++) {
    buf[pos++] = BUCKET_TAG;
    const lengthAt = pos++; // one byte: a Bucket is at most 20 bytes
    buf[pos++] = BUCKET_COUNT_TAG;
    pos = putVarint(buf, pos, counts[k]);
    buf[pos++] = BUCKET_BOUND_TAG;
    view.setFloat64(pos, bounds[k], true);
    pos += 8;
    buf[lengthAt] = pos - lengthAt - 1;
  }
  w.position = pos;
}

/** Zigzagged deltas of the current histogram, reused across histograms and renders. */
let deltaScratch = new Float64Array(1024);

/**
 * Positive buckets as spans (runs of consecutive indices; offsets relative to the previous span's
 * end, the first to index 0) and deltas (each count minus the previous one, the first against 0).
 * Empty buckets are dropped except inside short gaps, where a zero delta is cheaper than a span.
 */
function writeSpansAndDeltas(w: Writer, buckets: NativeHistogram['buckets']): void {
  // One pass: spans as flat [offset, length, ...]; deltas into the scratch array (each bucket adds
  // at most MAX_GAP_IN_SPAN + 1 deltas).
  const maxDeltas = buckets.length * (MAX_GAP_IN_SPAN + 1);
  if (deltaScratch.length < maxDeltas) deltaScratch = new Float64Array(maxDeltas * 2);
  const deltas = deltaScratch;
  const spans: number[] = [];
  let nDeltas = 0;
  let prevEnd = 0; // index after the last bucket written
  let prevCount = 0;
  for (let k = 0; k < buckets.length; k++) {
    const b = buckets[k];
    const count = b.count;
    if (count === 0) continue;
    const gap = b.index - prevEnd;
    if (spans.length > 0 && gap <= MAX_GAP_IN_SPAN) {
      spans[spans.length - 1] += gap + 1;
      if (gap > 0) {
        // Filled gap: down to zero, then zeros; the real bucket then counts from zero.
        deltas[nDeltas++] = zigzag(-prevCount);
        for (let g = 1; g < gap; g++) deltas[nDeltas++] = 0;
        prevCount = 0;
      }
    } else {
      spans.push(spans.length > 0 ? gap : b.index, 1);
    }
    deltas[nDeltas++] = zigzag(count - prevCount);
    prevCount = count;
    prevEnd = b.index + 1;
  }
  writeSpans(w, spans, deltas, nDeltas);
}

/** Writes the first `nDeltas` zigzagged deltas and the spans (flat [offset, length, ...]), in the dense writer's order. */
function writeSpans(w: Writer, spans: number[], deltas: Float64Array, nDeltas: number): void {
  if (nDeltas > 0) {
    w.tag(F.HistPositiveDelta, WIRE_LEN);
    const start = w.beginLength();
    w.varints(deltas, nDeltas);
    w.endLength(start);
  }
  writeSpanList(w, spans);
}

function writeSpanList(w: Writer, spans: number[]): void {
  if (spans.length === 0) spans.push(0, 0); // an empty span marks the histogram as native even with no observations yet
  for (let s = 0; s < spans.length; s += 2) {
    w.tag(F.HistPositiveSpan, WIRE_LEN);
    const start = w.beginLength();
    w.tag(F.SpanOffset, WIRE_VARINT);
    w.varint(zigzag(spans[s]));
    w.tag(F.SpanLength, WIRE_VARINT);
    w.varint(spans[s + 1]);
    w.endLength(start);
  }
}

/**
 * The same for dense buckets, straight from the counts: the deltas written into the message (before
 * the spans: protobuf fields may come in any order), the spans found on the way. `h.count` is
 * checked by now, so no bucket holds more.
 */
function writeDenseSpansAndDeltas(w: Writer, h: NativeHistogram & { dense: DenseBuckets }): void {
  const { counts, offset } = h.dense;
  let end = counts.length;
  while (end > 0 && counts[end - 1] === 0) end--;
  let spans: number[] = [];
  if (end > 0) {
    w.tag(F.HistPositiveDelta, WIRE_LEN);
    const deltasStart = w.beginLength();
    const buf = w.claim(end * 10);
    let pos = w.position;
    // Below 2^29 every count and every difference of two is exact in 32-bit integer arithmetic.
    if (h.count < 2 ** 29) pos = putSmallDeltas(buf, w.dataView, pos, counts, end, spans);
    else {
      spans = denseSpans(counts, end);
      let prev = 0; // deltas run on across spans
      for (let r = 0; r < spans.length; r += 2) {
        pos = putDeltas(buf, pos, counts, spans[r], spans[r + 1], prev);
        prev = counts[spans[r + 1] - 1];
      }
    }
    w.position = pos;
    w.endLength(deltasStart);
  }
  // [start, end) pairs become (gap before, length), the first gap from the dense offset.
  let lastEnd = 0;
  for (let r = 0; r < spans.length; r += 2) {
    const start = spans[r];
    const spanEnd = spans[r + 1];
    spans[r] = r === 0 ? offset + start : start - lastEnd;
    spans[r + 1] = spanEnd - start;
    lastEnd = spanEnd;
  }
  writeSpanList(w, spans);
}

/**
 * The spans of dense counts (≥ 0) up to `end` (after the last non-empty bucket): [start, end) pairs
 * from the first non-empty bucket, split where more than MAX_GAP_IN_SPAN empty buckets lie between two.
 */
function denseSpans(counts: Float64Array, end: number): number[] {
  const spans: number[] = [];
  let spanStart = 0;
  while (counts[spanStart] === 0) spanStart++;
  for (let k = spanStart; k < end; k++) {
    if (counts[k] !== 0) continue;
    const gapStart = k;
    while (counts[k] === 0) k++;
    if (k - gapStart > MAX_GAP_IN_SPAN) {
      spans.push(spanStart, gapStart);
      spanStart = k;
    }
  }
  spans.push(spanStart, end);
  return spans;
}

/**
 * Zigzag varint deltas of counts[..end) (end: after the last non-empty bucket; every count below
 * 2^29) from `pos`, pushing the spans they make onto `spans` as [start, end) pairs: denseSpans'
 * spans, found in the same walk. Four buckets at a time, stored as one 32-bit word when all four
 * deltas take one byte (the common case: neighbouring buckets differ little), which halves the cost
 * of byte-wise typed-array stores. The empty buckets of a gap go out as zero deltas like any others
 * until an empty block of four shows where a gap might be long: it is measured, and when too long
 * its deltas so far are taken back and the span ends before it.
 */
function putSmallDeltas(
  buf: Uint8Array,
  view: DataView,
  pos: number,
  counts: Float64Array,
  end: number,
  spans: number[],
): number {
  let k = 0;
  while (counts[k] === 0) k++;
  let spanStart = k;
  let p = 0;
  while (k < end) {
    if (k + 4 <= end) {
      const c0 = counts[k] | 0;
      const c1 = counts[k + 1] | 0;
      const c2 = counts[k + 2] | 0;
      const c3 = counts[k + 3] | 0;
      if ((c0 | c1 | c2 | c3) !== 0) {
        const d0 = c0 - p;
        const d1 = c1 - c0;
        const d2 = c2 - c1;
        const d3 = c3 - c2;
        p = c3;
        const z0 = (d0 << 1) ^ (d0 >> 31);
        const z1 = (d1 << 1) ^ (d1 >> 31);
        const z2 = (d2 << 1) ^ (d2 >> 31);
        const z3 = (d3 << 1) ^ (d3 >> 31);
        if ((z0 | z1 | z2 | z3) < 0x80) {
          view.setUint32(pos, z0 | (z1 << 8) | (z2 << 16) | (z3 << 24), true);
          pos += 4;
        } else {
          pos = putVarint(buf, pos, z0);
          pos = putVarint(buf, pos, z1);
          pos = putVarint(buf, pos, z2);
          pos = putVarint(buf, pos, z3);
        }
        k += 4;
        continue;
      }
      // Four empty buckets: the gap around them (bounded by the span's first bucket and the last one).
      let gapStart = k;
      while (counts[gapStart - 1] === 0) gapStart--;
      let gapEnd = k + 4;
      while (counts[gapEnd] === 0) gapEnd++;
      if (gapEnd - gapStart > MAX_GAP_IN_SPAN) {
        // Take back the gap's deltas written so far: the first bucket's (down from the last count),
        // then one zero byte each.
        const last = counts[gapStart - 1] | 0;
        if (k > gapStart) pos -= varintLength(2 * last - 1) + (k - gapStart - 1);
        spans.push(spanStart, gapStart);
        spanStart = gapEnd;
        p = last; // deltas run on across spans
        k = gapEnd;
        continue;
      }
      // A short gap: zero deltas up to its end, the first down from the last count if it is here.
      if (k === gapStart) pos = putVarint(buf, pos, 2 * p - 1);
      else buf[pos++] = 0;
      for (k++; k < gapEnd; k++) buf[pos++] = 0;
      p = 0;
      continue;
    }
    const c = counts[k] | 0;
    const d = c - p;
    p = c;
    pos = putVarint(buf, pos, (d << 1) ^ (d >> 31));
    k++;
  }
  spans.push(spanStart, end);
  return pos;
}

/** Bytes of `n` (a non-negative integer below 2^31) as a varint. */
function varintLength(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** The same for any counts, in exact arithmetic. */
function putDeltas(
  buf: Uint8Array,
  pos: number,
  counts: Float64Array,
  start: number,
  end: number,
  prev: number,
): number {
  for (let k = start; k < end; k++) {
    pos = putVarint(buf, pos, zigzag(counts[k] - prev));
    prev = counts[k];
  }
  return pos;
}

/** sint32/sint64 zigzag, in arithmetic so counts past 2^31 stay exact. */
function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

/** Appends protobuf wire data to one growing byte array. */
class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** Unsigned varint of a non-negative integer up to 2^53. */
  varint(n: number): void {
    this.ensure(10);
    this.pos = putVarint(this.buf, this.pos, n);
  }

  /** The first `n` values as consecutive varints (a packed repeated field's content). */
  varints(values: Float64Array, n: number): void {
    this.ensure(n * 10);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      // The common cases: neighbouring buckets differ little.
      if (v < 0x80) buf[pos++] = v;
      else if (v < 0x4000) {
        buf[pos++] = (v & 0x7f) | 0x80;
        buf[pos++] = v >>> 7;
      } else pos = putVarint(buf, pos, v);
    }
    this.pos = pos;
  }

  /** Where the next byte goes (for a caller that writes into claim()'s buffer itself). */
  get position(): number {
    return this.pos;
  }

  set position(pos: number) {
    this.pos = pos;
  }

  /** Room for `extra` more bytes; returns the buffer to write them into, from `position` on. */
  claim(extra: number): Uint8Array {
    this.ensure(extra);
    return this.buf;
  }

  /** A DataView of claim()'s buffer (for fixed-width fields). */
  get dataView(): DataView {
    return this.view;
  }

  /** Bytes already encoded. */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** int64 as protobuf encodes it: negatives as their 64-bit two's complement (10 bytes). */
  int64(n: number): void {
    if (n >= 0) {
      this.varint(n);
      return;
    }
    let u = BigInt.asUintN(64, BigInt(n));
    this.ensure(10);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  double(field: number, v: number): void {
    this.tag(field, WIRE_I64);
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  string(field: number, s: string): void {
    this.tag(field, WIRE_LEN);
    const start = this.beginLength();
    this.ensure(s.length * 3);
    const buf = this.buf;
    let pos = this.pos;
    let i = 0;
    // ASCII straight into the buffer; anything else through TextEncoder.
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[pos++] = c;
    }
    if (i < s.length) pos += encoder.encodeInto(s.slice(i), buf.subarray(pos)).written;
    this.pos = pos;
    this.endLength(start);
  }

  /** Reserves one byte for a length; returns where the content starts. */
  beginLength(): number {
    this.ensure(1);
    this.pos += 1;
    return this.pos;
  }

  /** Writes the content length before `start`, moving the content when it needs more than one byte. */
  endLength(start: number): void {
    const len = this.pos - start;
    if (len < 0x80) {
      this.buf[start - 1] = len;
      return;
    }
    let size = 1;
    for (let v = len; v >= 0x80; v = Math.floor(v / 128)) size++;
    this.ensure(size - 1);
    this.buf.copyWithin(start + size - 1, start, this.pos);
    this.pos += size - 1;
    putVarint(this.buf, start - 1, len);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const encoder = new TextEncoder();

/** Writes `n` (a non-negative integer up to 2^53) as a varint at `pos`; returns the position after it. */
function putVarint(buf: Uint8Array, pos: number, n: number): number {
  // Above 2^31 the bit operators would wrap: divide instead.
  while (n >= 0x80000000) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}
