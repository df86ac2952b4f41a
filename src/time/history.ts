// History: fixed-capacity rings of points (struct of arrays in shared memory, so any thread can
// read them), one per resolution. Writes happen on the tick's thread only.
import { fieldBytes, HISTORY_FIELDS, type HistoryField } from '../core/fields.js';
import type { RingSpec } from '../core/layout.js';

export type Resolution = 'tick' | 'minute' | 'hour' | 'day';
export const RESOLUTIONS: readonly Resolution[] = ['tick', 'minute', 'hour', 'day'];

export type HistoryPoint = Record<HistoryField, number>;

export interface HistoryColumns {
  resolution: Resolution;
  /** End time of each point (ms), ascending. */
  t: number[];
  fields: Record<HistoryField, number[]>;
  /**
   * With `maxPoints`: how many consecutive points each value stands for (1: none reduced), and
   * how many points the range held.
   */
  pointsPerValue?: number;
  pointsInRange?: number;
}

/** Largest `maxPoints` a read may ask for. */
export const MAX_POINTS_LIMIT = 10_000;

/**
 * How a run of consecutive points becomes one value: counts add up; quantiles and the event-loop
 * delay take the run's highest (never an average of quantiles: a chart's upper envelope); the
 * error rate is the run's errors over its requests, the mean latency weighted by requests; rates
 * and gauges are averaged (points are equally long).
 */
const [MEAN, SUM, HIGH, RATIO, WEIGHTED] = [0, 1, 2, 3, 4];
const MODES = HISTORY_FIELDS.map((f) =>
  f === 'requests' || f === 'errors'
    ? SUM
    : f === 'p50' || f === 'p95' || f === 'p99' || f === 'p999' || f === 'eventLoopDelayMs'
      ? HIGH
      : f === 'errorRate'
        ? RATIO
        : f === 'meanLatency'
          ? WEIGHTED
          : MEAN,
);

export class HistoryRing {
  private readonly t: Float64Array;
  private readonly columns: (Float32Array | Float64Array)[];
  private readonly rt: Int32Array;

  constructor(
    buffer: ArrayBufferLike,
    readonly spec: RingSpec,
    runtimePtr: number,
    private readonly headSlot: number,
  ) {
    this.t = new Float64Array(buffer, spec.columns.t, spec.capacity);
    this.columns = HISTORY_FIELDS.map((f) =>
      fieldBytes(f) === 8
        ? new Float64Array(buffer, spec.columns[f], spec.capacity)
        : new Float32Array(buffer, spec.columns[f], spec.capacity),
    );
    this.rt = new Int32Array(buffer, runtimePtr, 64);
  }

  get capacity(): number {
    return this.spec.capacity;
  }

  /** Points held now. */
  get length(): number {
    return Atomics.load(this.rt, this.headSlot + 1);
  }

  /** Slot the next point goes to. */
  get head(): number {
    return Atomics.load(this.rt, this.headSlot);
  }

  push(t: number, point: HistoryPoint): number {
    const slot = this.head;
    this.t[slot] = t;
    for (let i = 0; i < HISTORY_FIELDS.length; i++) this.columns[i][slot] = point[HISTORY_FIELDS[i]];
    Atomics.store(this.rt, this.headSlot, (slot + 1) % this.capacity);
    Atomics.store(this.rt, this.headSlot + 1, Math.min(this.length + 1, this.capacity));
    return slot;
  }

  /** Slots oldest first. */
  slots(): number[] {
    const n = this.length;
    const first = (this.head - n + this.capacity) % this.capacity;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = (first + i) % this.capacity;
    return out;
  }

  timeAt(slot: number): number {
    return this.t[slot];
  }

  pointAt(slot: number): HistoryPoint {
    const p = {} as HistoryPoint;
    for (let i = 0; i < HISTORY_FIELDS.length; i++) p[HISTORY_FIELDS[i]] = this.columns[i][slot];
    return p;
  }

