// Mergeable snapshots: the binary round trip, exact merges (against one monitor that recorded
// everything), merging different scales, and clear errors for bytes that are not a snapshot.

import { crc32 } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { relativeErrorBound, type StreamPerformanceMonitor } from '../src/index.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  mergeSnapshots,
  type Snapshot,
  SnapshotError,
  type SnapshotSeries,
  seriesOfPart,
  snapshotQuantile,
  takeSnapshot,
} from '../src/export/snapshot.js';
import { fromWire, mergeAll, partsOf } from '../src/serve/cluster.js';
import { GRPC_KINDS } from '../src/integrations/grpc.js';
import { SERIES_KIND } from '../src/record/recorder.js';
import { COUNTER_FIELDS } from '../src/time/totals.js';
import { ERROR_TYPES, type Op, seededOps } from './fixtures/expo-helpers.js';
import { exactQuantileOf } from './fixtures/quantiles.js';
import { testMonitor } from './fixtures/monitor.js';

const ROUTES = ['Chat/Stream', 'quote " and \\ back', 'ünïcødé ✓'];
const QS = [0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1];

function monitor(scale = 7): StreamPerformanceMonitor {
  return testMonitor({ scale });
}

/** Records `ops` into `m` (route -1: the default series), with a few extra counters. */
function play(m: StreamPerformanceMonitor, ops: readonly Op[], extraRoute?: string): void {
  const series = ROUTES.map((route) => m.series({ route }));
  for (const op of ops) {
    const rec = op.route < 0 ? m : series[op.route];
    if (op.error) rec.recordError(op.error, op.ms);
    else rec.recordLatency(op.ms);
    if (op.ms > 20) rec.recordBackpressureEvent(op.ms / 10);
    if (op.ms < 1) rec.recordCacheHit();
    else rec.recordCacheMiss();
  }
  series[0].recordStreamSession('c', 12, 340, 5678);
  series[1].recordBatchProcessing(64, 3.5);
  series[2].recordMessages(7, 700, 'out');
  if (extraRoute !== undefined) m.series({ route: extraRoute }).recordLatency(4.25);
}

/** Values that sit exactly on bucket boundaries of every scale (powers of two, in seconds). */
const BOUNDARY_OPS: Op[] = [-12, -10, -7, -3, 0].map((e) => ({ route: 0, ms: 2 ** e * 1000 }));

function load(seed: number, n: number): Op[] {
  return [...seededOps(seed, n, ROUTES.length, 3), ...BOUNDARY_OPS, { route: -1, ms: 0.5 }, { route: -1, ms: 0.0004 }];
}

function byLabels(s: Snapshot): Map<string, SnapshotSeries> {
  return new Map(s.series.map((x) => [JSON.stringify(Object.entries(x.labels).sort()), x]));
}

/** Nanosecond sums are integers: equal to the nanosecond, whatever the float rounding of ms. */
function sameSum(a: number, b: number, what: string): void {
  assert.is(Math.round(a * 1e6), Math.round(b * 1e6), `${what}: ${a} vs ${b}`);
}

test('encode/decode round trip gives back exactly what was taken', () => {
  const m = monitor();
  try {
    play(m, load(1, 3000), 'only here');
    const snap = takeSnapshot(m);
    const bytes = encodeSnapshot(snap);
    assert.instance(bytes, Uint8Array);
    assert.equal(decodeSnapshot(bytes), snap);
    const fresh = decodeSnapshot(m.snapshot());
    assert.equal(fresh, { ...snap, takenAt: fresh.takenAt });
    // Inside a larger buffer, at an odd offset.
    const padded = new Uint8Array(bytes.length + 7);
    padded.set(bytes, 3);
    assert.equal(decodeSnapshot(padded.subarray(3, 3 + bytes.length)), snap);
    // Every series the monitor lists, with its labels.
    assert.equal(
      snap.series.map((s) => s.labels),
      m.seriesList().map((s) => ({ ...s.labels })),
    );
    const counted = snap.series.reduce((n, s) => n + s.latency.count, 0);
    assert.is(counted, m.totals().latencyCount);
  } finally {
    m.close();
  }
});

