// Bucket counts held between a scrape's collect and its render, packed into bytes.
//
// A scrape reads every series' histogram before it writes any (a series' totals and histogram are
// read together, so that they agree), and a dense Float64Array per series is 8 bytes a bucket:
// 5 KB for a latency series spanning 0.5–20 ms at scale 7, 54 MB at 10,000 series. Packed at the
// width its largest count needs (1, 2, 4 or 8 bytes), a histogram takes a fraction of that, and is
// unpacked into one reused Float64Array when a writer reads it.

/**
 * Dense buckets whose `counts` are unpacked on read into the store's one shared array: valid until
 * another PackedCounts of the same store is read, or the store is reset. For writers that read one
 * histogram at a time (every exposition writer), never for counts handed to a caller.
 */
// The family model's DenseBuckets by shape (it checks `instanceof PackedCounts`, so an import
// back would be a cycle); the assignment to NativeHistogram.dense checks the shape.
export class PackedCounts {
  readonly offset: number;
  /** Number of buckets. */
  readonly length: number;
  /** Byte position of the packed counts in the store. */
  readonly at: number;
  /** Bytes per count: 1, 2, 4 or 8 (a Float64Array). */
  readonly width: number;
  private readonly store: PackedCountsStore;

  constructor(store: PackedCountsStore, offset: number, length: number, at: number, width: number) {
    this.store = store;
    this.offset = offset;
    this.length = length;
    this.at = at;
    this.width = width;
  }

  get counts(): Float64Array {
    return this.store.unpack(this);
  }
}

/** Packed counts of one collect, in one growing byte buffer; reset() starts the next collect. */
export class PackedCountsStore {
  private bytes = new ArrayBuffer(1 << 16);
  private used = 0;
  private scratch = new Float64Array(1024);
  private unpacked = new Float64Array(1024);
  private current: PackedCounts | undefined;
  private currentCounts: Float64Array = this.unpacked;

  /** Starts over: PackedCounts made before must not be read any more. */
  reset(): void {
    this.used = 0;
    this.current = undefined;
  }

  /** A reused array of `n` counts to export into before pack() (the `alloc` of monitor.nativeHistogram). */
  readonly take = (n: number): Float64Array => {
    if (this.scratch.length < n) this.scratch = new Float64Array(Math.max(n, this.scratch.length * 2));
    return this.scratch.subarray(0, n);
  };

  /** Packs `counts` (whole numbers ≥ 0, as a monitor exports them) at the width the largest needs. */
  pack(offset: number, counts: Float64Array): PackedCounts {
    const n = counts.length;
    let max = 0;
    for (let k = 0; k < n; k++) if (counts[k] > max) max = counts[k];
    const width = max < 0x100 ? 1 : max < 0x10000 ? 2 : max < 0x100000000 ? 4 : 8;
    const at = Math.ceil(this.used / width) * width; // typed-array views must be aligned
    const end = at + n * width;
    if (end > this.bytes.byteLength) {
      // Grown by copying, so the positions of the counts packed before stay valid.
      const next = new ArrayBuffer(Math.max(this.bytes.byteLength * 2, end));
      new Uint8Array(next).set(new Uint8Array(this.bytes, 0, this.used));
      this.bytes = next;
    }
    this.view(at, n, width).set(counts);
    this.used = end;
    return new PackedCounts(this, offset, n, at, width);
  }

  unpack(p: PackedCounts): Float64Array {
    if (p === this.current) return this.currentCounts;
    if (this.unpacked.length < p.length) this.unpacked = new Float64Array(Math.max(p.length, this.unpacked.length * 2));
    const out = this.unpacked.subarray(0, p.length);
    out.set(this.view(p.at, p.length, p.width));
    this.current = p;
    this.currentCounts = out;
    return out;
  }

  private view(at: number, n: number, width: number): Uint8Array | Uint16Array | Uint32Array | Float64Array {
    if (width === 1) return new Uint8Array(this.bytes, at, n);
    if (width === 2) return new Uint16Array(this.bytes, at, n);
    return width === 4 ? new Uint32Array(this.bytes, at, n) : new Float64Array(this.bytes, at, n);
  }
}
