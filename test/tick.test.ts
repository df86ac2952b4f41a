// The tick: sliding windows, rates, peaks, errors, per-series windows, records from other threads,
// system metrics and the stated footprint (the simulated 24-hour run is in day.test.ts).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addCounters, COUNTER_FIELDS, emptyTotals, writeCounters } from '../src/time/totals.js';
import { handClock, quietMonitor } from './fixtures/monitor.js';
import { exactQuantile, near } from './fixtures/quantiles.js';
import { lognormal, seededRandom } from './fixtures/random.js';
import { until } from './fixtures/wait.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const T0 = Date.UTC(2025, 0, 1); // a day boundary: minute, hour and day periods start here

// ---- helpers -------------------------------------------------------------------------------

/** Lognormal latencies in ms (median ~5 ms, long tail), rounded to f32 so they can be kept compactly and exactly. */
function lognormalF32(random: () => number, median = 5, sigma = 0.9): () => number {
  return () => Math.fround(lognormal(random, median, sigma));
}

// ---- the sliding window --------------------------------------------------------------------

test('window percentiles are the exact quantiles of the values in the window, and the window slides past older values', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock); // throughputWindow 10 s, collectionInterval 1 s
  const next = lognormalF32(seededRandom(1));
  const perTick: number[][] = [];
  for (let i = 0; i < 25; i++) {
    // The first 10 seconds are far slower: if they leaked into the window, every percentile would show it.
    const vals = Array.from({ length: 200 + i * 10 }, () => (i < 10 ? 2000 + next() : next()));
    for (const v of vals) m.recordLatency(v);
    perTick.push(vals);
    clock.t += 1000;
    m.tick();
  }
  // Records after the last tick are in the window at the next read, with no tick.
  const late = Array.from({ length: 300 }, next);
  for (const v of late) m.recordLatency(v);
  clock.t += 400;
  const inWindow = [...perTick.slice(-10).flat(), ...late].sort((a, b) => a - b);
  const w = m.windowFigures();
  assert.is(w.requests, inWindow.length);
  near(w.p50, exactQuantile(inWindow, 0.5), 'p50');
  near(w.p95, exactQuantile(inWindow, 0.95), 'p95');
  near(w.p99, exactQuantile(inWindow, 0.99), 'p99');
  near(w.p999, exactQuantile(inWindow, 0.999), 'p99.9');
  assert.ok(w.p999 < 2000, 'the slow first seconds have left the window');
  // rate = count / elapsed: from the oldest snapshot (10 ticks back) to now
  assert.is(w.seconds, 10.4);
  assert.ok(Math.abs(w.rps - inWindow.length / 10.4) < 1e-9);
  const mean = inWindow.reduce((a, b) => a + b, 0) / inWindow.length;
  assert.ok(Math.abs(w.meanLatencyMs - mean) / mean < 1e-6, `mean ${w.meanLatencyMs} vs ${mean}`);
  // the same through getCurrentMetrics
  const cur = m.getCurrentMetrics();
  assert.is(cur.latencyP99Ms, w.p99);
  assert.is(cur.currentRps, w.rps);
  // since start covers everything
  const all = [...perTick.flat(), ...late].sort((a, b) => a - b);
  near(cur.latencySinceStart.p99, exactQuantile(all, 0.99), 'p99 since start');
  near(cur.latencySinceStart.p50, exactQuantile(all, 0.5), 'p50 since start');
  m.close();
});

test('before the window has filled, it covers everything since start', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  const next = lognormalF32(seededRandom(2));
  const vals: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 500; j++) {
      const v = next();
      vals.push(v);
      m.recordLatency(v);
    }
    clock.t += 1000;
    m.tick();
  }
  vals.sort((a, b) => a - b);
  const w = m.windowFigures();
  assert.is(w.requests, 1500);
  assert.is(w.seconds, 3);
  assert.is(w.rps, 500);
  near(w.p99, exactQuantile(vals, 0.99), 'p99');
  m.close();
});

test('per-tick interval figures: rps = count / interval, peak and average rps', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  const rates = [100, 100, 250, 1000, 50, 50, 10];
  const points: number[] = [];
  for (const n of rates) {
    for (let i = 0; i < n; i++) m.recordLatency(3);
    clock.t += 1000;
    points.push(m.tick().interval.rps);
  }
  assert.equal(points, rates);
  const hist = m.getHistory();
  assert.equal(hist.fields.rps, rates);
  assert.equal(hist.fields.requests, rates);
  clock.t += 500;
  const cur = m.getCurrentMetrics();
  assert.is(cur.peakRps, 1000);
  const total = rates.reduce((a, b) => a + b, 0);
  assert.is(cur.totalRequests, total);
  assert.ok(Math.abs(cur.avgRps - total / 7.5) < 1e-9, `avgRps ${cur.avgRps}`);
  // a ticked interval twice as long halves the rate
  for (let i = 0; i < 400; i++) m.recordLatency(3);
  clock.t += 1500; // 2 s since the last tick
  assert.is(m.tick().interval.rps, 200);
  m.close();
});

