// The hot path: histograms and counters at fixed offsets in a shared linear memory.
//
// Nothing here allocates: every instance (one per thread) works on the same memory through the
// pointers it is handed, so two instances can never hand out the same address. Layout, tables and
// configuration are written by the facade once (src/layout.ts); this module holds no state of its
// own besides what the pointers name.
//
// Histogram block (all offsets in bytes, 8-aligned):
//   scale i32 | idxMin i32 | nBuckets i32 | boundsPtr i32 | idxMul f64 | sumMul f64
//   cells u32 | cellShift u32 | cellBase u32 | cellCount u32 | sum i64 | min i64 | max i64
//   zero i64 | overflow i64 | lanes i32 | lane pointers i32 × MAX_LANES | (8 bytes unused)
//   buckets i64 × nBuckets
// Bucket index i (Prometheus native convention) covers (2^((i-1)/2^scale), 2^(i/2^scale)] in the
// bucket unit (value × idxMul, e.g. ms → seconds). Values below the first bucket count in `zero`,
// values above the last in `overflow`. Which counter a value goes to is looked up in the shape's
// range table (built by src/buckets.ts rangeCells, see bucketOffset). sum, min and max are
// integers in the sum unit (value × sumMul, e.g. ns), so they are exact.
//
// Lanes. A histogram that threads record into at a high rate (a series' latencies) can have up to
// MAX_LANES lanes: blocks of the same shape, each owned by one thread (claimed by the facade, see
// src/recorder.ts), which that thread alone writes with plain loads and stores — no lock prefix,
// no lost update, since nobody else writes there. Every read below sees a histogram as its own
// block plus its lanes, merged; the block itself takes records from any thread with atomics. Lanes
// are only used where an aligned 64-bit store is a single store (64-bit hosts), so a reader's
// atomic load never sees half of one.

const H_SCALE: u32 = 0;
const H_IDXMIN: u32 = 4;
const H_NBUCKETS: u32 = 8;
const H_BOUNDS: u32 = 12;
const H_IDXMUL: u32 = 16;
const H_SUMMUL: u32 = 24;
const H_CELLS: u32 = 32;
const H_CELLSHIFT: u32 = 36;
const H_CELLBASE: u32 = 40;
const H_CELLCOUNT: u32 = 44;
const H_SUM: u32 = 48;
const H_MIN: u32 = 56;
const H_MAX: u32 = 64;
const H_ZERO: u32 = 72;
const H_OVER: u32 = 80;
const H_LANES: u32 = 88;
const H_LANE0: u32 = 92;
const MAX_LANES: i32 = 15;
const H_BUCKETS: u32 = 160;

const ABS_MASK: u64 = 0x7fffffffffffffff;

/** Records one value (in the API unit, already validated: finite, ≥ 0, in range), from any thread. */
export function record(h: u32, v: f64): void {
  const s = i64(v * load<f64>(h, H_SUMMUL) + 0.5);
  atomic.add<i64>(h + H_SUM, s);
  if (s < atomic.load<i64>(h + H_MIN)) lowerMin(h, s);
  if (s > atomic.load<i64>(h + H_MAX)) raiseMax(h, s);
  atomic.add<i64>(h + bucketOffset(h, v), 1);
}

/**
 * Records one value into a lane: only the lane's owning thread may call this. Plain loads and
 * stores (single aligned 64-bit ones), about half the cost of `record`.
 */
export function recordOwned(lane: u32, v: f64): void {
  const s = i64(v * load<f64>(lane, H_SUMMUL) + 0.5);
  store<i64>(lane + H_SUM, load<i64>(lane + H_SUM) + s);
  if (s < load<i64>(lane + H_MIN)) store<i64>(lane + H_MIN, s);
  if (s > load<i64>(lane + H_MAX)) store<i64>(lane + H_MAX, s);
  const p = lane + bucketOffset(lane, v);
  store<i64>(p, load<i64>(p) + 1);
}

/**
 * Links `lane` (an empty block of h's shape) to h as one more lane; returns false when h has no
 * room left (the caller then records into h itself). The facade hands each lane to one thread.
 */
