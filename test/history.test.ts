// History: fixed rings of tick points and minute/hour/day rollups in shared memory. Rings keep
// exactly their capacity; rollups agree with the ticks they cover, and their percentiles come from
// the merged histogram of the period (checked against the exact quantile of the recorded values).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HISTORY_FIELDS } from '../src/index.js';
import { handClock, quietMonitor } from './fixtures/monitor.js';
import { exactQuantile, near } from './fixtures/quantiles.js';
import { seededRandom } from './fixtures/random.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const T0 = Date.UTC(2025, 0, 1);

function setup(extra: Record<string, unknown> = {}, t0 = T0) {
  const clock = handClock(t0);
  return { m: quietMonitor(clock, extra), clock };
}

test('the tick ring holds exactly its capacity (retention / interval), oldest dropped, in time order', () => {
  const { m, clock } = setup({ historyRetention: 10_000 });
  assert.is(internalsOf(m).layout.history.capacity, 10);
  for (let i = 1; i <= 25; i++) {
    for (let j = 0; j < i; j++) m.recordLatency(1);
    clock.t = T0 + i * 1000;
    m.tick();
  }
  const h = m.getHistory();
  assert.is(h.resolution, 'tick');
  assert.equal(
    h.t,
    Array.from({ length: 10 }, (_, k) => T0 + (16 + k) * 1000),
  );
  assert.equal(
    h.fields.requests,
    Array.from({ length: 10 }, (_, k) => 16 + k),
  );
  assert.equal(Object.keys(h.fields), [...HISTORY_FIELDS]);
  for (const f of HISTORY_FIELDS) assert.is(h.fields[f].length, 10, f);
  m.close();
});

test('getHistory: since/until select points by time (inclusive); bad arguments are refused', () => {
  const { m, clock } = setup();
  for (let i = 1; i <= 20; i++) {
    m.recordLatency(i);
    clock.t = T0 + i * 1000;
    m.tick();
  }
  const h = m.getHistory({ since: T0 + 5000, until: T0 + 8000 });
  assert.equal(h.t, [T0 + 5000, T0 + 6000, T0 + 7000, T0 + 8000]);
  assert.equal(
    h.fields.p50.map((v) => Math.round(v)),
    [5, 6, 7, 8],
  );
  assert.is(m.getHistory({ since: T0 + 19_500 }).t.length, 1);
  assert.is(m.getHistory({ until: T0 }).t.length, 0);
  assert.throws(() => m.getHistory({ resolution: 'week' as 'day' }), RangeError);
  assert.throws(() => m.getHistory({ since: Number.NaN }), TypeError);
  assert.throws(() => m.getHistory({ until: '5' as unknown as number }), TypeError);
  m.close();
});

test('a history point holds what the tick saw: latency, rates, gauges, connections, cache, backpressure', () => {
  const { m, clock } = setup();
  m.updateWorkerUtilization(0.5);
  m.updateQueueDepth(12);
  m.connectionOpened();
  m.connectionOpened();
  for (let i = 0; i < 99; i++) m.recordLatency(10);
  m.recordLatency(100);
  m.recordError('timeout');
  m.recordCacheHit();
  m.recordCacheMiss();
  m.recordBackpressureEvent(3);
  m.recordMessages(10, 2048, 'out');
  clock.t = T0 + 2000; // a 2-second interval
  m.tick();
  const h = m.getHistory();
  const p = Object.fromEntries(HISTORY_FIELDS.map((f) => [f, h.fields[f][0]]));
  assert.is(p.requests, 101);
  assert.is(p.errors, 1);
  assert.is(p.rps, Math.fround(101 / 2));
  assert.is(p.errorRate, Math.fround(1 / 101));
  near(p.p50, 10, 'p50');
  near(p.p99, 10, 'p99');
  near(p.p999, 100, 'p99.9');
  assert.is(p.meanLatency, Math.fround((99 * 10 + 100) / 100));
  assert.is(p.workerUtilization, 0.5);
  assert.is(p.queueDepth, 12);
  assert.is(p.activeConnections, 2);
  assert.is(p.cacheHitRatio, 0.5);
  assert.is(p.backpressure, 0.5);
  assert.is(p.messagesPerSec, 5);
  assert.is(p.bytesPerSec, 1024);
  assert.ok(p.memoryBytes > 0 && p.heapBytes > 0);
  m.close();
});

