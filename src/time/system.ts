// Process and runtime figures. Event-loop delay and GC pauses are recorded as they happen into
// histograms of the monitor's own reserved series (cumulative, like every other histogram), so a
// scrape sees whatever happened since the one before, however rarely it comes. The tick's
// per-interval view (history, dashboard) is read from the same histograms as differences.
import { readdirSync, readFileSync } from 'node:fs';
import {
  type EventLoopUtilization,
  PerformanceObserver,
  performance,
  constants as perfConstants,
} from 'node:perf_hooks';
import { midpoint } from '../core/buckets.js';
import { RESERVED_SERIES } from '../core/layout.js';
import type { NativeHistogram } from '../core/family-model.js';
import type { Labels, Recorder } from '../core/types.js';

/** prom-client's names of the GC kinds (perf_hooks' NODE_PERFORMANCE_GC_* constants). */
export const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;

/**
 * The series the monitor keeps for runtime histograms, in its reserved slots (maxSeries + i):
 * event-loop delay, then GC pauses by kind.
 */
export const RUNTIME_SERIES: readonly { kind: string; labels: Labels }[] = [
  { kind: 'runtime_eventloop_delay', labels: {} },
  ...GC_KINDS.map((kind) => ({ kind: 'runtime_gc', labels: { kind } })),
];
if (RUNTIME_SERIES.length > RESERVED_SERIES) throw new Error('more runtime series than reserved slots');

export interface SystemSample {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** CPU time of the process over the last interval, % of one core. */
  cpuPercent: number;
  eventLoopDelayP50Ms: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Share of the last interval the event loop was busy, 0..1. */
  eventLoopUtilization: number;
  /** GC pause time per second of the last interval, ms/s. */
  gcPauseMsPerSec: number;
  activeHandles: number;
}

/** Event-loop delays recorded since some earlier moment (the last tick, the last scrape). */
export interface DelayStats {
  count: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
  stddevMs: number;
  /** Quantile (0..1) in ms, from the histogram's buckets (bucket log-midpoints). */
  quantileMs(q: number): number;
}

/** What the sampler reads from the monitor. */
interface RuntimeSource {
  /** Recorders of the reserved series, in RUNTIME_SERIES order. */
  recorders: readonly Recorder[];
  /** The latency histogram of reserved series i (RUNTIME_SERIES order), read now. */
  histogram(i: number): NativeHistogram;
  /** The latency sum (ms) of reserved series i. */
  sumMs(i: number): number;
}

/** The bucket counts of one histogram at some moment, to difference later ones against. */
class Baseline {
  private counts = new Map<number, number>();
  private zero = 0;
  private over = 0;

  /** The quantile of what came since the baseline, then the baseline moves to `h`. */
  advance(h: NativeHistogram): (q: number) => number {
    const next = new Map<number, number>();
    const deltas: [number, number][] = [];
    const d = h.dense;
    let total = h.zeroCount - this.zero;
    if (d !== undefined) {
      for (let k = 0; k < d.counts.length; k++) {
        const c = d.counts[k];
        if (c === 0) continue;
        const index = d.offset + k;
        next.set(index, c);
        const delta = c - (this.counts.get(index) ?? 0);
        if (delta > 0) {
          deltas.push([index, delta]);
          total += delta;
        }
      }
    }
    const zero = h.zeroCount - this.zero;
    total += h.overflowCount - this.over;
    this.counts = next;
    this.zero = h.zeroCount;
    this.over = h.overflowCount;
    const schema = h.schema;
    return (q) => {
      if (total <= 0) return 0;
      const rank = q * total;
      let seen = zero;
      if (seen >= rank && zero > 0) return 0;
      for (const [index, n] of deltas) {
        seen += n;
        if (seen >= rank) return midpoint(index, schema) * 1000;
      }
      // In the overflow: past the histogram's range.
      return (h.overflowThreshold ?? 0) * 1000;
    };
  }
}

/** Running figures of the delays recorded since the last reset (exact, beside the histogram). */
class Running {
  count = 0;
  sum = 0;
  sumSq = 0;
  min = Infinity;
  max = 0;

  add(ms: number): void {
    this.count++;
    this.sum += ms;
    this.sumSq += ms * ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.sumSq = 0;
    this.min = Infinity;
    this.max = 0;
  }
}

export class SystemSampler {
  private readonly gc: PerformanceObserver;
  private readonly timer: NodeJS.Timeout;
  private lastFire = performance.now();
  /** The last delay measured (ms): the interval between two timer callbacks. */
  lastDelayMs = 0;
  private readonly sinceTick = new Running();
  private readonly sinceCollect = new Running();
  private readonly tickBaseline = new Baseline();
  private readonly collectBaseline = new Baseline();
  private lastGcSumMs = 0;
  private lastCpu = process.cpuUsage();
  private lastWall = performance.now();
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  peakRss = 0;

