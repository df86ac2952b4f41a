// piscina pools tracked against a known load: utilisation between the work the tasks did
// (measured inside the worker) and the time the pool had them (measured around each run), queue
// depth, wait and run times, needsDrain/drain as backpressure, and tasks recording into the same
// monitor through attach(). Tasks in flight are held on a gate, not timed.
import { Piscina } from 'piscina';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { POOL_KINDS, trackPool } from '../src/integrations/pool.js';
import { parseExposition, pick, sampleValue } from './fixtures/expo-helpers.js';
import { seriesIndex, testMonitor } from './fixtures/monitor.js';
import { holdGate, release } from './fixtures/pool-worker.js';
import { sleep, until, within } from './fixtures/wait.js';

const WORKER = new URL('./fixtures/pool-worker.ts', import.meta.url).href;

function onePool(extra: Record<string, unknown> = {}): Piscina {
  return new Piscina({ filename: WORKER, minThreads: 1, maxThreads: 1, idleTimeout: 60_000, ...extra });
}

test('utilisation of a 1-thread pool that is busy, then idle, lies between the busy time the worker measured and the time each task was out; tasks record through attach()', async () => {
  const monitor = testMonitor();
  // The monitor's handle goes to the workers once, in workerData.
  const pool = onePool({ workerData: { handle: monitor.handle() } });
  try {
    await within(pool.run({ busyMs: 1, labels: { job: 'warm-up' } }), 30_000, 'worker start'); // the worker is up before tracking
    const tracker = trackPool(monitor, pool, { name: 'busy', autoStart: false });
    const first = tracker.stats();
    const TASKS = 8;
    const BUSY = 200;
    let truthBusyMs = 0;
    let outMs = 0;
    for (let k = 0; k < TASKS; k++) {
      // The truth from both sides: the time each task really spent busy, measured on the worker's
      // clock, lies within the time from handing it to the pool to having its result here.
      const sent = performance.now();
      truthBusyMs += await within(pool.run({ busyMs: BUSY, labels: { job: 'busy-wait' } }), 30_000, `task ${k}`);
      outMs += performance.now() - sent;
      await sleep(BUSY); // idle: the pool has nothing to do (however long this lasts, the bounds below hold)
    }
    // Both samples fall while the pool is idle, so the window holds exactly these tasks; neither
    // bound depends on how fast the machine was.
    const last = tracker.sample();
    const window = last.t - first.t;
    const [low, high] = [truthBusyMs / window, outMs / window];
    assert.ok(
      low <= last.utilization && last.utilization <= high,
      `measured ${last.utilization.toFixed(4)}, truth between ${low.toFixed(4)} and ${high.toFixed(4)}`,
    );
    assert.ok(high < 1, 'the idle time is part of the window');
    assert.ok(low <= last.utilizationSinceStart && last.utilizationSinceStart <= high);
    assert.is(last.mode, 'task-timing');
    assert.is(last.completed, TASKS);
    assert.is(last.threads, 1);
    assert.is(last.running, 0);

    const main = monitor.totals(seriesIndex(monitor, { pool: 'busy' }, POOL_KINDS.pool));
    assert.is(main.workerUtilization, last.utilization, 'the gauge holds the last sample');
    assert.is(main.queueDepth, 0);
    const run = monitor.totals(seriesIndex(monitor, { pool: 'busy' }, POOL_KINDS.run));
    assert.is(run.requests, TASKS, 'one run time per completed task');
    assert.ok(run.latencyMinMs >= BUSY * 0.99, 'run time covers the busy time');
    assert.is(monitor.totals(seriesIndex(monitor, { pool: 'busy' }, POOL_KINDS.wait)).requests, TASKS);
    // Recorded inside the worker, read here: the same memory.
    const worker = monitor.totals(seriesIndex(monitor, { job: 'busy-wait' }));
    assert.is(worker.requests, TASKS);
    assert.ok(Math.abs(worker.latencySumMs - truthBusyMs) < 1e-3 * TASKS, 'every busy millisecond arrived');
    // The exposition: the pool's families of its own, with the service's requests apart.
    const text = parseExposition(monitor.metrics().body as string);
    assert.is(sampleValue(text, 'streamgauge_pool_tasks_total', { pool: 'busy' }), TASKS);
    assert.is(sampleValue(text, 'streamgauge_pool_task_run_seconds_count', { pool: 'busy' }), TASKS);
    assert.is(sampleValue(text, 'streamgauge_pool_task_wait_seconds_count', { pool: 'busy' }), TASKS);
    assert.is(sampleValue(text, 'streamgauge_pool_utilization_ratio', { pool: 'busy' }), last.utilization);
    assert.is(
      pick(text, 'streamgauge_requests_total').filter((x) => 'pool' in x.labels || 'stage' in x.labels).length,
      0,
      'no pool series among the requests',
    );
    tracker.stop();
  } finally {
    await pool.destroy();
    monitor.close();
  }
});