test('merge is exact: counts, sums, errors by type and histograms equal one monitor that recorded everything', () => {
  const parts = [load(11, 4000), load(12, 2500), load(13, 10)];
  const all = monitor();
  const ms = parts.map(() => monitor());
  try {
    parts.forEach((ops, i) => {
      play(ms[i], ops, `only in ${i}`);
      play(all, ops, `only in ${i}`);
    });
    const merged = mergeSnapshots(ms.map((m) => m.snapshot()));
    const whole = takeSnapshot(all);
    assert.is(merged.sources, 3);
    const got = byLabels(merged);
    const want = byLabels(whole);
    assert.equal([...got.keys()].sort(), [...want.keys()].sort(), 'the union of the label sets');
    for (const [key, w] of want) {
      const g = got.get(key) as SnapshotSeries;
      for (const f of COUNTER_FIELDS) {
        if (f.endsWith('Ms')) sameSum(g.counters[f], w.counters[f], `${key} ${f}`);
        else assert.is(g.counters[f], w.counters[f], `${key} ${f}`);
      }
      assert.equal(g.errorsByType, w.errorsByType, `${key} errors by type`);
      const { sum: gs, ...gh } = g.latency;
      const { sum: ws, ...wh } = w.latency;
      assert.equal(gh, wh, `${key} histogram`);
      assert.ok(Math.abs(gs - ws) <= 1e-12 * Math.abs(ws), `${key} histogram sum`);
    }
    // The error types are the ones recorded, all of them.
    const errors = mergeSnapshots([merged]).series.flatMap((s) => Object.keys(s.errorsByType));
    assert.equal([...new Set(errors)].sort(), [...ERROR_TYPES].sort());
    // Quantiles of the merge are the monitor's own (same buckets, same min/max).
    for (const q of QS) {
      assert.is(snapshotQuantile(merged, q), all.quantileSinceStart(q), `q=${q} over all series`);
      assert.is(
        snapshotQuantile(merged, q, { route: ROUTES[1] }),
        all.quantileSinceStart(q, all.seriesList().find((s) => s.labels.route === ROUTES[1])?.index),
      );
    }
    // Bytes or decoded snapshots, in any grouping: the same result.
    const bytes = ms.map((m) => m.snapshot());
    const nested = mergeSnapshots([encodeSnapshot(mergeSnapshots(bytes.slice(0, 2))), decodeSnapshot(bytes[2])]);
    assert.equal(byLabels(nested), byLabels(mergeSnapshots(bytes)));
    assert.is(nested.sources, 3);
  } finally {
    all.close();
    for (const m of ms) m.close();
  }
});

test('merging scale 7 with scale 5 downscales exactly: the coarser histogram, its quantiles within its bound', () => {
  const a = load(21, 5000);
  const b = load(22, 5000);
  const fine = monitor(7);
  const coarse = monitor(5);
  const all5 = monitor(5);
  try {
    play(fine, a);
    play(coarse, b);
    play(all5, a);
    play(all5, b);
    const merged = mergeSnapshots([fine.snapshot(), coarse.snapshot()]);
    for (const s of merged.series) assert.is(s.latency.schema, 5);
    // Each scale-7 bucket lies inside one scale-5 bucket: the merge equals a scale-5 monitor that saw everything.
    const got = byLabels(merged);
    for (const [key, w] of byLabels(takeSnapshot(all5))) {
      const g = got.get(key) as SnapshotSeries;
      assert.equal(g.latency.buckets, w.latency.buckets, `${key} buckets`);
      assert.is(g.latency.count, w.latency.count);
      assert.is(g.latency.zeroCount, w.latency.zeroCount, `${key} zero bucket`);
      assert.is(g.counters.requests, w.counters.requests);
    }
    const values = [...a, ...b].map((op) => op.ms);
    for (const q of QS.slice(0, -1)) {
      const p = snapshotQuantile(merged, q);
      assert.is(p, all5.quantileSinceStart(q), `q=${q}: the scale-5 monitor's answer`);
      const exact = exactQuantileOf(values, q);
      assert.ok(Math.abs(p / exact - 1) <= relativeErrorBound(5) + 1e-12, `q=${q}: ${p} vs exact ${exact}`);
    }
    // And the fine snapshot alone keeps its finer bound.
    const alone = decodeSnapshot(fine.snapshot());
    const exact = exactQuantileOf(
      a.map((op) => op.ms),
      0.99,
    );
    assert.ok(Math.abs(snapshotQuantile(alone, 0.99) / exact - 1) <= relativeErrorBound(7) + 1e-12);
  } finally {
    fine.close();
    coarse.close();
    all5.close();
  }
});