test('error rate and errors by type over the window; older errors leave it', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 90; j++) m.recordLatency(2);
    for (let j = 0; j < 10; j++) m.recordError('timeout');
    clock.t += 1000;
    m.tick();
  }
  let w = m.windowFigures();
  assert.is(w.requests, 500);
  assert.is(w.errors, 50);
  assert.is(w.errorRate, 0.1);
  // 10 clean seconds push the errors out of the window
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 100; j++) m.recordLatency(2);
    m.recordError('unavailable', 5); // a failure with a latency counts once, as a request
    clock.t += 1000;
    m.tick();
  }
  w = m.windowFigures();
  assert.is(w.requests, 1010);
  assert.is(w.errors, 10);
  assert.ok(Math.abs(w.errorRate - 10 / 1010) < 1e-12);
  assert.equal(m.errorsByType(), { timeout: 50, unavailable: 10 });
  const cur = m.getCurrentMetrics();
  assert.is(cur.failedRequests, 60);
  assert.is(cur.totalRequests, 1510);
  m.close();
});

test('cache hit ratio, backpressure, messages and bytes per second over the window', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 30; j++) m.recordCacheHit();
    for (let j = 0; j < 10; j++) m.recordCacheMiss();
    m.recordBackpressureEvent(4);
    m.recordBackpressureEvent();
    m.recordMessages(50, 5000, 'in');
    m.recordMessages(25, 1000, 'out');
    clock.t += 1000;
    m.tick();
  }
  const w = m.windowFigures();
  assert.is(w.cacheHitRatio, 0.75);
  assert.is(w.backpressurePerSec, 2);
  assert.is(w.messagesPerSec, 75);
  assert.is(w.bytesPerSec, 6000);
  const p = internalsOf(m).lastTickEvent()!.point;
  assert.is(p.cacheHitRatio, 0.75);
  assert.is(p.backpressure, 2);
  assert.is(p.messagesPerSec, 75);
  m.close();
});

test('every counter field adds up across series and goes into the window ring, in COUNTER_FIELDS order', () => {
  const a = emptyTotals();
  const b = emptyTotals();
  COUNTER_FIELDS.forEach((f, i) => {
    a[f] = i + 1;
    b[f] = 100 * (i + 1);
  });
  addCounters(a, b);
  for (const [i, f] of COUNTER_FIELDS.entries()) assert.is(a[f], 101 * (i + 1), f);
  const ring = new Float64Array(COUNTER_FIELDS.length + 3);
  writeCounters(ring, 3, b);
  for (const [i, f] of COUNTER_FIELDS.entries()) assert.is(ring[3 + i], b[f], f);
});

test('per-series windows: each series has its own exact window figures', () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  const a = m.series({ grpc_method: 'Chat/Stream' });
  const b = m.series({ grpc_method: 'Feed/Subscribe' });
  const na = lognormalF32(seededRandom(3), 2);
  const nb = lognormalF32(seededRandom(4), 40);
  const va: number[] = [];
  const vb: number[] = [];
  for (let i = 0; i < 15; i++) {
    for (let j = 0; j < 100; j++) {
      const x = na();
      a.recordLatency(x);
      if (i >= 5) va.push(x);
    }
    for (let j = 0; j < 30; j++) {
      const y = nb();
      b.recordLatency(y);
      if (i >= 5) vb.push(y);
    }
    if (i >= 5) b.recordError('internal');
    clock.t += 1000;
    m.tick();
  }
  const index = (method: string) => m.seriesList().find((s) => s.labels.grpc_method === method)!.index;
  const wa = m.windowFigures(index('Chat/Stream'));
  const wb = m.windowFigures(index('Feed/Subscribe'));
  va.sort((x, y) => x - y);
  vb.sort((x, y) => x - y);
  assert.is(wa.requests, va.length);
  assert.is(wb.requests, vb.length + 10);
  assert.is(wb.errors, 10);
  assert.is(wa.errors, 0);
  near(wa.p99, exactQuantile(va, 0.99), 'series A p99');
  near(wb.p99, exactQuantile(vb, 0.99), 'series B p99');
  near(wa.p50, exactQuantile(va, 0.5), 'series A p50');
  near(wb.p50, exactQuantile(vb, 0.5), 'series B p50');
  // all series together
  const all = [...va, ...vb].sort((x, y) => x - y);
  const w = m.windowFigures();
  assert.is(w.requests, wa.requests + wb.requests);
  near(w.p95, exactQuantile(all, 0.95), 'total p95');
  // Reading one counter per load (the path of hosts without single 64-bit accesses) gives the same.
  const read = () =>
    JSON.stringify([
      m.windowFigures(index('Chat/Stream')),
      m.windowFigures(),
      m.totals(),
      m.nativeHistogram(index('Feed/Subscribe')).buckets,
    ]);
  const wide = read();
  (m as unknown as { ctx: { core: { setWideReads(on: number): void } } }).ctx.core.setWideReads(0);
  assert.is(read(), wide);
  m.close();
});

