// The monitor's core API: the specification's three tests (adapted where the specification was
// wrong), bad input (every case: the error names the argument and nothing changes), series and
// their bound, error types and theirs, timers, gauges, connections, the comparison with targets
// and configuration checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_MS } from '../src/core/config.js';
import {
  attach,
  compareWithTargets,
  DEFAULT_TARGETS,
  type PerformanceSummary,
  type Recorder,
  StreamPerformanceMonitor,
  type UserConfig,
} from '../src/index.js';
import { nextUp } from './fixtures/floats.js';
import { handClock, testMonitor } from './fixtures/monitor.js';

const MB = 1_048_576;
const T0 = Date.UTC(2025, 0, 1);

/** A monitor that runs no timer and logs nothing, with a small memory (so whole-memory comparisons are cheap). */
function small(config: UserConfig = {}): StreamPerformanceMonitor {
  return testMonitor({
    historyRetention: 60_000,
    rollups: { minutes: 2, hours: 1, days: 1 },
    maxSeries: 4,
    maxErrorTypes: 4,
    ...config,
  });
}

function summary(over: Partial<PerformanceSummary> = {}): PerformanceSummary {
  return {
    totalRequests: 150_000,
    successfulRequests: 149_250,
    failedRequests: 750,
    errorsByType: { timeout: 750 },
    throughputRps: 2500,
    avgLatencyMs: 10,
    p50LatencyMs: 8,
    p95LatencyMs: 20,
    p99LatencyMs: 30,
    p999LatencyMs: 45,
    successRate: 0.995,
    memoryUsageMb: 50,
    activeConnections: 10,
    workerUtilization: 0.5,
    cacheEfficiency: 0.9,
    uptimeSeconds: 60,
    ...over,
  };
}

// ---- the specification's tests ------------------------------------------------------------

test('spec 1: a recorded stream session shows up in the totals (as a session, not as fabricated requests)', () => {
  const m = small();
  m.recordStreamSession('conn-1', 100, 50, 1024);
  const t = m.totals();
  assert.is(t.sessions, 1);
  assert.is(t.sessionMessages, 100);
  assert.is(t.messagesIn, 100);
  assert.is(t.sessionBytes, 1024);
  assert.is(t.bytesIn, 1024);
  assert.is(t.sessionDurationSumMs, 50);
  // The specification counted 100 successful requests with a latency of 0.5 ms each; a session's
  // duration over its message count is not a latency, and its messages are not known successes.
  assert.is(t.requests, 0);
  assert.is(t.latencyCount, 0);
  const durations = m.nativeHistogram(0, 'sessionDuration');
  assert.is(durations.count, 1);
  assert.ok(Math.abs(durations.sum - 0.05) < 1e-15, `session duration sum ${durations.sum} s`);
  m.close();
});

test('spec 2: ten sessions of ten successful messages give a success rate of 1.0', () => {
  const clock = handClock(T0);
  const m = small({ clock });
  let sum = 0;
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 10; i++) {
      const ms = 1 + s + i / 10;
      m.recordLatency(ms);
      sum += ms;
    }
    m.recordStreamSession(`conn-${s}`, 10, 100 + s, 10 * 256);
  }
  clock.t += 1000;
  const s = m.getPerformanceSummary();
  assert.ok(s.throughputRps >= 0);
  assert.ok(
    Math.abs(s.throughputRps - 100) < 1e-9,
    `throughput ${s.throughputRps} rps, want 100 (100 requests in 1 s)`,
  );
  assert.ok(s.avgLatencyMs > 0);
  assert.ok(Math.abs(s.avgLatencyMs - sum / 100) < 1e-9, `average ${s.avgLatencyMs}, want ${sum / 100}`);
  assert.is(s.successRate, 1);
  assert.is(s.uptimeSeconds, 1);
  // ...and a failure is not hidden by the sessions around it.
  m.recordError('timeout', 3);
  assert.is(m.getPerformanceSummary().successRate, 100 / 101);
  m.close();
});

