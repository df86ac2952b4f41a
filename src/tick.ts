// The tick: one aggregation step on one thread. It reads only cumulative shared state and keeps a
// ring of past cumulative snapshots; every windowed figure is a difference against a snapshot, so
// recording threads never rotate or reset anything.
import { MEAN_FIELDS } from './fields.js';
import { type HistoryPoint, HistoryRing, type Resolution } from './history.js';
import { type Layout, R, type RollupSpec, SCRATCH } from './layout.js';
import type { SystemSample } from './system.js';
import { COUNTER_FIELDS, emptyTotals, type Totals, type TotalsReader, writeCounters } from './totals.js';
import type { Core } from './wasm.js';

/** Figures over an interval of time (the last tick's interval, or the sliding window). */
export interface IntervalFigures {
  /** Seconds the figures cover. */
  seconds: number;
  requests: number;
  errors: number;
  rps: number;
  errorRate: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
  meanLatencyMs: number;
  cacheHitRatio: number;
  backpressurePerSec: number;
  messagesPerSec: number;
  bytesPerSec: number;
}

const NF = COUNTER_FIELDS.length;
const F = Object.fromEntries(COUNTER_FIELDS.map((f, i) => [f, i])) as Record<(typeof COUNTER_FIELDS)[number], number>;

/** What the tick keeps besides shared memory, for persistence: enough to continue where it stopped. */
export interface AggregatorState {
  peakRps: number;
  ticks: number;
  rollups: Record<Exclude<Resolution, 'tick'>, RollupState>;
}

export interface RollupState {
  /** The open period (null: none). */
  period: number | null;
  acc: Record<string, number>;
  sums: Record<string, number>;
  counts: Record<string, number>;
}

export class Aggregator {
  readonly history: HistoryRing;
  readonly rollups: Record<Exclude<Resolution, 'tick'>, Rollup>;
  private readonly slots: number;
  private readonly times: Float64Array;
  /** Per ring row (series…, total) and slot: the cumulative counters at that snapshot. */
  private readonly counters: Float64Array;
  private head = 0;
  private filled = 0;
  private readonly totalRow: number;
  private readonly scratch: (i: number) => number;
  private readonly live = emptyTotals();
  private readonly seriesLive = emptyTotals();
  /** Where snapLatency writes the snapshot of the series being read (one callback for all: no closure per series and tick). */
  private snapTarget = 0;
  private readonly snapLatency = (h: number): number => (this.isEmpty(h) ? 0 : this.core.histSnap32(h, this.snapTarget));
  peakRps = 0;
  ticks = 0;

  constructor(
    private readonly core: Core,
    private readonly layout: Layout,
    private readonly reader: TotalsReader,
    buffer: ArrayBufferLike,
    /** Every series in use: each keeps its own window. */
    private readonly activeSeries: () => readonly number[],
    /** The series that add into the monitor-wide totals. */
    private readonly totalSeries: () => readonly number[] = activeSeries,
  ) {
    this.slots = layout.windowSlots;
    this.totalRow = layout.seriesCount;
    this.times = new Float64Array(this.slots);
    this.counters = new Float64Array((layout.seriesCount + 1) * this.slots * NF);
    this.scratch = (i) => layout.scratchPtr + i * layout.shapes.latency.bytes;
    this.history = new HistoryRing(buffer, layout.history, layout.runtimePtr, R.HISTORY_HEAD);
    // Periods nest (a day is whole hours, an hour whole minutes): each closed period's histogram
    // feeds the next resolution's open one, so a tick merges into one histogram, not three.
    const day = new Rollup(core, reader, buffer, layout.rollups.day, layout.runtimePtr, R.DAY_HEAD, layout.shapes.latency.bytes);
    const hour = new Rollup(core, reader, buffer, layout.rollups.hour, layout.runtimePtr, R.HOUR_HEAD, layout.shapes.latency.bytes, day);
    const minute = new Rollup(core, reader, buffer, layout.rollups.minute, layout.runtimePtr, R.MINUTE_HEAD, layout.shapes.latency.bytes, hour);
    this.rollups = { minute, hour, day };
  }

  /** The JS-side state worth keeping across a restart (the rings and open histograms are in shared memory). */
  state(): AggregatorState {
    return {
      peakRps: this.peakRps,
      ticks: this.ticks,
      rollups: { minute: this.rollups.minute.state(), hour: this.rollups.hour.state(), day: this.rollups.day.state() },
    };
  }