test('a saturated pool: queue depth, needsDrain→drain as backpressure, wait times, a task in flight counts as it runs', async () => {
  const monitor = testMonitor();
  const pool = onePool();
  try {
    await within(pool.run({ busyMs: 1 }), 30_000, 'worker start');
    const tracker = trackPool(monitor, pool, { name: 'sat', autoStart: false });
    // The truth for backpressure, counted beside the tracker.
    let episodes = 0;
    let saturated = false;
    pool.on('needsDrain', () => {
      if (!saturated) episodes++;
      saturated = true;
    });
    pool.on('drain', () => {
      saturated = false;
    });

    // One task held in the worker: sampled while it runs, it already counts as busy though not completed.
    const gate = holdGate();
    const long = pool.run({ busyMs: 0, hold: gate });
    await until('the task to start in the worker', 30_000, () => Atomics.load(gate, 0) === 1, 5);
    const mid = tracker.sample();
    assert.is(mid.completed, 0, 'not finished at the sample');
    assert.is(mid.running, 1);
    assert.ok(mid.busyMs > 0 && mid.utilization > 0, 'in-flight work counted');
    release(gate);
    await within(long, 30_000, 'long task');

    const handle = monitor.handle(); // this time in the task arguments
    const burst = Array.from({ length: 5 }, () => pool.run({ busyMs: 30, handle, labels: { job: 'burst' } }));
    // Sampled before this turn ends: no task of the burst can have finished, and one thread takes
    // at most one of them, so four or five wait in the queue.
    const queued = tracker.sample();
    assert.ok(queued.queueSize >= 4 && queued.queueSize <= 5, `tasks queued (${queued.queueSize})`);
    assert.is(monitor.totals(seriesIndex(monitor, { pool: 'sat' }, POOL_KINDS.pool)).queueDepth, queued.queueSize);
    await within(Promise.all(burst), 30_000, 'burst');
    await until('drain, emitted on a microtask after the last completion', 10_000, () => !saturated, 5);
    const after = tracker.stop();
    assert.ok(episodes >= 1, 'the pool asked for drain');
    const main = monitor.totals(seriesIndex(monitor, { pool: 'sat' }, POOL_KINDS.pool));
    assert.is(main.backpressure, episodes, 'one event per needsDrain→drain episode');
    assert.is(after.backpressureEvents, episodes);
    assert.ok(main.backpressureWaitSumMs > 0);
    const wait = monitor.totals(seriesIndex(monitor, { pool: 'sat' }, POOL_KINDS.wait));
    assert.is(wait.requests, 6);
    assert.ok(wait.latencyMaxMs >= 4 * 30 * 0.9, 'the last of the burst waited for the four before it');
    assert.is(monitor.totals(seriesIndex(monitor, { pool: 'sat' }, POOL_KINDS.run)).requests, 6);
    assert.is(after.completed, 6);
    assert.is(
      monitor.totals(seriesIndex(monitor, { job: 'burst' })).requests,
      5,
      'recorded in the worker from a task-argument handle',
    );
  } finally {
    await pool.destroy();
    monitor.close();
  }
});

test('stop() restores the pool; without recordTiming the tracker samples busy threads instead', async () => {
  const monitor = testMonitor();
  const pool = onePool();
  const plain = onePool({ recordTiming: false });
  try {
    const timing = (pool.histogram as unknown as { histogram: object }).histogram;
    const listeners = pool.listenerCount('drain');
    const tracker = trackPool(monitor, pool, { name: 'p', sampleIntervalMs: 50 });
    assert.ok(Object.hasOwn(timing, 'recordRunTime'), 'hooked');
    assert.is(pool.listenerCount('drain'), listeners + 1);
    tracker.stop();
    assert.not.ok(Object.hasOwn(timing, 'recordRunTime'), 'unhooked');
    assert.not.ok(Object.hasOwn(timing, 'recordWaitTime'));
    assert.is(pool.listenerCount('drain'), listeners);
    assert.is(tracker.stop(), tracker.stats(), 'idempotent');

    const t2 = trackPool(monitor, plain, { name: 'plain', autoStart: false });
    const gate = holdGate();
    const task = plain.run({ busyMs: 0, hold: gate });
    await until('the task to start in the worker', 30_000, () => Atomics.load(gate, 0) === 1, 5);
    const s = t2.sample();
    assert.is(s.mode, 'idle-sampling');
    assert.is(s.running, 1);
    assert.is(s.utilization, 1);
    release(gate);
    await within(task, 30_000, 'task');
    t2.stop();

    assert.throws(() => trackPool(monitor, pool, { name: '' }), /name/);
    assert.throws(() => trackPool(monitor, pool, { name: 'x', sampleIntervalMs: 1 }), /sampleIntervalMs/);
    assert.throws(() => trackPool(monitor, pool, { name: 'x', labels: { pool: 'y' } }), /must not set "pool"/);
    assert.throws(() => trackPool(monitor, {} as Piscina, { name: 'x' }), /piscina/);
  } finally {
    await pool.destroy();
    await plain.destroy();
    monitor.close();
  }
});

test.run();
