// The cluster primary's windowed figures and dashboard. A primary has no tick of its own: it samples
// the merged reports every intervalMs and derives what a monitor's tick derives — request rate,
// error ratio, quantiles of the last interval — as differences between two successive samples.
// Merged counts never go backwards (an exited worker's last counts stay in them), so every
// difference is >= 0 and a quantile of the difference is the quantile of that interval's records.
import { quantileOfBuckets } from '../core/buckets.js';
import { resolveTargets } from '../core/config.js';
import {
  DASHBOARD_FIELDS,
  type DashboardField,
  type DashboardFrame,
  type DashboardSource,
  type HistoryColumns,
  type HistoryQuery,
  type Resolution,
  type SeriesRow,
} from './dashboard-handler.js';
import { exposedLabels } from '../export/collect-families.js';
import { addCounts, type SeriesPart, spanAt } from '../export/merge.js';
import type { Metric, MetricFamily } from '../core/family-model.js';
import { compareWithTargets } from '../analysis/targets.js';
import type { IntervalFigures } from '../time/tick.js';
import { labelsFromKey } from '../record/recorder.js';
import { COUNTER_FIELDS } from '../time/totals.js';
import type { Clock, Labels, PerformanceSummary, PerformanceTargets } from '../core/types.js';

/** A worker as the dashboard lists it. */
export interface WorkerRow {
  id: number;
  pid: number | null;
  /** `live`: answered the last sample; `late`: counted with an older report; `exited`: gone, its last counts kept. */
  state: 'live' | 'late' | 'exited';
  /** When its last report arrived (ms since the epoch). */
  lastReportAt: number;
  /** Requests in its last report (since it started). */
  requests: number;
  activeConnections: number;
}

/** What the primary hands the sampler at each interval. */
export interface ClusterSample {
  t: number;
  /** Series by key (seriesKey(labels, kind)), the service totals not among them. */
  series: ReadonlyMap<string, SeriesPart>;
  service: SeriesPart | undefined;
  /** Gauges of live workers, for the service (the unlabelled series). */
  activeConnections: number;
  queueDepth: number;
  memoryBytes: number;
  workerUtilization: number;
  workers: WorkerRow[];
}

/** The dashboard's frame on a cluster primary: a monitor's frame plus the workers. */
export interface ClusterDashboardFrame extends DashboardFrame {
  workers: WorkerRow[];
}

export interface ClusterWindowOptions {
  /** Milliseconds between samples: the interval the windowed figures cover. Default 1000. */
  intervalMs?: number;
  /** Samples the dashboard's history keeps (one per interval). Default 300 (5 minutes at 1 s). */
  historyPoints?: number;
  /** Targets the summary is compared with; defaults as a monitor's. */
  targets?: Partial<PerformanceTargets>;
  /** The primary's time (ms since the epoch): samples and rollup periods are stamped with it. Default Date. */
  clock?: Clock;
}

/** Rollup periods, and how many of each the primary keeps (a day of minutes, a week of hours, 30 days). */
const ROLLUPS = [
  ['minute', 60_000, 1440],
  ['hour', 3_600_000, 168],
  ['day', 86_400_000, 30],
] as const;

const GAUGE_FIELDS = ['activeConnections', 'memoryBytes', 'workerUtilization', 'queueDepth'] as const;

/** Chart points in a fixed ring, with each point's requests and failures for reducing runs of them. */
class PointRing {
  private readonly t: Float64Array;
  private readonly columns: Record<DashboardField, Float64Array>;
  private readonly requests: Float64Array;
  private readonly errors: Float64Array;
  private stored = 0;
  private next = 0;

  constructor(private readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.columns = {} as Record<DashboardField, Float64Array>;
    for (const f of DASHBOARD_FIELDS) this.columns[f] = new Float64Array(capacity);
    this.requests = new Float64Array(capacity);
    this.errors = new Float64Array(capacity);
  }

  get size(): number {
    return this.stored;
  }

  push(t: number, point: Record<DashboardField, number>, requests: number, errors: number): void {
    this.t[this.next] = t;
    for (const f of DASHBOARD_FIELDS) this.columns[f][this.next] = point[f];
    this.requests[this.next] = requests;
    this.errors[this.next] = errors;
    this.next = (this.next + 1) % this.capacity;
    this.stored = Math.min(this.stored + 1, this.capacity);
  }