test('spec 3: 2500 rps, p95 20 ms, success 0.995 beat the default targets', () => {
  const s = summary();
  for (const c of [compareWithTargets(s), small().compareWithTargets(s)]) {
    assert.ok(c.throughputAchievement > 1, `throughput ${c.throughputAchievement}`);
    assert.ok(c.latencyAchievement > 1, `latency ${c.latencyAchievement}`);
    assert.ok(c.overallScore > 1, `overall ${c.overallScore}`);
    assert.is(c.throughputAchievement, 2500 / 2000);
    assert.is(c.latencyAchievement, 25 / 20);
    assert.is(c.memoryEfficiency, 100 / 50);
    assert.is(c.successRate, 0.995);
    assert.is(c.overallScore, (1.25 + 1.25 + 2 + 0.995) / 4);
    assert.is(c.meetsTargets, true);
  }
});

// ---- compareWithTargets: edges ------------------------------------------------------------

test('compareWithTargets: zero, missing and extreme figures give finite scores, ratios capped at 2', () => {
  const finite = (c: ReturnType<typeof compareWithTargets>) => {
    for (const [k, v] of Object.entries(c)) if (typeof v === 'number') assert.ok(Number.isFinite(v), `${k} = ${v}`);
  };
  const zeroP95 = compareWithTargets(summary({ p95LatencyMs: 0 }));
  assert.is(zeroP95.latencyAchievement, 2);
  finite(zeroP95);
  const zeroMem = compareWithTargets(summary({ memoryUsageMb: 0 }));
  assert.is(zeroMem.memoryEfficiency, 2);
  finite(zeroMem);
  const noRequests = compareWithTargets(
    summary({ p95LatencyMs: Number.NaN, throughputRps: 0, successRate: Number.NaN }),
  );
  assert.is(noRequests.latencyAchievement, 0);
  assert.is(noRequests.throughputAchievement, 0);
  finite(noRequests);
  assert.is(noRequests.meetsTargets, false);
  const huge = compareWithTargets(
    summary({ throughputRps: 1e12, p95LatencyMs: 1e-9, memoryUsageMb: 1e-9, successRate: 1 }),
  );
  assert.equal([huge.throughputAchievement, huge.latencyAchievement, huge.memoryEfficiency], [2, 2, 2]);
  assert.is(huge.overallScore, (2 + 2 + 2 + 1) / 4);
  const infinite = compareWithTargets(
    summary({
      throughputRps: Number.POSITIVE_INFINITY,
      p95LatencyMs: Number.POSITIVE_INFINITY,
      memoryUsageMb: Number.POSITIVE_INFINITY,
    }),
  );
  finite(infinite);
  assert.equal([infinite.throughputAchievement, infinite.latencyAchievement, infinite.memoryEfficiency], [2, 0, 0]);
  // A monitor that has recorded nothing compares without NaN or Infinity either.
  const m = small();
  finite(m.compareWithTargets());
  m.close();
});

test('compareWithTargets: targets can be overridden, and bad ones are refused by name', () => {
  const c = compareWithTargets(summary(), { ...DEFAULT_TARGETS, targetRps: 5000, targetP95LatencyMs: 10 });
  assert.is(c.throughputAchievement, 0.5);
  assert.is(c.latencyAchievement, 0.5);
  assert.is(c.meetsTargets, false);
  const m = small();
  assert.is(m.compareWithTargets(summary(), { targetRps: 1250 }).throughputAchievement, 2);
  assert.throws(() => m.compareWithTargets(summary(), { targetRps: 0 }), /targets\.targetRps/);
  assert.throws(() => m.compareWithTargets(summary(), { targetSuccessRate: 1.5 }), /targets\.targetSuccessRate/);
  assert.throws(
    () => m.compareWithTargets(summary(), { targetP95LatencyMs: Number.NaN }),
    /targets\.targetP95LatencyMs/,
  );
  assert.throws(() => m.compareWithTargets(summary(), { targetMemoryMb: -1 }), /targets\.targetMemoryMb/);
  assert.throws(
    () => m.compareWithTargets(summary(), { targetRPS: 10 } as never),
    /targets\.targetRPS is not a target/,
  );
  m.close();
});

test('compareWithTargets: meetsTargets needs every target met', () => {
  assert.is(compareWithTargets(summary({ throughputRps: 1999 })).meetsTargets, false);
  assert.is(compareWithTargets(summary({ p95LatencyMs: 25.01 })).meetsTargets, false);
  assert.is(compareWithTargets(summary({ memoryUsageMb: 101 })).meetsTargets, false);
  assert.is(compareWithTargets(summary({ successRate: 0.98 })).meetsTargets, false);
  assert.is(
    compareWithTargets(summary({ throughputRps: 2000, p95LatencyMs: 25, memoryUsageMb: 100, successRate: 0.99 }))
      .meetsTargets,
    true,
  );
});