export function addLane(h: u32, lane: u32): bool {
  const slot = atomic.add<i32>(h + H_LANES, 1);
  if (slot >= MAX_LANES) {
    atomic.sub<i32>(h + H_LANES, 1);
    return false;
  }
  atomic.store<u32>(h + H_LANE0 + (u32(slot) << 2), lane);
  return true;
}

// The lanes of h that readers must add: a slot counted but not yet pointed at reads as 0 (skip it).
// @ts-ignore: decorator
@inline function laneCount(h: u32): i32 {
  const n = atomic.load<i32>(h + H_LANES);
  return n > MAX_LANES ? MAX_LANES : n;
}

// @ts-ignore: decorator
@inline function lane(h: u32, j: i32): u32 {
  return atomic.load<u32>(h + H_LANE0 + (u32(j) << 2));
}

/** An i64 field (sum, zero, overflow or a bucket, by offset) over h and its lanes. */
function merged(h: u32, off: u32): i64 {
  let v = atomic.load<i64>(h + off);
  const n = laneCount(h);
  for (let j = 0; j < n; j++) {
    const l = lane(h, j);
    if (l != 0) v += atomic.load<i64>(l + off);
  }
  return v;
}

function mergedMin(h: u32): i64 {
  let v = atomic.load<i64>(h + H_MIN);
  const n = laneCount(h);
  for (let j = 0; j < n; j++) {
    const l = lane(h, j);
    if (l != 0) {
      const m = atomic.load<i64>(l + H_MIN);
      if (m < v) v = m;
    }
  }
  return v;
}

function mergedMax(h: u32): i64 {
  let v = atomic.load<i64>(h + H_MAX);
  const n = laneCount(h);
  for (let j = 0; j < n; j++) {
    const l = lane(h, j);
    if (l != 0) {
      const m = atomic.load<i64>(l + H_MAX);
      if (m > v) v = m;
    }
  }
  return v;
}

// The bucket slots [rangeLo, rangeHi) that can hold counts: those between the smallest and the
// largest value recorded (min/max are raised before a bucket is counted, and only grow apart), so
// reads walk the few hundred buckets a distribution spans rather than all of them. Widened by one
// sum unit each way because min/max are rounded to that unit. Per instance (one per thread).
let rangeLo: u32 = 0;
let rangeHi: u32 = 0;

// Whether reads may load two counters at once (a 16-byte load): each 8-byte half is then read
// whole only where an aligned 64-bit access is a single one (64-bit hosts). Set by the facade,
// per instance; off (one atomic load per counter) until then.
let wideReads: bool = false;

export function setWideReads(on: bool): void {
  wideReads = on;
}

function findRange(h: u32): void {
  const mx = mergedMax(h);
  if (mx < 0) {
    rangeLo = 0;
    rangeHi = 0;
    return;
  }
  const sumMul = load<f64>(h, H_SUMMUL);
  rangeLo = slotOf(h, (f64(mergedMin(h)) - 1) / sumMul);
  rangeHi = slotOf(h, (f64(mx) + 1) / sumMul) + 1;
}

// The bucket slot of x (API unit), with the zero bucket and overflow mapped to the first and last slot.
function slotOf(h: u32, x: f64): u32 {
  const off = bucketOffset(h, x > 0 ? x : 0);
  if (off == H_ZERO) return 0;
  if (off == H_OVER) return load<u32>(h, H_NBUCKETS) - 1;
  return (off - H_BUCKETS) >> 3;
}

/** The slot range found by the last histExport (for the facade to read only that). */
export function exportedLo(): u32 {
  return rangeLo;
}

export function exportedHi(): u32 {
  return rangeHi;
}

