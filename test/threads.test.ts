// Exactness under concurrency: worker threads (plain worker_threads, and a piscina pool) record
// 10^6 latencies and errors each into one monitor through attach(monitor.handle()) while the main
// thread records too. Every total is compared with an exact replay of the same workload; series
// that several threads create at the same moment get one slot each; a worker that exits, or is
// terminated in the middle of its work, loses nothing it recorded; a worker that has ended hands
// its lanes to the next one, and a running one keeps them. The workers load the built package
// (dist/, see fixtures/built.ts) as a user's do; `npm test` builds it first.
import { existsSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Labels, type Recorder, StreamPerformanceMonitor } from '../src/index.js';
import { LaneOwners, ownerOf, ownerWord } from '../src/core/lane-owners.js';
import { H, type Layout, MAX_LANES, OWNER_BYTES, R } from '../src/core/layout.js';
import { currentThread, isRunning } from '../src/core/thread-identity.js';
import { HOT_RECORDS } from '../src/record/recorder.js';
import { run, SHARED_LABELS, seriesOf, type Target } from './fixtures/workload.js';
import { handClock, testMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const N = 1_000_000;
const WORKERS = 4;
// Plain workers start through a small .mjs entry that loads the TypeScript worker (see ts-worker.mjs).
const WORKER_URL = new URL('./fixtures/ts-worker.mjs', import.meta.url);
const ENTRY = new URL('./fixtures/recorder-worker.ts', import.meta.url).href;
const TASK_URL = new URL('./fixtures/piscina-recorder.ts', import.meta.url);
const LANE_TASK_URL = new URL('./fixtures/lane-task.mjs', import.meta.url);
const STEP_WORKER_URL = new URL('./fixtures/step-recorder.mjs', import.meta.url);

function monitor(): StreamPerformanceMonitor {
  return testMonitor({
    maxSeries: 128,
    throughputWindow: 2000,
    historyRetention: 60_000,
    rollups: { minutes: 1, hours: 1, days: 1 },
  });
}

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Plain counters that take the same calls as a recorder: the exact answer. */
class Expected implements Target {
  requests = 0;
  successes = 0;
  errors = 0;
  latencyCount = 0;
  sumNs = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  byType: Record<string, number> = {};
  messagesIn = 0;
  bytesIn = 0;
  active = 0;
  opened = 0;

  constructor(private readonly all: Map<string, Expected>) {}

  private latency(ms: number) {
    this.latencyCount++;
    this.sumNs += Math.round(ms * 1e6);
    this.min = Math.min(this.min, ms);
    this.max = Math.max(this.max, ms);
  }
  recordLatency(ms: number) {
    this.requests++;
    this.successes++;
    this.latency(ms);
  }
  recordError(type: string, ms?: number) {
    this.requests++;
    this.errors++;
    this.byType[type] = (this.byType[type] ?? 0) + 1;
    if (ms !== undefined) this.latency(ms);
  }
  recordMessages(count: number, bytes: number) {
    this.messagesIn += count;
    this.bytesIn += bytes;
  }
  connectionOpened() {
    this.active++;
    this.opened++;
  }
  connectionClosed() {
    this.active--;
  }
  series(labels: Labels): Expected {
    let e = this.all.get(key(labels));
    if (!e) {
      e = new Expected(this.all);
      this.all.set(key(labels), e);
    }
    return e;
  }
}

/** Replays the workload of writers 0..writers-1 (items [0, count) each). */
function expectedFor(writers: number, count: number): Map<string, Expected> {
  const all = new Map<string, Expected>();
  const root = new Expected(all);
  all.set(key({}), root);
  for (let w = 0; w < writers; w++) run(root, seriesOf(root, w), w, 0, count);
  return all;
}

/** Compares every series of the monitor with the replay, and the whole. */
function check(m: StreamPerformanceMonitor, expected: Map<string, Expected>) {
  const list = m.seriesList().filter((s) => !s.overflow);
  const keys = list.map((s) => key(s.labels));
  assert.is(new Set(keys).size, keys.length, 'a label set got two series');
  assert.equal(new Set(keys), new Set(expected.keys()), 'the series');
  for (const s of SHARED_LABELS) assert.is(keys.filter((k) => k === key(s)).length, 1);
  let requests = 0;
  let latencyCount = 0;
  for (const s of list) {
    const e = expected.get(key(s.labels)) as Expected;
    const t = m.totals(s.index);
    const where = `series ${JSON.stringify(s.labels)}`;
    assert.equal(
      [
        t.requests,
        t.successes,
        t.errors,
        t.latencyCount,
        t.messagesIn,
        t.bytesIn,
        t.activeConnections,
        t.connectionsOpened,
      ],
      [e.requests, e.successes, e.errors, e.latencyCount, e.messagesIn, e.bytesIn, e.active, e.opened],
      where,
    );
    assert.is(t.latencySumMs, e.sumNs / 1e6, `${where}: sum`);
    assert.ok(e.latencyCount > 0 && e.errors > 0, `${where}: the workload records into every series`);
    assert.is(t.latencyMinMs, e.min, `${where}: min`);
    assert.is(t.latencyMaxMs, e.max, `${where}: max`);
    assert.is(m.nativeHistogram(s.index).count, e.latencyCount, `${where}: histogram count`);
    assert.equal(m.errorsByType(s.index), e.byType, `${where}: errors by type`);
    requests += e.requests;
    latencyCount += e.latencyCount;
  }
  const total = m.totals();
  assert.is(total.requests, requests);
  assert.is(total.latencyCount, latencyCount);
  assert.is(m.totals(m.seriesList().find((s) => s.overflow)?.index).requests, 0, 'nothing overflowed');
}

function exited(w: Worker): Promise<number> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('exit', resolve);
  });
}