// ---- bad input ----------------------------------------------------------------------------

type Case = [label: string, argument: string, call: (r: Recorder) => void];

const NOT_NUMBERS: unknown[] = ['5', null, undefined, {}, [], true, 5n, () => 5];
const BAD_MS: unknown[] = [
  Number.NaN,
  -1,
  -1e-9,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e11,
  ...NOT_NUMBERS,
];
const BAD_COUNTS: unknown[] = [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY, 2 ** 53, ...NOT_NUMBERS];
const BAD_RATIOS: unknown[] = [Number.NaN, -0.01, 1.01, Number.POSITIVE_INFINITY, ...NOT_NUMBERS];
const BAD_STRINGS: unknown[] = ['', 5, null, undefined, {}, ['a']];

function badCases(): Case[] {
  const cases: Case[] = [];
  const each = (values: unknown[], argument: string, call: (r: Recorder, v: never) => void) => {
    for (const v of values) cases.push([`${argument} = ${describe(v)}`, argument, (r) => call(r, v as never)]);
  };
  each(BAD_MS, 'ms', (r, v) => r.recordLatency(v));
  each(BAD_STRINGS, 'type', (r, v) => r.recordError(v));
  each(BAD_STRINGS, 'type', (r, v) => r.recordError(v, 5));
  cases.push(['type too long', 'type', (r) => r.recordError('x'.repeat(2000))]);
  each(
    BAD_MS.filter((v) => v !== undefined),
    'latencyMs',
    (r, v) => r.recordError('timeout', v),
  );
  each(BAD_STRINGS, 'connectionId', (r, v) => r.recordStreamSession(v, 1, 1, 1));
  each(BAD_COUNTS, 'messageCount', (r, v) => r.recordStreamSession('c', v, 1, 1));
  each(BAD_MS, 'durationMs', (r, v) => r.recordStreamSession('c', 1, v, 1));
  each(BAD_COUNTS, 'bytesProcessed', (r, v) => r.recordStreamSession('c', 1, 1, v));
  each(BAD_COUNTS, 'batchSize', (r, v) => r.recordBatchProcessing(v, 1));
  each(BAD_MS, 'durationMs', (r, v) => r.recordBatchProcessing(1, v));
  each(BAD_COUNTS, 'count', (r, v) => r.recordMessages(v));
  each(
    BAD_COUNTS.filter((v) => v !== undefined),
    'bytes',
    (r, v) => r.recordMessages(1, v),
  );
  each(['sideways', 'IN', null, 1], 'direction', (r, v) => r.recordMessages(1, 10, v));
  each(
    BAD_MS.filter((v) => v !== undefined),
    'waitMs',
    (r, v) => r.recordBackpressureEvent(v),
  );
  each(BAD_RATIOS, 'ratio', (r, v) => r.updateCacheHitRatio(v));
  each(BAD_COUNTS, 'bytes', (r, v) => r.updateMemoryUsage(v));
  each(BAD_RATIOS, 'ratio', (r, v) => r.updateWorkerUtilization(v));
  each(BAD_COUNTS, 'depth', (r, v) => r.updateQueueDepth(v));
  cases.push(['more closes than opens', 'connectionClosed', (r) => r.connectionClosed()]);
  each(
    [
      null,
      'grpc',
      ['a'],
      5,
      { '1bad': 'v' },
      { 'with-dash': 'v' },
      { __reserved: 'v' },
      { method: 5 },
      { method: null },
    ],
    'labels',
    (r, v) => r.series(v),
  );
  return cases;
}