// Byte offset (from h) of the counter that value v (API unit, ≥ 0) counts in. The range table has
// a cell for every 2^-(scale+1) of every octave of the histogram's range, each narrower than a
// bucket: the value's top bits pick its cell, and one comparison with the last float of the cell's
// lower bucket picks that bucket or the next (whose offset the cell holds as a step, 0 when the
// cell is all one bucket). Values outside the table are below the first bucket or above the last.
// No multiply, no log, no loop; one well-predicted branch.
// @ts-ignore: decorator
@inline function bucketOffset(h: u32, v: f64): u32 {
  const bits = reinterpret<u64>(v);
  const k = u32(bits >> u64(load<u32>(h, H_CELLSHIFT))) - load<u32>(h, H_CELLBASE);
  if (k >= load<u32>(h, H_CELLCOUNT)) return outsideTable(h, bits);
  const cell = load<u32>(h, H_CELLS) + (k << 4);
  return load<u32>(cell, 8) + ((u32(0) - u32(bits > load<u64>(cell))) & load<u32>(cell, 12));
}

// Zero bucket or overflow for a value whose cell is outside the table (-0 is 0).
function outsideTable(h: u32, bits: u64): u32 {
  const key = u32((bits & ABS_MASK) >> u64(load<u32>(h, H_CELLSHIFT)));
  return key < load<u32>(h, H_CELLBASE) ? H_ZERO : H_OVER;
}

function lowerMin(h: u32, s: i64): void {
  let cur = atomic.load<i64>(h + H_MIN);
  while (s < cur) {
    const seen = atomic.cmpxchg<i64>(h + H_MIN, cur, s);
    if (seen == cur) return;
    cur = seen;
  }
}

function raiseMax(h: u32, s: i64): void {
  let cur = atomic.load<i64>(h + H_MAX);
  while (s > cur) {
    const seen = atomic.cmpxchg<i64>(h + H_MAX, cur, s);
    if (seen == cur) return;
    cur = seen;
  }
}

// ---- counters and gauges -------------------------------------------------------------------

// Integers cross from JS as f64 (exact to 2^53): BigInt arguments would cost more than the add.
export function add(p: u32, n: f64): void {
  atomic.add<i64>(p, i64(n));
}

/** Adds n at p and m at the next slot (a message count and its bytes) in one call. */
export function add2(p: u32, n: f64, m: f64): void {
  atomic.add<i64>(p, i64(n));
  if (m != 0) atomic.add<i64>(p + 8, i64(m));
}

/** Adds and returns the new value. */
export function addGet(p: u32, n: f64): f64 {
  return f64(atomic.add<i64>(p, i64(n)) + i64(n));
}

export function inc(p: u32): void {
  atomic.add<i64>(p, 1);
}

export function getI64(p: u32): f64 {
  return f64(atomic.load<i64>(p));
}

export function setF64(p: u32, v: f64): void {
  atomic.store<i64>(p, reinterpret<i64>(v));
}

export function getF64(p: u32): f64 {
  return reinterpret<f64>(atomic.load<i64>(p));
}

/** Raises an f64 gauge to v if v is larger (peaks); a gauge never reported (NaN) takes v. */
export function maxF64(p: u32, v: f64): void {
  let cur = atomic.load<i64>(p);
  while (v > reinterpret<f64>(cur) || reinterpret<f64>(cur) != reinterpret<f64>(cur)) {
    const seen = atomic.cmpxchg<i64>(p, cur, reinterpret<i64>(v));
    if (seen == cur) return;
    cur = seen;
  }
}

// ---- histogram reads (the tick's thread) -----------------------------------------------------

export function histCount(h: u32): f64 {
  let n: i64 = 0;
  findRange(h);
  const lanes = laneCount(h);
  for (let j = -1; j < lanes; j++) {
    const b = j < 0 ? h : lane(h, j);
    if (b == 0) continue;
    n += atomic.load<i64>(b + H_ZERO) + atomic.load<i64>(b + H_OVER);
    const end = b + H_BUCKETS + (rangeHi << 3);
    let p = b + H_BUCKETS + (rangeLo << 3);
    if (wideReads) {
      let pair = i64x2.splat(0);
      for (; p + 8 < end; p += 16) pair = i64x2.add(pair, v128.load(p));
      n += i64x2.extract_lane(pair, 0) + i64x2.extract_lane(pair, 1);
    }
    for (; p < end; p += 8) n += atomic.load<i64>(p);
  }
  return f64(n);
}

export function histSum(h: u32): f64 {
  return f64(merged(h, H_SUM)) / load<f64>(h, H_SUMMUL);
}