test('minute rollups: sums, rates, means and gauges agree with their ticks; p99 is the exact p99 of the minute', () => {
  // Start mid-minute: the first minute is partial and must cover only its own ticks.
  const start = T0 + 30_000;
  const { m, clock } = setup({}, start);
  const rand = seededRandom(5);
  const byMinute = new Map<number, number[]>();
  const queue = new Map<number, number[]>();
  for (let i = 1; i <= 330; i++) {
    const t = start + i * 1000;
    const end = Math.ceil(t / 60_000) * 60_000;
    const n = 20 + Math.floor(rand() * 40);
    const vals = byMinute.get(end) ?? [];
    for (let j = 0; j < n; j++) {
      const v = Math.fround(0.5 + rand() * rand() * 300);
      vals.push(v);
      m.recordLatency(v);
    }
    byMinute.set(end, vals);
    const depth = i % 7;
    m.updateQueueDepth(depth);
    queue.set(end, [...(queue.get(end) ?? []), depth]);
    clock.t = t;
    m.tick();
  }
  const ticks = m.getHistory();
  const mins = m.getHistory({ resolution: 'minute' });
  // 330 s from :30 → minutes ending :01, :02, :03, :04, :05 closed; the one ending :06 still open
  assert.equal(
    mins.t,
    [1, 2, 3, 4, 5].map((k) => T0 + k * 60_000),
  );
  mins.t.forEach((end, k) => {
    const covered = ticks.t.map((t, i) => [t, i] as const).filter(([t]) => t > end - 60_000 && t <= end);
    const vals = byMinute.get(end)!.sort((a, b) => a - b);
    const seconds = covered.length; // 1 s per tick
    assert.is(mins.fields.requests[k], vals.length);
    assert.is(
      covered.reduce((n, [, i]) => n + ticks.fields.requests[i], 0),
      vals.length,
    );
    assert.is(mins.fields.rps[k], Math.fround(vals.length / seconds));
    near(m.rollupQuantile('minute', end, 0.99), exactQuantile(vals, 0.99), `minute ${k} p99`);
    near(m.rollupQuantile('minute', end, 0.5), exactQuantile(vals, 0.5), `minute ${k} p50`);
    near(mins.fields.p99[k], exactQuantile(vals, 0.99), `minute ${k} p99 column`);
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    assert.ok(Math.abs(mins.fields.meanLatency[k] - mean) / mean < 1e-6);
    const q = queue.get(end)!;
    assert.is(mins.fields.queueDepth[k], Math.fround(q.reduce((a, b) => a + b, 0) / q.length));
  });
  assert.is(mins.t.length, 5);
  assert.ok(Number.isNaN(m.rollupQuantile('minute', T0 + 6 * 60_000, 0.99)), 'the open minute is not in the ring yet');
  // close() closes the open periods into the rings
  m.close();
  const after = m.getHistory({ resolution: 'minute' });
  assert.is(after.t.at(-1), T0 + 6 * 60_000);
  assert.is(after.fields.requests.at(-1), byMinute.get(T0 + 6 * 60_000)!.length);
});

test('hour rollups merge their minutes: an hour p99 is the exact p99 of the hour, not an average of per-minute p99s', () => {
  // 5-second ticks keep this short; periods are set by time, not by tick count.
  const { m, clock } = setup({ collectionInterval: 5000, historyRetention: 3 * 3_600_000 });
  const rand = seededRandom(6);
  const byHour = new Map<number, number[]>();
  const ticks = (2 * 3600) / 5 + 1;
  for (let i = 1; i <= ticks; i++) {
    const t = T0 + i * 5000;
    const end = Math.ceil(t / 3_600_000) * 3_600_000;
    const vals = byHour.get(end) ?? [];
    // A slow burst in a few minutes of each hour: averaging per-minute p99s would overstate the hour's p99.
    const slow = i % 60 < 4;
    for (let j = 0; j < 50; j++) {
      const v = Math.fround(slow ? 200 + rand() * 100 : 1 + rand() * 9);
      vals.push(v);
      m.recordLatency(v);
    }
    byHour.set(end, vals);
    clock.t = t;
    m.tick();
  }
  const hours = m.getHistory({ resolution: 'hour' });
  assert.equal(hours.t, [T0 + 3_600_000, T0 + 7_200_000]);
  const mins = m.getHistory({ resolution: 'minute' });
  hours.t.forEach((end, k) => {
    const vals = byHour.get(end)!.sort((a, b) => a - b);
    assert.is(hours.fields.requests[k], vals.length);
    const p99 = m.rollupQuantile('hour', end, 0.99);
    near(p99, exactQuantile(vals, 0.99), `hour ${k} p99`);
    near(m.rollupQuantile('hour', end, 0.9), exactQuantile(vals, 0.9), `hour ${k} p90`);
    near(m.rollupQuantile('hour', end, 0.5), exactQuantile(vals, 0.5), `hour ${k} p50`);
    assert.is(hours.fields.rps[k], Math.fround(vals.length / 3600));
  });
  // the last hour's minutes (all 60 in the ring) add up to the hour
  const inLastHour = mins.t.map((t, i) => [t, i] as const).filter(([t]) => t > T0 + 3_600_000 && t <= T0 + 7_200_000);
  assert.is(inLastHour.length, 60);
  assert.is(
    inLastHour.reduce((n, [, i]) => n + mins.fields.requests[i], 0),
    hours.fields.requests[1],
  );
  const meanOfMinuteP99 = inLastHour.reduce((n, [, i]) => n + mins.fields.p99[i], 0) / 60;
  assert.ok(
    Math.abs(meanOfMinuteP99 - hours.fields.p99[1]) / hours.fields.p99[1] > 0.5,
    'the hour p99 is not the mean of minute p99s',
  );
  m.close();
});

