import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ALARM_SCORE,
  type AnomalyResult,
  AnomalyDetector,
  AnomalyTracker,
  type DetectorTuning,
  normalTail,
  OrderStatisticWindow,
  TUNING,
  UNUSUAL_SCORE,
} from '../src/analysis/anomaly.js';
import { QUIET_FAMILIES } from './fixtures/generated.js';
import { gaussian, seededGaussians, seededRandom } from './fixtures/random.js';
import { isA } from './fixtures/throws.js';

interface Run {
  alarms: number[];
  results: AnomalyResult[];
}

/** Feeds `n` points of `f(i)` to a fresh detector, keeping a copy of every result. */
function run(n: number, f: (i: number) => number, detector = new AnomalyDetector()): Run {
  const alarms: number[] = [];
  const results: AnomalyResult[] = [];
  for (let i = 0; i < n; i++) {
    const r = detector.update(f(i));
    results.push({ ...r });
    if (r.alarm) alarms.push(i);
  }
  return { alarms, results };
}

// --- Order statistics ------------------------------------------------------------------------

test('OrderStatisticWindow agrees with a sorted copy of the last values', () => {
  const r = seededRandom(11);
  for (const capacity of [2, 7, 100]) {
    const w = new OrderStatisticWindow(capacity);
    const all: number[] = [];
    const out = new Float64Array(2);
    for (let i = 0; i < 3000; i++) {
      // ties on purpose: a third of the values are small integers
      const x = r() < 0.3 ? Math.floor(r() * 5) : 1000 + r() * 50;
      w.push(x);
      all.push(x);
      const sorted = all.slice(-capacity).sort((a, b) => a - b);
      const n = sorted.length;
      assert.is(w.length, n);
      const k = Math.floor(r() * n);
      assert.is(w.kth(k), sorted[k]);
      const q = sorted[Math.floor(r() * n)];
      assert.is(w.rank(q), sorted.filter((v) => v < q).length);
      assert.is(w.rank(q, true), sorted.filter((v) => v <= q).length);
      assert.is(w.countBetween(q - 3, q + 3), sorted.filter((v) => v >= q - 3 && v <= q + 3).length);
      assert.is(w.quantile(0), sorted[0]);
      assert.is(w.quantile(1), sorted[n - 1]);
      if (n >= 4) {
        const kk = 1 + Math.floor(r() * (n - 2));
        const u = sorted[n - 1 - kk];
        w.tailExcess(kk, u, true, out);
        const ex = sorted.slice(n - kk).map((v) => v - u);
        const mean = ex.reduce((a, b) => a + b, 0) / kk;
        const variance = ex.reduce((a, b) => a + (b - mean) ** 2, 0) / kk;
        assert.ok(Math.abs(out[0] - mean) < 1e-6, `mean excess ${out[0]} vs ${mean}`);
        assert.ok(Math.abs(out[1] - variance) < 1e-3, `excess variance ${out[1]} vs ${variance}`);
        const lo = sorted[kk];
        w.tailExcess(kk, lo, false, out);
        const exLow = sorted.slice(0, kk).map((v) => lo - v);
        assert.ok(Math.abs(out[0] - exLow.reduce((a, b) => a + b, 0) / kk) < 1e-6, 'lower tail');
      }
    }
  }
});

test('OrderStatisticWindow: interpolated quantiles, clear, checks', () => {
  const w = new OrderStatisticWindow(10);
  assert.ok(Number.isNaN(w.quantile(0.5)));
  for (const x of [4, 1, 3, 2]) w.push(x);
  assert.is(w.quantile(0.5), 2.5);
  assert.is(w.quantile(1 / 3), 2);
  w.clear();
  assert.is(w.length, 0);
  w.push(7);
  assert.is(w.quantile(0.5), 7);
  assert.throws(() => new OrderStatisticWindow(1), isA(RangeError, /capacity/));
  const noSums = new OrderStatisticWindow(4, false);
  noSums.push(1);
  assert.throws(() => noSums.tailExcess(1, 0, true, new Float64Array(2)), isA(TypeError));
});

test('normalTail', () => {
  assert.ok(Math.abs(normalTail(0) - 0.5) < 1e-7);
  assert.ok(Math.abs(normalTail(1.959963984540054) - 0.025) < 1e-7);
  assert.ok(Math.abs(normalTail(-1) - 0.8413447460685429) < 1e-7);
  assert.ok(Math.abs(normalTail(4.264890793922825) / 1e-5 - 1) < 0.01);
});

