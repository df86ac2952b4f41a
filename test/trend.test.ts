import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TrendModel } from '../src/index.js';
import { Ewma, HoltForecaster, LinearTrend, Meter, SimpleMovingAverage } from '../src/trend.js';
import { seededGaussians, seededRandom } from './fixtures/random.js';
import { isA } from './fixtures/throws.js';

const close = (actual: number, expected: number, tol: number, what = '') =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected} ± ${tol}, got ${actual}`);

const T0 = 1_700_000_000_000; // an epoch time in ms: large on purpose
const MINUTE = 60_000;

// --- SimpleMovingAverage ---------------------------------------------------------------------

test('SMA: hand-computed averages, then the window slides', () => {
  const sma = new SimpleMovingAverage(3);
  assert.ok(Number.isNaN(sma.value));
  assert.is(sma.push(3), 3);
  assert.is(sma.push(6), 4.5);
  assert.is(sma.push(9), 6);
  assert.is(sma.push(12), 9); // 6, 9, 12
  assert.is(sma.push(0), 7); // 9, 12, 0
  assert.is(sma.count, 3);
  assert.is(sma.value, 7);
  sma.reset();
  assert.is(sma.count, 0);
  assert.ok(Number.isNaN(sma.value));
});

test('SMA: no drift over a long run of large values', () => {
  const sma = new SimpleMovingAverage(7);
  const r = seededRandom(1);
  const last: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const x = 1e9 + r() * 1000;
    sma.push(x);
    last.push(x);
    if (last.length > 7) last.shift();
  }
  const exact = last.reduce((a, b) => a + b, 0) / 7;
  close(sma.value, exact, 1e-6, 'average');
});

test('SMA: bad arguments are rejected by name', () => {
  assert.throws(() => new SimpleMovingAverage(0), isA(RangeError, /window/));
  assert.throws(() => new SimpleMovingAverage(2.5), /window/);
  const sma = new SimpleMovingAverage(2);
  assert.throws(() => sma.push(Number.NaN), isA(TypeError, /value/));
  assert.is(sma.count, 0, 'a rejected value leaves no trace');
});

// --- Ewma ------------------------------------------------------------------------------------

test('EWMA by alpha: hand-computed values', () => {
  const e = new Ewma({ alpha: 0.5 });
  assert.ok(Number.isNaN(e.value));
  assert.is(e.update(10), 10); // starts at the first value
  assert.is(e.update(20), 15);
  assert.is(e.update(30), 22.5);
  assert.is(e.update(22.5), 22.5);
});

test('EWMA by half-life: weight follows elapsed time, not the number of points', () => {
  const e = new Ewma({ halfLifeMs: 1000 });
  e.update(0, T0);
  assert.is(e.update(10, T0 + 1000), 5); // one half-life: halfway
  close(e.update(5, T0 + 3000), 5, 1e-12); // already there
  // Half a half-life moves it by 1 − 2^−0.5 of the way.
  const a = new Ewma({ halfLifeMs: 1000 });
  a.update(0, 0);
  close(a.update(8, 500), 8 * (1 - 2 ** -0.5), 1e-12);
  assert.throws(() => a.update(1, 400), /timeMs/);
  assert.throws(() => a.update(1), /timeMs/);
});

test('EWMA: options are checked', () => {
  assert.throws(() => new Ewma({}), isA(TypeError));
  assert.throws(() => new Ewma({ alpha: 0.5, halfLifeMs: 10 }), isA(TypeError));
  assert.throws(() => new Ewma({ alpha: 0 }), isA(RangeError, /alpha/));
  assert.throws(() => new Ewma({ alpha: 1.5 }), /alpha/);
  assert.throws(() => new Ewma({ halfLifeMs: -1 }), /halfLifeMs/);
});

// --- Meter -----------------------------------------------------------------------------------

test('Meter: a steady rate reads the same on all three averages', () => {
  const m = new Meter({ tickIntervalMs: 1000 });
  for (let i = 0; i < 30; i++) m.tick(5);
  close(m.oneMinuteRate, 5, 1e-12);
  close(m.fiveMinuteRate, 5, 1e-12);
  close(m.fifteenMinuteRate, 5, 1e-12);
  assert.equal(m.rates(), { m1: m.oneMinuteRate, m5: m.fiveMinuteRate, m15: m.fifteenMinuteRate });
  assert.is(m.count, 150);
});

test('Meter: a step from 0 to 10/s after one minute, against the closed form', () => {
  const m = new Meter({ tickIntervalMs: 1000 });
  m.tick(0); // the first tick sets the rates (to 0)
  for (let i = 0; i < 60; i++) m.tick(10);
  // After 60 one-second ticks the weight of the old value is exp(-60 s / window).
  close(m.oneMinuteRate, 10 * (1 - Math.exp(-1)), 1e-9, 'm1');
  close(m.fiveMinuteRate, 10 * (1 - Math.exp(-60 / 300)), 1e-9, 'm5');
  close(m.fifteenMinuteRate, 10 * (1 - Math.exp(-60 / 900)), 1e-9, 'm15');
});

test('Meter: the default 5 s tick and mark() give Dropwizard-style rates', () => {
  const m = new Meter();
  m.mark(50);
  m.tick(); // 50 events in 5 s
  close(m.oneMinuteRate, 10, 1e-12);
  m.tick(); // nothing in the next 5 s
  close(m.oneMinuteRate, 10 * Math.exp(-5 / 60), 1e-12);
  close(m.fifteenMinuteRate, 10 * Math.exp(-5 / 900), 1e-12);
});

test('Meter: advance() over a pause equals ticking through it', () => {
  const a = new Meter({ tickIntervalMs: 1000 });
  const b = new Meter({ tickIntervalMs: 1000 });
  a.advance(0);
  for (let i = 0; i < 10; i++) {
    a.mark(3);
    a.advance((i + 1) * 1000);
    b.tick(3);
  }
  a.advance(10_000 + 500_500); // 500 empty intervals (and half of the next)
  for (let i = 0; i < 500; i++) b.tick();
  close(a.oneMinuteRate, b.oneMinuteRate, 1e-12, 'm1');
  close(a.fiveMinuteRate, b.fiveMinuteRate, 1e-12, 'm5');
  close(a.fifteenMinuteRate, b.fifteenMinuteRate, 1e-12, 'm15');
  assert.throws(() => a.mark(-1), isA(RangeError, /n must/));
  assert.throws(() => new Meter({ tickIntervalMs: 0 }), /tickIntervalMs/);
});

// --- LinearTrend -----------------------------------------------------------------------------

test('LinearTrend: exact on a known line, with epoch-millisecond times', () => {
  const tr = new LinearTrend(50);
  const perMs = 3e6 / MINUTE; // 3 MB per minute
  for (let i = 0; i < 40; i++) tr.push(T0 + i * 1000, 100e6 + perMs * i * 1000);
  close(tr.slope * MINUTE, 3e6, 1e-3, 'slope per minute');
  close(tr.valueAt(), 100e6 + perMs * 39_000, 1e-3, 'fitted now');
  close(tr.forecast(10 * MINUTE), 100e6 + perMs * (39_000 + 600_000), 1e-2, 'forecast');
  close(tr.rSquared, 1, 1e-9);
  // 512 MB from 100 MB + 1.95 MB at 3 MB/min: (512 - 101.95) / 3 minutes.
  close(tr.timeToReach(512e6) / MINUTE, (512e6 - (100e6 + perMs * 39_000)) / 3e6, 1e-6, 'minutes to 512 MB');
  assert.is(tr.timeToReach(50e6), Number.POSITIVE_INFINITY, 'never, going up');
});

test('LinearTrend: only the last `window` points count, over a long run', () => {
  const tr = new LinearTrend(100);
  const r = seededRandom(2);
  for (let i = 0; i < 100_000; i++) {
    const t = T0 + i * 1000;
    // slope 5 per second for a long time, then -2 per second for the last 100 points
    const y = i < 99_900 ? 1e6 + 5 * i + r() : 1e6 + 5 * 99_900 - 2 * (i - 99_900);
    tr.push(t, y);
  }
  close(tr.slope * 1000, -2, 1e-6, 'slope per second');
  assert.is(tr.count, 100);
});

test('LinearTrend: a least-squares slope through noise', () => {
  const tr = new LinearTrend(1000);
  const r = seededRandom(3);
  for (let i = 0; i < 1000; i++) tr.push(T0 + i * 1000, 0.5 * i + (r() - 0.5) * 10);
  close(tr.slope * 1000, 0.5, 0.01);
  assert.ok(tr.rSquared > 0.99);
});

test('LinearTrend: degenerate input', () => {
  const tr = new LinearTrend(10);
  assert.ok(Number.isNaN(tr.slope));
  tr.push(T0, 5);
  assert.ok(Number.isNaN(tr.slope));
  tr.push(T0, 7); // same time: no slope
  assert.ok(Number.isNaN(tr.slope));
  assert.is(tr.valueAt(), 6);
  assert.ok(Number.isNaN(tr.timeToReach(10)));
  assert.throws(() => new LinearTrend(1), /window/);
  assert.throws(() => tr.push(Number.NaN, 1), /timeMs/);
  assert.throws(() => tr.push(T0, Number.POSITIVE_INFINITY), /value/);
});

// --- HoltForecaster --------------------------------------------------------------------------

test('Holt: follows a known line exactly and forecasts it', () => {
  const h = new HoltForecaster();
  const perMs = 3e6 / MINUTE;
  for (let i = 0; i < 300; i++) h.update(100e6 + perMs * i * 1000, T0 + i * 1000);
  close(h.slope * MINUTE, 3e6, 1e-3, 'slope per minute');
  close(h.value, 100e6 + perMs * 299_000, 1e-3);
  close(h.forecast(40 * MINUTE), 100e6 + perMs * 299_000 + 120e6, 1e-2);
  const minutes = h.timeToReach(512e6) / MINUTE;
  close(minutes, (512e6 - (100e6 + perMs * 299_000)) / 3e6, 1e-6, 'minutes to 512 MB');
  assert.is(h.timeToReach(h.value), 0);
  assert.is(h.timeToReach(0), Number.POSITIVE_INFINITY);
});

test('Holt: the trend follows a change of slope, at the pace of its half-life', () => {
  const h = new HoltForecaster({ levelHalfLifeMs: 10_000, trendHalfLifeMs: 60_000 });
  let y = 0;
  for (let i = 0; i < 600; i++) h.update((y += 1), i * 1000); // 1 per second
  close(h.slope * 1000, 1, 1e-9);
  for (let i = 600; i < 1200; i++) h.update((y -= 2), i * 1000); // then -2 per second
  close(h.slope * 1000, -2, 0.01, 'after ten trend half-lives');
  const early = new HoltForecaster({ levelHalfLifeMs: 10_000, trendHalfLifeMs: 60_000 });
  y = 0;
  for (let i = 0; i < 600; i++) early.update((y += 1), i * 1000);
  for (let i = 600; i < 630; i++) early.update((y -= 2), i * 1000);
  assert.ok(early.slope * 1000 > -2 && early.slope * 1000 < 1, 'half a minute in: between the two');
});

test('Holt: per-point weights, and checks', () => {
  const h = new HoltForecaster({ alpha: 0.5, beta: 0.5 });
  h.update(10, 0);
  h.update(12, 1000); // trend 2 per s
  h.update(14, 2000);
  close(h.value, 14, 1e-12);
  close(h.slope * 1000, 2, 1e-12);
  // a jump: level = 0.5·24 + 0.5·(14 + 2) = 20; trend = 0.5·(6 per s) + 0.5·2 = 4 per s
  h.update(24, 3000);
  close(h.value, 20, 1e-12);
  close(h.slope * 1000, 4, 1e-12);
  assert.throws(() => h.update(1, 3000), /timeMs/);
  assert.throws(() => new HoltForecaster({ alpha: 0.5 }), /beta/);
  assert.throws(() => new HoltForecaster({ alpha: 2, beta: 0.1 }), /alpha/);
  assert.throws(() => new HoltForecaster({ alpha: 0.5, beta: 0.5, trendHalfLifeMs: 1 }), isA(TypeError));
  assert.throws(() => new HoltForecaster({ levelHalfLifeMs: 0 }), /levelHalfLifeMs/);
  const fresh = new HoltForecaster();
  assert.ok(Number.isNaN(fresh.forecast(1000)));
  assert.ok(Number.isNaN(fresh.timeToReach(1)));
});

// --- TrendModel ------------------------------------------------------------------------------

/** A TrendModel over the last 5 minutes of one-second points of `f(second)`, fed `seconds` points. */
function model(seconds: number, f: (s: number) => number, window = 300): TrendModel {
  const m = new TrendModel(window);
  for (let s = 0; s < seconds; s++) m.push(T0 + s * 1000, f(s));
  return m;
}

test('TrendModel: a step is a level shift, not a trend — forecast at the new level, slope 0', () => {
  // 300 s at 100 rps, then flat at 400 (noise σ 5): from 10 s after the step until the step
  // leaves the window, and after.
  for (let seed = 1; seed <= 20; seed++) {
    for (const after of [10, 60, 150, 299, 300, 600]) {
      const g = seededGaussians(seed);
      const m = model(300 + after, (s) => (s < 300 ? 100 : 400) + 5 * g());
      const e = m.estimate()!;
      assert.is(e.kind, after < 300 ? 'levelShift' : 'flat', `seed ${seed}, ${after} s after`);
      assert.is(e.slopePerMs, 0, `seed ${seed}, ${after} s after: slope`);
      // The level from the points after the step: within 4 standard errors (5/√after ≤ 1.6).
      close(m.forecast(10 * MINUTE), 400, (4 * 5) / Math.sqrt(Math.min(after, 300)), `seed ${seed}, ${after} s after`);
      assert.is(m.timeToReach(1000), Number.POSITIVE_INFINITY, 'a flat load never reaches a limit');
      if (e.kind === 'levelShift') {
        close(e.shiftBy!, 300, 20, 'step size'); // 4σ of one point: the step may be at the window's start
        assert.is(e.shiftAt, T0 + 300_000);
      }
    }
  }
});

test('TrendModel: a ramp is a trend, with slope, forecast and time-to-limit from one line', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const g = seededGaussians(seed);
    // 30 rps per minute, noise σ 5, 10 minutes in.
    const m = model(600, (s) => 100 + s * 0.5 + 5 * g());
    const e = m.estimate()!;
    assert.is(e.kind, 'trend');
    close(e.slopePerMs * MINUTE, 30, 1.5, 'slope per minute'); // 5 % (SE 0.35/min)
    const truth = 100 + 599 * 0.5;
    // Ten minutes ahead: the line's error, within 12 rps (3 % of 700).
    close(m.forecast(10 * MINUTE), truth + 300, 12, 'forecast');
    close(m.forecast(10 * MINUTE), e.level + e.slopePerMs * 10 * MINUTE, 1e-9, 'forecast = level + slope·h');
    close(
      m.timeToReach(1000) / MINUTE,
      (1000 - e.level) / (e.slopePerMs * MINUTE),
      1e-9,
      'time-to-limit on the same line',
    );
  }
});

test('TrendModel: noise is neither a trend nor a shift', () => {
  let flat = 0;
  for (let seed = 1; seed <= 50; seed++) {
    const g = seededGaussians(seed);
    const m = model(900, () => 100 + 5 * g());
    const e = m.estimate()!;
    if (e.kind === 'flat') flat++;
    close(m.forecast(10 * MINUTE), 100, 1.5, 'forecast of noise: its mean (SE 0.29)');
  }
  assert.is(flat, 50, 'all 50 noise series flat');
  const exact = model(100, () => 42).estimate()!;
  assert.equal([exact.kind, exact.level, exact.slopePerMs], ['flat', 42, 0]);
});

test('TrendModel: daily seasonality is followed, ten minutes ahead within 2σ of the noise', () => {
  // A daily cycle of ±30 with noise σ 3, one point a minute, 2-hour window; forecast ten minutes
  // ahead at every point of two days, against the noise-free curve.
  const g = seededGaussians(7);
  const day = 24 * 60;
  const curve = (minute: number) => 100 + 30 * Math.sin((2 * Math.PI * minute) / day);
  const m = new TrendModel(120);
  let worst = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < 2 * day; i++) {
    m.push(T0 + i * MINUTE, curve(i) + 3 * g());
    if (i < 120) continue;
    const err = Math.abs(m.forecast(10 * MINUTE) - curve(i + 10));
    worst = Math.max(worst, err);
    sum += err;
    count++;
  }
  assert.ok(sum / count < 1.5, `mean error ${sum / count}`); // half the noise σ
  assert.ok(worst < 6, `worst error ${worst}`); // 2σ of the noise, 10 % of the amplitude
});

test('TrendModel: a slow memory leak under GC sawtooth, time to the limit within 6 %', () => {
  // 200 MB growing 0.5 MB/min, a 30-second GC sawtooth of 4 MB and noise of 0.2 MB: with a
  // 10-minute window, time to 512 MB (about 10 hours) read every 5 minutes of a half-hour run.
  // (A 5-minute window, ten teeth, is biased by the sawtooth: 16 % here.)
  const mb = 2 ** 20;
  for (let seed = 1; seed <= 10; seed++) {
    const g = seededGaussians(seed);
    const memory = (s: number) => 200 * mb + (0.5 * mb * s) / 60 + 4 * mb * ((s % 30) / 30) + 0.2 * mb * g();
    const m = new TrendModel(600);
    for (let s = 0; s < 1800; s++) {
      m.push(T0 + s * 1000, memory(s));
      if (s < 600 || s % 300 !== 299) continue;
      const e = m.estimate()!;
      assert.is(e.kind, 'trend');
      const truthMin = (512 * mb - (200 * mb + (0.5 * mb * s) / 60 + 2 * mb)) / (0.5 * mb);
      const min = m.timeToReach(512 * mb) / MINUTE;
      assert.ok(Math.abs(min / truthMin - 1) < 0.06, `seed ${seed} at ${s} s: ${min} min, truth ${truthMin}`);
    }
  }
});

test('TrendModel: checks and edges', () => {
  assert.throws(() => new TrendModel(2), isA(RangeError, /window/));
  const m = new TrendModel(10);
  assert.is(m.estimate(), null);
  assert.ok(Number.isNaN(m.forecast(1000)) && Number.isNaN(m.timeToReach(1)) && Number.isNaN(m.slope));
  m.push(0, 1);
  assert.throws(() => m.push(0, 2), isA(RangeError, /timeMs/));
  assert.throws(() => m.push(1, Number.NaN), isA(TypeError, /value/));
  m.push(1, 2);
  m.push(2, 3);
  assert.is(m.count, 3);
  m.reset();
  assert.is(m.count, 0);
});

test.run();
