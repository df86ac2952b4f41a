// What a label set costs in shared memory: a small header when it is made, and bucket pages only
// where values land. A thread takes a lane of its own (a second set of pages) for a series only
// once the series is hot on that thread; until then, and while several threads turn a series hot
// at once, every count stays exact.
import { Piscina } from 'piscina';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamPerformanceMonitor } from '../src/index.js';
import { H, HISTOGRAMS, type HistName, PAGE, R, RESERVED_SERIES } from '../src/core/layout.js';
import { HOT_RECORDS } from '../src/record/recorder.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const LANE_TASK_URL = new URL('./fixtures/lane-task.mjs', import.meta.url);

function monitor(maxSeries = 1000): StreamPerformanceMonitor {
  return new StreamPerformanceMonitor({ autoStart: false, logger: false, maxSeries });
}

function runtime(m: StreamPerformanceMonitor): Int32Array {
  return new Int32Array(m.handle().memory.buffer, internalsOf(m).layout.runtimePtr, 64);
}

/** Lanes linked to a series' latency histogram. */
function lanesOf(m: StreamPerformanceMonitor, series: number): number {
  const { layout } = internalsOf(m);
  const h = layout.seriesPtr + series * layout.seriesStride + layout.histOffset.latency;
  return Atomics.load(new Int32Array(m.handle().memory.buffer, h + H.LANES, 1), 0);
}

/** Bucket pages a series' histogram holds itself (its lanes' aside). */
function ownPages(m: StreamPerformanceMonitor, series: number, name: HistName = 'latency'): number {
  const { layout } = internalsOf(m);
  const h = layout.seriesPtr + series * layout.seriesStride + layout.histOffset[name];
  return new Uint32Array(m.handle().memory.buffer, h + H.PAGES, layout.shapes[name].pages).filter((p) => p !== 0)
    .length;
}

/** The same over every histogram of every series. */
function allOwnPages(m: StreamPerformanceMonitor): number {
  let n = 0;
  for (let s = 0; s < internalsOf(m).layout.seriesCount; s++) for (const name of HISTOGRAMS) n += ownPages(m, s, name);
  return n;
}

const indexOf = (m: StreamPerformanceMonitor, stage: string) =>
  m.seriesList().find((s) => s.labels.stage === stage)?.index ?? Number.NaN;

test('a label set is a 1.5 KB header with the defaults: counters and seven histogram headers; error types apart', () => {
  const m = monitor();
  const { parts } = m.memoryFootprint();
  const slots = 1000 + RESERVED_SERIES + 1; // the users' series, the monitor's own, the overflow series
  assert.is(parts.series / slots, 1536);
  // Errors by type (65 counters a series) are kept apart: a series without typed errors never touches them.
  assert.is(parts.errorTypes / slots, 65 * 8);
  const s = m.series({ method: 'Get' });
  s.recordError('timeout', 3);
  s.recordError('refused', 4);
  assert.equal(m.errorsByType(s), { timeout: 1, refused: 1 });
  assert.equal(m.errorsByType(), { timeout: 1, refused: 1 });
  m.close();
});

test('a series a thread records into now and then takes no lane there: its values go into the series’ own pages', () => {
  const m = monitor();
  const s = m.series({ method: 'Get' });
  m.tick();
  const before = m.memoryFootprint().bucketPages.usedBytes; // the monitor's own runtime series'
  // HOT_RECORDS records every other tick: not hot.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < HOT_RECORDS; i++) s.recordLatency(5);
    m.tick();
    m.tick();
  }
  const index = m.seriesList().find((x) => x.labels.method === 'Get')?.index ?? Number.NaN;
  assert.is(lanesOf(m, index), 0, 'no lane');
  assert.is(Atomics.load(runtime(m), R.LANES_CLAIMED), 0, 'none handed out');
  // One value, one bucket: one page of counts and, after the ticks, one page of window state.
  assert.is(m.memoryFootprint().bucketPages.usedBytes - before, PAGE.BYTES + PAGE.PREV_BYTES);
  assert.is(m.totals(index).latencyCount, 3 * HOT_RECORDS);
  // Hot: as many again before the next tick, and the thread takes its lane.
  for (let i = 0; i < 2 * HOT_RECORDS; i++) s.recordLatency(5);
  assert.is(lanesOf(m, index), 1, 'a lane once hot');
  assert.is(m.totals(index).latencyCount, 5 * HOT_RECORDS);
  assert.is(m.nativeHistogram(index).count, 5 * HOT_RECORDS);
  m.close();
});

test('a worker that records a few values costs no lane pages; one that records many takes its lanes', async () => {
  const m = monitor();
  const pool = new Piscina({ filename: LANE_TASK_URL.href, minThreads: 1, maxThreads: 1 });
  try {
    const cold = await pool.run({ handle: m.handle(), count: 10 });
    assert.equal(cold.lanes, [0, 0], 'no lane for 10 records');
    assert.is(Atomics.load(runtime(m), R.LANES_CLAIMED), 0);
    // Every page claimed is a series' own (the monitor's runtime series take some too): no lane has any.
    assert.ok(ownPages(m, 0) > 0 && ownPages(m, indexOf(m, 'run')) > 0);
    assert.is(m.memoryFootprint().bucketPages.usedBytes, allOwnPages(m) * PAGE.BYTES); // (no tick: no window state)
    const hot = await pool.run({ handle: m.handle(), count: 4 * HOT_RECORDS });
    assert.ok(
      hot.lanes.every((lane: number) => lane !== 0),
      `lanes once hot: ${hot.lanes}`,
    );
    const run = indexOf(m, 'run');
    const n = 10 + 4 * HOT_RECORDS;
    assert.equal([m.totals(run).latencyCount, m.totals(run).latencySumMs, m.totals(run).messagesIn], [n, 2 * n, n]);
    assert.is(m.nativeHistogram(run).count, n);
  } finally {
    await pool.destroy();
  }
  m.close();
});

test('counts stay exact while several threads turn the same series hot at once, ticks in between', async () => {
  const m = monitor();
  const threads = 4;
  const pool = new Piscina({ filename: LANE_TASK_URL.href, minThreads: threads, maxThreads: threads });
  // Each task crosses the threshold part way through its records, on its own thread, while the
  // others record into the same two series through atomics or through their new lanes.
  const count = 3 * HOT_RECORDS + 1;
  let tasks = 0;
  try {
    for (let round = 0; round < 3; round++) {
      const runs = Array.from({ length: threads }, () => pool.run({ handle: m.handle(), count }));
      tasks += threads;
      m.tick();
      await Promise.all(runs);
      m.tick();
    }
  } finally {
    await pool.destroy();
  }
  const n = tasks * count;
  const run = indexOf(m, 'run');
  assert.equal([m.totals(run).latencyCount, m.totals(run).latencySumMs, m.totals(run).messagesIn], [n, 2 * n, n]);
  assert.is(m.nativeHistogram(run).count, n);
  // The root series: 1 + (i % 5) ms for i < count, in every task.
  let sum = 0;
  for (let i = 0; i < count; i++) sum += 1 + (i % 5);
  assert.equal([m.totals(0).latencyCount, m.totals(0).latencySumMs], [n, tasks * sum]);
  assert.is(m.nativeHistogram(0).count, n);
  m.close();
});

test.run();