test('snapshotQuantile: by labels, NaN when empty, q checked', () => {
  const m = monitor();
  try {
    m.series({ route: 'x' }).recordLatency(8);
    const snap = decodeSnapshot(m.snapshot());
    assert.is(snapshotQuantile(snap, 0.5, { route: 'x' }), 8);
    assert.ok(Number.isNaN(snapshotQuantile(snap, 0.5, {})), 'the default series is empty');
    assert.ok(Number.isNaN(snapshotQuantile(snap, 0.5, { route: 'nowhere' })));
    for (const q of [-0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => snapshotQuantile(snap, q),
        (err: Error) => err instanceof RangeError && /q must be a number from 0 to 1/.test(err.message),
      );
    }
  } finally {
    m.close();
  }
});

// --- corrupt and foreign bytes ------------------------------------------------------------------

function good(): Uint8Array {
  const m = monitor();
  try {
    play(m, load(5, 200));
    return m.snapshot();
  } finally {
    m.close();
  }
}

function fails(input: unknown, message: RegExp): void {
  try {
    decodeSnapshot(input as Uint8Array);
  } catch (err) {
    assert.instance(err, SnapshotError);
    assert.is((err as Error).name, 'SnapshotError');
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`decoded without complaint; expected ${message}`);
}

test('a flipped byte anywhere in the payload fails the checksum', () => {
  const bytes = good();
  for (const at of [16, 17, 40, Math.floor(bytes.length / 2), bytes.length - 1]) {
    const bad = new Uint8Array(bytes);
    bad[at] ^= 0x10;
    assert.is.not(bytes[at], bad[at]);
    fails(bad, /checksum does not match/);
  }
  const badCrc = new Uint8Array(bytes);
  badCrc[12] ^= 1;
  fails(badCrc, /checksum does not match/);
});

test('truncated bytes and trailing bytes are named as such', () => {
  const bytes = good();
  fails(bytes.subarray(0, bytes.length - 1), /truncated: \d+ payload bytes, the header says \d+/);
  fails(bytes.subarray(0, 100), /truncated/);
  fails(bytes.subarray(0, 10), /truncated: 10 bytes, shorter than its 16-byte header/);
  const longer = new Uint8Array(bytes.length + 3);
  longer.set(bytes);
  fails(longer, /3 trailing bytes after its \d+-byte payload/);
});

test('foreign bytes, other versions and other types are refused clearly', () => {
  const bytes = good();
  fails(new TextEncoder().encode('{"series": []}'), /not a streamgauge snapshot/);
  fails(
    Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    /not a streamgauge snapshot/,
  );
  fails(new Uint8Array(0), /not a streamgauge snapshot/);
  const v2 = new Uint8Array(bytes);
  new DataView(v2.buffer).setUint16(4, 2, true);
  fails(v2, /format version 2 is not supported \(this build reads version 1\)/);
  for (const [input, name] of [
    ['SGSN', 'string'],
    [{ series: [] }, 'Object'],
    [bytes.buffer, 'ArrayBuffer'],
    [null, 'null'],
    [undefined, 'undefined'],
    [Array.from(bytes), 'Array'],
  ] as const) {
    fails(input, new RegExp(`must be a Uint8Array \\(from monitor\\.snapshot\\(\\)\\), got ${name}`));
  }
  // A Buffer is a Uint8Array: fine.
  assert.ok(decodeSnapshot(Buffer.from(bytes)).series.length > 0);
});

test('well-formed bytes with a valid checksum that are not a snapshot payload are refused', () => {
  const payload = Buffer.from('not a snapshot payload, but checksummed');
  const header = Buffer.alloc(16);
  header.writeUInt32LE(0x4e534753, 0);
  header.writeUInt16LE(1, 4);
  header.writeUInt32LE(payload.length, 8);
  header.writeUInt32LE(crc32(payload), 12);
  fails(Buffer.concat([header, payload]), /snapshot payload is malformed: /);
});