  constructor(
    private readonly source: RuntimeSource,
    /** Milliseconds between the event-loop timer's callbacks (config.eventLoopResolution). */
    readonly resolutionMs: number,
  ) {
    const delay = source.recorders[0];
    // The interval between two callbacks of a timer due every resolutionMs, as
    // monitorEventLoopDelay measures it: about the resolution when the loop is free, and the
    // whole stall when something blocks it (one sample of 2 s after a 2 s busy loop).
    this.timer = setInterval(() => {
      const now = performance.now();
      const ms = now - this.lastFire;
      this.lastFire = now;
      this.lastDelayMs = ms;
      delay.recordLatency(ms);
      this.sinceTick.add(ms);
      this.sinceCollect.add(ms);
    }, resolutionMs);
    this.timer.unref();
    const byKind: (Recorder | undefined)[] = [];
    byKind[perfConstants.NODE_PERFORMANCE_GC_MINOR] = source.recorders[1];
    byKind[perfConstants.NODE_PERFORMANCE_GC_MAJOR] = source.recorders[2];
    byKind[perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL] = source.recorders[3];
    byKind[perfConstants.NODE_PERFORMANCE_GC_WEAKCB] = source.recorders[4];
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } | null }).detail?.kind;
        const r = kind === undefined ? undefined : byKind[kind];
        if (r !== undefined && e.duration >= 0) r.recordLatency(e.duration);
      }
    });
    this.gc.observe({ entryTypes: ['gc'] });
  }

  sample(): SystemSample {
    const mem = process.memoryUsage();
    const wall = performance.now();
    const elapsedMs = Math.max(wall - this.lastWall, 1e-3);
    // One reading each, differenced against the last: nothing falls between two intervals.
    const cpuNow = process.cpuUsage();
    const cpu = { user: cpuNow.user - this.lastCpu.user, system: cpuNow.system - this.lastCpu.system };
    const eluNow = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(eluNow, this.lastElu);
    this.lastCpu = cpuNow;
    this.lastWall = wall;
    this.lastElu = eluNow;
    this.peakRss = Math.max(this.peakRss, mem.rss);
    // The interval's delays: the histogram's difference since the last tick (and the exact max).
    const quantile = this.tickBaseline.advance(this.source.histogram(0));
    const maxMs = this.sinceTick.count > 0 ? this.sinceTick.max : 0;
    this.sinceTick.reset();
    let gcSumMs = 0;
    for (let i = 1; i <= GC_KINDS.length; i++) gcSumMs += this.source.sumMs(i);
    const gcMs = gcSumMs - this.lastGcSumMs;
    this.lastGcSumMs = gcSumMs;
    return {
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
      eventLoopDelayP50Ms: quantile(0.5),
      eventLoopDelayP99Ms: quantile(0.99),
      eventLoopDelayMaxMs: maxMs,
      eventLoopUtilization: elu.utilization,
      gcPauseMsPerSec: (gcMs / elapsedMs) * 1000,
      activeHandles: process.getActiveResourcesInfo().length,
    };
  }

  /**
   * The delays recorded since the last call (prom-client's nodejs_eventloop_lag_* gauges mean
   * this: its histogram is reset at each collect). Undefined when none were recorded.
   */
  delaysSinceLastCollect(): DelayStats | undefined {
    const r = this.sinceCollect;
    const quantile = this.collectBaseline.advance(this.source.histogram(0));
    if (r.count === 0) return undefined;
    const mean = r.sum / r.count;
    const stats: DelayStats = {
      count: r.count,
      minMs: r.min,
      maxMs: r.max,
      meanMs: mean,
      stddevMs: Math.sqrt(Math.max(r.sumSq / r.count - mean * mean, 0)),
      quantileMs: quantile,
    };
    r.reset();
    return stats;
  }

  close(): void {
    clearInterval(this.timer);
    this.gc.disconnect();
  }
}

// ---- process figures read at collection (as prom-client's default metrics read them) ----------

/** Start of the process, seconds since the epoch. */
export const PROCESS_START_SECONDS = (performance.timeOrigin || Date.now() - process.uptime() * 1000) / 1000;

/** VmRSS, VmSize and VmData of /proc/self/status in bytes (Linux), or undefined. */
export function procStatus(): { rss: number; virtual: number; data: number } | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const text = readFileSync('/proc/self/status', 'utf8');
    const kb = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : Number.NaN;
    };
    return { rss: kb('VmRSS'), virtual: kb('VmSize'), data: kb('VmData') };
  } catch {
    return undefined;
  }
}

/** Open file descriptors (Linux), or undefined. */
export function openFds(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    // Minus the one readdirSync itself held open while it read.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

let maxFdsRead = false;
let maxFdsValue: number | undefined;

/** The soft limit on open file descriptors (Linux), or undefined. */
export function maxFds(): number | undefined {
  if (!maxFdsRead) {
    maxFdsRead = true;
    try {
      const line = readFileSync('/proc/self/limits', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('Max open files'));
      const soft = line === undefined ? Number.NaN : Number(line.split(/\s{2,}/)[1]);
      maxFdsValue = Number.isFinite(soft) ? soft : undefined;
    } catch {
      maxFdsValue = undefined;
    }
  }
  return maxFdsValue;
}

/** Counts of strings, e.g. active resources by type. */
export function countBy(items: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(item, (out.get(item) ?? 0) + 1);
  return out;
}