  /**
   * Points with since ≤ t ≤ until, oldest first, as columns; with `maxPoints`, at most that many:
   * runs of k consecutive points (k the smallest that fits) each reduced to one value, stamped with
   * the run's last time. One pass over the range, whatever its size.
   */
  read(resolution: Resolution, since = -Infinity, until = Infinity, maxPoints?: number): HistoryColumns {
    if (maxPoints !== undefined) return this.readReduced(resolution, since, until, maxPoints);
    const picked = this.slots().filter((s) => this.t[s] >= since && this.t[s] <= until);
    const fields = {} as Record<HistoryField, number[]>;
    HISTORY_FIELDS.forEach((f, i) => {
      const col = this.columns[i];
      fields[f] = picked.map((s) => col[s]);
    });
    return { resolution, t: picked.map((s) => this.t[s]), fields };
  }

  private readReduced(resolution: Resolution, since: number, until: number, maxPoints: number): HistoryColumns {
    const n = this.length;
    const cap = this.capacity;
    const first = (this.head - n + cap) % cap;
    // Times ascend: the range is one run of slots [lo, hi).
    let lo = 0;
    while (lo < n && this.t[(first + lo) % cap] < since) lo++;
    let hi = lo;
    while (hi < n && this.t[(first + hi) % cap] <= until) hi++;
    const inRange = hi - lo;
    const k = Math.max(1, Math.ceil(inRange / maxPoints));
    const values = Math.ceil(inRange / k);
    const t = new Array<number>(values);
    const fields = {} as Record<HistoryField, number[]>;
    for (const f of HISTORY_FIELDS) fields[f] = new Array<number>(values);
    const requests = this.columns[HISTORY_FIELDS.indexOf('requests')];
    const errors = this.columns[HISTORY_FIELDS.indexOf('errors')];
    for (let v = 0; v < values; v++) {
      const from = lo + v * k;
      const to = Math.min(from + k, hi);
      t[v] = this.t[(first + to - 1) % cap];
      let req = 0;
      let err = 0;
      for (let i = from; i < to; i++) {
        const slot = (first + i) % cap;
        req += requests[slot];
        err += errors[slot];
      }
      for (let c = 0; c < HISTORY_FIELDS.length; c++) {
        const column = this.columns[c];
        const mode = MODES[c];
        let acc = 0;
        let seen = 0;
        let weight = 0;
        let high = Number.NEGATIVE_INFINITY;
        for (let i = from; i < to; i++) {
          const slot = (first + i) % cap;
          const x = column[slot];
          if (Number.isNaN(x)) continue; // no data
          seen++;
          if (mode === HIGH) {
            if (x > high) high = x;
          } else if (mode === WEIGHTED) {
            acc += x * requests[slot];
            weight += requests[slot];
          } else acc += x;
        }
        let out: number;
        if (seen === 0) out = Number.NaN;
        else if (mode === HIGH) out = high;
        else if (mode === SUM) out = acc;
        else if (mode === RATIO) out = req > 0 ? err / req : acc / seen;
        else if (mode === WEIGHTED) out = weight > 0 ? acc / weight : Number.NaN;
        else out = acc / seen;
        fields[HISTORY_FIELDS[c]][v] = out;
      }
    }
    return { resolution, t, fields, pointsPerValue: k, pointsInRange: inRange };
  }

  /** Sets the ring's position (restoring saved history whose columns were copied back in place). */
  setPosition(head: number, length: number): void {
    const ok = (v: number, max: number) => Number.isInteger(v) && v >= 0 && v <= max;
    if (!ok(head, this.capacity - 1) || !ok(length, this.capacity)) {
      throw new RangeError(`ring position out of range: head ${head}, length ${length}, capacity ${this.capacity}`);
    }
    Atomics.store(this.rt, this.headSlot + 1, 0);
    Atomics.store(this.rt, this.headSlot, head);
    Atomics.store(this.rt, this.headSlot + 1, length);
  }

  clear(): void {
    Atomics.store(this.rt, this.headSlot, 0);
    Atomics.store(this.rt, this.headSlot + 1, 0);
  }
}