function describe(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return JSON.stringify(v.length > 12 ? `${v.slice(0, 12)}…` : v);
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** Everything a monitor knows: its whole shared memory, plus what it reads out of it. */
function state(m: StreamPerformanceMonitor) {
  // Reads first: some of them fill scratch areas of the memory (the same way every time).
  const read = JSON.stringify([m.totals(), m.errorsByType(), m.seriesList(), m.quantileSinceStart(0.5)]);
  return { read, memory: Buffer.from(new Uint8Array(m.handle().memory.buffer as ArrayBuffer)) };
}

/** A monitor with a little of everything in it, and its three kinds of recorder. */
function populated(config: UserConfig = {}) {
  const m = small(config);
  m.recordLatency(3);
  m.recordError('timeout', 7);
  m.recordStreamSession('c0', 3, 30, 300);
  m.connectionOpened();
  m.updateMemoryUsage(10 * MB);
  const series = m.series({ grpc_method: 'Chat/Stream' });
  series.recordLatency(4);
  series.connectionOpened();
  series.connectionOpened();
  series.connectionClosed(); // one connection open in each series
  const attached = attach(m.handle());
  return { m, recorders: { monitor: m as Recorder, series, attached } };
}

test('bad input: every case throws a TypeError or RangeError naming the argument, and changes nothing', () => {
  const { m, recorders } = populated();
  const cases = badCases();
  assert.ok(cases.length > 150, `${cases.length} cases`);
  for (const [who, r] of Object.entries(recorders)) {
    let before = state(m);
    for (const [label, argument, call] of cases) {
      let error: unknown;
      try {
        call(r);
      } catch (e) {
        error = e;
      }
      const where = `${who}: ${label}`;
      if (argument === 'connectionClosed') {
        // The default series has one connection open: the first close is fine, the second is not.
        assert.is(error, undefined, where);
        const afterFirst = state(m);
        try {
          call(r);
          assert.unreachable(`${where}: no error on a close without an open`);
        } catch (e) {
          assert.instance(e, RangeError, where);
          assert.match((e as Error).message, /connectionClosed/, where);
        }
        assert.ok(afterFirst.memory.equals(state(m).memory), `${where}: state changed`);
        r.connectionOpened(); // back to one open connection for the next recorder (one more opened in the count)
        before = state(m);
        continue;
      }
      assert.ok(error instanceof TypeError || error instanceof RangeError, `${where}: threw ${String(error)}`);
      const message = (error as Error).message;
      assert.match(
        message,
        new RegExp(`(^|[^A-Za-z])${argument}([^A-Za-z]|$)`),
        `${where}: message does not name ${argument}: ${message}`,
      );
      const after = state(m);
      assert.ok(before.memory.equals(after.memory), `${where}: shared memory changed`);
      assert.is(after.read, before.read, where);
    }
  }
  m.close();
});

test('bad input: a number out of range is a RangeError, anything else a TypeError', () => {
  const m = small();
  const kind = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as Error).constructor;
    }
    return undefined;
  };
  assert.is(
    kind(() => m.recordLatency(-1)),
    RangeError,
  );
  assert.is(
    kind(() => m.recordLatency(Number.NaN)),
    RangeError,
  );
  assert.is(
    kind(() => m.recordLatency('5' as never)),
    TypeError,
  );
  assert.is(
    kind(() => m.updateQueueDepth(1.5)),
    RangeError,
  );
  assert.is(
    kind(() => m.updateQueueDepth(null as never)),
    TypeError,
  );
  assert.is(
    kind(() => m.updateWorkerUtilization(2)),
    RangeError,
  );
  assert.is(
    kind(() => m.recordError(42 as never)),
    TypeError,
  );
  m.close();
});

test('bad input: the record fast path (a thread holding its lane) accepts exactly 0..MAX_MS', () => {
  const m = small();
  const s = m.series({ route: 'edge' });
  for (const r of [m, s]) {
    r.recordLatency(1); // the lane is held from here on: later records take the fast path
    r.recordLatency(MAX_MS);
    r.recordLatency(0);
    for (const bad of [nextUp(MAX_MS), -Number.MIN_VALUE, Number.POSITIVE_INFINITY, Number.NaN]) {
      assert.throws(
        () => r.recordLatency(bad),
        (e: Error) => e instanceof RangeError && /^ms must be/.test(e.message),
        String(bad),
      );
    }
    for (const bad of ['5', 5n, null, undefined, {}]) {
      assert.throws(
        () => r.recordLatency(bad as never),
        (e: Error) => e instanceof TypeError && /^ms must be/.test(e.message),
        String(bad),
      );
    }
  }
  const t = m.getCurrentMetrics();
  assert.is(t.totalRequests, 6);
  assert.is(t.latencyMaxMs, MAX_MS);
  assert.is(t.latencyMinMs, 0);
  m.close();
});

