// Percentile accuracy against exact sorted quantiles on 10^6-value samples (lognormal, bimodal,
// Pareto; seeded) at scales 3, 5 and 7; exact count, sum, min and max; and the bucket boundaries
// themselves: the stored boundaries checked with integer arithmetic, values at and next to every
// boundary, the JS index function against a log2 reference, the wasm core against the JS one, and
// the zero and overflow buckets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  boundaryFractions,
  boundsBytes,
  bucketIndex,
  midpoint,
  rangeGeometry,
  upperBound,
  writeBounds,
} from '../src/core/buckets.js';
import { relativeErrorBound, StreamPerformanceMonitor, type UserConfig } from '../src/index.js';
import {
  type HistShape,
  H,
  initHistogram,
  type Layout,
  PAGE,
  R,
  writeRangeTable,
  writeShapeRecord,
} from '../src/core/layout.js';
import { coreModule, createMemory, instantiate } from '../src/core/wasm.js';
import { seededGaussians, seededRandom } from './fixtures/random.js';
import { nextDown, nextUp } from './fixtures/floats.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';
import { HOT_RECORDS } from '../src/record/recorder.js';

const N = 1_000_000;
const QUANTILES = [0.5, 0.9, 0.95, 0.99, 0.999];

// ---- helpers ------------------------------------------------------------------------------

/** Latency samples in ms, all inside the default range (1 µs .. 1 h). */
const SAMPLES: Record<string, () => Float64Array> = {
  // Typical service latency: median 20 ms, a long right tail.
  lognormal: () => {
    const z = seededGaussians(1);
    return Float64Array.from({ length: N }, () => Math.exp(Math.log(20) + 0.9 * z()));
  },
  // A cache in front of a database: 70 % hits near 2 ms, 30 % misses near 150 ms.
  bimodal: () => {
    const r = seededRandom(2);
    const z = seededGaussians(3);
    return Float64Array.from({ length: N }, () =>
      r() < 0.7 ? Math.exp(Math.log(2) + 0.25 * z()) : Math.exp(Math.log(150) + 0.3 * z()),
    );
  },
  // Heavy tail: Pareto, x_m = 0.5 ms, alpha = 1.5 (infinite variance).
  pareto: () => {
    const r = seededRandom(4);
    return Float64Array.from({ length: N }, () => Math.min(0.5 / (1 - r()) ** (1 / 1.5), 3_000_000));
  },
};

const sampleCache = new Map<string, { values: Float64Array; sorted: Float64Array }>();
function sample(name: string) {
  let s = sampleCache.get(name);
  if (!s) {
    const values = SAMPLES[name]();
    s = { values, sorted: Float64Array.from(values).sort() };
    sampleCache.set(name, s);
  }
  return s;
}

function monitor(config: UserConfig = {}): StreamPerformanceMonitor {
  return new StreamPerformanceMonitor({
    autoStart: false,
    logger: false,
    historyRetention: 60_000,
    rollups: { minutes: 1, hours: 1, days: 1 },
    maxSeries: 2,
    ...config,
  });
}

/**
 * A bare histogram in the wasm core, bucket unit = API unit (no ms → s conversion), so values can
 * be placed exactly on boundaries. Counts come back as [zero, overflow, buckets...].
 */
