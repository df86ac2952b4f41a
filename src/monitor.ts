// StreamPerformanceMonitor: owns the shared memory, records through its default series, runs the
// tick, and answers reads. Outputs (exposition, dashboard, reports, bridges) read it through
// MonitorReader (analysis/monitor-reader.ts), never through this class; nothing here reaches back
// into the record path.
import { EventEmitter } from 'node:events';
import { describe, resolveConfig, resolveTargets, type UserConfig } from './core/config.js';
import { type HistoryColumns, MAX_POINTS_LIMIT, type Resolution } from './time/history.js';
import {
  computeLayout,
  type HistName,
  initMemory,
  type Layout,
  type MemoryFootprint,
  memoryFootprint,
} from './core/layout.js';
import type { NativeHistogram } from './core/family-model.js';
import { HistogramExporter } from './core/histogram-export.js';
import {
  attach as attachToHandle,
  LOCAL_CONTEXT,
  labelsFromKey,
  type MonitorHandle,
  OVERFLOW_LABELS,
  RecordingContext,
  SERIES_NOT_IN_TOTALS,
  SeriesRecorder,
  seriesKey,
} from './record/recorder.js';
import { type SessionStats, SessionTracker, UNTRACKED_SESSION } from './record/sessions.js';
import { RUNTIME_SERIES, SystemSampler } from './time/system.js';
import { Aggregator, type IntervalFigures } from './time/tick.js';
import {
  checkPersistenceOptions,
  type HistoryPersistence,
  type PersistenceOptions,
  setupPersistence,
  splitPersistenceOptions,
} from './time/persistence.js';
import { COUNTER_FIELDS, TotalsReader, type Totals } from './time/totals.js';
import type {
  Labels,
  MonitoringConfig,
  PerformanceSummary,
  PerformanceTargets,
  Recorder,
  ExemplarIds,
  SeriesOptions,
  Session,
  TargetComparison,
} from './core/types.js';
import { type Core, coreModule, createMemory, instantiate, type WasmMemory } from './core/wasm.js';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { distUrl } from './core/module-url.js';
import { Analysis, type AnomalyEvent, type MovingAverages, type TrendReport } from './analysis/analysis.js';
import { type Report, Reporter } from './analysis/report.js';
import { compareWithTargets } from './analysis/targets.js';
import { type InstrumentStreamOptions, instrumentStream } from './integrations/streams.js';
import { type PoolLike, type PoolTracker, type TrackPoolOptions, trackPool } from './integrations/pool.js';
import type { Rendered } from './export/exposition.js';
import {
  type CurrentMetrics,
  extremesWanted,
  type MonitorReader,
  setInternals,
  type SeriesInfo,
  type TickEvent,
} from './analysis/monitor-reader.js';
import { type MetricsOptions, renderMetrics, type ServeOptions, type Served, serve } from './serve/serve.js';
import { encodeSnapshot, takeSnapshot } from './export/snapshot.js';
import { type PrometheusRulesOptions, prometheusRules } from './export/prometheus-rules.js';
import { ExemplarStore } from './core/exemplars.js';
import { setProblemSink } from './core/problems.js';

// pino is loaded when a monitor first needs its own logger: a service that passes its logger, or
// false, does not pay for loading a second one (about 6 MB of RSS).
const requireHere = createRequire(distUrl);
function defaultLogger(debug: boolean): Logger {
  const { pino } = requireHere('pino') as typeof import('pino');
  return pino({ name: 'streamgauge', level: debug ? 'debug' : 'info' });
}

/** Count figures (the counters but the sums of ms): exact up to 2^53 − 1 (Number.MAX_SAFE_INTEGER); past it, read as the nearest double. */
const COUNT_FIGURES = COUNTER_FIELDS.filter((f) => !f.endsWith('SumMs'));