/**
 * count, sum, min and max of h (lanes included, API unit) as four f64 at dst: one call for a reader.
 * A count ≥ 0 is taken as h's count (the caller has just counted it), saving a pass.
 */
export function histStats(h: u32, count: f64, dst: u32): void {
  store<f64>(dst, count >= 0 ? count : histCount(h));
  store<f64>(dst + 8, histSum(h));
  store<f64>(dst + 16, histMin(h));
  store<f64>(dst + 24, histMax(h));
}

/**
 * The i64 counters [0, nCounters) of a block as f64, each with its copies in `lanes` counter lanes
 * (at lane, lane + laneStride, ...) added, then the block's f64 gauges up to nAll as they are, at dst.
 * A counter lane is its thread's own and written from JS: it holds whole numbers as f64 (exact, its
 * thread keeps them ≤ 2^52).
 */
export function readCounters(p: u32, nCounters: u32, nAll: u32, dst: u32, lane: u32, laneStride: u32, lanes: u32): void {
  for (let i: u32 = 0; i < nCounters; i++) {
    let v = atomic.load<i64>(p + (i << 3));
    for (let t: u32 = 0; t < lanes; t++) v += i64(reinterpret<f64>(atomic.load<i64>(lane + t * laneStride + (i << 3))));
    store<f64>(dst + (i << 3), f64(v));
  }
  for (let i = nCounters; i < nAll; i++) store<i64>(dst + (i << 3), atomic.load<i64>(p + (i << 3)));
}

/** Smallest recorded value in the API unit, NaN when empty. */
export function histMin(h: u32): f64 {
  const m = mergedMin(h);
  return m == i64.MAX_VALUE ? NaN : f64(m) / load<f64>(h, H_SUMMUL);
}

export function histMax(h: u32): f64 {
  const m = mergedMax(h);
  return m < 0 ? NaN : f64(m) / load<f64>(h, H_SUMMUL);
}

function resetBlock(b: u32, nBuckets: u32): void {
  atomic.store<i64>(b + H_SUM, 0);
  atomic.store<i64>(b + H_MIN, i64.MAX_VALUE);
  atomic.store<i64>(b + H_MAX, -1);
  atomic.store<i64>(b + H_ZERO, 0);
  atomic.store<i64>(b + H_OVER, 0);
  memory.fill(b + H_BUCKETS, 0, nBuckets << 3);
}

/** Empties a histogram and its lanes (their configuration and links stay). Not for one being recorded into. */
export function histReset(h: u32): void {
  const nb = load<u32>(h, H_NBUCKETS);
  resetBlock(h, nb);
  const lanes = laneCount(h);
  for (let j = 0; j < lanes; j++) {
    const l = lane(h, j);
    if (l != 0) resetBlock(l, nb);
  }
}

/**
 * dst += src, for two histograms of the same layout (src's lanes included; dst's own block takes
 * it). dst must be written by the calling thread alone (a reader's scratch or rollup histogram):
 * plain adds, no atomic read-modify-write per bucket. src may be recorded into meanwhile.
 */
export function histMerge(dst: u32, src: u32): void {
  store<i64>(dst + H_SUM, load<i64>(dst + H_SUM) + merged(src, H_SUM));
  const mn = mergedMin(src);
  if (mn < load<i64>(dst + H_MIN)) store<i64>(dst + H_MIN, mn);
  const mx = mergedMax(src);
  if (mx > load<i64>(dst + H_MAX)) store<i64>(dst + H_MAX, mx);
  store<i64>(dst + H_ZERO, load<i64>(dst + H_ZERO) + merged(src, H_ZERO));
  store<i64>(dst + H_OVER, load<i64>(dst + H_OVER) + merged(src, H_OVER));
  findRange(src);
  const first = H_BUCKETS + (rangeLo << 3);
  const n = rangeHi - rangeLo;
  const lanes = laneCount(src);
  // The block and its first lane in one pass (as gather does), then any other lane.
  const l0 = lanes > 0 ? lane(src, 0) : 0;
  addCounts(dst + first, src + first, l0 == 0 ? 0 : l0 + first, n);
  for (let j = 1; j < lanes; j++) {
    const l = lane(src, j);
    if (l != 0) addCounts(dst + first, l + first, 0, n);
  }
}

