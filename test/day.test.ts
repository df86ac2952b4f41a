// A simulated 24-hour run (clock option, hand-driven ticks, one record stream of lognormal
// latencies): the history holds exactly the retention period, every minute, hour and day rollup
// agrees with the values actually recorded, and the heap stays flat after the first hour.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { handClock, quietMonitor } from './fixtures/monitor.js';
import { exactQuantile, near } from './fixtures/quantiles.js';
import { lognormal, seededRandom } from './fixtures/random.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const T0 = Date.UTC(2025, 0, 1); // a day boundary: minute, hour and day periods start here
const CHILD_ENV = 'STREAMGAUGE_DAY_TEST_CHILD';

/** Lognormal latencies in ms (median ~5 ms, long tail), rounded to f32 so they can be kept compactly and exactly. */
function lognormalF32(random: () => number, median = 5, sigma = 0.9): () => number {
  return () => Math.fround(lognormal(random, median, sigma));
}

interface RollupCheck {
  end: number;
  requests: number;
  errors: number;
  expectedRequests: number;
  expectedErrors: number;
  /** Sum over the tick points the period covers (null where the tick ring no longer holds them all). */
  tickRequests: number | null;
  tickErrors: number | null;
  p50: number;
  p99: number;
  exactP50: number;
  exactP99: number;
  meanLatency: number;
  exactMean: number;
}

interface DayRun {
  elapsedMs: number;
  /** CPU time of the run (user + system): what the run costs, whatever else the machine is doing. */
  cpuMs: number;
  records: number;
  heapAfterHour1: number;
  heapAfterRun: number;
  tick: {
    length: number;
    capacity: number;
    first: number;
    last: number;
    evenlySpaced: boolean;
    matchesRecorded: boolean;
  };
  minutes: RollupCheck[];
  hours: RollupCheck[];
  days: RollupCheck[];
}

const DAY_TICKS = 86_400;
const EXTRA_TICKS = 60; // one more minute: the first minute drops out of the tick ring, the day closes

/** Runs 24 h + 1 min of 1 s ticks on a simulated clock, recording every tick, then checks history against what was recorded. */
function simulateDay(): DayRun {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  const ticks = DAY_TICKS + EXTRA_TICKS;
  // What each tick records, decided up front so the values can be kept in one preallocated array.
  const rand = seededRandom(24);
  const counts = new Uint16Array(ticks + 1);
  const errors = new Uint8Array(ticks + 1);
  const offset = new Float64Array(ticks + 2);
  for (let i = 1; i <= ticks; i++) {
    counts[i] = 100 + Math.round(75 * (1 + Math.sin((2 * Math.PI * i) / DAY_TICKS))) + Math.floor(rand() * 50);
    errors[i] = rand() < 0.3 ? 1 + Math.floor(rand() * 3) : 0;
    offset[i + 1] = offset[i] + counts[i];
  }
  const values = new Float32Array(offset[ticks + 1]);
  const next = lognormalF32(seededRandom(7));
  let heapAfterHour1 = 0;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 1; i <= ticks; i++) {
    let at = offset[i];
    for (let j = 0; j < counts[i]; j++) {
      const v = next();
      values[at++] = v;
      m.recordLatency(v);
    }
    for (let j = 0; j < errors[i]; j++) m.recordError('timeout');
    clock.t = T0 + i * 1000;
    m.tick();
    if (i === 3600) {
      gc();
      gc();
      heapAfterHour1 = process.memoryUsage().heapUsed;
    }
  }
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  gc();
  gc();
  const heapAfterRun = process.memoryUsage().heapUsed;

  // The tick ring: exactly the retention period, oldest dropped.
  const th = m.getHistory();
  const firstTick = ticks - th.t.length + 1;
  let evenlySpaced = true;
  let matchesRecorded = true;
  for (let k = 0; k < th.t.length; k++) {
    const i = firstTick + k;
    if (th.t[k] !== T0 + i * 1000) evenlySpaced = false;
    if (th.fields.requests[k] !== counts[i] + errors[i] || th.fields.errors[k] !== errors[i]) matchesRecorded = false;
  }
  const tickIndex = (t: number) => (t - T0) / 1000; // tick i is stamped T0 + i s
  const check = (resolution: 'minute' | 'hour' | 'day'): RollupCheck[] => {
    const h = m.getHistory({ resolution });
    const periodTicks = { minute: 60, hour: 3600, day: 86_400 }[resolution];
    return h.t.map((end, k) => {
      const last = tickIndex(end);
      const first = last - periodTicks + 1; // the period (end - P, end] holds ticks first..last
      let expectedRequests = 0;
      let expectedErrors = 0;
      for (let i = first; i <= last; i++) {
        expectedRequests += counts[i] + errors[i];
        expectedErrors += errors[i];
      }
      let tickRequests: number | null = null;
      let tickErrors: number | null = null;
      if (first >= firstTick) {
        let rq = 0;
        let er = 0;
        for (let i = first; i <= last; i++) {
          rq += th.fields.requests[i - firstTick];
          er += th.fields.errors[i - firstTick];
        }
        tickRequests = rq;
        tickErrors = er;
      }
      // The values recorded in the period are contiguous; sorting them in place is all a quantile needs.
      const vals = values.subarray(offset[first], offset[last + 1]).sort();
      let sum = 0;
      for (const v of vals) sum += v;
      return {
        end,
        requests: h.fields.requests[k],
        errors: h.fields.errors[k],
        expectedRequests,
        expectedErrors,
        tickRequests,
        tickErrors,
        p50: m.rollupQuantile(resolution, end, 0.5),
        p99: m.rollupQuantile(resolution, end, 0.99),
        exactP50: exactQuantile(vals, 0.5),
        exactP99: exactQuantile(vals, 0.99),
        meanLatency: h.fields.meanLatency[k],
        exactMean: sum / vals.length,
      };
    });
  };
  // Finest first: sorting a period in place leaves the finer periods inside it unusable.
  const minutes = check('minute');
  const hours = check('hour');
  const days = check('day');
  const run: DayRun = {
    elapsedMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    records: offset[ticks + 1],
    heapAfterHour1,
    heapAfterRun,
    tick: {
      length: th.t.length,
      capacity: internalsOf(m).layout.history.capacity,
      first: th.t[0],
      last: th.t.at(-1)!,
      evenlySpaced,
      matchesRecorded,
    },
    minutes,
    hours,
    days,
  };
  m.close();
  return run;
}

