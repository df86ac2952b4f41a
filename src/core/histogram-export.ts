// One histogram of the shared memory as native buckets: the core copies it into the export area,
// and this reads the non-zero run out as one Float64Array (no object per bucket), in the
// histogram's bucket unit (seconds for durations).
import { MonitorCounts, type NativeHistogram, withLazyBuckets } from './family-model.js';
import type { HistName, Layout } from './layout.js';
import type { Core } from './wasm.js';

export class HistogramExporter {
  /** The export area, as the core writes it: [zero, overflow, buckets...] (largest shape). */
  private readonly exported: Float64Array;

  constructor(
    private readonly core: Core,
    private readonly layout: Layout,
    buffer: ArrayBufferLike,
  ) {
    this.exported = new Float64Array(buffer, layout.exportPtr, layout.exportBuckets + 2);
  }

  /**
   * The histogram at `h` (of shape `name`); `alloc(n)` gives the Float64Array of n elements the
   * counts go into; `extremes`: with its min and max (two more core calls).
   */
  read(h: number, name: HistName, alloc: (n: number) => Float64Array, extremes: boolean): NativeHistogram {
    const shape = this.layout.shapes[name];
    const core = this.core;
    // Values that found no page (bucketMemory used up) are left out: the buckets add up to the count,
    // as Prometheus requires of a native histogram (they stay in the totals and the request counts).
    const unplaced = core.histUnplaced(h);
    const count = core.histExport(h, this.layout.exportPtr) - unplaced;
    const all = this.exported;
    let first = core.exportedLo() + 2;
    let last = core.exportedHi() + 1;
    while (first <= last && all[first] === 0) first++;
    while (last >= first && all[last] === 0) last--;
    const n = Math.max(last + 1 - first, 0);
    const counts = alloc(n);
    if (!(counts instanceof Float64Array) || counts.length !== n)
      throw new TypeError(`alloc(${n}) must return a Float64Array of ${n} elements`);
    counts.set(all.subarray(first, first + n));
    const out = withLazyBuckets({
      count,
      sum: (unplaced > 0 ? core.histSum(h) - core.histUnplacedSum(h) : core.histSum(h)) * shape.idxMul,
      schema: shape.scale,
      zeroThreshold: shape.zeroMax,
      zeroCount: all[0],
      dense: new MonitorCounts(shape.idxMin + first - 2, counts),
      overflowCount: all[1],
      overflowThreshold: shape.topMax,
    });
    if (extremes) {
      const min = core.histMin(h); // NaN: nothing recorded, and min and max stay absent
      if (!Number.isNaN(min)) {
        out.min = min * shape.idxMul;
        out.max = core.histMax(h) * shape.idxMul;
      }
    }
    return out;
  }
}
