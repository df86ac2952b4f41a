// Worker pools (piscina ≥ 4): utilisation, queue depth, threads, completed tasks, wait and run
// times, and `needsDrain`/`drain` as backpressure.
//
// Utilisation is computed here, not read from `pool.utilization` (piscina 5.3.2 divides an
// already-millisecond mean by 1000 again and reports ~1000× too little). It is busy task-time
// over capacity: the time integral of the number of running tasks, divided by the interval and by
// the pool's capacity (maxThreads × concurrentTasksPerWorker — the same capacity piscina's
// `needsDrain` compares against). The running count changes exactly when piscina itself times a
// task: it records a task's wait when it hands the task to a worker and its run time when the
// result is back, on its timing object (`pool.histogram.histogram`, present while `recordTiming`
// is on, the default). Observing those two calls gives every task's start and end to the
// microsecond, so a task in flight at a sample counts for the part of it already run — no
// attribution error at interval edges — and gives every wait and run time individually for the
// histograms. Without that object (recordTiming: false, or another piscina shape) the tracker
// falls back to sampling busy threads (`threads − idleThreads`) each interval, and says so in
// `mode`.
//
// Series: { pool: name }               utilisation and queue-depth gauges, backpressure events
//                                      (needsDrain → drain, with the wait)
//         { pool: name, stage: 'run' }  one request per completed task, latency = run time
//         { pool: name, stage: 'wait' } latency = time queued before a worker took the task
import { performance } from 'node:perf_hooks';
import { type KindedSeriesOptions, SERIES_KIND } from '../record/recorder.js';
import type { MonitorLike } from './streams.js';
import { MAX_MS } from '../core/config.js';
import type { Labels, Recorder } from '../core/types.js';
import { reportProblem } from '../core/problems.js';

/** The series kinds of a tracked pool: the pool itself, its tasks' run times, their wait times. */
export const POOL_KINDS = Object.freeze({ pool: 'pool', run: 'pool_run', wait: 'pool_wait' });
const POOL_SERIES: KindedSeriesOptions = Object.freeze({ [SERIES_KIND]: POOL_KINDS.pool });
const POOL_RUN: KindedSeriesOptions = Object.freeze({ inTotals: false, [SERIES_KIND]: POOL_KINDS.run });
const POOL_WAIT: KindedSeriesOptions = Object.freeze({ inTotals: false, [SERIES_KIND]: POOL_KINDS.wait });

/** The parts of a piscina pool used here (piscina 4 and 5 have them). */
export interface PoolLike {
  readonly queueSize: number;
  readonly threads: readonly unknown[];
  readonly completed: number;
  readonly maxThreads: number;
  readonly needsDrain?: boolean;
  readonly idleThreads?: number;
  readonly options?: { concurrentTasksPerWorker?: number };
  readonly histogram?: unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface TrackPoolOptions {
  /** Names the pool's series: `{ pool: name }` (plus `labels`). */
  name: string;
  /** Milliseconds between samples of utilisation, queue depth and threads. Default 1000. */
  sampleIntervalMs?: number;
  /** Extra labels on the pool's series. */
  labels?: Labels;
  /** Start the sampling timer now (unref()ed). Default true; false to call `sample()` by hand. */
  autoStart?: boolean;
}

export interface PoolSample {
  /** performance.now() of the sample. */
  t: number;
  /** Utilisation (0..1) over the interval since the previous sample. */
  utilization: number;
  /** Utilisation (0..1) since tracking started. */
  utilizationSinceStart: number;
  /** Busy task-milliseconds since tracking started. */
  busyMs: number;
  queueSize: number;
  threads: number;
  /** Tasks running at the sample. */
  running: number;
  /** Tasks completed since tracking started (piscina's `completed` difference). */
  completed: number;
  backpressureEvents: number;
  capacity: number;
  mode: 'task-timing' | 'idle-sampling';
}

export interface PoolTracker {
  readonly name: string;
  /** Takes a sample now: updates the gauges and returns the figures. */
  sample(): PoolSample;
  /** The last sample (taking one if none was taken yet). */
  stats(): PoolSample;
  /** Takes a last sample, stops the timer, removes every hook and listener. Idempotent. */
  stop(): PoolSample;
}

interface TimingHooks {
  recordWaitTime(ms: number): void;
  recordRunTime(ms: number): void;
}

function timingObject(pool: PoolLike): (TimingHooks & Record<string, unknown>) | undefined {
  let h: unknown;
  try {
    h = (pool.histogram as { histogram?: unknown } | undefined)?.histogram;
  } catch {
    return undefined;
  }
  if (h === null || typeof h !== 'object') return undefined;
  const t = h as Record<string, unknown>;
  return typeof t.recordWaitTime === 'function' && typeof t.recordRunTime === 'function'
    ? (t as TimingHooks & Record<string, unknown>)
    : undefined;
}

class Tracker implements PoolTracker {
  private readonly main: Recorder;
  private readonly run: Recorder;
  private readonly wait: Recorder;
  private readonly capacity: number;
  private readonly t0: number;
  private readonly completed0: number;
  private readonly unhook: (() => void) | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private running = 0;
  private busy = 0;
  private lastEvent: number;
  private lastSampleT: number;
  private lastSampleBusy = 0;
  private last: PoolSample | undefined;
  private drainWaitStart = -1;
  private backpressureEvents = 0;
  private stopped = false;
  private readonly onNeedsDrain = () => {
    if (this.drainWaitStart < 0) this.drainWaitStart = performance.now();
  };
  private readonly onDrain = () => {
    if (this.drainWaitStart >= 0) {
      this.backpressureEvents++;
      this.main.recordBackpressureEvent(performance.now() - this.drainWaitStart);
      this.drainWaitStart = -1;
    }
  };
  private readonly onClose = () => {
    this.stop();
  };