// --- The detector ----------------------------------------------------------------------------

test('stationary noise: no alarm after the learning period, and a ±2σ expected range', () => {
  const g = seededGaussians(1);
  const { alarms, results } = run(8000, () => 100 + g());
  assert.equal(alarms, [], 'gaussian noise');
  for (const r of results) assert.ok(r.score >= 0 && r.score <= 1);
  const last = results[results.length - 1];
  assert.ok(
    Math.abs(last.expectedLow - 98) < 0.25 && Math.abs(last.expectedHigh - 102) < 0.25,
    `${last.expectedLow}..${last.expectedHigh}`,
  );
  const u = seededRandom(2);
  assert.equal(run(8000, () => u()).alarms, [], 'uniform noise');
  const p = seededRandom(3);
  // counts (small Poisson-like integers, many ties)
  const poisson = () => {
    let k = 0;
    for (let prod = p(); prod > Math.exp(-4); prod *= p()) k++;
    return k;
  };
  assert.equal(run(8000, poisson).alarms, [], 'counts');
  // A seasonal series needs a couple of periods before its whole range has been seen.
  const s = seededGaussians(4);
  const seasonal = run(8000, (i) => 10 * Math.sin((2 * Math.PI * i) / 300) + s()).alarms;
  assert.equal(
    seasonal.filter((i) => i >= 600),
    [],
    'seasonal',
  );
});

/** Alarms of a detector (default options, `tuning` constants) on `generate(10 000, seed)`. */
function quietAlarms(
  generate: (n: number, seed: number) => Float64Array,
  seed: number,
  tuning?: Partial<DetectorTuning>,
): number {
  const d = new AnomalyDetector({}, tuning);
  let alarms = 0;
  for (const v of generate(10_000, seed)) if (d.update(v).alarm) alarms++;
  return alarms;
}

test('hard series without anomalies: false alarms per 10 000 points stay within the measured bound', () => {
  // Random walk, AR(1) φ 0.9 and 0.95, Pareto noise (tail index 1.5), Student's t (3 degrees of
  // freedom), lognormal (σ 1.2), daily cycle with Gaussian and with Pareto noise; three seeds of
  // 10 000 points each. Measured per 10 000 points: 1.3, 5.0, 4.0, 6.0, 4.7, 5.7, 0.3, 1.0; 3.50 on
  // average, at most 8 in one run (bench/RESULTS.md). The bound: at most 9 in any one run, 4 on
  // average.
  let total = 0;
  for (const [family, generate] of Object.entries(QUIET_FAMILIES)) {
    for (let seed = 1; seed <= 3; seed++) {
      const alarms = quietAlarms(generate, seed);
      assert.ok(alarms <= 9, `${family}, seed ${seed}: ${alarms} alarms`);
      total += alarms;
    }
  }
  const perTenThousand = total / (3 * Object.keys(QUIET_FAMILIES).length);
  assert.ok(perTenThousand <= 4, `${perTenThousand} alarms per 10 000 points`);
});

test('strongly autocorrelated series: excursions that come back are not alarms', () => {
  // AR(1) with φ 0.9, 0.97 and 0.99, three seeds of 10 000 points each: it wanders for about
  // 1/(1 − φ) points at a time, each step ordinary. Measured: 3.2 alarms per 10 000 points
  // (6.6 when every novelty needed one improbable point, however it began).
  let alarms = 0;
  let runs = 0;
  for (const phi of [0.9, 0.97, 0.99]) {
    for (let seed = 101; seed <= 103; seed++) {
      const r = seededRandom(seed);
      let x = 0;
      const d = new AnomalyDetector();
      for (let i = 0; i < 10_000; i++) {
        x = phi * x + gaussian(r);
        if (d.update(50 + x).alarm) alarms++;
      }
      runs++;
    }
  }
  assert.ok(alarms / runs <= 4, `${alarms / runs} alarms per 10 000 points`);
  // The same wandering turned into a drift that stays is still reported, within its memory.
  const r = seededRandom(104);
  let x = 0;
  const drift = run(3000, (i) => {
    x = 0.95 * x + gaussian(r);
    return 50 + x + (i >= 2000 ? (i - 2000) * 0.05 : 0);
  });
  const found = drift.alarms.filter((i) => i >= 2000);
  assert.ok(found.length >= 1 && found[0] < 2400, `drift alarms ${drift.alarms}`);
});