test('mergeSnapshots refuses an empty list and anything that is not a snapshot', () => {
  assert.throws(() => mergeSnapshots([]), /non-empty array/);
  assert.throws(() => mergeSnapshots('x' as unknown as Uint8Array[]), /non-empty array/);
  const bytes = good();
  const bad = new Uint8Array(bytes);
  bad[bad.length - 1] ^= 1;
  assert.throws(
    () => mergeSnapshots([bytes, bad]),
    (err: Error) => err instanceof SnapshotError && /checksum/.test(err.message),
  );
  assert.throws(
    () => mergeSnapshots([bytes, 42 as unknown as Uint8Array]),
    (err: Error) => err instanceof SnapshotError && /snapshots\[1\] is neither snapshot bytes/.test(err.message),
  );
});

test("an integration's series keep their kind through snapshots: merged by labels and kind, never with a same-labelled series of another kind", () => {
  const labels = { grpc_type: 'unary', grpc_service: 'a.B', grpc_method: 'C' };
  const make = () => {
    const m = monitor();
    m.series(labels, { [SERIES_KIND]: GRPC_KINDS.server } as object).connectionOpened();
    m.series(labels, { inTotals: false, [SERIES_KIND]: GRPC_KINDS.firstResponse } as object).recordLatency(2);
    m.series(labels).recordLatency(7);
    return m;
  };
  const a = make();
  const b = make();
  try {
    const merged = mergeSnapshots([a.snapshot(), b.snapshot()]);
    const of = (kind: string | undefined) =>
      merged.series.filter((s) => s.kind === kind && s.labels.grpc_method === 'C');
    assert.is(of(GRPC_KINDS.server).length, 1);
    assert.is(of(GRPC_KINDS.server)[0].counters.connectionsOpened, 2);
    assert.is(of(GRPC_KINDS.firstResponse)[0].latency.count, 2);
    assert.is(of(undefined)[0].latency.count, 2, "the user's series with the same labels stays apart");
    assert.equal(of(undefined)[0].labels, labels);
  } finally {
    a.close();
    b.close();
  }
});

test('a snapshot built by hand merges as the monitor would: buckets in any order or repeated, below the zero threshold', () => {
  const counters = Object.fromEntries(COUNTER_FIELDS.map((f) => [f, 0])) as SnapshotSeries['counters'];
  const series = (buckets: { index: number; count: number }[], zeroThreshold: number): SnapshotSeries => ({
    labels: { route: 'r' },
    counters: { ...counters, requests: 5, latencyCount: 5 },
    errorsByType: { timeout: 1 },
    latency: {
      schema: 3,
      count: 5,
      sum: 1,
      zeroThreshold,
      zeroCount: 1,
      overflowCount: 0,
      buckets,
      minMs: 1,
      maxMs: 400,
    },
  });
  // Bucket -8 at scale 3 ends at 2^-1 s, under a zero threshold of 0.5 s: it joins the zero bucket.
  const one = series(
    [
      { index: 4, count: 1 },
      { index: -8, count: 1 },
      { index: 4, count: 2 },
    ],
    0.5,
  );
  const merged = mergeSnapshots([{ takenAt: 1, sources: 1, series: [one] }]).series[0];
  assert.equal(merged.latency.buckets, [{ index: 4, count: 3 }]);
  assert.is(merged.latency.zeroCount, 2);
  const two = mergeSnapshots([
    { takenAt: 1, sources: 1, series: [one] },
    { takenAt: 2, sources: 1, series: [one] },
  ]);
  assert.equal(two.series[0].latency.buckets, [{ index: 4, count: 6 }]);
  assert.is(two.series[0].latency.zeroCount, 4);
  assert.equal(two.series[0].errorsByType, { timeout: 2 });
  assert.is(two.series[0].counters.requests, 10);
  assert.equal(one.latency.buckets.length, 3, 'the inputs are left as they were');
  assert.equal(one.errorsByType, { timeout: 1 });
});

test("the cluster primary's merge of workers' reports is mergeSnapshots' merge of their snapshots", () => {
  const workers = [monitor(7), monitor(5), monitor(7)];
  try {
    workers.forEach((m, i) => {
      play(m, load(40 + i, 600), i === 1 ? 'only-in-one' : undefined);
    });
    const primary = mergeAll(workers.map((m) => new Map(partsOf(m).map((w) => [w.key, fromWire(w)]))));
    primary.delete('service');
    const fromSnapshots = mergeSnapshots(workers.map((m) => m.snapshot()));
    assert.equal([...primary.values()].map(seriesOfPart), fromSnapshots.series);
  } finally {
    for (const m of workers) m.close();
  }
});

test.run();
