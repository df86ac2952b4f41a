// History: fixed-capacity rings of points (struct of arrays in shared memory, so any thread can
// read them), one per resolution. Writes happen on the tick's thread only.
import { fieldBytes, HISTORY_FIELDS, type HistoryField } from './fields.js';
import type { RingSpec } from './layout.js';

export type Resolution = 'tick' | 'minute' | 'hour' | 'day';
export const RESOLUTIONS: readonly Resolution[] = ['tick', 'minute', 'hour', 'day'];

export type HistoryPoint = Record<HistoryField, number>;

export interface HistoryColumns {
  resolution: Resolution;
  /** End time of each point (ms), ascending. */
  t: number[];
  fields: Record<HistoryField, number[]>;
}

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
      fieldBytes(f) === 8 ? new Float64Array(buffer, spec.columns[f], spec.capacity) : new Float32Array(buffer, spec.columns[f], spec.capacity),
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

  /** Points with since ≤ t ≤ until, oldest first, as columns. */
  read(resolution: Resolution, since = -Infinity, until = Infinity): HistoryColumns {
    const picked = this.slots().filter((s) => this.t[s] >= since && this.t[s] <= until);
    const fields = {} as Record<HistoryField, number[]>;
    HISTORY_FIELDS.forEach((f, i) => {
      const col = this.columns[i];
      fields[f] = picked.map((s) => col[s]);
    });
    return { resolution, t: picked.map((s) => this.t[s]), fields };
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