  restoreState(s: AggregatorState): void {
    this.peakRps = s.peakRps;
    this.ticks = s.ticks;
    for (const k of ['minute', 'hour', 'day'] as const) this.rollups[k].restoreState(s.rollups[k]);
  }

  private snapPtr(row: number, slot: number): number {
    return this.layout.windowPtr + (row * this.slots + slot) * this.layout.snapBytes;
  }

  /** Nothing recorded in this histogram yet (its max is set by the first record): O(1), no pass over buckets. */
  private isEmpty(hist: number): boolean {
    return Number.isNaN(this.core.histMax(hist));
  }

  /** Merges every active series' cumulative latency histogram into the CUMULATIVE_TOTAL scratch. */
  cumulativeTotal(series: readonly number[] = this.totalSeries()): number {
    const cum = this.scratch(SCRATCH.CUMULATIVE_TOTAL);
    this.core.histReset(cum);
    // An empty series adds nothing; one whose first record lands after this check shows up in the
    // next read (the total is rebuilt from the cumulative histograms every time, so nothing is lost).
    for (const s of series) {
      const h = this.reader.histPtr(s, 'latency');
      if (!this.isEmpty(h)) this.core.histMerge(cum, h);
    }
    return cum;
  }

  /**
   * Takes a snapshot into the next slot of the ring (the first call sets the baseline). The total
   * row stores exactly `total` and `cum`, the state the tick's interval was measured to, so that
   * consecutive intervals add up to the totals with no gap between two reads.
   */
  private snapshot(now: number, cum: number, series: readonly number[], total?: Totals): void {
    const slot = this.filled === 0 ? 0 : (this.head + 1) % this.slots;
    for (const s of series) {
      // The latency histogram is snapshot where the totals read it (after the counters), and counted
      // in the same pass. One that never recorded a latency has an all-zero snapshot already (memory
      // starts zeroed and a cumulative histogram never becomes empty again), so it is skipped.
      this.snapTarget = this.snapPtr(s, slot);
      this.storeCounters(s, slot, this.reader.read(s, this.seriesLive, this.snapLatency));
    }
    this.core.histSnap32(cum, this.snapPtr(this.totalRow, slot));
    this.storeCounters(this.totalRow, slot, total ?? this.reader.sum(this.totalSeries(), this.live));
    this.times[slot] = now;
    this.head = slot;
    this.filled = Math.min(this.filled + 1, this.slots);
  }

  private storeCounters(row: number, slot: number, t: Totals): void {
    writeCounters(this.counters, (row * this.slots + slot) * NF, t);
  }

  /** The oldest snapshot still in the ring: the start of the sliding window. */
  private oldestSlot(): number {
    return this.filled < this.slots ? 0 : (this.head + 1) % this.slots;
  }

  baseline(now: number): void {
    this.snapshot(now, this.cumulativeTotal(), this.activeSeries());
  }

  /**
   * Figures from snapshot `slot` to the live state now, for ring row `row` (a series, or the
   * total), with the difference histogram left in scratch `dst`.
   */
  figuresSince(now: number, row: number, slot: number, live: Totals, liveHist: number, dst: number): IntervalFigures {
    const count = this.core.histWindow(liveHist, this.snapPtr(row, slot), dst);
    // Each field named outright: a field looked up by a string variable takes V8's slow generic path.
    const at = (row * this.slots + slot) * NF;
    const then = this.counters;
    const seconds = Math.max((now - this.times[slot]) / 1000, 1e-9);
    const requests = live.requests - then[at + F.requests];
    const errors = live.errors - then[at + F.errors];
    const hits = live.cacheHits - then[at + F.cacheHits];
    const misses = live.cacheMisses - then[at + F.cacheMisses];
    const latencyCount = live.latencyCount - then[at + F.latencyCount];
    const { p50, p95, p99, p999 } = this.reader.quantiles(dst, count);
    return {
      seconds,
      requests,
      errors,
      rps: requests / seconds,
      errorRate: requests > 0 ? errors / requests : 0,
      p50,
      p95,
      p99,
      p999,
      meanLatencyMs: latencyCount > 0 ? (live.latencySumMs - then[at + F.latencySumMs]) / latencyCount : Number.NaN,
      cacheHitRatio: hits + misses > 0 ? hits / (hits + misses) : live.cacheRatio,
      backpressurePerSec: (live.backpressure - then[at + F.backpressure]) / seconds,
      messagesPerSec: (live.messagesIn - then[at + F.messagesIn] + live.messagesOut - then[at + F.messagesOut]) / seconds,
      bytesPerSec: (live.bytesIn - then[at + F.bytesIn] + live.bytesOut - then[at + F.bytesOut]) / seconds,
    };
  }