test('the constants the benchmark sweeps do what they say on heavy-tailed and autocorrelated series', () => {
  const { studentT3, lognormal, ar09, pareto } = QUIET_FAMILIES;
  let plain = 0;
  let clipped = 0;
  let single = 0;
  let persistent = 0;
  for (let seed = 1; seed <= 3; seed++) {
    plain += quietAlarms(studentT3, seed) + quietAlarms(lognormal, seed);
    clipped += quietAlarms(studentT3, seed, { levelClip: 2 }) + quietAlarms(lognormal, seed, { levelClip: 2 });
  }
  for (let seed = 1; seed <= 3; seed++) {
    for (const g of [ar09, pareto, lognormal]) {
      single += quietAlarms(g, seed, { noveltyPersistence: 1 });
      persistent += quietAlarms(g, seed);
    }
  }
  // Measured: 31 → 13 with the level test's points clipped; AR(1) φ 0.9, Pareto and lognormal:
  // 59 → 50 with two improbable points needed instead of one.
  assert.ok(clipped * 2 < plain, `clipped ${clipped} vs ${plain}`);
  assert.ok(persistent < single, `persistence: ${persistent} vs ${single}`);
  assert.equal(new AnomalyDetector().tuning, TUNING, 'defaults: the constants the benchmark chose');
});

/** Bytes of typed arrays and slots of plain arrays reachable from `root`: what its state holds. */
function stateSize(root: object): number {
  const seen = new Set<object>();
  let bytes = 0;
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      bytes += v.byteLength;
      return;
    }
    if (Array.isArray(v)) bytes += 8 * v.length;
    for (const x of Object.values(v)) visit(x);
  };
  visit(root);
  return bytes;
}

test('bounded cost: the state after 100 000 points is the state after 10 000, fixed by the window', () => {
  const g = seededGaussians(30);
  const r = seededRandom(31);
  // a noisy daily cycle with spikes and a level shift: every part of the detector at work
  const value = (i: number) =>
    100 + 30 * Math.sin((2 * Math.PI * i) / 288) + 3 * g() + (r() < 0.001 ? 80 : 0) + (i > 50_000 ? 40 : 0);
  const d = new AnomalyDetector();
  const empty = stateSize(d);
  for (let i = 0; i < 10_000; i++) d.update(value(i));
  const early = stateSize(d);
  for (let i = 10_000; i < 100_000; i++) d.update(value(i));
  assert.is(stateSize(d), early);
  assert.is(early, empty, 'all of it allocated up front');
  // 247 B per window point counted view by view; 28 of them are the seven treaps' priorities, one
  // table shared by every detector, so each detector owns about 219 B per point.
  const perPoint = early / d.window;
  assert.ok(perPoint > 242 && perPoint < 252, `${perPoint} B per window point`);
  const small = new AnomalyDetector({ window: 300 });
  assert.ok(Math.abs(stateSize(small) / 300 - perPoint) < 5, 'proportional to the window');
});

test('learning period: no alarm and no expected range at first', () => {
  const g = seededGaussians(5);
  const d = new AnomalyDetector({ learningPoints: 150 });
  const { alarms, results } = run(150, (i) => (i === 120 ? 1e6 : 100 + g()), d);
  assert.equal(alarms, []);
  assert.ok(Number.isNaN(results[0].expectedLow) && Number.isNaN(results[0].expectedHigh));
  assert.ok(Number.isFinite(results[100].expectedLow));
});

test('a step up alarms at once, upwards, and only once', () => {
  const g = seededGaussians(6);
  const { alarms, results } = run(1600, (i) => 100 + g() + (i >= 1000 ? 10 : 0));
  assert.equal(alarms, [1000]);
  const r = results[1000];
  assert.is(r.direction, 'up');
  assert.ok(r.score >= ALARM_SCORE);
  assert.ok(r.expectedHigh < 103 && r.expectedLow > 97, 'range from before the step');
  // The incident goes on being reported as unusual, not as new alarms.
  assert.ok(results[1001].score >= UNUSUAL_SCORE && !results[1001].alarm);
});

test('a small step down (4σ) is found within a few points', () => {
  const g = seededGaussians(7);
  const { alarms, results } = run(1600, (i) => 100 + g() - (i >= 1000 ? 4 : 0));
  assert.ok(alarms.length >= 1 && alarms[0] >= 1000 && alarms[0] <= 1005, `alarms ${alarms}`);
  assert.is(results[alarms[0]].direction, 'down');
});