function message(w: Worker, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    const on = (m: unknown) => {
      if (m === what) {
        w.off('message', on);
        resolve();
      }
    };
    w.on('message', on);
  });
}

function attachedContexts(m: StreamPerformanceMonitor): number {
  return Atomics.load(runtime(m), R.ATTACHED);
}

/** WORKERS plain workers and the main thread record `count` items each, all at once. */
async function plainWorkers(m: StreamPerformanceMonitor, count: number): Promise<void> {
  const gate = new SharedArrayBuffer(4);
  const workers = Array.from(
    { length: WORKERS },
    (_, w) => new Worker(WORKER_URL, { workerData: { entry: ENTRY, handle: m.handle(), worker: w, count, gate } }),
  );
  const done = workers.map((w) => message(w, 'done'));
  const exits = workers.map(exited);
  await Promise.all(workers.map((w) => message(w, 'ready')));
  Atomics.store(new Int32Array(gate), 0, 1);
  Atomics.notify(new Int32Array(gate), 0);
  // The main thread is writer number WORKERS, recording while the workers do.
  run(m, seriesOf(m, WORKERS), WORKERS, 0, count);
  await Promise.all(done);
  assert.equal(await Promise.all(exits), [0, 0, 0, 0]);
  assert.is(attachedContexts(m), WORKERS);
}

function runtime(m: StreamPerformanceMonitor): Int32Array {
  return new Int32Array(m.handle().memory.buffer, internalsOf(m).layout.runtimePtr, 64);
}

/** Lanes linked to the root series' latency histogram. */
function rootLanes(m: StreamPerformanceMonitor): number {
  return Atomics.load(
    new Int32Array(
      m.handle().memory.buffer,
      internalsOf(m).layout.seriesPtr + internalsOf(m).layout.histOffset.latency + H.LANES,
      1,
    ),
    0,
  );
}

// ---- tests --------------------------------------------------------------------------------

test(`${WORKERS} worker_threads and the main thread, 10^6 records each at once: every total exact`, async () => {
  const m = monitor();
  await plainWorkers(m, N);
  assert.ok(Atomics.load(runtime(m), R.LANES_CLAIMED) > WORKERS, 'threads recorded into lanes of their own');
  assert.is(
    Atomics.load(runtime(m), R.COUNTER_LANES_CLAIMED),
    WORKERS + 1,
    'each thread counted messages in a counter lane of its own',
  );
  check(m, expectedFor(WORKERS + 1, N));
  m.close();
});

test('windows over lanes of several threads: what was recorded leaves the window once it has passed', async () => {
  const clock = handClock(0);
  const m = new StreamPerformanceMonitor({
    autoStart: false,
    logger: false,
    maxSeries: 128,
    clock,
    collectionInterval: 1000,
    throughputWindow: 2000,
  });
  await plainWorkers(m, N / 20);
  const series = m.seriesList().filter((s) => m.totals(s.index).latencyCount > 0);
  assert.ok(series.length > 1);
  clock.t += 1000;
  m.tick(); // snapshots every series, lanes of all five threads included
  const before = series.map((s) => m.windowFigures(s.index).requests);
  assert.ok(
    before.every((n) => n > 0),
    'the window holds the records',
  );
  for (let i = 0; i < 3; i++) {
    clock.t += 1000;
    m.tick();
  }
  for (const s of series) {
    const w = m.windowFigures(s.index);
    assert.is(w.requests, 0, `series ${JSON.stringify(s.labels)}: requests`);
    assert.ok(Number.isNaN(w.p50), `series ${JSON.stringify(s.labels)}: no latency left in the window (p50 ${w.p50})`);
  }
  m.close();
});