test('a record made in a worker thread is visible to getCurrentMetrics() at once and in the window at the next read', async () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  for (let i = 0; i < 3; i++) {
    m.recordLatency(1);
    clock.t += 1000;
    m.tick();
  }
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.tsx).then(({ register }) => { register(); return import(workerData.src); }).then(({ attach }) => {
       const r = attach(workerData.handle);
       parentPort.on('message', (n) => {
         for (let i = 0; i < n; i++) r.recordLatency(250);
         r.recordError('worker-failure');
         parentPort.postMessage('recorded');
       });
       parentPort.postMessage('ready');
     });`,
    {
      eval: true,
      workerData: {
        tsx: import.meta.resolve('tsx/esm/api'),
        src: pathToFileURL(join(ROOT, 'src/index.ts')).href,
        handle: m.handle(),
      },
    },
  );
  const said = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (msg: unknown) => {
        if (msg === what) {
          worker.off('message', onMessage);
          resolve();
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  try {
    await said('ready');
    const before = m.getCurrentMetrics();
    const recorded = said('recorded');
    worker.postMessage(1000);
    await recorded;
    // No tick in between: totals are read from shared memory, windows are computed at read time.
    const after = m.getCurrentMetrics();
    assert.is(after.totalRequests - before.totalRequests, 1001);
    assert.is(after.failedRequests - before.failedRequests, 1);
    assert.is(after.latencyMaxMs, 250);
    const w = m.windowFigures();
    assert.is(w.requests, 1004);
    assert.is(w.errors, 1);
    near(w.p99, 250, 'window p99 after the worker records');
    assert.equal(m.errorsByType(), { 'worker-failure': 1 });
  } finally {
    await worker.terminate();
    m.close();
  }
});

// ---- system metrics and footprint ----------------------------------------------------------

test('system metrics appear in tick points without any user call: rss, heap, cpu, event-loop delay', async () => {
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  clock.t += 1000;
  m.tick(); // starts the interval the next tick measures
  // Block the event loop (the delay sampler ticks every 10 ms): its first callback after the block
  // measures an interval that holds the whole block, since none could run during it.
  const samplesAtBlockEnd = await new Promise<number>((resolve) => {
    setTimeout(() => {
      const end = performance.now() + 80;
      let x = 0;
      while (performance.now() < end) x += Math.sqrt(x + 1);
      resolve(internalsOf(m).runtimeHistogram(0).count);
    }, 20);
  });
  await until(
    'the delay sampler to run after the block',
    5000,
    () => internalsOf(m).runtimeHistogram(0).count > samplesAtBlockEnd,
    1,
  );
  clock.t += 1000;
  const { system, point } = m.tick();
  const mem = process.memoryUsage();
  assert.ok(system.rssBytes > 10 * 2 ** 20 && system.rssBytes <= mem.rss * 2, `rss ${system.rssBytes}`);
  assert.ok(system.heapUsedBytes > 2 ** 20, `heap ${system.heapUsedBytes}`);
  assert.ok(system.heapTotalBytes >= system.heapUsedBytes);
  assert.ok(system.cpuPercent > 0 && Number.isFinite(system.cpuPercent), `cpu ${system.cpuPercent}`);
  assert.ok(
    system.eventLoopDelayMaxMs > 30,
    `event-loop delay max ${system.eventLoopDelayMaxMs} ms after an 80 ms block`,
  );
  assert.ok(system.eventLoopDelayP99Ms > 30, `event-loop delay p99 ${system.eventLoopDelayP99Ms}`);
  assert.ok(system.eventLoopUtilization > 0 && system.eventLoopUtilization <= 1);
  assert.ok(system.activeHandles >= 0);
  // in the tick's point, and in the history (f32 columns)
  assert.is(point.memoryBytes, system.rssBytes);
  assert.is(point.heapBytes, system.heapUsedBytes);
  assert.is(point.cpuPercent, system.cpuPercent);
  assert.is(point.eventLoopDelayMs, system.eventLoopDelayP99Ms);
  const h = m.getHistory();
  assert.is(h.fields.memoryBytes.at(-1), Math.fround(system.rssBytes));
  assert.is(h.fields.heapBytes.at(-1), Math.fround(system.heapUsedBytes));
  assert.is(h.fields.cpuPercent.at(-1), Math.fround(system.cpuPercent));
  assert.is(h.fields.eventLoopDelayMs.at(-1), Math.fround(system.eventLoopDelayP99Ms));
  // A caller's own memory figure replaces rss
  m.updateMemoryUsage(48 * 2 ** 20);
  clock.t += 1000;
  assert.is(m.tick().point.memoryBytes, 48 * 2 ** 20);
  m.close();
});

test('memoryFootprint() states the shared memory in use and its bound; bucket pages follow the values recorded', () => {
  const m = quietMonitor(handClock(T0));
  const before = m.memoryFootprint();
  const buffer = () => m.handle().memory.buffer;
  assert.is(buffer().byteLength, before.sharedBytes, 'the memory is exactly the stated size');
  assert.ok(internalsOf(m).layout.bytes <= before.maxSharedBytes, 'the layout fits its bound');
  const fixed = Object.entries(before.parts).reduce((a, [k, v]) => a + (k === 'bucketPages' ? 0 : v), 0);
  assert.ok(fixed <= before.sharedBytes, `parts ${fixed} within ${before.sharedBytes}`);
  // 24 h of 1 s points (time and two counts as f64, 18 figures as f32) is most of the fixed part
  assert.is(before.parts.history, 86_400 * (8 + 2 * 8 + 18 * 4));
  assert.ok(before.sharedBytes < 24 * 2 ** 20, `default footprint ${before.sharedBytes} bytes`);
  assert.is(before.bucketPages.usedBytes, 0, 'no page before a value');
  // 1,000 series fed 0.5–20 ms: each takes the pages of that range (11 of 64), not all of them.
  for (let s = 0; s < 1000; s++) {
    const r = m.series({ method: `m${s}` });
    for (let i = 0; i <= 40; i++) r.recordLatency(0.5 * 40 ** (i / 40));
  }
  m.tick();
  const after = m.memoryFootprint();
  const perSeries = after.bucketPages.usedBytes / 1000;
  assert.ok(perSeries <= 12 * (768 + 512), `${perSeries} bytes of pages per series`);
  assert.is(after.bucketPages.refusedClaims, 0);
  assert.is(buffer().byteLength, after.sharedBytes, 'the memory grew by what the pages took');
  assert.ok(after.sharedBytes >= before.sharedBytes + after.bucketPages.usedBytes);
  m.close();
});

test('series that go quiet for longer than the window and come back: every window counts exactly what it holds', () => {
  // 300 series, of which only a few record at a time: the tick visits the ones that changed within
  // the window's span, and the others' snapshots must still hold.
  const clock = handClock(T0);
  const m = quietMonitor(clock, { throughputWindow: 5000 });
  const series = Array.from({ length: 300 }, (_, i) => m.series({ s: `s${i}` }));
  const index = (i: number) => m.seriesList().find((x) => x.labels.s === `s${i}`)?.index ?? -1;
  // Every series records once; then series 0 records 2 values a tick, series 1 stays quiet.
  for (const r of series) r.recordLatency(1);
  const expect = (i: number, requests: number, where: string) =>
    assert.is(m.windowFigures(index(i)).requests, requests, where);
  for (let t = 1; t <= 20; t++) {
    series[0].recordLatency(2);
    series[0].recordLatency(3);
    clock.t += 1000;
    m.tick();
  }
  expect(0, 10, 'series 0: 2 a tick over the 5 s window');
  expect(1, 0, 'series 1: quiet for 20 ticks');
  assert.is(m.windowFigures().requests, 10, 'the total window');
  assert.is(m.totals().requests, 300 + 40);
  // Series 1 comes back: seen at once, then for as long as the window holds it, then gone.
  for (let k = 0; k < 3; k++) series[1].recordLatency(4);
  expect(1, 3, 'before the next tick');
  assert.is(m.windowFigures().requests, 13);
  assert.is(m.totals().requests, 343);
  for (let t = 1; t <= 7; t++) {
    clock.t += 1000;
    m.tick();
    expect(1, t <= 5 ? 3 : 0, `series 1, ${t} ticks later`);
    const p99 = m.windowFigures().p99;
    if (t <= 5) assert.ok(Math.abs(p99 / 4 - 1) <= 0.003, `the total window's p99 is series 1's 4 ms (${p99})`);
    else assert.ok(Number.isNaN(p99), 'an empty window has no quantiles');
  }
  assert.is(m.windowFigures().requests, 0, 'nothing left in the window');
  assert.ok(Number.isNaN(m.windowFigures(index(1)).p50), "an empty series' window has no quantiles");
  assert.is(m.totals().requests, 343, 'the totals keep everything');
  m.close();
});

test('window state follows the series recorded into, not maxSeries, and a series made late has an exact window', () => {
  const clock = handClock(T0);
  const windowBytes = (m: ReturnType<typeof quietMonitor>) =>
    (m as unknown as { aggregator: { windowBytes(): number } }).aggregator.windowBytes();
  const small = quietMonitor(clock, { maxSeries: 100, throughputWindow: 5000 });
  const large = quietMonitor(clock, { maxSeries: 10_000, throughputWindow: 5000 });
  for (const m of [small, large]) {
    const few = [0, 1, 2].map((i) => m.series({ s: `s${i}` }));
    for (let t = 0; t < 10; t++) {
      for (const r of few) r.recordLatency(2);
      m.tick();
    }
  }
  // A table of 10,000 series (6 slots × 11 counters × 8 bytes each) would be 5 MB; per series
  // in use, a few KB.
  assert.ok(
    windowBytes(large) - windowBytes(small) < 64 * 1024,
    `10,000 allowed: ${windowBytes(large)} B; 100 allowed: ${windowBytes(small)} B`,
  );
  // Series made one after another over the ticks, past the first blocks of window rows: each
  // window counts exactly its own values of the last 5 ticks.
  const m = quietMonitor(clock, { maxSeries: 1000, throughputWindow: 5000 });
  const made: { r: ReturnType<typeof m.series>; perTick: number[] }[] = [];
  const before = windowBytes(m);
  for (let t = 0; t < 12; t++) {
    for (let k = 0; k < 20; k++) made.push({ r: m.series({ s: `t${t}k${k}` }), perTick: [] });
    made.forEach(({ r, perTick }, i) => {
      const n = (i + t) % 3; // some series skip ticks: their snapshots carry over
      for (let j = 0; j < n; j++) r.recordLatency(1 + j);
      perTick.push(n);
    });
    clock.t += 1000;
    m.tick();
  }
  for (const [i, { r, perTick }] of made.entries()) {
    const expected = perTick.slice(-5).reduce((a, b) => a + b, 0);
    assert.is(m.windowFigures(r).requests, expected, `series ${i}`);
  }
  assert.is(
    m.totals().requests,
    made.reduce((n, { perTick }) => n + perTick.reduce((a, b) => a + b, 0), 0),
  );
  assert.ok(windowBytes(m) > before, 'the window grew as series were recorded into');
  for (const x of [small, large, m]) x.close();
});

test('a bucket that takes over a million values in one tick keeps its exact count in the window', () => {
  // A tick's count per bucket is kept in the bits its bucket index leaves free (about 2^20 at the
  // default scale); a larger count takes a word of its own. Both must give the same window.
  const clock = handClock(T0);
  const m = quietMonitor(clock);
  const r = m.series({ route: 'hot' });
  for (let i = 0; i < 1_100_000; i++) r.recordLatency(5);
  for (let i = 0; i < 20_000; i++) r.recordLatency(100);
  clock.t += 1000;
  m.tick();
  r.recordLatency(100); // one more tick's delta, small, beside the large one
  clock.t += 1000;
  m.tick();
  for (const [where, w] of [
    ['the series', m.windowFigures(r)],
    ['the total', m.windowFigures()],
  ] as const) {
    // 1,100,000 of 1,120,001 values are 5 ms: p95 falls among them, p99 among the 100 ms ones. A
    // count cut to its low 20 bits (51,424) would put p95 at 100 ms.
    near(w.p95, 5, `${where}: p95`);
    near(w.p99, 100, `${where}: p99`);
    assert.is(w.requests, 1_120_001, where);
  }
  m.close();
});

test.run();