test('a sustained 1σ shift, unremarkable point by point, is found by its short averages', () => {
  const g = seededGaussians(21);
  const { alarms, results } = run(1400, (i) => 100 + g() + (i >= 1000 && i < 1100 ? 1 : 0));
  assert.is(alarms.length, 1, `alarms ${alarms}`);
  assert.ok(alarms[0] > 1000 && alarms[0] < 1100);
  assert.is(results[alarms[0]].direction, 'up');
});

test('threshold sets how large a move must be: a brief 1.5σ shift passes 2σ, not 3σ', () => {
  const series = () => {
    const g = seededGaussians(21);
    return (i: number) => 100 + g() + (i >= 1000 && i < 1030 ? 1.5 : 0);
  };
  const at2 = run(1400, series(), new AnomalyDetector({ threshold: 2 }));
  const at3 = run(1400, series(), new AnomalyDetector({ threshold: 3 }));
  assert.ok(at2.alarms.length === 1 && at2.alarms[0] >= 1000 && at2.alarms[0] < 1030, `at 2σ: ${at2.alarms}`);
  assert.equal(at3.alarms, [], 'at 3σ');
  // The reported range widens with the threshold.
  const r2 = at2.results[999];
  const r3 = at3.results[999];
  assert.ok(r3.expectedHigh - r3.expectedLow > r2.expectedHigh - r2.expectedLow);
});

test('lone spikes alarm at the spike, in their direction', () => {
  const g = seededGaussians(8);
  const { alarms, results } = run(3000, (i) => 100 + g() + (i === 1000 ? 12 : 0) + (i === 2500 ? -12 : 0));
  assert.equal(alarms, [1000, 2500]);
  assert.is(results[1000].direction, 'up');
  assert.is(results[2500].direction, 'down');
});

test('spikes that recur are learnt as normal', () => {
  const g = seededGaussians(9);
  // a 12σ spike every 100 points from point 1000: the first is news, then they are the habit
  const { alarms } = run(6000, (i) => 100 + g() + (i >= 1000 && i % 100 === 50 ? 12 : 0));
  assert.equal(alarms, [1050]);
});

test('a slow drift is reported once it leaves the usual range', () => {
  const g = seededGaussians(10);
  // +0.02σ per point from point 1000: 2σ after 100 points
  const { alarms, results } = run(1400, (i) => 100 + g() + (i >= 1000 ? (i - 1000) * 0.02 : 0));
  assert.ok(alarms.length >= 1, 'reported');
  assert.ok(alarms[0] > 1000 && alarms[0] < 1200, `first alarm at ${alarms[0]}`);
  assert.is(results[alarms[0]].direction, 'up');
});

test('a flat line raises nothing; any move off it does', () => {
  const { alarms, results } = run(3000, () => 42);
  assert.equal(alarms, []);
  assert.ok(results.every((r) => r.score < UNUSUAL_SCORE));
  assert.is(results[2999].expectedLow, 42);
  assert.is(results[2999].expectedHigh, 42);
  const d = new AnomalyDetector();
  const moved = run(2100, (i) => (i < 2000 ? 42 : 42.5), d);
  assert.equal(moved.alarms, [2000]);
});

test('a flat stretch at an unusual level of a two-level series is found', () => {
  const g = seededGaussians(11);
  // a square wave between 20 and 80 (period 200), then stuck in the middle
  const { alarms } = run(3000, (i) => {
    if (i >= 2600 && i < 2700) return 50;
    return (i % 200 < 100 ? 20 : 80) + g();
  });
  assert.ok(
    alarms.some((i) => i >= 2600 && i < 2610),
    `alarms ${alarms}`,
  );
});

test('scale-free: the same series in other units gives the same alarms', () => {
  const f = (seed: number, k: number, c: number) => {
    const g = seededGaussians(seed);
    return (i: number) => c + k * (100 + g() + (i >= 1200 ? 6 : 0) + (i === 700 ? 15 : 0));
  };
  const a = run(1500, f(12, 1, 0)).alarms;
  assert.ok(a.length === 2 && a[0] === 700 && a[1] >= 1200 && a[1] <= 1205, `alarms ${a}`);
  assert.equal(run(1500, f(12, 1e6, 0)).alarms, a);
  assert.equal(run(1500, f(12, 1e-3, 5e4)).alarms, a);
});