// out[k] += a[k] (+ b[k] unless b is 0) for n i64 counters; a and b may be recorded into meanwhile.
function addCounts(out: u32, a: u32, b: u32, n: u32): void {
  let k: u32 = 0;
  if (b == 0) {
    if (wideReads) for (; k + 1 < n; k += 2) v128.store(out + (k << 3), i64x2.add(v128.load(out + (k << 3)), v128.load(a + (k << 3))));
    for (; k < n; k++) store<i64>(out + (k << 3), load<i64>(out + (k << 3)) + atomic.load<i64>(a + (k << 3)));
  } else {
    if (wideReads) {
      for (; k + 1 < n; k += 2) {
        const both = i64x2.add(v128.load(a + (k << 3)), v128.load(b + (k << 3)));
        v128.store(out + (k << 3), i64x2.add(v128.load(out + (k << 3)), both));
      }
    }
    for (; k < n; k++) store<i64>(out + (k << 3), load<i64>(out + (k << 3)) + atomic.load<i64>(a + (k << 3)) + atomic.load<i64>(b + (k << 3)));
  }
}

/**
 * Low 32 bits of every counter (zero, overflow, buckets; lanes added) into dst: a compact snapshot
 * for windows. Returns h's count, counted in the same pass.
 */
export function histSnap32(h: u32, dst: u32): f64 {
  const zero = merged(h, H_ZERO);
  const over = merged(h, H_OVER);
  store<u32>(dst, u32(zero));
  store<u32>(dst + 4, u32(over));
  let total = zero + over;
  // Outside the range every count is 0 now, and was 0 in any earlier snapshot of h kept here.
  findRange(h);
  const n = rangeHi - rangeLo;
  const b = h + H_BUCKETS + (rangeLo << 3);
  const out = dst + 8 + (rangeLo << 2);
  const lanes = laneCount(h);
  const l0 = lanes > 0 ? lane(h, 0) : 0;
  const l = l0 == 0 ? 0 : l0 + H_BUCKETS + (rangeLo << 3);
  let k: u32 = 0;
  if (wideReads) {
    // Four counters at a time (the block and its first lane added): their i64 sums are counted,
    // and their low halves stored as four u32.
    let sums = i64x2.splat(0);
    for (; k + 3 < n; k += 4) {
      let lo = v128.load(b + (k << 3));
      let hi = v128.load(b + (k << 3) + 16);
      if (l != 0) {
        lo = i64x2.add(lo, v128.load(l + (k << 3)));
        hi = i64x2.add(hi, v128.load(l + (k << 3) + 16));
      }
      sums = i64x2.add(sums, i64x2.add(lo, hi));
      v128.store(out + (k << 2), v128.shuffle<i32>(lo, hi, 0, 2, 4, 6));
    }
    total += i64x2.extract_lane(sums, 0) + i64x2.extract_lane(sums, 1);
  }
  for (; k < n; k++) {
    const c = atomic.load<i64>(b + (k << 3)) + (l == 0 ? 0 : atomic.load<i64>(l + (k << 3)));
    total += c;
    store<u32>(out + (k << 2), u32(c));
  }
  for (let j = 1; j < lanes; j++) {
    const lj = lane(h, j);
    if (lj == 0) continue;
    const from = lj + H_BUCKETS + (rangeLo << 3);
    for (let i: u32 = 0; i < n; i++) {
      const c = atomic.load<i64>(from + (i << 3));
      total += c;
      store<u32>(out + (i << 2), load<u32>(out + (i << 2)) + u32(c));
    }
  }
  return f64(total);
}