/** Runs the day here when this process can force a GC, else in a child that can (`--expose-gc`). */
function runDay(): DayRun {
  if (typeof (globalThis as { gc?: unknown }).gc === 'function') return simulateDay();
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], {
    cwd: ROOT,
    env: { ...process.env, [CHILD_ENV]: '1' },
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  if (child.status !== 0)
    throw new Error(`the 24-hour child run failed (${child.status ?? child.signal}): ${child.stderr}`);
  const line = child.stdout.trim().split('\n').at(-1)!;
  return JSON.parse(line) as DayRun;
}

test('a simulated 24-hour run: the history holds exactly the retention period, rollups agree with what was recorded, the heap stays flat', () => {
  const run = runDay();
  console.log(
    `    24 h simulated: ${DAY_TICKS + EXTRA_TICKS} ticks, ${run.records} records in ${(run.elapsedMs / 1000).toFixed(1)} s (${(run.cpuMs / 1000).toFixed(1)} s of CPU); ` +
      `heap after hour 1 ${(run.heapAfterHour1 / 2 ** 20).toFixed(2)} MiB, after the run ${(run.heapAfterRun / 2 ** 20).toFixed(2)} MiB`,
  );
  // the tick ring: exactly 24 h of points, the first minute dropped
  assert.is(run.tick.capacity, DAY_TICKS);
  assert.is(run.tick.length, DAY_TICKS);
  assert.is(run.tick.first, T0 + (EXTRA_TICKS + 1) * 1000);
  assert.is(run.tick.last, T0 + (DAY_TICKS + EXTRA_TICKS) * 1000);
  assert.ok(run.tick.evenlySpaced, 'one point per second, in order');
  assert.ok(run.tick.matchesRecorded, "every point's requests and errors are what its second recorded");

  // rollups: the ring sizes, and each period against its ticks and its values
  assert.is(run.minutes.length, 60);
  assert.is(
    run.minutes.at(-1)!.end,
    T0 + DAY_TICKS * 1000,
    'the last closed minute ends the day (the extra minute is still open)',
  );
  assert.is(run.hours.length, 24);
  assert.is(run.hours[0].end, T0 + 3_600_000);
  assert.is(run.days.length, 1);
  assert.is(run.days[0].end, T0 + DAY_TICKS * 1000);
  for (const [name, rows] of [
    ['minute', run.minutes],
    ['hour', run.hours],
    ['day', run.days],
  ] as const) {
    for (const r of rows) {
      const at = `${name} ending ${new Date(r.end).toISOString()}`;
      // counts are f64 columns: a day's count is exact
      assert.is(r.requests, r.expectedRequests, `${at}: requests`);
      assert.is(r.errors, r.expectedErrors, `${at}: errors`);
      if (r.tickRequests !== null) {
        assert.is(r.tickRequests, r.expectedRequests, `${at}: sum of its tick points`);
        assert.is(r.tickErrors, r.expectedErrors, `${at}: errors of its tick points`);
      }
      near(r.p99, r.exactP99, `${at}: p99`);
      near(r.p50, r.exactP50, `${at}: p50`);
      assert.ok(
        Math.abs(r.meanLatency - r.exactMean) / r.exactMean < 1e-6,
        `${at}: mean ${r.meanLatency} vs ${r.exactMean}`,
      );
    }
  }
  // all hours but the first are fully covered by tick points
  assert.ok(run.hours.slice(1).every((h) => h.tickRequests !== null));

  // no growth: within 1 MB of the heap after the first simulated hour
  const growth = run.heapAfterRun - run.heapAfterHour1;
  assert.ok(growth < 2 ** 20, `heap grew ${growth} bytes after the first hour`);
});

if (process.env[CHILD_ENV]) {
  process.stdout.write(`${JSON.stringify(simulateDay())}\n`);
} else {
  test.run();
}