function rawHistogram(scale: number, minX: number, maxX: number) {
  const tables = 1024;
  const idxMin = bucketIndex(minX, scale);
  const idxMax = bucketIndex(maxX, scale);
  const nBuckets = idxMax - idxMin + 1;
  const cells = { ptr: Math.ceil((tables + boundsBytes(scale)) / 64) * 64, ...rangeGeometry(scale, 1, idxMin, idxMax) };
  const shapePtr = Math.ceil((cells.ptr + cells.count * 16) / 64) * 64; // 16 bytes a cell
  const h = shapePtr + 64; // after the shape's record
  const shape: HistShape = {
    scale,
    idxMul: 1,
    sumMul: 1,
    idxMin,
    nBuckets,
    zeroMax: upperBound(idxMin - 1, scale),
    topMax: upperBound(idxMax, scale),
    pages: Math.ceil(nBuckets / PAGE.SLOTS),
    headerBytes: Math.ceil((H.PAGES + Math.ceil(nBuckets / PAGE.SLOTS) * 4) / 64) * 64,
    bytes: 0,
    cells,
    ptr: shapePtr,
  };
  shape.bytes = shape.headerBytes + shape.pages * PAGE.BYTES;
  const exportPtr = Math.ceil((h + shape.bytes) / 64) * 64;
  const gatherPtr = Math.ceil((exportPtr + (nBuckets + 2) * 8) / 64) * 64;
  const pages = Math.ceil((gatherPtr + nBuckets * 8) / 65536) + 1;
  // A histogram with all its pages laid out after it (no arena: it never claims one).
  const layout = {
    boundsPtr: { [scale]: tables },
    runtimePtr: 0,
    gatherPtr,
    initialPages: pages,
    pages,
  } as unknown as Layout;
  const memory = createMemory(layout);
  writeBounds(memory.buffer, tables, scale);
  writeRangeTable(memory.buffer, shape);
  writeShapeRecord(memory.buffer, layout, shape);
  initHistogram(memory.buffer, layout, h, shape, true);
  const core = instantiate(coreModule(), memory, layout);
  return {
    shape,
    record: (x: number) => core.record(h, x),
    // [zero, overflow, buckets...]: the export writes only the range it reports, the rest is empty.
    counts: () => {
      const total = core.histExport(h, exportPtr);
      const all = new Float64Array(memory.buffer, exportPtr, nBuckets + 2);
      const out = new Float64Array(nBuckets + 2);
      out[0] = all[0];
      out[1] = all[1];
      out.set(all.subarray(core.exportedLo() + 2, core.exportedHi() + 2), core.exportedLo() + 2);
      assert.is(
        total,
        out.reduce((a, b) => a + b, 0),
        'histExport returns the total it wrote',
      );
      return out;
    },
    reset: () => initHistogram(memory.buffer, layout, h, shape, true),
    /** Reads two counters per load (64-bit hosts, the default there) or one. */
    wideReads: (on: boolean) => core.setWideReads(on ? 1 : 0),
  };
}

// ---- percentiles --------------------------------------------------------------------------

for (const name of Object.keys(SAMPLES)) {
  test(`${name}: p50..p99.9 within the scale's bound of the exact quantiles at scales 3, 5 and 7; count, sum, min, max exact`, () => {
    const { values, sorted } = sample(name);
    let sumNs = 0;
    for (const v of values) sumNs += Math.round(v * 1e6);
    assert.ok(sumNs < 2 ** 53, 'the reference sum is an exact integer');
    for (const scale of [3, 5, 7]) {
      const m = monitor({ scale });
      for (let i = 0; i < N; i++) m.recordLatency(values[i]);
      const bound = relativeErrorBound(scale);
      for (const q of QUANTILES) {
        const exact = sorted[Math.ceil(q * N) - 1];
        const got = m.quantileSinceStart(q);
        const err = Math.abs(got - exact) / exact;
        assert.ok(
          err <= bound * (1 + 1e-12),
          `${name} scale ${scale} p${q * 100}: ${got} vs exact ${exact}: error ${err} > bound ${bound}`,
        );
      }
      const t = m.totals();
      assert.is(t.latencyCount, N);
      assert.is(t.requests, N);
      assert.is(t.latencySumMs, sumNs / 1e6, `${name} scale ${scale}: sum`);
      assert.is(t.latencyMinMs, Math.round(sorted[0] * 1e6) / 1e6);
      assert.is(t.latencyMaxMs, Math.round(sorted[N - 1] * 1e6) / 1e6);
      // The sliding window holds everything recorded so far: same histogram, same figures.
      const metrics = m.getCurrentMetrics();
      const since = metrics.latencySinceStart;
      assert.equal(
        [metrics.latencyP50Ms, metrics.latencyP95Ms, metrics.latencyP99Ms, metrics.latencyP999Ms],
        [since.p50, since.p95, since.p99, since.p999],
      );
      assert.is(since.p95, m.quantileSinceStart(0.95));
      m.close();
    }
  });
}