// The counts of buckets [rangeLo, rangeHi) of h with its lanes added, as i64 at out (bucket i at
// out + (i - rangeLo) × 8). Sequential passes: the block and its first lane together, then any
// other lane.
function gather(h: u32, out: u32): void {
  const n = rangeHi - rangeLo;
  const first = H_BUCKETS + (rangeLo << 3);
  const lanes = laneCount(h);
  const b = h + first;
  const l0 = lanes > 0 ? lane(h, 0) : 0;
  let k: u32 = 0;
  if (l0 == 0) {
    if (wideReads) for (; k + 1 < n; k += 2) v128.store(out + (k << 3), v128.load(b + (k << 3)));
    for (; k < n; k++) store<i64>(out + (k << 3), atomic.load<i64>(b + (k << 3)));
  } else {
    const l = l0 + first;
    if (wideReads) for (; k + 1 < n; k += 2) v128.store(out + (k << 3), i64x2.add(v128.load(b + (k << 3)), v128.load(l + (k << 3))));
    for (; k < n; k++) store<i64>(out + (k << 3), atomic.load<i64>(b + (k << 3)) + atomic.load<i64>(l + (k << 3)));
  }
  for (let j = 1; j < lanes; j++) {
    const lj = lane(h, j);
    if (lj == 0) continue;
    const l = lj + first;
    for (let k: u32 = 0; k < n; k++) {
      const p = out + (k << 3);
      store<i64>(p, load<i64>(p) + atomic.load<i64>(l + (k << 3)));
    }
  }
}

/**
 * dst (a histogram of the same layout, without lanes) := the counts recorded since the 32-bit
 * snapshot `old` was taken; returns dst's count. Differences are taken modulo 2^32, exact while a
 * window holds < 2^32 values per bucket. sum, min and max of a window are not kept: dst gets the
 * live min/max as clamps, and only the buckets between those are written (every read of dst walks
 * no further).
 */
export function histWindow(h: u32, old: u32, dst: u32): f64 {
  store<i64>(dst + H_SUM, 0);
  store<i64>(dst + H_MIN, mergedMin(h));
  store<i64>(dst + H_MAX, mergedMax(h));
  const zero = i64(u32(merged(h, H_ZERO)) - load<u32>(old));
  const over = i64(u32(merged(h, H_OVER)) - load<u32>(old, 4));
  store<i64>(dst + H_ZERO, zero);
  store<i64>(dst + H_OVER, over);
  let total = zero + over;
  findRange(dst); // the range of the min/max just stored: what readers of dst walk
  const out = dst + H_BUCKETS + (rangeLo << 3);
  gather(h, out);
  const prev = old + 8 + (rangeLo << 2);
  const n = rangeHi - rangeLo;
  let k: u32 = 0;
  if (wideReads) {
    // Two at a time: (count - old) mod 2^32, as i64 lanes masked to their low 32 bits.
    const low32 = i64x2.splat(0xffffffff);
    let pair = i64x2.splat(0);
    for (; k + 1 < n; k += 2) {
      const p = out + (k << 3);
      const c = v128.and(i64x2.sub(v128.load(p), i64x2.extend_low_i32x4_u(v128.load64_zero(prev + (k << 2)))), low32);
      pair = i64x2.add(pair, c);
      v128.store(p, c);
    }
    total += i64x2.extract_lane(pair, 0) + i64x2.extract_lane(pair, 1);
  }
  for (; k < n; k++) {
    const p = out + (k << 3);
    const c = i64(u32(load<i64>(p)) - load<u32>(prev + (k << 2)));
    total += c;
    store<i64>(p, c);
  }
  return f64(total);
}

/**
 * The counters (lanes added) as f64 into dst: [zero, overflow, buckets...] for the facade to read,
 * and their total. Only the buckets in [exportedLo(), exportedHi()) are written; every other
 * bucket is empty.
 */
export function histExport(h: u32, dst: u32): f64 {
  const zero = merged(h, H_ZERO);
  const over = merged(h, H_OVER);
  let total = zero + over;
  store<f64>(dst, f64(zero));
  store<f64>(dst + 8, f64(over));
  findRange(h);
  // Gathered as i64, then turned into f64 in place.
  const out = dst + 16 + (rangeLo << 3);
  gather(h, out);
  const n = rangeHi - rangeLo;
  for (let k: u32 = 0; k < n; k++) {
    const p = out + (k << 3);
    const c = load<i64>(p);
    total += c;
    store<f64>(p, f64(c));
  }
  return f64(total);
}