  read(resolution: Resolution, sinceMs: number | undefined, query: HistoryQuery | undefined): HistoryColumns {
    const fields = {} as Record<DashboardField, number[]>;
    for (const f of DASHBOARD_FIELDS) fields[f] = [];
    const t: number[] = [];
    const picked: number[] = [];
    for (let k = 0; k < this.stored; k++) {
      const at = (this.next - this.stored + k + this.capacity) % this.capacity;
      const time = this.t[at];
      if (sinceMs !== undefined && time < sinceMs) continue;
      if (query?.untilMs !== undefined && time > query.untilMs) continue;
      picked.push(at);
    }
    // Past maxPoints, runs of consecutive points become one, at the run's last time, as a monitor
    // reduces its own: quantiles and event-loop delay at their highest (never an average of
    // quantiles), the error rate as the run's errors over its requests, rates and gauges averaged.
    const per = Math.max(1, Math.ceil(picked.length / (query?.maxPoints ?? picked.length)));
    for (let k = 0; k < picked.length; k += per) {
      const run = picked.slice(k, k + per);
      t.push(this.t[run[run.length - 1]]);
      for (const f of DASHBOARD_FIELDS) {
        const values = run.map((at) => this.columns[f][at]);
        if (run.length === 1) fields[f].push(values[0]);
        else if (f === 'p50' || f === 'p95' || f === 'p99' || f === 'eventLoopDelayMs')
          fields[f].push(values.reduce((a, b) => (Number.isNaN(b) || b <= a ? a : b), Number.NaN));
        else if (f === 'errorRate') {
          const requests = run.reduce((n, at) => n + this.requests[at], 0);
          fields[f].push(requests > 0 ? run.reduce((n, at) => n + this.errors[at], 0) / requests : 0);
        } else fields[f].push(values.reduce((a, b) => a + b, 0) / values.length);
      }
    }
    return { resolution, t, fields, anomalies: [], pointsPerValue: per, pointsInRange: picked.length };
  }
}

/** A rollup in progress: the sample its period starts from, and its gauges' running sums. */
interface Rollup {
  resolution: Exclude<Resolution, 'tick'>;
  ms: number;
  ring: PointRing;
  base: ClusterSample | undefined;
  period: number;
  gaugeSums: Record<(typeof GAUGE_FIELDS)[number], number>;
  gaugeCounts: Record<(typeof GAUGE_FIELDS)[number], number>;
}

const REQUESTS = COUNTER_FIELDS.indexOf('requests');
const ERRORS = COUNTER_FIELDS.indexOf('errors');
const CACHE_HITS = COUNTER_FIELDS.indexOf('cacheHits');
const CACHE_MISSES = COUNTER_FIELDS.indexOf('cacheMisses');
const BACKPRESSURE = COUNTER_FIELDS.indexOf('backpressure');
const QUANTILES = [0.5, 0.95, 0.99, 0.999];

/**
 * Latency quantiles (ms) of the records in `cur` and not in `prev` (all of `cur` without one):
 * nearest rank over the difference of the bucket counts at the coarser of the two scales, reported
 * at the bucket's log-midpoint and clamped to the recorded min/max, as snapshotQuantile does.
 * NaN when the interval holds no record.
 */
export function differenceQuantiles(cur: SeriesPart, prev: SeriesPart | undefined, qs: readonly number[]): number[] {
  // A series nothing was recorded into since the last sample costs nothing more.
  if (cur.count === 0 || (prev !== undefined && prev.count === cur.count)) return qs.map(() => Number.NaN);
  const schema = prev ? Math.min(cur.schema, prev.schema) : cur.schema;
  const { lo, counts } = spanAt(prev ? [cur, prev] : [cur], schema);
  addCounts(counts, lo, schema, cur, 1);
  let zero = cur.zeroCount;
  if (prev) {
    addCounts(counts, lo, schema, prev, -1);
    zero -= prev.zeroCount;
  }
  zero = Math.max(0, zero);
  let n = zero;
  for (let k = 0; k < counts.length; k++) {
    if (counts[k] < 0) counts[k] = 0; // a zero threshold that grew moved counts out of a bucket
    n += counts[k];
  }
  const walk = {
    total: n,
    zeroCount: zero,
    scale: schema,
    n: counts.length,
    indexAt: (k: number) => lo + k,
    countAt: (k: number) => counts[k],
    minMs: cur.minMs,
    maxMs: cur.maxMs,
  };
  return qs.map((q) => quantileOfBuckets(walk, q));
}

/** The part of a monitor's interval figures the primary can compute from merged samples. */
type Interval = Pick<
  IntervalFigures,
  'seconds' | 'requests' | 'errors' | 'rps' | 'errorRate' | 'p50' | 'p95' | 'p99' | 'p999'
