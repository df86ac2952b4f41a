// What the outputs read of a monitor: the exposition, the dashboard source, reports, snapshots,
// the cluster and OpenTelemetry bridges, the prom-client bridge and the HTTP server depend on this
// interface only, never on the monitor's class, so their imports run down the layers and the
// monitor (the facade above them) can hand itself to them.
import type { HistName, Layout, MemoryFootprint } from '../core/layout.js';
import type { NativeHistogram } from '../core/family-model.js';
import type {
  Labels,
  MonitoringConfig,
  PerformanceMetrics,
  PerformanceSummary,
  PerformanceTargets,
  Recorder,
  TargetComparison,
} from '../core/types.js';
import type { SessionStats } from '../record/sessions.js';
import type { HistoryColumns, HistoryPoint, Resolution } from '../time/history.js';
import type { PersistenceOptions } from '../time/persistence.js';
import type { DelayStats, SystemSample } from '../time/system.js';
import type { IntervalFigures } from '../time/tick.js';
import type { Totals } from '../time/totals.js';
import type { AnomalyEvent } from './analysis.js';

export interface SeriesInfo {
  index: number;
  labels: Labels;
  overflow: boolean;
  /** Whether it adds into the monitor-wide totals. */
  inTotals: boolean;
  /**
   * For the series an integration makes (`'grpc_server'`, `'grpc_client_handled'`, ...), what it
   * holds: the exposition writes these into families of their own. Undefined for users' series.
   */
  kind?: string;
}

export interface TickEvent {
  t: number;
  point: HistoryPoint;
  interval: IntervalFigures;
  system: SystemSample;
}

/** The figures of `getCurrentMetrics()`: the interval's, plus the latency quantiles since start. */
export type CurrentMetrics = PerformanceMetrics & {
  latencySinceStart: { p50: number; p95: number; p99: number; p999: number };
  latencyCount: number;
};

/** A series by index, or the recorder bound to it. */
type SeriesRef = number | Recorder;

export interface MonitorReader {
  readonly config: MonitoringConfig & PersistenceOptions;
  seriesList(): SeriesInfo[];
  totals(series?: SeriesRef): Totals;
  windowFigures(series?: SeriesRef, totals?: Totals): IntervalFigures;
  errorsByType(series?: SeriesRef): Record<string, number>;
  nativeHistogram(series: SeriesRef, name?: HistName, alloc?: (n: number) => Float64Array): NativeHistogram;
  inexactCounters(): readonly string[];
  recentAnomalies(): AnomalyEvent[];
  getCurrentMetrics(): CurrentMetrics;
  getPerformanceSummary(): PerformanceSummary;
  compareWithTargets(summary?: PerformanceSummary, targets?: Partial<PerformanceTargets>): TargetComparison;
  getHistory(options?: { resolution?: Resolution; since?: number; until?: number; maxPoints?: number }): HistoryColumns;
  sessionStats(top?: number): SessionStats;
  memoryFootprint(): MemoryFootprint;
  /** The cumulative state as compact bytes (see export/snapshot). */
  snapshot(): Uint8Array;
  on(event: 'tick', listener: (tick: TickEvent) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'tick', listener: (tick: TickEvent) => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * What outputs and tests read of a monitor that is not the user's API, so not a member of the
 * monitor's class: reached through internalsOf(), which src/index.ts does not export.
 */
export interface MonitorInternals {
  readonly layout: Layout;
  /** When the monitor was created (its clock, ms). */
  readonly startedAt: number;
  /** Whether close() has run. */
  isClosed(): boolean;
  /**
   * One series' totals and latency histogram read together: `totals.latencyCount` is
   * `latency.count`, even while threads record. `alloc` as for nativeHistogram.
   */
  readSeries(series: SeriesRef, alloc?: (n: number) => Float64Array): { totals: Totals; latency: NativeHistogram };
  /** A problem outside the record path: an 'error' event if anyone listens, else a process warning. */
  emitProblem(err: Error): void;
  /**
   * The latency histogram of all the series in the totals, merged: the distribution behind the
   * summary, each request once. `alloc` as for nativeHistogram.
   */
  totalLatencyHistogram(alloc?: (n: number) => Float64Array): NativeHistogram;
  /**
   * A runtime histogram (RUNTIME_SERIES order: event-loop delay, then GC pauses by kind), kept in
   * the monitor's reserved series: cumulative, in seconds. `alloc` as for nativeHistogram.
   */
  runtimeHistogram(i: number, alloc?: (n: number) => Float64Array): NativeHistogram;
  /** Event-loop delays recorded since the previous call (what prom-client's lag gauges report), or undefined for none. */
  eventLoopDelaysSinceLastCollect(): DelayStats | undefined;
  /** The last event-loop delay measured (ms). */
  lastEventLoopDelayMs(): number;
  /** Highest one-tick request rate since start. */
  peakRps(): number;
  /** The last tick's event (what 'tick' listeners got), undefined before the first tick. */
  lastTickEvent(): TickEvent | undefined;
}

const internals = new WeakMap<MonitorReader, MonitorInternals>();

/** Registers a monitor's internals (its constructor does, once). */
export function setInternals(monitor: MonitorReader, of: MonitorInternals): void {
  internals.set(monitor, of);
}

/** A monitor's internals; a TypeError for anything but a StreamPerformanceMonitor. */
export function internalsOf(monitor: MonitorReader): MonitorInternals {
  const found = internals.get(monitor);
  if (found === undefined) throw new TypeError('monitor must be a StreamPerformanceMonitor');
  return found;
}

// Set while a reader that exports min and max (the OpenTelemetry bridge) collects: two more core
// calls and a larger object per histogram are not what every scrape should pay.
let extremes = false;

/** Whether the histograms read now should carry their min and max. */
export const extremesWanted = (): boolean => extremes;

/** Runs `read` with the histograms it reads carrying their min and max. */
export function withExtremes<T>(read: () => T): T {
  const was = extremes;
  extremes = true;
  try {
    return read();
  } finally {
    extremes = was;
  }
}