export class StreamPerformanceMonitor extends EventEmitter implements Recorder, MonitorReader {
  /** The resolved configuration; with historyFile (absolute) and historySaveInterval when history is saved. */
  readonly config: MonitoringConfig & PersistenceOptions;
  readonly #layout: Layout;
  private readonly memory: WasmMemory;
  private readonly ctx: RecordingContext;
  private readonly root: SeriesRecorder;
  /** The root series' latency lane for this thread (0 until it has one): see recordLatency. */
  private rootLane = 0;
  private readonly core: Core;
  /** The core's recordOwned, held here: a call through this.core costs the record one more load and check. */
  private readonly recordOwned: Core['recordOwned'];
  private readonly reader: TotalsReader;
  private readonly histograms: HistogramExporter;
  /** Each series' labels and kind, parsed once (a series' slot keeps its label set for good). */
  private readonly labelsOfSeries: { labels: Labels; kind: string | undefined }[] = [];
  private readonly aggregator: Aggregator;
  private readonly system: SystemSampler;
  private readonly sessions: SessionTracker;
  /** When the monitor was created (its clock, ms). */
  private readonly startedAt: number;
  private timer: NodeJS.Timeout | undefined;
  private lastTick: TickEvent | undefined;
  private closed = false;
  private readonly analysis: Analysis;
  private readonly reporter: Reporter;
  private readonly logger: Logger | undefined;

  private readonly persistence: HistoryPersistence | undefined;
  private readonly exemplars: ExemplarStore;