test('a gap in ticks: the interval after it covers the whole gap, and rollups only hold periods that had ticks', () => {
  const { m, clock } = setup();
  for (let i = 1; i <= 3; i++) {
    for (let j = 0; j < 10; j++) m.recordLatency(1);
    clock.t = T0 + i * 1000;
    m.tick();
  }
  for (let j = 0; j < 600; j++) m.recordLatency(1);
  clock.t = T0 + 5 * 60_000 + 3000; // 5 minutes without a tick
  const { interval } = m.tick();
  assert.is(interval.requests, 600);
  assert.is(interval.seconds, 300);
  assert.is(interval.rps, 2);
  clock.t += 60_000;
  m.tick();
  const mins = m.getHistory({ resolution: 'minute' });
  assert.equal(mins.t, [T0 + 60_000, T0 + 6 * 60_000]);
  assert.equal(mins.fields.requests, [30, 600]);
  m.close();
});

test('a collection interval that does not divide a minute: rollups still add up to their ticks', () => {
  const { m, clock } = setup({ collectionInterval: 7000, throughputWindow: 21_000 });
  let total = 0;
  for (let i = 1; i <= 100; i++) {
    const n = i % 13;
    for (let j = 0; j < n; j++) m.recordLatency(2);
    total += n;
    clock.t = T0 + i * 7000;
    m.tick();
  }
  m.close(); // closes the open minute
  const ticks = m.getHistory();
  const mins = m.getHistory({ resolution: 'minute' });
  assert.is(
    mins.fields.requests.reduce((a, b) => a + b, 0),
    total,
  );
  mins.t.forEach((end, k) => {
    const covered = ticks.t.map((t, i) => [t, i] as const).filter(([t]) => t > end - 60_000 && t <= end);
    assert.is(
      covered.reduce((n, [, i]) => n + ticks.fields.requests[i], 0),
      mins.fields.requests[k],
    );
  });
});

test('history lives in shared memory: another thread reads the same points', async () => {
  const { m, clock } = setup({ historyRetention: 60_000 });
  for (let i = 1; i <= 70; i++) {
    for (let j = 0; j < i; j++) m.recordLatency(j + 1);
    clock.t = T0 + i * 1000;
    m.tick();
  }
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.tsx).then(({ register }) => { register(); return import(workerData.src); }).then(({ HistoryRing }) => {
       const { handle } = workerData;
       const R_HISTORY_HEAD = 3;
       const ring = new HistoryRing(handle.memory.buffer, handle.layout.history, handle.layout.runtimePtr, R_HISTORY_HEAD);
       parentPort.postMessage(ring.read('tick'));
     });`,
    {
      eval: true,
      workerData: {
        tsx: import.meta.resolve('tsx/esm/api'),
        src: pathToFileURL(join(ROOT, 'src/time/history.ts')).href,
        handle: m.handle(),
      },
    },
  );
  try {
    const seen = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(seen, m.getHistory());
    assert.is((seen as { t: number[] }).t.length, 60);
  } finally {
    await worker.terminate();
    m.close();
  }
});

test.run();