test('threshold: larger thresholds alarm on fewer, larger moves', () => {
  const make = (threshold: number) => {
    const g = seededGaussians(13);
    return run(
      2000,
      (i) => 100 + g() + (i >= 1000 && i < 1100 ? 2.5 : 0) + (i >= 1500 ? 8 : 0),
      new AnomalyDetector({ threshold }),
    ).alarms;
  };
  const low = make(2);
  const high = make(5);
  assert.ok(
    low.some((i) => i >= 1000 && i < 1100),
    `threshold 2 sees the 2.5σ shift: ${low}`,
  );
  assert.ok(!high.some((i) => i >= 1000 && i < 1100), `threshold 5 does not: ${high}`);
  assert.ok(
    high.some((i) => i >= 1500 && i < 1505),
    `but still sees the 8σ step: ${high}`,
  );
});

test('results are deterministic and reset forgets', () => {
  const g1 = seededGaussians(14);
  const xs = Array.from({ length: 1200 }, (_, i) => 100 + g1() + (i === 900 ? 20 : 0));
  const d = new AnomalyDetector();
  const a = run(xs.length, (i) => xs[i], d).results.map((r) => r.score);
  d.reset();
  assert.is(d.count, 0);
  const b = run(xs.length, (i) => xs[i], d).results.map((r) => r.score);
  assert.equal(a, b);
});

test('bad arguments are rejected by name', () => {
  assert.throws(() => new AnomalyDetector({ threshold: -1 }), isA(RangeError, /threshold/));
  assert.throws(() => new AnomalyDetector({ threshold: Number.NaN }), isA(RangeError, /threshold/));
  assert.throws(() => new AnomalyDetector({ window: 10 }), isA(RangeError, /window/));
  assert.throws(() => new AnomalyDetector({ learningPoints: 1.5 }), isA(RangeError, /learningPoints/));
  const d = new AnomalyDetector();
  assert.throws(() => d.update(Number.NaN), isA(TypeError, /value/));
  assert.throws(() => d.update(Number.POSITIVE_INFINITY), isA(TypeError, /value/));
  assert.is(d.count, 0, 'rejected values are not learnt');
  assert.is(d.alarmScore, ALARM_SCORE);
});

// --- Incidents -------------------------------------------------------------------------------

test('tracker: a flapping incident gives one start and one recovery', () => {
  const t = new AnomalyTracker({ recoverAfter: 5 });
  const seq: Array<[number, boolean]> = [
    [0.1, false],
    [0.6, true], // start
    [0.2, false],
    [0.55, true], // within the incident: no new start
    [0.35, false], // still unusual: not calm
    [0.1, false],
    [0.1, false],
    [0.1, false],
    [0.1, false],
    [0.1, false], // fifth calm point: recovered
    [0.1, false],
  ];
  const transitions = seq.map(([score, alarm]) => t.update({ score, alarm }));
  assert.equal(transitions, [null, 'start', null, null, null, null, null, null, null, 'recovered', null]);
  assert.not.ok(t.active);
  assert.is(t.update({ score: 0.7, alarm: true }), 'start');
  assert.is(t.startedAt, 11);
  assert.throws(() => new AnomalyTracker({ recoverAfter: 0 }), isA(RangeError, /recoverAfter/));
  assert.throws(() => new AnomalyTracker({ calmBelow: 0.9 }), isA(RangeError, /calmBelow/));
});

test('detector + tracker: each incident in a noisy series is one start and one recovery', () => {
  const g = seededGaussians(15);
  const d = new AnomalyDetector();
  const t = new AnomalyTracker();
  const transitions: string[] = [];
  for (let i = 0; i < 4000; i++) {
    // a burst of wild values for 40 points, later a shift that lasts 100 points
    let x = 100 + g();
    if (i >= 1500 && i < 1540) x += 15 * g();
    if (i >= 2500 && i < 2600) x += 6;
    const tr = t.update(d.update(x));
    if (tr) transitions.push(`${tr}@${i}`);
  }
  assert.is(transitions.length, 4, transitions.join(' '));
  assert.ok(transitions[0].startsWith('start@15'), transitions[0]);
  assert.ok(transitions[1].startsWith('recovered@'), transitions[1]);
  assert.ok(transitions[2].startsWith('start@25'), transitions[2]);
  assert.ok(transitions[3].startsWith('recovered@'), transitions[3]);
});

test.run();