test('a quantile is reported at its bucket log-midpoint, clamped to the observed min and max', () => {
  const m = monitor();
  m.recordLatency(7.3);
  for (const q of [0, 0.5, 0.999, 1])
    assert.is(m.quantileSinceStart(q), 7.3, 'one value: every quantile is that value');
  m.recordLatency(0.01);
  m.recordLatency(2000);
  // Each rank's bucket midpoint (converted from the bucket unit, seconds, to ms), within [min, max].
  const at = (ms: number) => Math.min(Math.max(midpoint(bucketIndex(ms * 1e-3, 7), 7) / 1e-3, 0.01), 2000);
  assert.is(m.quantileSinceStart(0.5), at(7.3));
  assert.is.not(at(7.3), 7.3);
  assert.is(m.quantileSinceStart(0), at(0.01));
  assert.is(m.quantileSinceStart(1), at(2000));
  m.recordLatency(0.0100001); // just above the minimum, in its bucket: that bucket's midpoint is below 0.01
  assert.is(m.quantileSinceStart(0), 0.01, 'clamped to the minimum');
  m.recordLatency(2000.001); // the new maximum, just above a boundary (2 s): its bucket's midpoint is above it
  assert.is(m.quantileSinceStart(1), 2000.001, 'clamped to the maximum');
  assert.ok(Number.isNaN(monitor().quantileSinceStart(0.5)), 'empty: NaN');
  m.close();
});

test('every rank lands in the same bucket whether the walk goes bucket by bucket (with lanes) or four at a time (without)', () => {
  const m = monitor({ maxSeries: 4 });
  const withLane = m.series({ path: 'lane' });
  // A series takes its thread's lane once it is hot there: after these, it has one.
  const warm = 4 * HOT_RECORDS;
  for (let i = 0; i < warm; i++) withLane.recordLatency(3);
  assert.ok((withLane as unknown as { latencyLane: number }).latencyLane !== 0, 'the first series has a lane');
  // No lane left for the next series: its histogram is walked without lanes, four buckets at a time.
  Atomics.store(
    new Int32Array(m.handle().memory.buffer, internalsOf(m).layout.runtimePtr, 64),
    R.LANES_CLAIMED,
    internalsOf(m).layout.lanePool.count,
  );
  const noLane = m.series({ path: 'shared' });
  for (let i = 0; i < warm; i++) noLane.recordLatency(3);
  assert.is((noLane as unknown as { latencyLane: number }).latencyLane, 0, 'the second has none');
  // Dense in the middle, sparse tails, and runs of one bucket: ranks fall at every place in a block.
  const r = seededRandom(11);
  for (let i = 0; i < 3000; i++) {
    const ms = i % 7 === 0 ? 3 : 0.05 * 10 ** (r() * 4);
    withLane.recordLatency(ms);
    noLane.recordLatency(ms);
  }
  const [a, b] = ['lane', 'shared'].map((path) => m.seriesList().find((x) => x.labels.path === path)?.index ?? -1);
  const n = m.totals(a).latencyCount;
  assert.is(m.totals(b).latencyCount, n);
  // q = (k - ½)/n asks for rank k exactly: every rank from the first to the last.
  for (let k = 1; k <= n; k++) {
    const q = (k - 0.5) / n;
    if (m.quantileSinceStart(q, a) !== m.quantileSinceStart(q, b))
      assert.unreachable(
        `rank ${k} of ${n}: ${m.quantileSinceStart(q, a)} with lanes, ${m.quantileSinceStart(q, b)} without`,
      );
  }
  m.close();
});

// ---- bucket boundaries --------------------------------------------------------------------

test('the stored boundaries are 2^(j/2^s) rounded down, exactly (integer check of every one)', () => {
  for (let scale = 0; scale <= 8; scale++) {
    const n = 1 << scale;
    const fractions = boundaryFractions(scale);
    assert.is(fractions.length, n + 1);
    assert.is(fractions[0], 0n);
    assert.is(fractions[n], 1n << 52n);
    for (let j = 1; j < n; j++) {
      const m = (1n << 52n) + fractions[j];
      const target = 1n << BigInt(52 * n + j); // (2^(52 + j/n))^n
      assert.ok(
        m ** BigInt(n) < target && target < (m + 1n) ** BigInt(n),
        `scale ${scale} j ${j}: ${m} is not floor(2^(52 + ${j}/${n}))`,
      );
      assert.is(upperBound(j, scale), Number(m) / 2 ** 52);
    }
  }
});

