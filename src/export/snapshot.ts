// Mergeable snapshots: a monitor's cumulative state as compact, versioned, checksummed bytes, and
// an exact merge of many (node:cluster workers, batch jobs, several machines). Histograms merge
// bucket by bucket — never by averaging quantiles — after bringing them to a common scale.
import { crc32 } from 'node:zlib';
import { quantileOfBuckets } from '../core/buckets.js';
import { bucketList, checkNativeHistogram, type NativeHistogram } from '../core/family-model.js';
import type { MonitorReader } from '../analysis/monitor-reader.js';
import { labelsFromKey, seriesKey } from '../record/recorder.js';
import { COUNTER_FIELDS, type CounterField } from '../time/totals.js';
import type { Labels } from '../core/types.js';
import { histogramOf, mergeByKey, partOf, type SeriesPart } from './merge.js';

const MAGIC = 0x4e534753; // "SGSN" little-endian
/** The encoding of snapshot bytes, shared by every process of a cluster: README, "Version numbers". */
const VERSION = 1;
const HEADER = 16; // magic u32, version u16, reserved u16, payload length u32, crc32 u32

export interface SnapshotSeries {
  labels: Labels;
  /** An integration's series kind (see SeriesInfo.kind); series merge by labels and kind. */
  kind?: string;
  counters: Record<CounterField, number>;
  errorsByType: Record<string, number>;
  /** Latency in seconds (the bucket unit); min/max in ms. */
  latency: NativeHistogram & { minMs: number; maxMs: number };
}

export interface Snapshot {
  /** When it was taken (the monitor's clock), or the latest of those merged. */
  takenAt: number;
  /** How many snapshots were merged into this one. */
  sources: number;
  series: SnapshotSeries[];
}

/** The monitor's state now. */
export function takeSnapshot(monitor: MonitorReader): Snapshot {
  return {
    takenAt: monitor.config.clock.now(),
    sources: 1,
    series: monitor.seriesList().map((s) => {
      const t = monitor.totals(s.index);
      const counters = {} as Record<CounterField, number>;
      for (const f of COUNTER_FIELDS) counters[f] = t[f];
      return {
        labels: s.labels,
        ...(s.kind === undefined ? {} : { kind: s.kind }),
        counters,
        errorsByType: monitor.errorsByType(s.index),
        latency: {
          ...plain(monitor.nativeHistogram(s.index, 'latency')),
          minMs: t.latencyMinMs,
          maxMs: t.latencyMaxMs,
        },
      };
    }),
  };
}

/** The histogram with its buckets as a list (whichever form the monitor gave). */
function plain(h: NativeHistogram): NativeHistogram {
  const { dense: _dense, ...rest } = h;
  return { ...rest, buckets: bucketList(h) };
}

// ---- encoding ---------------------------------------------------------------------------------