  /** Window figures of all series together, read now (records are visible at once). */
  window(now: number, live?: Totals, cum?: number): IntervalFigures {
    cum ??= this.cumulativeTotal();
    live ??= this.reader.sum(this.totalSeries(), emptyTotals());
    return this.figuresSince(now, this.totalRow, this.oldestSlot(), live, cum, this.scratch(SCRATCH.WINDOW_TOTAL));
  }

  /** Window figures of one series; its window histogram is left in the SERIES_WINDOW scratch. */
  seriesWindow(now: number, series: number, live: Totals = this.reader.read(series, emptyTotals())): IntervalFigures {
    return this.figuresSince(now, series, this.oldestSlot(), live, this.reader.histPtr(series, 'latency'), this.scratch(SCRATCH.SERIES_WINDOW));
  }

  /** One aggregation step: interval figures, a history point, rollups. Returns the point. */
  tick(now: number, system: SystemSample, totals: Totals): { point: HistoryPoint; interval: IntervalFigures } {
    const series = this.activeSeries();
    const cum = this.cumulativeTotal();
    const interval = this.figuresSince(now, this.totalRow, this.head, totals, cum, this.scratch(SCRATCH.INTERVAL_TOTAL));
    this.peakRps = Math.max(this.peakRps, interval.rps);
    const point: HistoryPoint = {
      requests: interval.requests,
      errors: interval.errors,
      rps: interval.rps,
      errorRate: interval.errorRate,
      p50: interval.p50,
      p95: interval.p95,
      p99: interval.p99,
      p999: interval.p999,
      meanLatency: interval.meanLatencyMs,
      memoryBytes: Number.isNaN(totals.memoryBytes) ? system.rssBytes : totals.memoryBytes,
      heapBytes: system.heapUsedBytes,
      cpuPercent: system.cpuPercent,
      eventLoopDelayMs: system.eventLoopDelayP99Ms,
      activeConnections: totals.activeConnections,
      workerUtilization: totals.workerUtilization,
      queueDepth: totals.queueDepth,
      cacheHitRatio: interval.cacheHitRatio,
      backpressure: interval.backpressurePerSec,
      messagesPerSec: interval.messagesPerSec,
      bytesPerSec: interval.bytesPerSec,
    };
    this.history.push(now, point);
    // Finer first: a minute that closes here feeds the hour's open histogram before the hour looks.
    const ih = this.scratch(SCRATCH.INTERVAL_TOTAL);
    this.rollups.minute.add(now, interval, point, ih, totals);
    this.rollups.hour.add(now, interval, point, ih, totals);
    this.rollups.day.add(now, interval, point, ih, totals);
    this.snapshot(now, cum, series, totals);
    this.ticks++;
    return { point, interval };
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/**
 * Minute/hour/day rollups. Each period's latency histogram is the merge of its ticks' interval
 * histograms (the minute merges the ticks, the hour its closed minutes, the day its closed hours),
 * so an hour's p99 is the true p99 of that hour (within the bucket error), never an average of
 * per-second p99s.
 */
export class Rollup {
  readonly ring: HistoryRing;
  /** The open period's number (see periodOf), when `open`. */
  private period = 0;
  private open = false;
  /** Set when a finer rollup feeds this one's open histogram with its closed periods. */
  private fed = false;
  private readonly acc = { seconds: 0, requests: 0, errors: 0, latencySum: 0, latencyCount: 0, backpressure: 0, messages: 0, bytes: 0 };
  private readonly sums: Record<string, number> = {};
  private readonly counts: Record<string, number> = {};
  private readonly lastTotals = { latencySumMs: 0, latencyCount: 0 };

  /**
   * @param next the coarser rollup whose periods are whole periods of this one: each period closed
   *   here is merged into its open histogram. A rollup that no finer one feeds merges every tick's
   *   interval histogram itself.
   */
  constructor(
    private readonly core: Core,
    private readonly reader: TotalsReader,
    buffer: ArrayBufferLike,
    readonly spec: RollupSpec,
    runtimePtr: number,
    headSlot: number,
    private readonly histBytes: number,
    private readonly next?: Rollup,
  ) {
    this.ring = new HistoryRing(buffer, spec, runtimePtr, headSlot);
    this.resetAcc();
    if (next) {
      if (next.spec.periodMs % spec.periodMs !== 0) throw new RangeError('rollup periods must nest');
      next.fed = true;
    }
  }

  histPtr(slot: number): number {
    return this.spec.histPtr + slot * this.histBytes;
  }

  /** The period (k·P, (k+1)·P] that a point stamped t belongs to. */
  periodOf(t: number): number {
    return Math.ceil(t / this.spec.periodMs) - 1;
  }

  add(t: number, interval: IntervalFigures, point: HistoryPoint, intervalHist: number, totals: Totals): void {
    const k = this.periodOf(t);
    if (this.open && k !== this.period) this.close();
    this.period = k;
    this.open = true;
    const a = this.acc;
    a.seconds += interval.seconds;
    a.requests += interval.requests;
    a.errors += interval.errors;
    a.latencySum += totals.latencySumMs - this.lastTotals.latencySumMs;
    a.latencyCount += totals.latencyCount - this.lastTotals.latencyCount;
    this.lastTotals.latencySumMs = totals.latencySumMs;
    this.lastTotals.latencyCount = totals.latencyCount;
    a.backpressure += interval.backpressurePerSec * interval.seconds;
    a.messages += interval.messagesPerSec * interval.seconds;
    a.bytes += interval.bytesPerSec * interval.seconds;
    for (const f of MEAN_FIELDS) {
      const v = point[f];
      if (!Number.isNaN(v)) {
        this.sums[f] += v;
        this.counts[f]++;
      }
    }
    if (!this.fed) this.core.histMerge(this.spec.openPtr, intervalHist);
  }

  /** Closes the open period into the ring. */
  close(): void {
    if (!this.open) return;
    const a = this.acc;
    const slot = this.ring.head;
    const hist = this.histPtr(slot);
    this.core.histReset(hist);
    this.core.histMerge(hist, this.spec.openPtr);
    const seconds = Math.max(a.seconds, 1e-9);
    const point = {
      requests: a.requests,
      errors: a.errors,
      rps: a.requests / seconds,
      errorRate: a.requests > 0 ? a.errors / a.requests : 0,
      ...this.reader.quantiles(hist),
      meanLatency: a.latencyCount > 0 ? a.latencySum / a.latencyCount : Number.NaN,
      backpressure: a.backpressure / seconds,
      messagesPerSec: a.messages / seconds,
      bytesPerSec: a.bytes / seconds,
    } as HistoryPoint;
    for (const f of MEAN_FIELDS) point[f] = this.counts[f] > 0 ? this.sums[f] / this.counts[f] : Number.NaN;
    this.ring.push((this.period + 1) * this.spec.periodMs, point);
    if (this.next) this.core.histMerge(this.next.spec.openPtr, hist);
    this.core.histReset(this.spec.openPtr);
    this.open = false;
    this.resetAcc();
  }

  state(): RollupState {
    return { period: this.open ? this.period : null, acc: { ...this.acc }, sums: { ...this.sums }, counts: { ...this.counts } };
  }

  /** Continues an open period saved by state() (its histogram is restored with the shared memory). */
  restoreState(s: RollupState): void {
    this.open = typeof s.period === 'number' && Number.isInteger(s.period);
    this.period = this.open ? (s.period as number) : 0;
    for (const k of Object.keys(this.acc) as (keyof typeof this.acc)[]) this.acc[k] = num(s.acc[k]);
    for (const f of MEAN_FIELDS) {
      this.sums[f] = num(s.sums[f]);
      this.counts[f] = num(s.counts[f]);
    }
  }

  private resetAcc(): void {
    Object.assign(this.acc, { seconds: 0, requests: 0, errors: 0, latencySum: 0, latencyCount: 0, backpressure: 0, messages: 0, bytes: 0 });
    for (const f of MEAN_FIELDS) {
      this.sums[f] = 0;
      this.counts[f] = 0;
    }
  }

  /** The quantile q of a closed period stored in `slot`. */
  quantileAt(slot: number, q: number): number {
    return this.core.histQuantile(this.histPtr(slot), q);
  }
}