test('the same with every lane and counter lane taken: all threads record through the shared atomic path, still exact', async () => {
  const m = monitor();
  Atomics.store(runtime(m), R.LANES_CLAIMED, internalsOf(m).layout.lanePool.count);
  Atomics.store(runtime(m), R.COUNTER_LANES_CLAIMED, internalsOf(m).layout.counterLanes.count);
  await plainWorkers(m, N / 4);
  check(m, expectedFor(WORKERS + 1, N / 4));
  m.close();
});

test(`piscina, ${WORKERS} threads: the same workload as 16 tasks, each with a fresh clone of the handle`, async () => {
  const m = monitor();
  const pool = new Piscina({ filename: TASK_URL.href, minThreads: WORKERS, maxThreads: WORKERS, idleTimeout: 60_000 });
  try {
    const tasks = [];
    for (let w = 0; w < WORKERS; w++) {
      for (let part = 0; part < 4; part++) {
        tasks.push(pool.run({ handle: m.handle(), worker: w, from: (part * N) / 4, to: ((part + 1) * N) / 4 }));
      }
    }
    const results = (await Promise.all(tasks)) as { threadId: number; sameRecorder: boolean }[];
    const threads = new Set(results.map((r) => r.threadId));
    assert.ok(threads.size >= 2 && threads.size <= WORKERS, `${threads.size} threads`);
    assert.ok(
      results.every((r) => r.sameRecorder),
      'a task got a new recorder',
    );
    assert.is(attachedContexts(m), threads.size, 'instantiated once per thread, not once per task');
    check(m, expectedFor(WORKERS, N));
  } finally {
    await pool.destroy();
  }
  m.close();
});

test('a worker that exits right after recording loses nothing', async () => {
  const m = monitor();
  const gate = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(gate), 0, 1);
  const count = 200_000;
  const w = new Worker(WORKER_URL, {
    workerData: { entry: ENTRY, handle: m.handle(), worker: 0, count, gate, mode: 'exit' },
  });
  assert.is(await exited(w), 0);
  check(m, expectedFor(1, count));
  m.close();
});

/** A worker recording 1 ms latencies into m until terminated; `done` counts its finished records. */
async function recordingForever(
  m: StreamPerformanceMonitor,
): Promise<{ w: Worker; exit: Promise<number>; done: Int32Array }> {
  const gate = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(gate), 0, 1);
  const progress = new SharedArrayBuffer(4);
  const w = new Worker(WORKER_URL, {
    workerData: { entry: ENTRY, handle: m.handle(), worker: 0, count: 0, gate, mode: 'forever', progress },
  });
  const exit = exited(w);
  await message(w, 'ready');
  return { w, exit, done: new Int32Array(progress) };
}

test('a worker terminated in the middle of recording loses nothing it finished', async () => {
  const m = monitor();
  const { w, exit, done } = await recordingForever(m);
  while (Atomics.load(done, 0) < 100_000) await new Promise((r) => setTimeout(r, 5));
  await w.terminate();
  await exit;
  const finished = Atomics.load(done, 0);
  const t = m.totals();
  // Each record is counted before its progress mark: at most one record more than the marks.
  assert.ok(
    t.latencyCount >= finished && t.latencyCount <= finished + 1,
    `${t.latencyCount} recorded, ${finished} finished`,
  );
  assert.is(t.latencySumMs, t.latencyCount);
  assert.is(m.nativeHistogram(0).count, t.latencyCount);
  m.close();
});

test('thread identity: this thread runs; an ended thread, or its tid with another start time, does not', async () => {
  const self = currentThread();
  if (self === null) return; // no /proc here: threads have no identity, and lanes are never taken over
  assert.is(self.tid, Number(readlinkSync('/proc/thread-self').split('/').pop()));
  assert.ok(isRunning(self));
  assert.not.ok(isRunning({ tid: self.tid, start: self.start + 1 }), 'a reused tid is another thread');
  const w = new Worker(
    "require('node:worker_threads').parentPort.postMessage(require('node:fs').readlinkSync('/proc/thread-self'))",
    { eval: true },
  );
  const path = await new Promise<string>((resolve) => w.once('message', resolve));
  await exited(w);
  const ended = { tid: Number(path.split('/').pop()), start: self.start };
  assert.ok(ended.tid > 0 && ended.tid !== self.tid);
  assert.not.ok(isRunning(ended), 'the worker has ended');
});