test("bad input with invalidValues: 'count': nothing thrown, each bad value counted as invalid and skipped", () => {
  const { m, recorders } = populated({ invalidValues: 'count' });
  const cases = badCases().filter(([, argument]) => argument !== 'labels' && argument !== 'connectionClosed');
  for (const [who, r] of Object.entries(recorders)) {
    const index = who === 'series' ? 1 : 0;
    const before = m.totals();
    const beforeSeries = m.totals(index);
    for (const [label, , call] of cases) {
      try {
        call(r);
      } catch (e) {
        assert.unreachable(`${who}: ${label} threw ${String(e)}`);
      }
    }
    const after = m.totals();
    assert.is(m.totals(index).invalid - beforeSeries.invalid, cases.length, `${who}: counted invalid`);
    assert.equal(
      { ...after, invalid: 0 },
      { ...before, invalid: 0 },
      `${who}: something besides the invalid count changed`,
    );
  }
  // A bad label set is counted in the default series (whichever recorder it was asked of), and what
  // is recorded through the recorder it gives is skipped and counted too.
  const labelCases = badCases().filter(([, argument]) => argument === 'labels');
  for (const [who, r] of Object.entries(recorders)) {
    const before = m.totals();
    const invalidBefore = m.totals(0).invalid;
    for (const [label, , call] of labelCases) {
      try {
        call(r);
      } catch (e) {
        assert.unreachable(`${who}: ${label} threw ${String(e)}`);
      }
    }
    r.series({ 'bad-name': 'x' }).recordLatency(1);
    assert.is(m.totals(0).invalid - invalidBefore, labelCases.length + 2, `${who}: bad label sets counted`);
    assert.equal(
      { ...m.totals(), invalid: 0 },
      { ...before, invalid: 0 },
      `${who}: something besides the invalid count changed`,
    );
  }
  m.close();
});

// ---- series -------------------------------------------------------------------------------

test('series: one per label set (in any key order), each with its own figures, all adding up', () => {
  const m = small();
  const a = m.series({ grpc_method: 'Chat/Stream', kind: 'bidi' });
  const a2 = m.series({ kind: 'bidi', grpc_method: 'Chat/Stream' });
  assert.ok(a2 === a);
  const b = m.series({ grpc_method: 'Feed/Watch' });
  assert.ok(b !== a);
  assert.ok(a.series({ grpc_method: 'Feed/Watch' }) === b, 'series() of a series is a sibling');
  m.recordLatency(1);
  a.recordLatency(2);
  a.recordLatency(4);
  a.recordError('unavailable', 8);
  b.recordError('timeout');
  const list = m.seriesList();
  const index = (labels: Record<string, string>) =>
    list.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.index ?? -1;
  const ia = index({ grpc_method: 'Chat/Stream', kind: 'bidi' });
  const ib = index({ grpc_method: 'Feed/Watch' });
  assert.is(index({}), 0);
  assert.ok(ia > 0 && ib > 0 && ia !== ib, JSON.stringify(list));
  assert.is(list.filter((s) => s.overflow).length, 1);
  // Asking for the overflow series' labels while there is room gives the overflow series, not a twin.
  m.series({ streamgauge_overflow: 'true' }).recordLatency(16);
  assert.is(m.seriesList().length, list.length);
  assert.is(m.totals(list[list.length - 1].index).latencySumMs, 16);
  const ta = m.totals(ia);
  assert.equal(
    [ta.requests, ta.successes, ta.errors, ta.latencyCount, ta.latencySumMs, ta.latencyMinMs, ta.latencyMaxMs],
    [3, 2, 1, 3, 14, 2, 8],
  );
  const tb = m.totals(ib);
  assert.equal([tb.requests, tb.errors, tb.latencyCount], [1, 1, 0]);
  const t0 = m.totals(0);
  assert.equal([t0.requests, t0.latencySumMs], [1, 1]);
  const all = m.totals();
  assert.equal(
    [all.requests, all.successes, all.errors, all.latencyCount, all.latencySumMs, all.latencyMinMs, all.latencyMaxMs],
    [6, 4, 2, 5, 31, 1, 16],
  );
  assert.equal(m.errorsByType(ia), { unavailable: 1 });
  assert.equal(m.errorsByType(), { unavailable: 1, timeout: 1 });
  assert.is(m.quantileSinceStart(1, ia), 8);
  m.close();
});

