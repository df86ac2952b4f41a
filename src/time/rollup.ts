// Minute, hour and day rollups of the history: each closed period is a point in its ring and a
// merged latency histogram in shared memory. The tick (tick.ts) feeds them.
import { MEAN_FIELDS } from '../core/fields.js';
import type { RollupSpec } from '../core/layout.js';
import type { Core } from '../core/wasm.js';
import { type HistoryPoint, HistoryRing } from './history.js';
import type { Totals, TotalsReader } from './totals.js';

export interface RollupState {
  /** The open period (null: none). */
  period: number | null;
  acc: Record<string, number>;
  sums: Record<string, number>;
  counts: Record<string, number>;
}

/** What a rollup adds up of a tick's interval figures (IntervalFigures, tick.ts, has these). */
export interface RollupInterval {
  seconds: number;
  requests: number;
  errors: number;
  backpressurePerSec: number;
  messagesPerSec: number;
  bytesPerSec: number;
}

/** A period's sums, before its first tick. */
function emptyAcc() {
  return { seconds: 0, requests: 0, errors: 0, latencySum: 0, latencyCount: 0, backpressure: 0, messages: 0, bytes: 0 };
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
  private readonly acc = emptyAcc();
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

  add(t: number, interval: RollupInterval, point: HistoryPoint, intervalHist: number, totals: Totals): void {
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
    return {
      period: this.open ? this.period : null,
      acc: { ...this.acc },
      sums: { ...this.sums },
      counts: { ...this.counts },
    };
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
    Object.assign(this.acc, emptyAcc());
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