/** Upper bound of bucket idx in the bucket unit: 2^e × (1 + bound_j / 2^52), built from bits. */
function upperBound(h: u32, scale: i32, idx: i32): f64 {
  const e = idx >> scale;
  const j = u32(idx - (e << scale));
  const fraction = load<u64>(load<u32>(h, H_BOUNDS) + (j << 3));
  return reinterpret<f64>((u64(1023 + e) << 52) | fraction);
}

/**
 * The q-quantile (nearest rank: the smallest value with at least ⌈q·n⌉ values at or below it),
 * reported at its bucket's log-midpoint and clamped to the observed min/max, in the API unit.
 * NaN when empty.
 */
export function histQuantile(h: u32, q: f64): f64 {
  return quantiles(h, -1, q, 0, 0, 0);
}

/**
 * The n quantiles at qs (f64, ascending) into dst (f64; may be qs itself), each as histQuantile
 * gives it, in one count and one walk of the buckets; `count` is h's count when the caller has it
 * (histWindow returns it), which saves the count, else -1.
 */
export function histQuantiles(h: u32, count: f64, qs: u32, n: u32, dst: u32): void {
  if (n > 0) quantiles(h, count, load<f64>(qs), qs, n, dst);
}

// histQuantile for one q (n = 0: returned), or histQuantiles for n ≥ 1 (stored; returns 0).
function quantiles(h: u32, count: f64, q: f64, qs: u32, n: u32, dst: u32): f64 {
  // Either sets the range walked below.
  let total = count;
  if (total < 0) total = histCount(h);
  else findRange(h);
  if (total == 0) return fillFrom(NaN, 0, n, dst);
  const sumMul = load<f64>(h, H_SUMMUL);
  const lo = f64(mergedMin(h)) / sumMul;
  const hi = f64(mergedMax(h)) / sumMul;
  let k: u32 = 0;
  let rank = rankOf(q, total);
  let seen = f64(merged(h, H_ZERO));
  while (seen >= rank) {
    if (n == 0) return lo;
    store<f64>(dst + (k << 3), lo);
    if (++k == n) return 0;
    rank = rankOf(load<f64>(qs + (k << 3)), total);
  }
  const scale = load<i32>(h, H_SCALE);
  const idxMin = load<i32>(h, H_IDXMIN);
  const lanes = laneCount(h);
  // Without lanes, four buckets at a time are skipped while no rank falls among them: the walk's
  // cost is its chain of dependent adds, and this takes three of every four out of it.
  const blocks = lanes == 0 && wideReads;
  for (let i = rangeLo; i < rangeHi; i++) {
    const off = H_BUCKETS + (i << 3);
    if (blocks && i + 4 <= rangeHi) {
      const pair = i64x2.add(v128.load(h + off), v128.load(h + off + 16));
      const block = f64(i64x2.extract_lane(pair, 0) + i64x2.extract_lane(pair, 1));
      if (seen + block < rank) {
        seen += block;
        i += 3;
        continue;
      }
    }
    seen += f64(lanes == 0 ? atomic.load<i64>(h + off) : merged(h, off));
    if (seen < rank) continue;
    const idx = i32(i) + idxMin;
    // log-midpoint: the geometric mean of the bucket's bounds (sqrt is an instruction; no libm)
    let mid = Math.sqrt(upperBound(h, scale, idx) * upperBound(h, scale, idx - 1)) / load<f64>(h, H_IDXMUL);
    mid = mid < lo ? lo : mid > hi ? hi : mid;
    while (seen >= rank) {
      if (n == 0) return mid;
      store<f64>(dst + (k << 3), mid);
      if (++k == n) return 0;
      rank = rankOf(load<f64>(qs + (k << 3)), total);
    }
  }
  return fillFrom(hi, k, n, dst);
}

// @ts-ignore: decorator
@inline function rankOf(q: f64, total: f64): f64 {
  const rank = Math.ceil(q * total);
  return rank < 1 ? 1 : rank;
}

// Stores v into dst[k..n) and returns v (the one answer when n is 0).
function fillFrom(v: f64, k: u32, n: u32, dst: u32): f64 {
  for (; k < n; k++) store<f64>(dst + (k << 3), v);
  return v;
}
