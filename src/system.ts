// Process metrics sampled once per tick: memory, CPU, event loop, GC. No user call needed.
import { type EventLoopUtilization, type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';

import { RESERVED_SERIES } from './layout.js';
import type { Labels } from './types.js';

/**
 * The series the monitor keeps for runtime histograms, in its reserved slots (maxSeries + i):
 * event-loop delay, then GC pauses by kind (prom-client's kind names).
 */
export const RUNTIME_SERIES: readonly { kind: string; labels: Labels }[] = [
  { kind: 'runtime_eventloop_delay', labels: {} },
  { kind: 'runtime_gc', labels: { kind: 'minor' } },
  { kind: 'runtime_gc', labels: { kind: 'major' } },
  { kind: 'runtime_gc', labels: { kind: 'incremental' } },
  { kind: 'runtime_gc', labels: { kind: 'weakcb' } },
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

export class SystemSampler {
  private readonly delay: IntervalHistogram;
  private readonly gc: PerformanceObserver;
  private gcPauseMs = 0;
  private lastCpu = process.cpuUsage();
  private lastWall = performance.now();
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  peakRss = 0;

  constructor() {
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcPauseMs += e.duration;
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
    const ns = (v: number) => (Number.isFinite(v) && v > 0 ? v / 1e6 : 0);
    // percentile() walks the whole HDR histogram; with no samples (a blocked loop, or ticks driven
    // by hand) there is nothing to walk.
    const sampled = this.delay.count > 0;
    const sample: SystemSample = {
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
      eventLoopDelayP50Ms: sampled ? ns(this.delay.percentile(50)) : 0,
      eventLoopDelayP99Ms: sampled ? ns(this.delay.percentile(99)) : 0,
      eventLoopDelayMaxMs: sampled ? ns(this.delay.max) : 0,
      eventLoopUtilization: elu.utilization,
      gcPauseMsPerSec: (this.gcPauseMs / elapsedMs) * 1000,
      activeHandles: process.getActiveResourcesInfo().length,
    };
    if (sampled) this.delay.reset();
    this.gcPauseMs = 0;
    return sample;
  }

  close(): void {
    this.delay.disable();
    this.gc.disconnect();
  }
}