  constructor(
    monitor: MonitorLike,
    private readonly pool: PoolLike,
    readonly name: string,
    labels: Labels,
    sampleIntervalMs: number,
    autoStart: boolean,
  ) {
    const base = Object.freeze({ ...labels, pool: name });
    // Series of the pool's own kinds: the exposition writes them into pool families, apart from
    // the service's requests. Tasks are the pool's figures, not requests: out of the totals.
    this.main = monitor.series(base, POOL_SERIES);
    this.run = monitor.series(base, POOL_RUN);
    this.wait = monitor.series(base, POOL_WAIT);
    const perWorker = pool.options?.concurrentTasksPerWorker ?? 1;
    this.capacity = Math.max(1, pool.maxThreads * (Number.isInteger(perWorker) && perWorker > 0 ? perWorker : 1));
    this.t0 = performance.now();
    this.lastEvent = this.t0;
    this.lastSampleT = this.t0;
    this.completed0 = pool.completed;
    this.unhook = this.hook();
    pool.on('needsDrain', this.onNeedsDrain);
    pool.on('drain', this.onDrain);
    pool.on('close', this.onClose);
    if (pool.needsDrain === true) this.onNeedsDrain();
    this.sample();
    if (autoStart) {
      // A pool that fails to answer (torn down under us) must not throw out of the timer.
      let problem: string | undefined;
      this.timer = setInterval(() => {
        try {
          this.sample();
          problem = undefined;
        } catch (e) {
          const message = `streamgauge: sampling pool ${JSON.stringify(name)} failed: ${(e as Error)?.message ?? String(e)}`;
          if (message === problem) return;
          problem = message;
          reportProblem(monitor, new Error(message, { cause: e }));
        }
      }, sampleIntervalMs);
      this.timer.unref();
    }
  }

  private get mode(): PoolSample['mode'] {
    return this.unhook ? 'task-timing' : 'idle-sampling';
  }

  /** Wraps the pool's timing object (own properties over its prototype's methods). */
  private hook(): (() => void) | undefined {
    const timing = timingObject(this.pool);
    if (timing === undefined) return undefined;
    const tracker = this;
    const ownWait = Object.hasOwn(timing, 'recordWaitTime');
    const ownRun = Object.hasOwn(timing, 'recordRunTime');
    const origWait = timing.recordWaitTime;
    const origRun = timing.recordRunTime;
    const wait = function (this: unknown, ms: number) {
      origWait.call(this, ms);
      tracker.taskStarted(ms);
    };
    const run = function (this: unknown, ms: number) {
      origRun.call(this, ms);
      tracker.taskFinished(ms);
    };
    timing.recordWaitTime = wait;
    timing.recordRunTime = run;
    return () => {
      if (timing.recordWaitTime === wait) {
        if (ownWait) timing.recordWaitTime = origWait;
        else delete (timing as Record<string, unknown>).recordWaitTime;
      }
      if (timing.recordRunTime === run) {
        if (ownRun) timing.recordRunTime = origRun;
        else delete (timing as Record<string, unknown>).recordRunTime;
      }
    };
  }

  private integrate(now: number): void {
    this.busy += this.running * (now - this.lastEvent);
    this.lastEvent = now;
  }