test('values at 2^k and at every boundary land in the bucket (2^((i-1)/2^s), 2^(i/2^s)]; the next float up in the next one', () => {
  for (let scale = 0; scale <= 8; scale++) {
    const n = 1 << scale;
    const raw = rawHistogram(scale, 2 ** -21, 2 ** 13);
    const expected = new Float64Array(raw.shape.nBuckets + 2);
    const put = (x: number, index: number) => {
      assert.is(bucketIndex(x, scale), index, `bucketIndex(${x}, ${scale})`);
      raw.record(x);
      expected[2 + index - raw.shape.idxMin]++;
    };
    for (const k of [-20, -7, -1, 0, 1, 5, 12]) {
      // 2^k exactly is the upper bound of bucket k·2^s.
      put(2 ** k, k * n);
      put(nextDown(2 ** k), k * n);
      put(nextUp(2 ** k), k * n + 1);
      for (let j = 1; j < n; j++) {
        const b = upperBound(k * n + j, scale); // the float just below 2^(k + j/n)
        assert.is(b, upperBound(j, scale) * 2 ** k);
        put(b, k * n + j);
        put(nextDown(b), k * n + j);
        put(nextUp(b), k * n + j + 1);
      }
    }
    assert.equal(raw.counts(), expected, `scale ${scale}: the wasm core's buckets`);
    raw.wideReads(false);
    assert.equal(raw.counts(), expected, `scale ${scale}: the same, read one counter at a time`);
  }
});

test('bucketIndex agrees with ceil(log2(x)·2^s) away from boundaries; the wasm core agrees with bucketIndex everywhere', () => {
  const random = seededRandom(99);
  for (let scale = 0; scale <= 8; scale++) {
    const n = 1 << scale;
    const raw = rawHistogram(scale, 2 ** -31, 2 ** 31);
    const expected = new Float64Array(raw.shape.nBuckets + 2);
    let compared = 0;
    for (let i = 0; i < 4000; i++) {
      const x = 2 ** (random() * 60 - 30);
      const position = Math.log2(x) * n;
      const index = bucketIndex(x, scale);
      if (Math.abs(position - Math.round(position)) > 1e-6) {
        assert.is(index, Math.ceil(position), `x = ${x}, scale ${scale}`);
        compared++;
      }
      raw.record(x);
      expected[2 + index - raw.shape.idxMin]++;
    }
    assert.ok(compared > 3900);
    assert.equal(raw.counts(), expected, `scale ${scale}`);
  }
});

test('through the monitor: latencies (ms) land in the bucket of their value in seconds, also exactly at boundaries', () => {
  for (const scale of [0, 3, 7, 8]) {
    const m = monitor({ scale });
    const expected = new Map<number, number>();
    const put = (ms: number) => {
      m.recordLatency(ms);
      const i = bucketIndex(ms * 1e-3, scale);
      expected.set(i, (expected.get(i) ?? 0) + 1);
    };
    const random = seededRandom(7 + scale);
    for (let i = 0; i < 20_000; i++) put(10 ** (random() * 9 - 2.9)); // 1.26 µs .. 1.26 h... capped below
    // Latencies whose value in seconds is exactly a boundary, or the float just above one.
    let exact = 0;
    for (let j = 0; j < 1 << scale; j++) {
      for (const k of [-9, -3, 0, 3]) {
        const b = upperBound(k * (1 << scale) + j, scale);
        for (const target of [b, nextUp(b)]) {
          for (const ms of [target * 1000, nextUp(target * 1000), nextDown(target * 1000)]) {
            if (ms * 1e-3 === target) {
              put(ms);
              exact++;
              break;
            }
          }
        }
      }
    }
    assert.ok(exact > (1 << scale) * 4, `${exact} latencies exactly at or next to a boundary`);
    const h = m.nativeHistogram(0, 'latency');
    assert.is(h.schema, scale);
    const got = new Map(h.buckets.map((b) => [b.index, b.count]));
    // Values over the hour went to the overflow count; nothing below 1 µs was recorded.
    let overflow = 0;
    for (const [i, c] of expected) {
      if (upperBound(i - 1, scale) >= (h.overflowThreshold ?? Number.POSITIVE_INFINITY)) {
        overflow += c;
        expected.delete(i);
      }
    }
    assert.equal(got, expected, `scale ${scale}`);
    assert.is(h.overflowCount, overflow);
    assert.is(h.zeroCount, 0);
    m.close();
  }
});