>;

function interval(cur: SeriesPart, prev: SeriesPart | undefined, seconds: number): Interval {
  const requests = Math.max(0, cur.counters[REQUESTS] - (prev?.counters[REQUESTS] ?? 0));
  const errors = Math.max(0, cur.counters[ERRORS] - (prev?.counters[ERRORS] ?? 0));
  const [p50, p95, p99, p999] = differenceQuantiles(cur, prev, QUANTILES);
  return {
    seconds,
    requests,
    errors,
    rps: seconds > 0 ? requests / seconds : Number.NaN,
    errorRate: requests > 0 ? errors / requests : 0,
    p50,
    p95,
    p99,
    p999,
  };
}

const delta = (cur: SeriesPart, prev: SeriesPart | undefined, field: number) =>
  Math.max(0, cur.counters[field] - (prev?.counters[field] ?? 0));

/**
 * Samples a cluster primary's merged reports every `intervalMs` and serves them as a
 * DashboardSource, and as the windowed families of the primary's exposition. Bounded: it keeps the
 * last sample and `historyPoints` chart points.
 */
export class ClusterWindow implements DashboardSource {
  readonly intervalMs: number;
  private readonly targets: PerformanceTargets;
  private readonly clock: Clock;
  private readonly ticks: PointRing;
  private readonly rollups: Rollup[];
  private prev: ClusterSample | undefined;
  private last: ClusterDashboardFrame | undefined;
  private rows = new Map<
    string,
    { labels: Labels; exposed: Labels; kind: string | undefined; w: Interval; part: SeriesPart }
  >();
  private peak = 0;
  private readonly startedAt: number;
  private readonly listeners = new Set<(frame: DashboardFrame) => void>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly take: () => Promise<ClusterSample>,
    options: ClusterWindowOptions = {},
  ) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const intervalMs = options.intervalMs ?? 1000;
    if (typeof intervalMs !== 'number' || !(intervalMs >= 10) || !Number.isFinite(intervalMs))
      throw new RangeError(`options.intervalMs must be a finite number >= 10 (got ${String(intervalMs)})`);
    const historyPoints = options.historyPoints ?? 300;
    if (!Number.isInteger(historyPoints) || historyPoints < 1 || historyPoints > 100_000)
      throw new RangeError(
        `options.historyPoints must be a whole number from 1 to 100000 (got ${String(historyPoints)})`,
      );
    const clock = options.clock ?? Date;
    if (clock === null || (typeof clock !== 'object' && typeof clock !== 'function') || typeof clock.now !== 'function')
      throw new TypeError('options.clock must be an object with a now() method returning milliseconds');
    this.intervalMs = intervalMs;
    this.targets = resolveTargets(options.targets ?? {});
    this.clock = clock;
    this.ticks = new PointRing(historyPoints);
    this.rollups = ROLLUPS.map(([resolution, ms, capacity]) => ({
      resolution,
      ms,
      ring: new PointRing(capacity),
      base: undefined,
      period: 0,
      gaugeSums: { activeConnections: 0, memoryBytes: 0, workerUtilization: 0, queueDepth: 0 },
      gaugeCounts: { activeConnections: 0, memoryBytes: 0, workerUtilization: 0, queueDepth: 0 },
    }));
    this.startedAt = clock.now();
  }

  /** The primary's time now, as samples are stamped. */
  now(): number {
    return this.clock.now();
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Takes a first sample at once (the baseline of the first interval), then one every intervalMs. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  /** One sample: skipped while the previous one still waits for workers. */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    let s: ClusterSample;
    try {
      s = await this.take();
    } catch {
      this.stop(); // the primary's collector was closed
      return;
    } finally {
      this.busy = false;
    }
    if (!this.timer) return;
    this.advance(s);
  }

  /** Takes in one sample: a new interval from the previous one. */
  advance(s: ClusterSample): void {
    const prev = this.prev;
    this.prev = s;
    const seconds = prev ? (s.t - prev.t) / 1000 : 0;
    const rows = new Map<
      string,
      { labels: Labels; exposed: Labels; kind: string | undefined; w: Interval; part: SeriesPart }
    >();
    for (const [key, part] of s.series) {
      const { labels, kind } = this.rows.get(key) ?? labelsFromKey(key);
      rows.set(key, {
        labels,
        exposed: exposedLabels(labels),
        kind,
        w: interval(part, prev?.series.get(key), seconds),
        part,
      });
    }
    this.rows = rows;
    const service = s.service;
    const w = service ? interval(service, prev?.service, seconds) : undefined;
    if (w && Number.isFinite(w.rps)) this.peak = Math.max(this.peak, w.rps);
    const point = {} as Record<DashboardField, number>;
    for (const f of DASHBOARD_FIELDS) point[f] = Number.NaN;
    if (prev) {
      // No report yet is no request yet: a rate of 0, quantiles of nothing.
      const hits = service ? delta(service, prev.service, CACHE_HITS) : 0;
      const misses = service ? delta(service, prev.service, CACHE_MISSES) : 0;
      Object.assign(point, {
        rps: w ? w.rps : 0,
        p50: w?.p50 ?? Number.NaN,
        p95: w?.p95 ?? Number.NaN,
        p99: w?.p99 ?? Number.NaN,
        errorRate: w ? w.errorRate : 0,
        cacheHitRatio: hits + misses > 0 ? hits / (hits + misses) : Number.NaN,
        backpressure: service && seconds > 0 ? delta(service, prev.service, BACKPRESSURE) / seconds : 0,
      });
    }
    point.activeConnections = s.activeConnections;
    point.memoryBytes = s.memoryBytes;
    point.workerUtilization = s.workerUtilization;
    point.queueDepth = s.queueDepth;
    this.last = this.frame(s, point, w, service);
    this.roll(s, prev, point);
    // The first sample is only the baseline: a point needs an interval.
    if (prev) {
      this.ticks.push(s.t, point, w?.requests ?? 0, w?.errors ?? 0);
      for (const listener of this.listeners) listener(this.last);
    }
  }

  /**
   * Closes the rollup periods that `s` is past: a period's point is the difference between the
   * last sample before it and the last sample in it (so its quantiles are exact for the records
   * between them), stamped with the period's end; gauges are the mean of its samples.
   */
  private roll(s: ClusterSample, prev: ClusterSample | undefined, point: Record<DashboardField, number>): void {
    for (const r of this.rollups) {
      const period = Math.floor(s.t / r.ms);
      if (r.base !== undefined && prev !== undefined && period !== r.period && prev !== r.base) {
        const seconds = (prev.t - r.base.t) / 1000;
        const out = {} as Record<DashboardField, number>;
        for (const f of DASHBOARD_FIELDS) out[f] = Number.NaN;
        const w = prev.service ? interval(prev.service, r.base.service, seconds) : undefined;
        if (prev.service) {
          const hits = delta(prev.service, r.base.service, CACHE_HITS);
          const misses = delta(prev.service, r.base.service, CACHE_MISSES);
          out.cacheHitRatio = hits + misses > 0 ? hits / (hits + misses) : Number.NaN;
          out.backpressure = seconds > 0 ? delta(prev.service, r.base.service, BACKPRESSURE) / seconds : Number.NaN;
        }
        Object.assign(out, {
          rps: w ? w.rps : 0,
          p50: w?.p50 ?? Number.NaN,
          p95: w?.p95 ?? Number.NaN,
          p99: w?.p99 ?? Number.NaN,
          errorRate: w ? w.errorRate : 0,
        });
        for (const f of GAUGE_FIELDS) {
          out[f] = r.gaugeCounts[f] > 0 ? r.gaugeSums[f] / r.gaugeCounts[f] : Number.NaN;
          r.gaugeSums[f] = 0;
          r.gaugeCounts[f] = 0;
        }
        r.ring.push((r.period + 1) * r.ms, out, w?.requests ?? 0, w?.errors ?? 0);
        r.base = prev;
      }
      if (r.base === undefined || period !== r.period) {
        r.base ??= s;
        r.period = period;
      }
      for (const f of GAUGE_FIELDS) {
        if (Number.isNaN(point[f])) continue;
        r.gaugeSums[f] += point[f];
        r.gaugeCounts[f]++;
      }
    }
  }

  private frame(
    s: ClusterSample,
    point: Record<DashboardField, number>,
    w: Interval | undefined,
    service: SeriesPart | undefined,
  ): ClusterDashboardFrame {
    const total = service?.counters[REQUESTS] ?? 0;
    const failed = service?.counters[ERRORS] ?? 0;
    const [p50, p95, p99, p999] = service
      ? differenceQuantiles(service, undefined, QUANTILES)
      : [Number.NaN, Number.NaN, Number.NaN, Number.NaN];
    const hits = service?.counters[CACHE_HITS] ?? 0;
    const looked = hits + (service?.counters[CACHE_MISSES] ?? 0);
    const summary: PerformanceSummary = {
      totalRequests: total,
      successfulRequests: total - failed,
      failedRequests: failed,
      errorsByType: { ...(service?.errorsByType ?? {}) },
      throughputRps: w && Number.isFinite(w.rps) ? w.rps : 0,
      avgLatencyMs: service && service.count > 0 ? service.sum / 1e-3 / service.count : 0,
      p50LatencyMs: p50,
      p95LatencyMs: p95,
      p99LatencyMs: p99,
      p999LatencyMs: p999,
      successRate: total > 0 ? (total - failed) / total : 1,
      memoryUsageMb: s.memoryBytes / 1_048_576,
      activeConnections: s.activeConnections,
      workerUtilization: s.workerUtilization,
      cacheEfficiency: looked > 0 ? hits / looked : Number.NaN,
      uptimeSeconds: (s.t - this.startedAt) / 1000,
    };
    const series: SeriesRow[] = [];
    for (const r of this.rows.values()) {
      const requests = r.part.counters[REQUESTS];
      if (requests === 0) continue;
      const labels = r.kind === undefined ? r.labels : { ...r.labels, kind: r.kind };
      series.push({
        labels,
        requests,
        rps: r.w.rps,
        p50: r.w.p50,
        p95: r.w.p95,
        p99: r.w.p99,
        errorRate: r.w.errorRate,
      });
    }
    return {
      t: s.t,
      point,
      summary,
      comparison: compareWithTargets(summary, this.targets),
      targets: this.targets,
      series,
      anomalies: [],
      errorsByType: summary.errorsByType,
      workers: s.workers,
    };
  }

  current(): ClusterDashboardFrame {
    if (this.last) return this.last;
    // Before the first sample: a frame with nothing in it yet.
    const point = {} as Record<DashboardField, number>;
    for (const f of DASHBOARD_FIELDS) point[f] = Number.NaN;
    return this.frame(
      {
        t: this.clock.now(),
        series: new Map(),
        service: undefined,
        activeConnections: 0,
        queueDepth: 0,
        memoryBytes: 0,
        workerUtilization: Number.NaN,
        workers: [],
      },
      point,
      undefined,
      undefined,
    );
  }

  /**
   * Points of the last `historyPoints` intervals (`tick`), or of closed rollup periods: a day of
   * minutes, a week of hours, 30 days.
   */
  history(resolution: Resolution, sinceMs?: number, query?: HistoryQuery): HistoryColumns {
    const ring = resolution === 'tick' ? this.ticks : this.rollups.find((r) => r.resolution === resolution)?.ring;
    if (!ring) throw new RangeError(`resolution must be 'tick', 'minute', 'hour' or 'day' (got ${String(resolution)})`);
    return ring.read(resolution, sinceMs, query);
  }

  onTick(listener: (frame: DashboardFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The windowed families a monitor's exposition has, over the last interval sampled: per series
   * `requests_per_second`, `error_ratio` and the window quantiles, and `peak_requests_per_second`.
   * None before the first interval.
   */
  families(): MetricFamily[] {
    if (this.ticks.size === 0) return [];
    const summaries: Metric[] = [];
    const rates: Metric[] = [];
    const ratios: Metric[] = [];
    for (const r of this.rows.values()) {
      if (r.kind !== undefined) continue;
      if (Object.keys(r.labels).length > 0 && r.part.counters.every((v) => v === 0)) continue;
      const { w, part } = r;
      summaries.push({
        labels: r.exposed,
        summary: {
          count: part.count,
          sum: part.sum,
          quantiles: [w.p50, w.p95, w.p99, w.p999].map((v, i) => ({ quantile: QUANTILES[i], value: v / 1000 })),
        },
      });
      rates.push({ labels: r.exposed, value: w.rps });
      ratios.push({ labels: r.exposed, value: w.errorRate });
    }
    const s = this.intervalMs / 1000;
    const how = `over the last ${s} s, from the difference of the primary's last two samples of all workers`;
    return [
      {
        name: 'request_duration_window_seconds',
        help: `Request latency quantiles ${how} (NaN when the interval is empty).`,
        type: 'summary',
        unit: 'seconds',
        metrics: summaries,
      },
      { name: 'requests_per_second', help: `Request rate ${how}.`, type: 'gauge', metrics: rates },
      {
        name: 'error_ratio',
        help: `Share of requests that failed ${how}.`,
        type: 'gauge',
        unit: 'ratio',
        metrics: ratios,
      },
      {
        name: 'peak_requests_per_second',
        help: `Highest request rate of one ${s} s interval since the primary started sampling, all workers together.`,
        type: 'gauge',
        metrics: [{ labels: {}, value: this.peak }],
      },
    ];
  }
}