test('series: past maxSeries label sets (the default one included), records go to one overflow series', () => {
  const m = small({ maxSeries: 3 });
  const bound = m.memoryFootprint().maxSharedBytes;
  const a = m.series({ tenant: 'a' });
  const b = m.series({ tenant: 'b' });
  const extra = Array.from({ length: 50 }, (_, i) => m.series({ tenant: `t${i}` }));
  a.recordLatency(1);
  b.recordLatency(2);
  extra.forEach((r, i) => {
    r.recordLatency(10 + i);
    r.recordError('boom');
  });
  const list = m.seriesList();
  assert.is(list.length, 4, JSON.stringify(list));
  assert.equal(
    list.map((s) => s.labels),
    [{}, { tenant: 'a' }, { tenant: 'b' }, { streamgauge_overflow: 'true' }],
  );
  const overflow = list.find((s) => s.overflow);
  assert.ok(overflow);
  const t = m.totals(overflow.index);
  assert.equal([t.requests, t.errors, t.latencyCount], [100, 50, 50]);
  assert.is(t.latencySumMs, 50 * 10 + (49 * 50) / 2);
  assert.is(m.totals().requests, 102);
  // Every overflowing label set shares the one series; the memory's bound never moved, and the
  // pages in use are those of the buckets touched (10–59 ms spans 6 pages; each with a lane page).
  assert.ok(extra[0] === extra[49]);
  assert.ok(
    m.series({ streamgauge_overflow: 'true' }) === extra[0],
    "the overflow series' labels name the overflow series",
  );
  const fp = m.memoryFootprint();
  assert.is(fp.maxSharedBytes, bound);
  assert.ok(fp.bucketPages.usedBytes <= 12 * (768 + 512), `${fp.bucketPages.usedBytes} bytes of pages`);
  m.close();
});

// ---- error types --------------------------------------------------------------------------

test("error types: counted by type; past maxErrorTypes they count as 'other'", () => {
  const m = small({ maxErrorTypes: 3 });
  const s = m.series({ grpc_method: 'Chat/Stream' });
  m.recordError('timeout');
  m.recordError('timeout', 30);
  m.recordError('unavailable');
  s.recordError('timeout');
  m.recordError('cancelled');
  for (const t of ['internal', 'data_loss', 'internal']) m.recordError(t);
  s.recordError('aborted', 2);
  assert.equal(m.errorsByType(), { timeout: 3, unavailable: 1, cancelled: 1, other: 4 });
  assert.equal(m.errorsByType(0), { timeout: 2, unavailable: 1, cancelled: 1, other: 3 });
  assert.equal(m.errorsByType(1), { timeout: 1, other: 1 });
  const t = m.totals();
  assert.equal([t.errors, t.requests, t.successes, t.latencyCount], [9, 9, 0, 2]);
  const metrics = m.getCurrentMetrics();
  assert.equal([metrics.failedRequests, metrics.successfulRequests, metrics.totalRequests], [9, 0, 9]);
  m.close();
});

// ---- timers -------------------------------------------------------------------------------

test('startTimer: stop() records the elapsed time once, as a success, and returns it', () => {
  const m = small();
  const s = m.series({ op: 'timed' });
  for (const r of [m as Recorder, s]) {
    const stop = r.startTimer();
    const t0 = performance.now();
    while (performance.now() - t0 < 2) {
      // busy: at least 2 ms pass between start and stop
    }
    const elapsed = stop();
    assert.ok(elapsed >= 2, `elapsed ${elapsed}`);
    assert.is(stop(), elapsed, 'a second stop() returns the same figure');
    stop();
  }
  const t = m.totals();
  assert.is(t.latencyCount, 2);
  assert.is(t.successes, 2);
  assert.ok(t.latencyMinMs >= 2);
  const t1 = m.totals(1);
  assert.is(t1.latencyCount, 1);
  // Independent timers do not interfere.
  const first = m.startTimer();
  const second = m.startTimer();
  second();
  first();
  assert.is(m.totals().latencyCount, 4);
  m.close();
});

// ---- gauges and connections ---------------------------------------------------------------