test('zero bucket and overflow: values below the range and above it still count, with exact sum, min and max', () => {
  const m = monitor(); // range 1 µs .. 1 h
  for (const ms of [0, -0, 0.0001, 0.0009]) m.recordLatency(ms); // below 1 µs
  m.recordLatency(0.001); // 1 µs itself is resolved
  m.recordLatency(5);
  m.recordLatency(3_600_000); // 1 h itself is resolved
  m.recordLatency(3_600_000 * 1.01);
  m.recordLatency(1e10); // the largest latency accepted
  const h = m.nativeHistogram(0);
  assert.is(h.zeroCount, 4);
  assert.is(h.overflowCount, 2);
  assert.is(h.count, 9);
  assert.is(
    h.buckets.reduce((n, b) => n + b.count, 0),
    3,
  );
  assert.ok(h.zeroThreshold < 1e-6 && 1e-6 <= upperBound(h.buckets[0].index, h.schema), 'the first bucket holds 1 µs');
  assert.ok(
    upperBound(h.buckets[2].index, h.schema) >= 3600 && (h.overflowThreshold ?? 0) >= 3600,
    'the last bucket holds 1 h',
  );
  const t = m.totals();
  assert.is(t.latencyCount, 9);
  assert.is(
    t.latencySumMs,
    (0 + 0 + 100 + 900 + 1000 + 5_000_000 + 3_600_000_000_000 + 3_636_000_000_000 + 1e16) / 1e6,
  );
  assert.is(t.latencyMinMs, 0);
  assert.is(t.latencyMaxMs, 1e10);
  // Ranks in the zero bucket report the minimum; ranks in the overflow the maximum.
  assert.is(m.quantileSinceStart(0.4), 0);
  assert.is(m.quantileSinceStart(1), 1e10);
  m.close();
});

test('the range edges, in ms: the last latency below the first bucket counts as zero and the next float in the first bucket; likewise at the top', () => {
  const m = monitor(); // range 1 µs .. 1 h
  const { zeroThreshold, overflowThreshold } = m.nativeHistogram(0);
  assert.ok(overflowThreshold !== undefined);
  // The last latency (ms) whose value in seconds is at or below a threshold (seconds).
  const lastAtOrBelow = (seconds: number) => {
    let ms = seconds * 1000;
    while (ms * 1e-3 > seconds) ms = nextDown(ms);
    while (nextUp(ms) * 1e-3 <= seconds) ms = nextUp(ms);
    return ms;
  };
  const low = lastAtOrBelow(zeroThreshold);
  const high = lastAtOrBelow(overflowThreshold);
  for (const ms of [low, nextUp(low), high, nextUp(high)]) m.recordLatency(ms);
  const h = m.nativeHistogram(0);
  assert.is(h.zeroCount, 1, `${low} ms is below the first bucket`);
  assert.is(h.overflowCount, 1, `${nextUp(high)} ms is above the last bucket`);
  assert.equal(
    h.buckets.map((b) => [b.index, b.count]),
    [
      [bucketIndex(nextUp(low) * 1e-3, h.schema), 1],
      [bucketIndex(high * 1e-3, h.schema), 1],
    ],
  );
  assert.is(upperBound(h.buckets[0].index - 1, h.schema), zeroThreshold, 'the first bucket');
  assert.is(upperBound(h.buckets[1].index, h.schema), overflowThreshold, 'the last bucket');
  m.close();
});

test.run();