  /** piscina hands a task to a worker (having waited `waitMs` in the queue). */
  private taskStarted(waitMs: number): void {
    const now = performance.now();
    this.integrate(now);
    this.running++;
    if (waitMs >= 0 && waitMs <= MAX_MS) this.wait.recordLatency(waitMs);
  }

  /** A task's result is back after `runMs`. */
  private taskFinished(runMs: number): void {
    const now = performance.now();
    this.integrate(now);
    if (now - runMs < this.t0) {
      // Started before tracking: it was never counted as running; count its part since then.
      this.busy += now - this.t0;
    } else if (this.running > 0) {
      this.running--;
    }
    if (runMs >= 0 && runMs <= MAX_MS) this.run.recordLatency(runMs);
  }

  sample(): PoolSample {
    if (this.stopped && this.last) return this.last;
    const now = performance.now();
    const threads = this.pool.threads.length;
    const queueSize = this.pool.queueSize;
    let utilization: number;
    if (this.unhook) {
      // A task aborted on a worker that is then terminated may never report a run time.
      this.integrate(now);
      if (this.running > threads * (this.capacity / this.pool.maxThreads))
        this.running = threads * (this.capacity / this.pool.maxThreads);
      const dt = now - this.lastSampleT;
      utilization = dt > 0 ? (this.busy - this.lastSampleBusy) / (dt * this.capacity) : (this.last?.utilization ?? 0);
    } else {
      const idle = this.pool.idleThreads ?? 0;
      this.running = Math.max(0, threads - idle);
      const dt = now - this.lastSampleT;
      // Each sample stands for the interval before it.
      this.busy += this.running * dt;
      utilization = this.running / this.capacity;
    }
    utilization = Math.min(1, Math.max(0, utilization));
    const elapsed = now - this.t0;
    const s: PoolSample = {
      t: now,
      utilization,
      utilizationSinceStart: elapsed > 0 ? Math.min(1, Math.max(0, this.busy / (elapsed * this.capacity))) : 0,
      busyMs: this.busy,
      queueSize,
      threads,
      running: this.running,
      completed: this.pool.completed - this.completed0,
      backpressureEvents: this.backpressureEvents,
      capacity: this.capacity,
      mode: this.mode,
    };
    this.lastSampleT = now;
    this.lastSampleBusy = this.busy;
    this.last = s;
    this.main.updateWorkerUtilization(utilization);
    this.main.updateQueueDepth(queueSize);
    return s;
  }

  stats(): PoolSample {
    return this.last ?? this.sample();
  }

  stop(): PoolSample {
    if (this.stopped && this.last) return this.last;
    const last = this.sample();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unhook?.();
    this.pool.off('needsDrain', this.onNeedsDrain);
    this.pool.off('drain', this.onDrain);
    this.pool.off('close', this.onClose);
    if (this.drainWaitStart >= 0) {
      // Still saturated: the episode counts, its wait is unknown.
      this.backpressureEvents++;
      this.main.recordBackpressureEvent();
      this.drainWaitStart = -1;
      last.backpressureEvents = this.backpressureEvents;
    }
    return last;
  }
}

/**
 * Tracks a piscina pool into `monitor` — see the top of this file. Work inside the pool's tasks
 * records into the same monitor through `attach(monitor.handle())` in the worker.
 */
export function trackPool(monitor: MonitorLike, pool: PoolLike, options: TrackPoolOptions): PoolTracker {
  if (pool === null || typeof pool !== 'object' || typeof pool.on !== 'function' || !Array.isArray(pool.threads)) {
    throw new TypeError('trackPool needs a piscina pool');
  }
  if (
    options === null ||
    typeof options !== 'object' ||
    typeof options.name !== 'string' ||
    options.name.length === 0
  ) {
    throw new TypeError('options.name must be a non-empty string');
  }
  const interval = options.sampleIntervalMs ?? 1000;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 10 || interval > 3_600_000) {
    throw new RangeError(
      `options.sampleIntervalMs must be a number of milliseconds from 10 to 3600000 (got ${String(interval)})`,
    );
  }
  const labels = options.labels ?? {};
  if (labels === null || typeof labels !== 'object') throw new TypeError('options.labels must be an object');
  for (const reserved of ['pool', 'stage']) {
    if (reserved in labels)
      throw new RangeError(`options.labels must not set ${JSON.stringify(reserved)}: trackPool sets it`);
  }
  return new Tracker(monitor, pool, options.name, labels, interval, options.autoStart ?? true);
}