test('gauges: memory (with its peak), worker utilisation, queue depth, cache ratio, backpressure', () => {
  const m = small();
  m.updateMemoryUsage(50 * MB);
  m.updateMemoryUsage(30 * MB);
  m.updateWorkerUtilization(0.75);
  m.updateQueueDepth(12);
  m.updateCacheHitRatio(0.8);
  m.recordBackpressureEvent();
  m.recordBackpressureEvent(5);
  m.recordBackpressureEvent(0);
  let metrics = m.getCurrentMetrics();
  assert.is(metrics.memoryUsageBytes, 30 * MB);
  assert.is(metrics.peakMemoryBytes, 50 * MB);
  assert.is(metrics.workerUtilization, 0.75);
  assert.is(metrics.queueDepth, 12);
  assert.is(metrics.cacheHitRatio, 0.8, 'the reported ratio while no hits or misses are counted');
  assert.is(metrics.backpressureEvents, 3);
  assert.is(m.totals().backpressureWaitSumMs, 5);
  const sum = m.getPerformanceSummary();
  assert.is(sum.memoryUsageMb, 30);
  assert.is(sum.workerUtilization, 0.75);
  assert.is(sum.cacheEfficiency, 0.8);
  // Counted hits and misses win over a reported ratio.
  for (let i = 0; i < 3; i++) m.recordCacheHit();
  m.recordCacheMiss();
  metrics = m.getCurrentMetrics();
  assert.is(metrics.cacheHitRatio, 0.75);
  // Gauges set back to zero read as zero, not as "never reported".
  m.updateQueueDepth(0);
  m.updateWorkerUtilization(0);
  metrics = m.getCurrentMetrics();
  assert.is(metrics.queueDepth, 0);
  assert.is(metrics.workerUtilization, 0);
  m.close();
});

test('gauges across series: memory and queue depth add up, utilisation averages', () => {
  const m = small();
  const w1 = m.series({ pool: 'a' });
  const w2 = m.series({ pool: 'b' });
  m.updateMemoryUsage(20 * MB);
  w1.updateMemoryUsage(10 * MB);
  w1.updateWorkerUtilization(0.5);
  w2.updateWorkerUtilization(1);
  w1.updateQueueDepth(3);
  w2.updateQueueDepth(4);
  const t = m.totals();
  assert.is(t.memoryBytes, 30 * MB);
  assert.is(t.workerUtilization, 0.75);
  assert.is(t.queueDepth, 7);
  assert.is(m.totals(1).workerUtilization, 0.5);
  m.close();
});

test('connections: opened and closed, per series and in total; never below zero', () => {
  const m = small();
  const s = m.series({ service: 'chat' });
  m.connectionOpened();
  m.connectionOpened();
  m.connectionOpened();
  m.connectionClosed();
  s.connectionOpened();
  assert.is(m.getCurrentMetrics().activeConnections, 3);
  assert.is(m.getPerformanceSummary().activeConnections, 3);
  const t = m.totals();
  assert.equal([t.activeConnections, t.connectionsOpened], [3, 4]);
  assert.equal([m.totals(0).activeConnections, m.totals(1).activeConnections], [2, 1]);
  s.connectionClosed();
  assert.throws(() => s.connectionClosed(), RangeError);
  assert.is(m.totals(1).activeConnections, 0);
  assert.is(m.totals().activeConnections, 2);
  m.close();
});

test('recordBatchProcessing and recordMessages: sizes, durations, directions', () => {
  const m = small();
  m.recordBatchProcessing(32, 4);
  m.recordBatchProcessing(8, 1.5);
  m.recordMessages(5, 500);
  m.recordMessages(2, 0, 'out');
  m.recordMessages(3, 30, 'out');
  const t = m.totals();
  assert.equal([t.batches, t.batchItems, t.batchDurationSumMs], [2, 40, 5.5]);
  assert.equal([t.messagesIn, t.bytesIn, t.messagesOut, t.bytesOut], [5, 500, 5, 30]);
  assert.is(t.requests, 0, 'batches and messages are not requests');
  m.close();
});

test("message counts stay exact at any size: a thread's own copy holds up to 2^52, beyond that the shared counter takes over", () => {
  const m = small();
  const s = m.series({ stream: 'bulk' });
  // Past 2^53 an f64 cannot add 1: a copy that took 2^53 - 2 would lose the odd bytes below.
  s.recordMessages(1, 2 ** 53 - 2);
  s.recordMessages(1, 2);
  s.recordMessages(1, 1);
  s.recordMessages(1, 1);
  s.recordMessages(1, 0, 'out');
  const t = m.totals(m.seriesList().find((x) => x.labels.stream === 'bulk')?.index);
  assert.equal([t.messagesIn, t.bytesIn, t.messagesOut, t.bytesOut], [4, 2 ** 53 + 2, 1, 0]);
  assert.is(m.totals().bytesIn, 2 ** 53 + 2);
  m.close();
});