  constructor(config: UserConfig & PersistenceOptions = {}) {
    super();
    const [settings, persistence] = splitPersistenceOptions(config);
    const saved = checkPersistenceOptions(persistence);
    this.config = saved === undefined ? resolveConfig(settings) : { ...resolveConfig(settings), ...saved };
    this.#layout = computeLayout(this.config);
    this.startedAt = this.config.clock.now();
    setInternals(this, {
      layout: this.#layout,
      startedAt: this.startedAt,
      isClosed: () => this.closed,
      readSeries: (series, alloc) => this.#readSeries(series, alloc),
      emitProblem: (err) => this.#emitProblem(err),
      totalLatencyHistogram: (alloc) => this.#totalLatencyHistogram(alloc),
      runtimeHistogram: (i, alloc) => this.#runtimeHistogram(i, alloc),
      eventLoopDelaysSinceLastCollect: () => this.system.delaysSinceLastCollect(),
      lastEventLoopDelayMs: () => this.system.lastDelayMs,
      peakRps: () => this.aggregator.peakRps,
      lastTickEvent: () => this.lastTick,
    });
    setProblemSink(this, (err) => this.#emitProblem(err));
    this.memory = createMemory(this.#layout);
    initMemory(this.memory.buffer, this.#layout);
    const module = coreModule();
    this.ctx = new RecordingContext(
      instantiate(module, this.memory, this.#layout),
      this.memory,
      module,
      this.#layout,
      this.config.invalidValues === 'count',
    );
    this.ctx.tables.series.reserve(0, seriesKey({}));
    this.ctx.tables.series.reserve(this.ctx.tables.series.overflowSlot, seriesKey(OVERFLOW_LABELS));
    this.ctx.tables.errors.reserve(this.ctx.tables.errors.overflowSlot, 'other');
    // The runtime's own series, after the users' maxSeries: out of the totals and of seriesList().
    for (const [i, r] of RUNTIME_SERIES.entries())
      this.ctx.tables.series.reserve(this.config.maxSeries + i, seriesKey(r.labels, r.kind), SERIES_NOT_IN_TOTALS);
    this.exemplars = new ExemplarStore(this.config.clock, this.config.histogramRange.minMs);
    this.ctx.exemplars = this.exemplars;
    this.root = this.ctx.root;
    this.core = this.ctx.core;
    this.recordOwned = this.core.recordOwned;
    this.reader = new TotalsReader(this.ctx.core, this.#layout, this.memory.buffer);
    this.histograms = new HistogramExporter(this.ctx.core, this.#layout, this.memory.buffer);
    this.aggregator = new Aggregator(
      this.ctx.core,
      this.#layout,
      this.reader,
      this.memory.buffer,
      () => this.activeSeries(),
      (s) => (this.ctx.tables.series.flags(s) & SERIES_NOT_IN_TOTALS) === 0,
    );
    const reservedAt = (i: number) => this.config.maxSeries + i;
    this.system = new SystemSampler(
      {
        recorders: RUNTIME_SERIES.map((_, i) => this.ctx.reservedSeries(reservedAt(i))),
        histogram: (i) => this.nativeHistogram(reservedAt(i)),
        sumMs: (i) => this.reader.read(reservedAt(i)).latencySumMs,
      },
      this.config.eventLoopResolution,
    );
    this.sessions = new SessionTracker(
      () => this.config.clock.now(),
      this.config.sessionIdleTimeout,
      this.config.maxSessions,
    );
    this.aggregator.baseline(this.startedAt);
    // historyFile: restore the saved history now, save it every historySaveInterval and on close().
    const target = {
      buffer: this.memory.buffer,
      layout: this.#layout,
      config: this.config,
      aggregator: this.aggregator,
    };
    this.persistence = saved === undefined ? undefined : setupPersistence(this, target, saved);
    const { logger } = this.config;
    this.logger = logger === false ? undefined : (logger ?? defaultLogger(this.config.enableDetailedLogging));
    this.analysis = new Analysis(this.config, (event, a) => this.emit(event, a), this.logger);
    this.reporter = new Reporter(
      this,
      this.logger,
      this.config,
      {
        anomaliesBetween: (from, to) => this.analysis.anomaliesBetween(from, to),
        trends: () => this.trends(),
      },
      (report) => this.emit('report', report),
    );
    if (this.config.autoStart) this.start();
  }

  // ---- recording (the default series) -------------------------------------------------------

  // The root series' fast path (SeriesRecorder.recordLatency) written out here too: going through
  // this.root costs the hottest call one more object hop, about 1 ns of 9.
  recordLatency(ms: number): void {
    const lane = this.rootLane;
    if (lane !== 0 && typeof ms === 'number' && ms >= 0 && ms <= 1e10 /* MAX_MS, see isMs */)
      this.recordOwned(lane, ms);
    else {
      this.root.recordLatency(ms);
      this.rootLane = this.root.latencyLane;
    }
  }
  recordError(type: string, latencyMs?: number): void {
    this.root.recordError(type, latencyMs);
  }
  recordLatencyWithExemplar(ms: number, exemplar?: ExemplarIds): void {
    this.root.recordLatencyWithExemplar(ms, exemplar);
  }
  recordErrorWithExemplar(type: string, latencyMs: number, exemplar?: ExemplarIds): void {
    this.root.recordErrorWithExemplar(type, latencyMs, exemplar);
  }
  startTimer(): () => number {
    return this.root.startTimer();
  }
  recordStreamSession(connectionId: string, messageCount: number, durationMs: number, bytesProcessed: number): void {
    this.root.recordStreamSession(connectionId, messageCount, durationMs, bytesProcessed);
  }
  recordBatchProcessing(batchSize: number, durationMs: number): void {
    this.root.recordBatchProcessing(batchSize, durationMs);
  }
  recordMessages(count: number, bytes?: number, direction?: 'in' | 'out'): void {
    this.root.recordMessages(count, bytes, direction);
  }
  recordBackpressureEvent(waitMs?: number): void {
    this.root.recordBackpressureEvent(waitMs);
  }
  recordCacheHit(): void {
    this.root.recordCacheHit();
  }
  recordCacheMiss(): void {
    this.root.recordCacheMiss();
  }
  updateCacheHitRatio(ratio: number): void {
    this.root.updateCacheHitRatio(ratio);
  }
  updateMemoryUsage(bytes: number): void {
    this.root.updateMemoryUsage(bytes);
  }
  updateWorkerUtilization(ratio: number): void {
    this.root.updateWorkerUtilization(ratio);
  }
  updateQueueDepth(depth: number): void {
    this.root.updateQueueDepth(depth);
  }
  connectionOpened(): void {
    this.root.connectionOpened();
  }
  connectionClosed(): void {
    this.root.connectionClosed();
  }

  /** A recorder bound to one label set; past `maxSeries` label sets, the overflow series. */
  series(labels: Labels, options?: SeriesOptions): Recorder {
    return this.ctx.series(labels, options);
  }

  /** Opens a tracked stream session (a connection), optionally in a series (made with `options` if new). */
  openSession(connectionId: string, labels?: Labels, options?: SeriesOptions): Session {
    const recorder = labels ? this.ctx.series(labels, options) : this.root;
    // A label set refused under invalidValues 'count' (counted already): a session that records nothing.
    if (!(recorder instanceof SeriesRecorder)) return UNTRACKED_SESSION;
    return this.sessions.open(connectionId, recorder);
  }

  /** Instruments a Node stream (Readable, Writable, Duplex, Transform) in the series `{ stream: name }`; returns the same stream. */
  instrument<S extends object>(stream: S, options: InstrumentStreamOptions): S {
    return instrumentStream(this, stream, options);
  }

  /** Tracks a piscina pool (utilisation, queue, threads, wait and run times, needsDrain) in the series `{ pool: name }`. */
  trackPool(pool: PoolLike, options: TrackPoolOptions): PoolTracker {
    return trackPool(this, pool, options);
  }

  /** A structured-cloneable handle for `attach()` in worker threads. */
  handle(): MonitorHandle {
    return {
      kind: 'streamgauge-handle',
      memory: this.memory,
      module: this.ctx.module,
      layout: this.#layout,
      countInvalid: this.ctx.countInvalid,
      [LOCAL_CONTEXT]: this.ctx,
    };
  }

  // ---- the tick -----------------------------------------------------------------------------

  start(): void {
    if (this.closed) throw new Error('start() after monitor.close(): the monitor is closed');
    if (this.timer) return;
    this.timer = setInterval(() => this.timedTick(), this.config.collectionInterval);
    this.timer.unref();
  }

  /** The message of the last failed timed tick, reported once until a tick succeeds again. */
  private tickProblem: string | undefined;

  /**
   * The timer's tick: a fault in it (a trap in the core, a 'tick' or 'report' listener that throws)
   * must never escape as an uncaught exception into the service being monitored. It is reported
   * (an 'error' event if anyone listens, else a process warning) and the next tick tries again.
   */
  private timedTick(): void {
    try {
      this.tick();
      this.tickProblem = undefined;
    } catch (e) {
      const cause = e instanceof Error ? e : new Error(String(e));
      if (cause.message === this.tickProblem) return;
      this.tickProblem = cause.message;
      this.logger?.error({ err: cause }, 'tick failed');
      const err = Object.assign(
        new Error(`streamgauge: the monitor's tick failed (${cause.name}: ${cause.message}); it keeps ticking`, {
          cause,
        }),
        {
          code: 'ERR_STREAMGAUGE_TICK',
        },
      );
      try {
        this.#emitProblem(err);
      } catch (listenerError) {
        // An 'error' listener that throws: still nothing escapes the timer.
        process.emitWarning(`streamgauge: an 'error' listener threw: ${String(listenerError)}`, {
          code: 'STREAMGAUGE',
        });
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs one aggregation step now (the timer does this every collectionInterval). */
  tick(): TickEvent {
    if (this.closed) throw new Error('tick() after monitor.close(): the monitor is closed');
    const now = this.config.clock.now();
    this.sessions.sweep(now);
    const system = this.system.sample();
    const { point, interval, totals } = this.aggregator.tick(now, system);
    this.checkExact(totals);
    this.lastTick = { t: now, point, interval, system };
    this.analysis.update(now, point);
    this.reporter.onTick(this.lastTick);
    this.emit('tick', this.lastTick);
    return this.lastTick;
  }

  private readonly inexact: string[] = [];

  /** Notes (once each) the count figures whose monitor-wide total has passed 2^53 − 1. */
  private checkExact(totals: Totals): void {
    for (const f of COUNT_FIGURES) {
      if (totals[f] > Number.MAX_SAFE_INTEGER && !this.inexact.includes(f)) {
        this.inexact.push(f);
        const err = Object.assign(
          new Error(
            `streamgauge: the total of ${f} passed 2^53 - 1 (${Number.MAX_SAFE_INTEGER}); from here it is read as the nearest double, not exactly`,
          ),
          { code: 'ERR_STREAMGAUGE_INEXACT' },
        );
        this.#emitProblem(err);
      }
    }
  }

  /** Count figures (Totals fields) whose monitor-wide total has passed 2^53 − 1, and so are no longer exact; checked at each tick. */
  inexactCounters(): readonly string[] {
    return this.inexact;
  }

  // ---- analysis and reports -----------------------------------------------------------------

  /** Recent anomalies (open ones have no `end`), oldest first. */
  recentAnomalies(): AnomalyEvent[] {
    return this.analysis.anomalies();
  }

  /** Simple and exponentially weighted moving averages of rps and latency, and 1/5/15-minute rates. */
  movingAverages(): MovingAverages {
    return this.analysis.movingAverages();
  }

  /** Slope and forecast of rps, p95, p99, error rate, memory and event-loop delay; time to the targets where they apply. */
  trends(): TrendReport[] {
    const t = this.config.targets;
    return this.analysis.trendReports({ memoryBytes: t.targetMemoryMb * 1_048_576, p95: t.targetP95LatencyMs });
  }

  /** A report of the period since the last one, now (also emitted as 'report' and logged). */
  report(): Report {
    return this.reporter.report();
  }

  // ---- reads --------------------------------------------------------------------------------

  /** Indexes of the series in use, the default first and the overflow series last. */
  private activeSeries(): readonly number[] {
    // Slots are claimed in order; the runtime's reserved slots follow the users' maxSeries.
    const n = Math.min(this.ctx.tables.series.used(), this.config.maxSeries);
    if (this.activeList.length !== n + 1) {
      // Made again only when a series is added: the tick asks for it several times a second.
      this.activeList = Object.freeze([...Array.from({ length: n }, (_, i) => i), this.ctx.tables.series.overflowSlot]);
    }
    return this.activeList;
  }

  private activeList: readonly number[] = [];

  /** The series that add into the monitor-wide totals (all but those created with `inTotals: false`). */
  private totalSeries(): readonly number[] {
    const active = this.activeSeries();
    if (this.totalList.from !== active) {
      const table = this.ctx.tables.series;
      this.totalList = {
        from: active,
        list: Object.freeze(active.filter((s) => (table.flags(s) & SERIES_NOT_IN_TOTALS) === 0)),
      };
    }
    return this.totalList.list;
  }

  private totalList: { from: readonly number[]; list: readonly number[] } = { from: [], list: [] };

  /** Every series in use with its labels. */
  seriesList(): SeriesInfo[] {
    const table = this.ctx.tables.series;
    return this.activeSeries().map((index) => {
      // One object per series across calls: writers cache the text of a label set by identity.
      const parsed = (this.labelsOfSeries[index] ??= labelsFromKey(table.key(index) ?? '[]'));
      const info: SeriesInfo = {
        index,
        labels: parsed.labels,
        overflow: index === table.overflowSlot,
        inTotals: (table.flags(index) & SERIES_NOT_IN_TOTALS) === 0,
      };
      if (parsed.kind !== undefined) info.kind = parsed.kind;
      return info;
    });
  }

  /**
   * A series argument as its index: a recorder that this monitor's series() returned, or an index
   * from seriesList() / activeSeries().
   */
  private seriesIndex(series: number | Recorder): number {
    if (typeof series === 'number') {
      if (Number.isInteger(series) && series >= 0 && series < this.#layout.seriesCount) return series;
    } else if (series instanceof SeriesRecorder && series.ctx === this.ctx) return series.index;
    throw new TypeError(
      `series must be a recorder from this monitor's series() or an index from seriesList() (got ${describe(series)})`,
    );
  }

  /** Cumulative totals of one series (a recorder from series(), or an index), or of all together. */
  totals(series?: number | Recorder): Totals {
    return series === undefined ? this.aggregator.totals() : this.reader.read(this.seriesIndex(series));
  }

  /**
   * One series' totals and latency histogram read together: `totals.latencyCount` is
   * `latency.count`, even while threads record (and the histogram is walked once, not twice).
   * `alloc` as for nativeHistogram.
   */
  #readSeries(
    series: number | Recorder,
    alloc?: (n: number) => Float64Array,
  ): { totals: Totals; latency: NativeHistogram } {
    series = this.seriesIndex(series);
    let latency: NativeHistogram | undefined;
    const totals = this.reader.read(series, undefined, (h) => {
      latency = this.nativeHistogram(series, 'latency', alloc);
      // Values counted without a bucket (bucketMemory used up) are requests all the same.
      return latency.count + this.ctx.core.histUnplaced(h);
    });
    return { totals, latency: latency as NativeHistogram };
  }

  /** Figures over the sliding window (`throughputWindow`), read now: all series, or one. */
  windowFigures(series?: number | Recorder, totals?: Totals): IntervalFigures {
    const now = this.config.clock.now();
    return series === undefined
      ? this.aggregator.window(now)
      : this.aggregator.seriesWindow(now, this.seriesIndex(series), totals);
  }

  /** Failed requests by error type, all series together (or one). */
  errorsByType(series?: number | Recorder): Record<string, number> {
    const list = series === undefined ? this.totalSeries() : [this.seriesIndex(series)];
    return this.reader.errorsByType(list, this.ctx.tables.errors);
  }

  /**
   * One series' histogram as native buckets (Prometheus schema = our scale), in the histogram's
   * bucket unit (seconds for durations): the exact data behind every exposition format.
   * `alloc(n)` gives the Float64Array of n elements that the counts go into (default: a new one).
   */
  nativeHistogram(
    series: number | Recorder,
    name: HistName = 'latency',
    alloc: (n: number) => Float64Array = newCounts,
  ): NativeHistogram {
    const index = this.seriesIndex(series);
    const h = this.histograms.read(this.reader.histPtr(index, name), name, alloc, extremesWanted());
    if (name === 'latency') {
      const exemplars = this.exemplars.of(index);
      if (exemplars !== undefined) h.exemplars = exemplars;
    }
    return h;
  }

  /** See MonitorInternals.totalLatencyHistogram. */
  #totalLatencyHistogram(alloc: (n: number) => Float64Array = newCounts): NativeHistogram {
    const h = this.histograms.read(this.aggregator.cumulativeTotal(), 'latency', alloc, extremesWanted());
    const exemplars = this.exemplars.merged(this.totalSeries());
    if (exemplars !== undefined) h.exemplars = exemplars;
    return h;
  }

  /** See MonitorInternals.runtimeHistogram. */
  #runtimeHistogram(i: number, alloc?: (n: number) => Float64Array): NativeHistogram {
    if (!Number.isInteger(i) || i < 0 || i >= RUNTIME_SERIES.length)
      throw new RangeError(`i must be an integer from 0 to ${RUNTIME_SERIES.length - 1}`);
    return this.nativeHistogram(this.config.maxSeries + i, 'latency', alloc);
  }

  /** Latency quantile since start (all series, or one), in ms. */
  quantileSinceStart(q: number, series?: number | Recorder): number {
    const h =
      series === undefined
        ? this.aggregator.cumulativeTotal()
        : this.reader.histPtr(this.seriesIndex(series), 'latency');
    return this.ctx.core.histQuantile(h, q);
  }

  getCurrentMetrics(): CurrentMetrics {
    const now = this.config.clock.now();
    // One read of the totals and one merge of the histograms serve every figure below.
    const t = this.totals();
    const cum = this.aggregator.cumulativeTotal();
    const latencySinceStart = this.reader.quantiles(cum);
    const w = this.aggregator.window(now, t);
    const sys = this.lastTick?.system;
    const rss = sys?.rssBytes ?? process.memoryUsage().rss;
    const uptime = Math.max((now - this.startedAt) / 1000, 1e-9);
    return {
      totalRequests: t.requests,
      successfulRequests: t.successes,
      failedRequests: t.errors,
      activeConnections: t.activeConnections,
      latencySumMs: t.latencySumMs,
      latencyMinMs: t.latencyMinMs,
      latencyMaxMs: t.latencyMaxMs,
      latencyP50Ms: w.p50,
      latencyP95Ms: w.p95,
      latencyP99Ms: w.p99,
      latencyP999Ms: w.p999,
      latencySinceStart,
      latencyCount: t.latencyCount,
      currentRps: w.rps,
      peakRps: Math.max(this.aggregator.peakRps, w.rps),
      avgRps: t.requests / uptime,
      memoryUsageBytes: Number.isNaN(t.memoryBytes) ? rss : t.memoryBytes,
      peakMemoryBytes: Number.isNaN(t.peakMemoryBytes) ? Math.max(this.system.peakRss, rss) : t.peakMemoryBytes,
      cpuUsagePercent: sys?.cpuPercent ?? 0,
      workerUtilization: Number.isNaN(t.workerUtilization) ? 0 : t.workerUtilization,
      queueDepth: Number.isNaN(t.queueDepth) ? 0 : t.queueDepth,
      cacheHitRatio: cacheRatio(t),
      backpressureEvents: t.backpressure,
      monitoringStart: this.startedAt,
      lastUpdate: this.lastTick?.t ?? this.startedAt,
    };
  }

  getPerformanceSummary(): PerformanceSummary {
    const m = this.getCurrentMetrics();
    return {
      totalRequests: m.totalRequests,
      successfulRequests: m.successfulRequests,
      failedRequests: m.failedRequests,
      errorsByType: this.errorsByType(),
      throughputRps: m.currentRps,
      avgLatencyMs: m.latencyCount > 0 ? m.latencySumMs / m.latencyCount : 0,
      p50LatencyMs: m.latencyP50Ms,
      p95LatencyMs: m.latencyP95Ms,
      p99LatencyMs: m.latencyP99Ms,
      p999LatencyMs: m.latencyP999Ms,
      successRate: m.totalRequests > 0 ? m.successfulRequests / m.totalRequests : 1,
      memoryUsageMb: m.memoryUsageBytes / 1_048_576,
      activeConnections: m.activeConnections,
      workerUtilization: m.workerUtilization,
      cacheEfficiency: m.cacheHitRatio,
      uptimeSeconds: (this.config.clock.now() - this.startedAt) / 1000,
    };
  }

  /** Compares a summary (default: the current one) with targets (default: the configured ones). */
  compareWithTargets(
    summary: PerformanceSummary = this.getPerformanceSummary(),
    targets?: Partial<PerformanceTargets>,
  ): TargetComparison {
    return compareWithTargets(summary, targets ? resolveTargets(targets) : this.config.targets);
  }

  /**
   * History points of one resolution, oldest first; `since`/`until` bound the range (ms, inclusive),
   * `maxPoints` the answer: past it, runs of consecutive points are reduced to one value each
   * (see HistoryColumns.pointsPerValue).
   */
  getHistory(
    options: { resolution?: Resolution; since?: number; until?: number; maxPoints?: number } = {},
  ): HistoryColumns {
    const { resolution = 'tick', since, until, maxPoints } = options;
    if (maxPoints !== undefined && (!Number.isInteger(maxPoints) || maxPoints < 1 || maxPoints > MAX_POINTS_LIMIT)) {
      throw new RangeError(`maxPoints must be a whole number from 1 to ${MAX_POINTS_LIMIT} (got ${String(maxPoints)})`);
    }
    const ring =
      resolution === 'tick'
        ? this.aggregator.history
        : this.aggregator.rollups[resolution as Exclude<Resolution, 'tick'>]?.ring;
    if (!ring) throw new RangeError(`resolution must be 'tick', 'minute', 'hour' or 'day' (got ${String(resolution)})`);
    for (const [name, v] of [
      ['since', since],
      ['until', until],
    ] as const) {
      if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v)))
        throw new TypeError(`${name} must be a time in ms`);
    }
    return ring.read(resolution, since, until, maxPoints);
  }

  /** Latency quantile of one closed rollup period (its merged histogram), by the period's end time. */
  rollupQuantile(resolution: Exclude<Resolution, 'tick'>, end: number, q: number): number {
    const r = this.aggregator.rollups[resolution];
    const slot = r.ring.slots().find((s) => r.ring.timeAt(s) === end);
    return slot === undefined ? Number.NaN : r.quantileAt(slot, q);
  }

  sessionStats(top?: number): SessionStats {
    return this.sessions.stats(this.config.clock.now(), top);
  }

  memoryFootprint(): MemoryFootprint {
    return memoryFootprint(this.#layout, this.memory.buffer);
  }

  // ---- outputs ------------------------------------------------------------------------------

  /** Prometheus recording and alerting rules (a rules file, YAML) from the configured targets. */
  prometheusRules(options?: PrometheusRulesOptions): string {
    return prometheusRules(this.config.targets, options);
  }

  /** The metrics in the format an Accept header asks for (Prometheus text 0.0.4 by default). */
  metrics(accept?: string | null, options?: MetricsOptions): Rendered {
    return renderMetrics(this, accept, options);
  }

  /** Serves /metrics, /debug and the dashboard (127.0.0.1 unless `host` says otherwise). */
  serve(options?: ServeOptions): Promise<Served> {
    return serve(this, options);
  }

  /** The cumulative state as compact bytes, for `mergeSnapshots()`. */
  snapshot(): Uint8Array {
    return encodeSnapshot(takeSnapshot(this));
  }

  /** A problem outside the record path (a file that could not be written or read): an 'error' event if anyone listens, else a process warning. */
  #emitProblem(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err.message, { code: 'STREAMGAUGE' });
  }

  /** Stops the timer and samplers and ends live sessions; the process can exit. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.stop();
    this.sessions.closeAll();
    // Saved before the open periods are closed below, so a restart continues them.
    this.persistence?.close();
    try {
      for (const r of Object.values(this.aggregator.rollups)) r.close();
    } catch (e) {
      // The fault the timed tick already reported (see timedTick): close still stops everything.
      this.#emitProblem(
        new Error(`streamgauge: closing the open rollup periods failed (${(e as Error)?.message ?? String(e)})`, {
          cause: e,
        }),
      );
    }
    this.system.close();
    this.closed = true;
    this.emit('close');
  }
}

function cacheRatio(t: Totals): number {
  const n = t.cacheHits + t.cacheMisses;
  if (n > 0) return t.cacheHits / n;
  return Number.isNaN(t.cacheRatio) ? 0 : t.cacheRatio;
}

/**
 * Achievement ratios, each capped at 2 so one outstanding figure cannot hide a poor one; a zero
 * p95 or memory counts as the cap, a missing p95 (no requests) as 0.
 */
export const attach = attachToHandle;

function newCounts(n: number): Float64Array {
  return new Float64Array(n);
}