class Writer {
  private buf = Buffer.alloc(4096);
  private at = 0;
  private room(n: number) {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
  u32(v: number) {
    this.room(4);
    this.buf.writeUInt32LE(v, this.at);
    this.at += 4;
  }
  i32(v: number) {
    this.room(4);
    this.buf.writeInt32LE(v, this.at);
    this.at += 4;
  }
  f64(v: number) {
    this.room(8);
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.room(b.length);
    b.copy(this.buf, this.at);
    this.at += b.length;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

class Reader {
  at = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number) {
    if (this.at + n > this.buf.length) throw new RangeError(`it ends inside a field at byte ${this.at}`);
  }
  u32() {
    this.need(4);
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  i32() {
    this.need(4);
    const v = this.buf.readInt32LE(this.at);
    this.at += 4;
    return v;
  }
  f64() {
    this.need(8);
    const v = this.buf.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }
  /** Skips `n` bytes (checked), returning where they start. */
  skip(n: number) {
    this.need(n);
    const at = this.at;
    this.at += n;
    return at;
  }
  str() {
    const n = this.u32();
    this.need(n);
    const s = this.buf.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const w = new Writer();
  w.f64(snapshot.takenAt);
  w.u32(snapshot.sources);
  w.u32(snapshot.series.length);
  for (const s of snapshot.series) {
    w.str(seriesKey(s.labels, s.kind));
    for (const f of COUNTER_FIELDS) w.f64(s.counters[f]);
    const errors = Object.entries(s.errorsByType);
    w.u32(errors.length);
    for (const [type, n] of errors) {
      w.str(type);
      w.f64(n);
    }
    const h = s.latency;
    w.i32(h.schema);
    for (const v of [
      h.count,
      h.sum,
      h.zeroThreshold,
      h.zeroCount,
      h.overflowCount,
      h.overflowThreshold ?? Number.NaN,
      h.minMs,
      h.maxMs,
    ])
      w.f64(v);
    w.u32(h.buckets.length);
    for (const b of h.buckets) {
      w.i32(b.index);
      w.f64(b.count);
    }
  }
  const payload = w.bytes();
  const out = Buffer.alloc(HEADER + payload.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt16LE(VERSION, 4);
  out.writeUInt32LE(payload.length, 8);
  out.writeUInt32LE(crc32(payload), 12);
  payload.copy(out, HEADER);
  // A plain Uint8Array: a Buffer's slice() would share memory, a trap for code that expects copies.
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  if (!(bytes instanceof Uint8Array)) {
    throw new SnapshotError(`a snapshot must be a Uint8Array (from monitor.snapshot()), got ${describe(bytes)}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicOk = buf.length >= 4 && buf.readUInt32LE(0) === MAGIC;
  if (!magicOk)
    throw new SnapshotError('not a streamgauge snapshot (its first bytes are not the snapshot magic "SGSN")');
  if (buf.length < HEADER)
    throw new SnapshotError(`snapshot is truncated: ${buf.length} bytes, shorter than its ${HEADER}-byte header`);
  const version = buf.readUInt16LE(4);
  if (version !== VERSION)
    throw new SnapshotError(
      `snapshot format version ${version} is not supported (this build reads version ${VERSION})`,
    );
  const length = buf.readUInt32LE(8);
  const have = buf.length - HEADER;
  if (have < length) throw new SnapshotError(`snapshot is truncated: ${have} payload bytes, the header says ${length}`);
  if (have > length)
    throw new SnapshotError(`snapshot has ${have - length} trailing bytes after its ${length}-byte payload`);
  const payload = buf.subarray(HEADER);
  if (crc32(payload) !== buf.readUInt32LE(12))
    throw new SnapshotError('snapshot checksum does not match: the bytes are corrupt');
  try {
    return readPayload(payload);
  } catch (err) {
    // The checksum matched, so these are well-formed bytes of something that is not a snapshot.
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`snapshot payload is malformed: ${(err as Error).message}`);
  }
}

function readPayload(payload: Buffer): Snapshot {
  const r = new Reader(payload);
  const takenAt = r.f64();
  const sources = r.u32();
  const n = r.u32();
  const series: SnapshotSeries[] = [];
  for (let i = 0; i < n; i++) {
    const pairs = JSON.parse(r.str()) as unknown;
    if (
      !Array.isArray(pairs) ||
      !pairs.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string')
    ) {
      throw new RangeError(`series ${i} has malformed labels`);
    }
    const { labels, kind } = labelsFromKey(JSON.stringify(pairs));
    const counters = {} as Record<CounterField, number>;
    for (const f of COUNTER_FIELDS) counters[f] = r.f64();
    const errorsByType: Record<string, number> = {};
    const ne = r.u32();
    for (let e = 0; e < ne; e++) errorsByType[r.str()] = r.f64();
    const schema = r.i32();
    const [count, sum, zeroThreshold, zeroCount, overflowCount, overflowThreshold, minMs, maxMs] = Array.from(
      { length: 8 },
      () => r.f64(),
    );
    const nb = r.u32();
    // Thousands of buckets per series: read straight from the buffer, bounds checked once.
    const at = r.skip(nb * 12);
    const buckets: { index: number; count: number }[] = new Array(nb);
    for (let b = 0, o = at; b < nb; b++, o += 12)
      buckets[b] = { index: payload.readInt32LE(o), count: payload.readDoubleLE(o + 4) };
    const latency = {
      schema,
      count,
      sum,
      zeroThreshold,
      zeroCount,
      overflowCount,
      overflowThreshold,
      buckets,
      minMs,
      maxMs,
    };
    checkNativeHistogram(latency, `series ${i} latency`);
    series.push({ labels, ...(kind === undefined ? {} : { kind }), counters, errorsByType, latency });
  }
  if (r.at !== payload.length)
    throw new RangeError(`${payload.length - r.at} bytes are left over after its ${n} series`);
  return { takenAt, sources, series };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'an object';
}

// ---- merging ----------------------------------------------------------------------------------

/** Exact combined totals and histograms of many snapshots (bytes or decoded), by label set. */
export function mergeSnapshots(snapshots: ReadonlyArray<Uint8Array | Snapshot>): Snapshot {
  if (!Array.isArray(snapshots) || snapshots.length === 0)
    throw new TypeError('mergeSnapshots needs a non-empty array of snapshots');
  const decoded = snapshots.map((s, i) => {
    if (s instanceof Uint8Array) return decodeSnapshot(s);
    if (s === null || typeof s !== 'object' || !Array.isArray((s as Snapshot).series)) {
      throw new SnapshotError(
        `snapshots[${i}] is neither snapshot bytes (Uint8Array) nor a decoded snapshot (got ${describe(s)})`,
      );
    }
    return s;
  });
  const merged = mergeByKey(decoded.flatMap((d) => d.series.map(partOfSeries)));
  return {
    takenAt: Math.max(...decoded.map((d) => d.takenAt)),
    sources: decoded.reduce((n, d) => n + d.sources, 0),
    series: Array.from(merged.values(), seriesOfPart),
  };
}

/** A snapshot's series as the merge takes it. */
function partOfSeries(s: SnapshotSeries): SeriesPart {
  const counters = COUNTER_FIELDS.map((f) => s.counters[f]);
  return partOf(
    seriesKey(s.labels, s.kind),
    counters,
    { ...s.errorsByType },
    s.latency,
    s.latency.minMs,
    s.latency.maxMs,
  );
}

/** A merged series as a snapshot's. */
export function seriesOfPart(p: SeriesPart): SnapshotSeries {
  const { labels, kind } = labelsFromKey(p.key);
  const counters = {} as Record<CounterField, number>;
  COUNTER_FIELDS.forEach((f, i) => {
    counters[f] = p.counters[i];
  });
  const latency = { ...plain(histogramOf(p)), minMs: p.minMs, maxMs: p.maxMs };
  return { labels, ...(kind === undefined ? {} : { kind }), counters, errorsByType: p.errorsByType, latency };
}

/**
 * Latency quantile (ms) of a snapshot: one series by labels, or all series together. Nearest rank,
 * reported at the bucket's log-midpoint and clamped to min/max, as the monitor itself reports it.
 */
export function snapshotQuantile(snapshot: Snapshot, q: number, labels?: Labels): number {
  if (typeof q !== 'number' || !(q >= 0 && q <= 1)) throw new RangeError(`q must be a number from 0 to 1 (got ${q})`);
  const picked = labels ? snapshot.series.filter((s) => seriesKey(s.labels) === seriesKey(labels)) : snapshot.series;
  const merged =
    picked.length > 1
      ? mergeSnapshots([{ takenAt: 0, sources: 1, series: picked.map((s) => ({ ...s, labels: {} })) }]).series[0]
      : picked[0];
  if (!merged || merged.latency.count === 0) return Number.NaN;
  const h = merged.latency;
  return quantileOfBuckets(
    {
      total: h.count,
      zeroCount: h.zeroCount,
      scale: h.schema,
      n: h.buckets.length,
      indexAt: (k) => h.buckets[k].index,
      countAt: (k) => h.buckets[k].count,
      minMs: h.minMs,
      maxMs: h.maxMs,
    },
    q,
  );
}