// ---- configuration ------------------------------------------------------------------------

test('configuration: the defaults are the specified ones', () => {
  const m = testMonitor();
  const c = m.config;
  assert.equal(
    [
      c.collectionInterval,
      c.historyRetention,
      c.throughputWindow,
      c.enableDetailedLogging,
      c.anomalyDetectionThreshold,
      c.scale,
    ],
    [1000, 24 * 3_600_000, 10_000, false, 2, 7],
  );
  assert.equal(c.histogramRange, { minMs: 0.001, maxMs: 3_600_000 });
  assert.equal(c.targets, { targetRps: 2000, targetP95LatencyMs: 25, targetMemoryMb: 100, targetSuccessRate: 0.99 });
  assert.is(typeof c.clock.now(), 'number');
  m.close();
  const five = small({ scale: 5, histogramRange: { maxMs: 60_000 } });
  assert.is(five.config.scale, 5);
  assert.equal(five.config.histogramRange, { minMs: 0.001, maxMs: 60_000 });
  assert.is(five.nativeHistogram(0).schema, 5);
  five.close();
});

test('configuration: each bad setting is refused at construction with a message that says what to change', () => {
  const cases: [unknown, RegExp, RegExp][] = [
    [{ scale: 9 }, /config\.scale/, /between 0 and 8/],
    [{ scale: 2.5 }, /config\.scale/, /whole number/],
    [{ scale: '7' }, /config\.scale/, /finite number/],
    [{ collectionInterval: 0 }, /config\.collectionInterval/, /between/],
    [{ collectionInterval: Number.NaN }, /config\.collectionInterval/, /finite number/],
    [{ historyRetention: 500 }, /config\.historyRetention/, /between 1000/],
    [{ throughputWindow: 100 }, /config\.throughputWindow/, /between 1000/],
    [{ anomalyDetectionThreshold: 0 }, /config\.anomalyDetectionThreshold/, /between/],
    [{ enableDetailedLogging: 'yes' }, /config\.enableDetailedLogging/, /boolean/],
    [{ autoStart: 1 }, /config\.autoStart/, /boolean/],
    [{ histogramRange: { minMs: 0 } }, /config\.histogramRange\.minMs/, /between/],
    [{ histogramRange: { minMs: 1, maxMs: 1.5 } }, /config\.histogramRange\.maxMs/, /between 2/],
    [{ maxSeries: 0 }, /config\.maxSeries/, /between 1/],
    [{ eventLoopResolution: 0 }, /config\.eventLoopResolution/, /between 1/],
    [{ maxSeries: 2.5 }, /config\.maxSeries/, /whole number/],
    [{ maxErrorTypes: -1 }, /config\.maxErrorTypes/, /between 1/],
    [{ rollups: { hours: 0 } }, /config\.rollups\.hours/, /between 1/],
    [{ clock: {} }, /config\.clock/, /now\(\)/],
    [{ clock: Date.now }, /config\.clock/, /now\(\)/],
    [{ invalidValues: 'ignore' }, /config\.invalidValues/, /'throw' or 'count'/],
    [{ sclae: 7 }, /config\.sclae is not a setting/, /scale/],
    [{ targets: { targetRps: 0 } }, /targets\.targetRps/, /above 0/],
    [{ targets: { targetSuccessRate: 2 } }, /targets\.targetSuccessRate/, /at most 1/],
    [{ maxSeries: 10_000, maxErrorTypes: 10_000, collectionInterval: 20 }, /shared memory/, /lower maxSeries/],
  ];
  for (const [config, names, says] of cases) {
    try {
      new StreamPerformanceMonitor({ autoStart: false, logger: false, ...(config as UserConfig) }).close();
      assert.unreachable(`accepted ${JSON.stringify(config)}`);
    } catch (e) {
      assert.instance(e, RangeError, JSON.stringify(config));
      assert.match((e as Error).message, names, (e as Error).message);
      assert.match((e as Error).message, says, (e as Error).message);
    }
  }
  for (const config of [null, 5, 'fast']) {
    assert.throws(
      () => new StreamPerformanceMonitor(config as never),
      (e: Error) => e instanceof TypeError && /config must be an object/.test(e.message),
    );
  }
});

test.run();