test('lane owners: one 64-bit word per owner, swapped whole, so of two threads taking over one lane exactly one wins', () => {
  for (const t of [
    { tid: 1, start: 0 },
    { tid: 4_194_304, start: 123_456 },
    { tid: 77, start: -2 },
    { tid: 2 ** 31, start: -(2 ** 31) },
  ]) {
    assert.equal(ownerOf(ownerWord(t)), t);
  }
  assert.is(ownerWord(null), 0n);
  if (currentThread() === null) return;
  const layout = { laneOwners: { ptr: 0, count: 3 } } as Layout;
  const buffer = new SharedArrayBuffer(3 * OWNER_BYTES);
  const words = new BigUint64Array(buffer);
  const a = new LaneOwners(buffer, layout);
  const b = new LaneOwners(buffer, layout);
  const me = currentThread()!;
  const endedOwner = ownerWord({ tid: me.tid, start: me.start + 1 }); // this tid at another start: ended
  // Lane 0 never handed out, lane 1 held by this (running) thread, lane 2 by one that has ended.
  a.own(1);
  words[2] = endedOwner;
  assert.not.ok(a.takeOver(0), 'a lane never handed out');
  assert.not.ok(b.takeOver(1), 'a running owner keeps its lane');
  // b reads the ended owner, then a takes the lane over before b swaps: b's swap must fail.
  (b as unknown as { running: () => boolean }).running = () => {
    assert.ok(a.takeOver(2), 'a takes over the ended owner');
    return false;
  };
  assert.not.ok(b.takeOver(2), 'taken over already, between its read and its swap');
  assert.is(words[2], ownerWord(me));
});

test('piscina workers that come and go: each takes over the lanes of one that has ended, and nothing is lost', async () => {
  // minThreads 0 and idleTimeout 0: piscina terminates each worker as soon as it is idle, the way
  // a pool shrinks after a burst. More workers than a histogram has lanes (MAX_LANES) and than
  // there are counter lanes: without taking over, the later ones would have no lane left. The task
  // is plain JavaScript, started without the TypeScript loader at all (execArgv: []).
  if (currentThread() === null) return; // (Linux only, see thread-identity.ts)
  const m = monitor();
  const workers = Math.max(MAX_LANES, internalsOf(m).layout.counterLanes.count) + 2;
  const count = 1000;
  const pool = new Piscina({
    filename: LANE_TASK_URL.href,
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: 0,
    execArgv: [],
  });
  const results: { threadId: number; tid: number; lanes: number[] }[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      const r = await pool.run({ handle: m.handle(), count });
      results.push(r);
      // piscina drops a worker from its list before the thread has ended: wait for the thread itself.
      const deadline = Date.now() + 10_000;
      while (existsSync(`/proc/self/task/${r.tid}`)) {
        assert.ok(Date.now() < deadline, `worker ${i}'s thread still runs after 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  } finally {
    await pool.destroy();
  }
  assert.is(new Set(results.map((r) => r.threadId)).size, workers, 'each task ran on a new thread');
  for (const [i, r] of results.entries())
    assert.ok(
      r.lanes.every((lane) => lane !== 0),
      `worker ${i} got lanes: ${r.lanes}`,
    );
  assert.is(new Set(results.map((r) => r.lanes[0])).size, 1, 'every worker took over the root lane of the one before');
  assert.is(rootLanes(m), 1, 'the root latency histogram has one lane');
  assert.is(Atomics.load(runtime(m), R.LANES_CLAIMED), 2, 'two lanes handed out in all');
  assert.is(Atomics.load(runtime(m), R.COUNTER_LANES_CLAIMED), 1, 'one counter lane handed out in all');
  const run = m.seriesList().find((s) => s.labels.stage === 'run')?.index ?? Number.NaN;
  assert.ok(run >= 0, 'the run series');
  const t = m.totals(run);
  assert.equal(
    [t.requests, t.latencyCount, t.latencySumMs, t.messagesIn, t.bytesIn],
    [workers * count, workers * count, workers * count * 2, workers * count, workers * count * 100],
  );
  assert.is(m.nativeHistogram(run).count, workers * count);
  assert.is(m.totals().latencyCount, 2 * workers * count);
  assert.is(m.totals(0).latencySumMs, workers * (count / 5) * 15);
  m.close();
});

test('a running worker keeps its lanes: the next worker takes them over only once it has ended', async () => {
  if (currentThread() === null) return;
  const m = monitor();
  const workers: Awaited<ReturnType<typeof recordingForever>>[] = [];
  const start = async () => {
    const x = await recordingForever(m);
    workers.push(x);
    // A series takes its thread's lane once hot there: HOT_RECORDS records set the tick they are
    // counted from, the next HOT_RECORDS within it take the lane.
    while (Atomics.load(x.done, 0) < 2 * HOT_RECORDS) await new Promise((r) => setTimeout(r, 1));
    return x;
  };
  const stop = async (x: (typeof workers)[number]) => {
    await x.w.terminate();
    await x.exit;
  };
  try {
    const a = await start();
    await start();
    assert.is(rootLanes(m), 2, 'two running workers, two lanes');
    await stop(a);
    await start();
    assert.is(rootLanes(m), 2, 'the third took over the lane of the first');
    assert.is(Atomics.load(runtime(m), R.LANES_CLAIMED), 2);
  } finally {
    await Promise.all(workers.map(stop));
  }
  const finished = workers.reduce((n, x) => n + Atomics.load(x.done, 0), 0);
  const t = m.totals();
  // Each record is counted before its progress mark: at most one more per worker than the marks.
  assert.ok(
    t.latencyCount >= finished && t.latencyCount <= finished + 3,
    `${t.latencyCount} recorded, ${finished} finished`,
  );
  assert.is(t.latencySumMs, t.latencyCount);
  assert.is(m.nativeHistogram(0).count, t.latencyCount);
  m.close();
});

test('readSeries: totals and latency histogram read together agree while a worker records', async () => {
  const m = monitor();
  const { w, exit, done } = await recordingForever(m);
  let reads = 0;
  let last = -1;
  try {
    while (reads < 200 || Atomics.load(done, 0) < 10_000) {
      const { totals, latency } = internalsOf(m).readSeries(0);
      assert.is(totals.latencyCount, latency.count, `read ${reads}`);
      assert.is(totals.requests, latency.count, 'every record a success');
      assert.ok(latency.count >= last, 'counts only grow');
      last = latency.count;
      reads++;
      if (reads % 20 === 0) await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    await w.terminate();
    await exit;
  }
  assert.ok(last > 0, 'the worker recorded meanwhile');
  const quiet = internalsOf(m).readSeries(0);
  assert.equal(
    [quiet.totals.latencyCount, quiet.latency.count],
    [m.totals(0).latencyCount, m.nativeHistogram(0).count],
  );
  m.close();
});

test('a record from a worker read while it is being made still shows once it has returned', async () => {
  // The main thread reads the totals over and over while the worker records, so that some reads fall
  // inside a record; once the worker says its record returned, the next read must show it. A
  // record's counts must be in place before the sum a reader takes as the sign of a change: the
  // other way round, a read between the two saw the sum, took the old count, and never looked
  // again (about once in 20,000 records under load).
  const m = testMonitor();
  const ctl = new SharedArrayBuffer(12);
  const c = new Int32Array(ctl);
  const w = new Worker(STEP_WORKER_URL, { workerData: { handle: m.handle(), ctl } });
  const exit = exited(w);
  const steps = 20_000;
  let stale = 0;
  for (let step = 1; step <= steps; step++) {
    Atomics.store(c, 0, step);
    Atomics.notify(c, 0);
    while (Atomics.load(c, 1) < step) m.totals();
    if (m.totals().requests !== step) stale++;
  }
  Atomics.store(c, 2, 1);
  Atomics.store(c, 0, steps + 1);
  Atomics.notify(c, 0);
  assert.is(await exit, 0);
  assert.is(stale, 0, `records not seen after they returned: ${stale} of ${steps}`);
  assert.is(m.totals().requests, steps);
  m.close();
});

test('attach() in the main thread records into the same memory as the monitor', async () => {
  const { attach } = await import('../src/index.js');
  const m = monitor();
  const r: Recorder = attach(m.handle());
  assert.ok(attach(m.handle()) === r, 'one recorder per thread and monitor');
  r.recordLatency(2);
  m.recordLatency(4);
  r.series({ a: 'b' }).recordError('x', 6);
  assert.equal([m.totals().requests, m.totals().latencySumMs, m.totals(1).errors], [3, 12, 1]);
  assert.throws(() => attach({} as never), /monitor\.handle\(\)/);
  m.close();
});

test.run();
