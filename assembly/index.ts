// The hot path: histograms and counters in a shared linear memory, bucket pages handed out on first use.
//
// Nothing here allocates from a heap: every instance (one per thread) works on the same memory
// through the pointers it is handed. The facade (src/layout.ts) lays the memory out once and
// writes every header; this module keeps no state besides a few per-instance pointers.
//
// Histogram header (bytes, 8-aligned; src/core/layout.ts H and S mirror these and src/core/wasm.ts
// checks they agree at every instantiation, through the exported H_* and S_* globals below):
//   shape u32 | lanes i32 | laneAt u32 | prevAt u32 | sum i64 | zero i64 | overflow i64 | min i64
//   | max i64 | unplaced i64 | unplacedSum i64 | prevZero u32 | prevOver u32 | page table u32 × P
//   [| window-state page table u32 × P] [| lane pointers u32 × MAX_LANES]
// (P = ceil(nBuckets / PAGE_SLOTS)). The two optional tables are where laneAt and prevAt say (bytes
// from the header; 0: none): only a series' latency histogram keeps windows and takes lanes, so the
// other histograms, the lanes themselves and the rollups' histograms carry neither.
// `shape` points at the shape's record, written once for every histogram of that shape:
//   scale i32 | idxMin i32 | nBuckets i32 | boundsPtr i32 | idxMul f64 | sumMul f64
//   | cells u32 | cellShift u32 | cellBase u32 | cellCount u32
// Bucket index i (Prometheus native convention) covers (2^((i-1)/2^scale), 2^(i/2^scale)] in the
// bucket unit (value × idxMul, e.g. ms → seconds); slot i - idxMin holds its count. Values below the
// first bucket count in `zero`, values above the last in `overflow`. sum, min and max are integers
// in the sum unit (value × sumMul, e.g. ns), so they are exact.
//
// Bucket pages. Slots are grouped in pages of PAGE_SLOTS counters; a page is claimed from the
// shared arena the first time a value lands in it (one compare-and-swap on its page-table entry, so
// threads racing for a page agree on one), and a histogram costs memory in proportion to the range
// of values it has seen: a latency series spanning 0.5–20 ms touches 11 pages, not 4,058 slots. A
// series also has window-state pages (PREV_PAGE_BYTES, claimed by the tick): its u32 counts as of the
// last tick, so that a window is the sum of per-tick deltas and needs no full copies.
// When the arena is used up (a bound the facade sets), a value whose page cannot be had is counted
// in `unplaced` (and in sum, min and max): never lost, never put in a wrong bucket.
//
// Lanes. A histogram that threads record into at a high rate (a series' latencies) can have up to
// MAX_LANES lanes: headers of the same shape with pages of their own, each owned by one thread
// (claimed by the facade, see src/record/recorder.ts), which that thread alone writes with plain loads and
// stores — no lock prefix, no lost update, since nobody else writes there. Every read sees a histogram as its own pages plus its lanes', merged; the series' own
// pages take records from any thread with atomics. Lanes are only used where an aligned 64-bit store
// is a single store (64-bit hosts), so a reader's load never sees half of one.

export const LAYOUT_VERSION: i32 = 8;

export const S_SCALE: u32 = 0;
export const S_IDXMIN: u32 = 4;
export const S_NBUCKETS: u32 = 8;
export const S_BOUNDS: u32 = 12;
export const S_IDXMUL: u32 = 16;
export const S_SUMMUL: u32 = 24;
export const S_CELLS: u32 = 32;
export const S_CELLSHIFT: u32 = 36;
export const S_CELLBASE: u32 = 40;
export const S_CELLCOUNT: u32 = 44;

export const H_SHAPE: u32 = 0;
export const H_LANES: u32 = 4;
export const H_LANEAT: u32 = 8;
export const H_PREVAT: u32 = 12;
// sum and zero share a cache line (a series' latency header starts 16 bytes into one): the tick's
// scan of a series reads those two alone.
export const H_SUM: u32 = 16;
export const H_ZERO: u32 = 24;
export const H_OVER: u32 = 32;
export const H_MIN: u32 = 40;
export const H_MAX: u32 = 48;
export const H_UNPLACED: u32 = 56;
export const H_UNPLACEDSUM: u32 = 64;
export const H_PREVZERO: u32 = 72;
export const H_PREVOVER: u32 = 76;
export const H_PAGES: u32 = 80;
export const MAX_LANES: i32 = 15;

export const PAGE_SHIFT: u32 = 6;
export const PAGE_SLOTS: u32 = 1 << PAGE_SHIFT;
const PAGE_MASK: u32 = PAGE_SLOTS - 1;
/** Bytes of a page of counts (i64), a series' or a lane's. */
export const PAGE_BYTES: u32 = PAGE_SLOTS * 8;
/** Bytes of a window-state page: a series' counts as of the last tick (u32). */
export const PREV_PAGE_BYTES: u32 = PAGE_SLOTS * 4;

// The arena's descriptor (u32 fields at `arena`, in the runtime header; see src/layout.ts R).
export const A_NEXT: u32 = 0;
export const A_END: u32 = 4;
export const A_WASTED: u32 = 8;
export const A_REFUSED: u32 = 12;

const ABS_MASK: u64 = 0x7fffffffffffffff;

// Per instance: the arena descriptor and the reader's gather area (set by the facade).
let arena: u32 = 0;
let gatherAt: u32 = 0;

export function setAreas(arenaPtr: u32, gatherPtr: u32): void {
  arena = arenaPtr;
  gatherAt = gatherPtr;
}

/** Records one value (in the API unit, already validated: finite, ≥ 0, in range), from any thread. */
export function record(h: u32, v: f64): void {
  const sh = load<u32>(h, H_SHAPE);
  const s = i64(v * load<f64>(sh, S_SUMMUL) + 0.5);
  if (s < atomic.load<i64>(h + H_MIN)) lowerMin(h, s);
  if (s > atomic.load<i64>(h + H_MAX)) raiseMax(h, s);
  const code = bucketCode(sh, v);
  if (code >= 2) {
    const slot = code - 2;
    let pg = load<u32>(h + H_PAGES + ((slot >> PAGE_SHIFT) << 2));
    if (pg == 0) pg = claimPage(h, slot >> PAGE_SHIFT);
    if (pg != 0) atomic.add<i64>(pg + ((slot & PAGE_MASK) << 3), 1);
    else unplaced(h, s);
  } else atomic.add<i64>(h + H_ZERO + (code << 3), 1);
  // The sum last: the tick's scan (scanSeries) takes a changed sum as the sign of a new record and
  // then reads the counts, so they must be in place before the sum moves. Added first, a scan
  // between the two would read the old count and, the sum being seen already, never look again.
  atomic.add<i64>(h + H_SUM, s);
}

/**
 * Records one value into a lane: only the lane's owning thread may call this. Plain loads and
 * stores (single aligned 64-bit ones), about half the cost of `record`.
 */
export function recordOwned(lane: u32, v: f64): void {
  const sh = load<u32>(lane, H_SHAPE);
  const s = i64(v * load<f64>(sh, S_SUMMUL) + 0.5);
  if (s < load<i64>(lane + H_MIN)) store<i64>(lane + H_MIN, s);
  if (s > load<i64>(lane + H_MAX)) store<i64>(lane + H_MAX, s);
  const code = bucketCode(sh, v);
  let p = lane + H_ZERO + (code << 3);
  if (code >= 2) {
    const slot = code - 2;
    let pg = load<u32>(lane + H_PAGES + ((slot >> PAGE_SHIFT) << 2));
    if (pg == 0) pg = claimPage(lane, slot >> PAGE_SHIFT);
    if (pg == 0) p = 0;
    else p = pg + ((slot & PAGE_MASK) << 3);
  }
  if (p != 0) store<i64>(p, load<i64>(p) + 1);
  else unplaced(lane, s);
  // The sum last, as in record(): plain stores are seen in program order on the hosts that have
  // lanes (x86-64; see LANE_HISTOGRAMS in src/core/layout.ts).
  store<i64>(lane + H_SUM, load<i64>(lane + H_SUM) + s);
}

// A value whose page could not be had (the arena is used up): counted, and its sum kept apart, so
// that exports can leave it out of the buckets' histogram and still add up.
function unplaced(h: u32, s: i64): void {
  atomic.add<i64>(h + H_UNPLACED, 1);
  atomic.add<i64>(h + H_UNPLACEDSUM, s);
}

/**
 * Page `pi` of histogram h, claimed from the arena if h has none yet; 0 when the arena is used up.
 * Any thread; whoever swaps first gives the page.
 */
function claimPage(h: u32, pi: u32): u32 {
  return claimEntry(h + H_PAGES + (pi << 2), PAGE_BYTES);
}

// Entry pi of h's window-state page table (h must have one: a series' latency histogram).
function prevEntry(h: u32, pi: u32): u32 {
  return h + load<u32>(h, H_PREVAT) + (pi << 2);
}

// The shape record of h.
function shapeOf(h: u32): u32 {
  return load<u32>(h, H_SHAPE);
}

// The page a table entry points at, claimed (`bytes` of it) if there is none yet.
function claimEntry(entry: u32, bytes: u32): u32 {
  const cur = atomic.load<u32>(entry);
  if (cur != 0) return cur;
  const pg = allocate(bytes);
  if (pg == 0) return 0;
  const seen = atomic.cmpxchg<u32>(entry, 0, pg);
  if (seen == 0) return pg;
  atomic.add<u32>(arena + A_WASTED, bytes); // another thread linked its page first
  return seen;
}

// `bytes` of zeroed arena, growing the memory when the arena reaches its end; 0 when the arena's
// bound is reached (counted) or the memory cannot grow.
function allocate(bytes: u32): u32 {
  let next = atomic.load<u32>(arena + A_NEXT);
  while (true) {
    if (u64(next) + bytes > u64(load<u32>(arena, A_END))) {
      atomic.add<u32>(arena + A_REFUSED, 1);
      return 0;
    }
    const seen = atomic.cmpxchg<u32>(arena + A_NEXT, next, next + bytes);
    if (seen == next) break;
    next = seen;
  }
  const need = u64(next) + bytes;
  while (u64(memory.size()) << 16 < need) {
    // Several threads may grow at once: each grows by what it saw missing, at worst a page too many.
    const missing = i32((need - (u64(memory.size()) << 16) + 65535) >> 16);
    if (memory.grow(missing) < 0 && u64(memory.size()) << 16 < need) {
      atomic.add<u32>(arena + A_REFUSED, 1);
      return 0;
    }
  }
  return next;
}

/**
 * Links `lane` (an empty header of h's shape) to h as one more lane; returns false when h has no
 * room left (the caller then records into h itself). The facade hands each lane to one thread.
 */
export function addLane(h: u32, lane: u32): bool {
  const at = load<u32>(h, H_LANEAT);
  if (at == 0) return false; // a histogram that takes no lanes
  const slot = atomic.add<i32>(h + H_LANES, 1);
  if (slot >= MAX_LANES) {
    atomic.sub<i32>(h + H_LANES, 1);
    return false;
  }
  atomic.store<u32>(h + at + (u32(slot) << 2), lane);
  return true;
}

// The lanes of h that readers must add: a slot counted but not yet pointed at reads as 0 (skip it).
function laneCount(h: u32): i32 {
  const n = atomic.load<i32>(h + H_LANES);
  return n > MAX_LANES ? MAX_LANES : n;
}

function lane(h: u32, j: i32): u32 {
  return atomic.load<u32>(h + load<u32>(h, H_LANEAT) + (u32(j) << 2));
}

/** An i64 field (sum, zero, overflow, unplaced, by offset) over h and its lanes. */
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
  const sumMul = load<f64>(shapeOf(h), S_SUMMUL);
  rangeLo = slotOf(h, (f64(mergedMin(h)) - 1) / sumMul);
  rangeHi = slotOf(h, (f64(mx) + 1) / sumMul) + 1;
}

// The bucket slot of x (API unit), with the zero bucket and overflow mapped to the first and last slot.
function slotOf(h: u32, x: f64): u32 {
  const sh = shapeOf(h);
  const code = bucketCode(sh, x > 0 ? x : 0);
  if (code == 0) return 0;
  if (code == 1) return load<u32>(sh, S_NBUCKETS) - 1;
  return code - 2;
}

/** The slot range found by the last histExport (for the facade to read only that). */
export function exportedLo(): u32 {
  return rangeLo;
}

export function exportedHi(): u32 {
  return rangeHi;
}

// Where value v (API unit, ≥ 0) counts: 0 for the zero bucket, 1 for overflow, 2 + slot for a
// bucket. The range table has a cell for every 2^-(scale+1) of every octave of the histogram's
// range, each narrower than a bucket: the value's top bits pick its cell, and one comparison with
// the last float of the cell's lower bucket picks that bucket or the next (whose code the cell
// holds as a step, 0 when the cell is all one bucket). Values outside the table are below the first
// bucket or above the last. No multiply, no log, no loop; one well-predicted branch.
function bucketCode(sh: u32, v: f64): u32 {
  const bits = reinterpret<u64>(v);
  const k = u32(bits >> u64(load<u32>(sh, S_CELLSHIFT))) - load<u32>(sh, S_CELLBASE);
  if (k >= load<u32>(sh, S_CELLCOUNT)) return outsideTable(sh, bits);
  const cell = load<u32>(sh, S_CELLS) + (k << 4);
  return load<u32>(cell, 8) + ((u32(0) - u32(bits > load<u64>(cell))) & load<u32>(cell, 12));
}

// Zero bucket or overflow for a value whose cell is outside the table (-0 is 0).
function outsideTable(sh: u32, bits: u64): u32 {
  const key = u32((bits & ABS_MASK) >> u64(load<u32>(sh, S_CELLSHIFT)));
  return key < load<u32>(sh, S_CELLBASE) ? 0 : 1;
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

// The merged counts of slots [rangeLo, rangeHi) of h's pages and its lanes', as i64 at out (slot i
// at out + (i - rangeLo) × 8). A page no block has reads as zeros.
function gather(h: u32, out: u32): void {
  memory.fill(out, 0, (rangeHi - rangeLo) << 3);
  addPagesOf(h, out);
  const lanes = laneCount(h);
  for (let j = 0; j < lanes; j++) {
    const l = lane(h, j);
    if (l != 0) addPagesOf(l, out);
  }
}

function addPagesOf(b: u32, out: u32): void {
  let s = rangeLo;
  while (s < rangeHi) {
    const pi = s >> PAGE_SHIFT;
    const end = min(rangeHi, (pi + 1) << PAGE_SHIFT);
    const pg = atomic.load<u32>(b + H_PAGES + (pi << 2));
    if (pg != 0) {
      let src = pg + ((s & PAGE_MASK) << 3);
      let dst = out + ((s - rangeLo) << 3);
      if (wideReads) {
        for (; s + 1 < end; s += 2, src += 16, dst += 16) v128.store(dst, i64x2.add(v128.load(dst), v128.load(src)));
      }
      for (; s < end; s++, src += 8, dst += 8) store<i64>(dst, load<i64>(dst) + atomic.load<i64>(src));
    }
    s = end;
  }
}

// Sum of n i64 counts at p.
function total(p: u32, n: u32): i64 {
  let t: i64 = 0;
  let k: u32 = 0;
  if (wideReads) {
    let pair = i64x2.splat(0);
    for (; k + 1 < n; k += 2) pair = i64x2.add(pair, v128.load(p + (k << 3)));
    t = i64x2.extract_lane(pair, 0) + i64x2.extract_lane(pair, 1);
  }
  for (; k < n; k++) t += load<i64>(p + (k << 3));
  return t;
}

// The counts in h's buckets, zero bucket and overflow (not the unplaced ones), gathered at gatherAt.
function placed(h: u32): i64 {
  findRange(h);
  gather(h, gatherAt);
  return merged(h, H_ZERO) + merged(h, H_OVER) + total(gatherAt, rangeHi - rangeLo);
}

/** Every value recorded into h: placed in a bucket, or unplaced for want of a page. */
function histCount(h: u32): f64 {
  return f64(placed(h) + merged(h, H_UNPLACED));
}

/** Values that found no page (the arena was used up): counted, in no bucket. */
export function histUnplaced(h: u32): f64 {
  return f64(merged(h, H_UNPLACED));
}

/** The sum of the unplaced values, in the API unit. */
export function histUnplacedSum(h: u32): f64 {
  return f64(merged(h, H_UNPLACEDSUM)) / load<f64>(shapeOf(h), S_SUMMUL);
}

export function histSum(h: u32): f64 {
  return f64(merged(h, H_SUM)) / load<f64>(shapeOf(h), S_SUMMUL);
}

/**
 * count, sum, min and max of h (lanes included, API unit) as four f64 at dst: one call for a reader.
 * A count ≥ 0 is taken as h's count (the caller has just counted it), saving a pass.
 */
function histStats(h: u32, count: f64, dst: u32): void {
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
export function readCounters(
  p: u32,
  nCounters: u32,
  nAll: u32,
  dst: u32,
  lane: u32,
  laneStride: u32,
  lanes: u32,
): void {
  for (let i: u32 = 0; i < nCounters; i++) {
    let v = atomic.load<i64>(p + (i << 3));
    for (let t: u32 = 0; t < lanes; t++) v += i64(reinterpret<f64>(atomic.load<i64>(lane + t * laneStride + (i << 3))));
    store<f64>(dst + (i << 3), f64(v));
  }
  for (let i = nCounters; i < nAll; i++) store<i64>(dst + (i << 3), atomic.load<i64>(p + (i << 3)));
}

/**
 * histStats of each of a series' nHists histograms (at base + the u32 offsets at `offsets`), 4 × f64
 * each at dst: one call for a series. `firstCount` ≥ 0 is the first histogram's count when known.
 */
export function seriesStats(base: u32, offsets: u32, nHists: u32, firstCount: f64, dst: u32): void {
  for (let k: u32 = 0; k < nHists; k++)
    histStats(base + load<u32>(offsets + (k << 2)), k == 0 ? firstCount : -1, dst + (k << 5));
}

/** Smallest recorded value in the API unit, NaN when empty. */
export function histMin(h: u32): f64 {
  const m = mergedMin(h);
  return m == i64.MAX_VALUE ? NaN : f64(m) / load<f64>(shapeOf(h), S_SUMMUL);
}

export function histMax(h: u32): f64 {
  const m = mergedMax(h);
  return m < 0 ? NaN : f64(m) / load<f64>(shapeOf(h), S_SUMMUL);
}

function resetBlock(b: u32): void {
  atomic.store<i64>(b + H_SUM, 0);
  atomic.store<i64>(b + H_MIN, i64.MAX_VALUE);
  atomic.store<i64>(b + H_MAX, -1);
  atomic.store<i64>(b + H_ZERO, 0);
  atomic.store<i64>(b + H_OVER, 0);
  atomic.store<i64>(b + H_UNPLACED, 0);
  atomic.store<i64>(b + H_UNPLACEDSUM, 0);
  store<u32>(b + H_PREVZERO, 0);
  store<u32>(b + H_PREVOVER, 0);
  const pages = pageCount(b);
  const windowed = load<u32>(b, H_PREVAT) != 0;
  for (let pi: u32 = 0; pi < pages; pi++) {
    const pg = load<u32>(b + H_PAGES + (pi << 2));
    if (pg != 0) memory.fill(pg, 0, PAGE_BYTES);
    const prev = windowed ? load<u32>(prevEntry(b, pi)) : 0;
    if (prev != 0) memory.fill(prev, 0, PREV_PAGE_BYTES);
  }
}

function pageCount(h: u32): u32 {
  return (load<u32>(shapeOf(h), S_NBUCKETS) + PAGE_MASK) >> PAGE_SHIFT;
}

/** Empties a histogram and its lanes (their configuration, pages and links stay). Not for one being recorded into. */
export function histReset(h: u32): void {
  resetBlock(h);
  const lanes = laneCount(h);
  for (let j = 0; j < lanes; j++) {
    const l = lane(h, j);
    if (l != 0) resetBlock(l);
  }
}

// dst's counter of slot s (a histogram the calling thread alone writes: a reader's scratch or a
// rollup) += c; without a page to be had, the counts are kept as unplaced.
function addToSlot(dst: u32, s: u32, c: i64): void {
  let pg = load<u32>(dst + H_PAGES + ((s >> PAGE_SHIFT) << 2));
  if (pg == 0) pg = claimPage(dst, s >> PAGE_SHIFT);
  const p = pg != 0 ? pg + ((s & PAGE_MASK) << 3) : dst + H_UNPLACED;
  store<i64>(p, load<i64>(p) + c);
}

// dst's slots [rangeLo, rangeHi) += the n i64 counts at src (dst written by the calling thread alone).
function addRun(dst: u32, src: u32): void {
  let s = rangeLo;
  while (s < rangeHi) {
    const pi = s >> PAGE_SHIFT;
    const end = min(rangeHi, (pi + 1) << PAGE_SHIFT);
    let pg = load<u32>(dst + H_PAGES + (pi << 2));
    if (pg == 0 && total(src + ((s - rangeLo) << 3), end - s) != 0) pg = claimPage(dst, pi);
    if (pg != 0) {
      let d = pg + ((s & PAGE_MASK) << 3);
      let from = src + ((s - rangeLo) << 3);
      if (wideReads)
        for (; s + 1 < end; s += 2, d += 16, from += 16) v128.store(d, i64x2.add(v128.load(d), v128.load(from)));
      for (; s < end; s++, d += 8, from += 8) store<i64>(d, load<i64>(d) + load<i64>(from));
    } else {
      store<i64>(dst + H_UNPLACED, load<i64>(dst + H_UNPLACED) + total(src + ((s - rangeLo) << 3), end - s));
    }
    s = end;
  }
}

/**
 * dst += src, for two histograms of the same shape (src's lanes included; dst's own pages take it).
 * dst must be written by the calling thread alone (a reader's scratch or rollup histogram): plain
 * adds, no atomic read-modify-write per bucket. src may be recorded into meanwhile.
 */
export function histMerge(dst: u32, src: u32): void {
  store<i64>(dst + H_SUM, load<i64>(dst + H_SUM) + merged(src, H_SUM));
  const mn = mergedMin(src);
  if (mn < load<i64>(dst + H_MIN)) store<i64>(dst + H_MIN, mn);
  const mx = mergedMax(src);
  if (mx > load<i64>(dst + H_MAX)) store<i64>(dst + H_MAX, mx);
  store<i64>(dst + H_ZERO, load<i64>(dst + H_ZERO) + merged(src, H_ZERO));
  store<i64>(dst + H_OVER, load<i64>(dst + H_OVER) + merged(src, H_OVER));
  store<i64>(dst + H_UNPLACED, load<i64>(dst + H_UNPLACED) + merged(src, H_UNPLACED));
  store<i64>(dst + H_UNPLACEDSUM, load<i64>(dst + H_UNPLACEDSUM) + merged(src, H_UNPLACEDSUM));
  findRange(src);
  gather(src, gatherAt);
  addRun(dst, gatherAt);
}

// ---- windows: per-tick deltas of the buckets that changed -------------------------------------
//
// A delta is a list of (code, count) pairs of u32, code as bucketCode's (0 zero, 1 overflow, 2 +
// slot). Differences are taken modulo 2^32: exact while a bucket takes < 2^32 values per tick.

// h's count as the last histDelta found it (it counts what it walks anyway).
let deltaCount: f64 = 0;

/** The count of the histogram the last histDelta read: what histCount would have said then. */
export function lastDeltaCount(): f64 {
  return deltaCount;
}

/**
 * The counts h took since the last call (since it was made, for the first), as pairs at out;
 * returns the number of pairs. Moves h's window state (the counts as of the last tick) to now.
 * The tick's thread alone calls this, once per tick for a series that changed.
 */
export function histDelta(h: u32, out: u32): u32 {
  let n: u32 = 0;
  const zero64 = merged(h, H_ZERO);
  const over64 = merged(h, H_OVER);
  const zero = u32(zero64);
  const over = u32(over64);
  const dz = zero - load<u32>(h, H_PREVZERO);
  const dov = over - load<u32>(h, H_PREVOVER);
  if (dz != 0) n = pair(out, n, 0, dz);
  if (dov != 0) n = pair(out, n, 1, dov);
  store<u32>(h + H_PREVZERO, zero);
  store<u32>(h + H_PREVOVER, over);
  findRange(h);
  gather(h, gatherAt);
  deltaCount = f64(total(gatherAt, rangeHi - rangeLo) + zero64 + over64 + merged(h, H_UNPLACED));
  let s = rangeLo;
  while (s < rangeHi) {
    const pi = s >> PAGE_SHIFT;
    const end = min(rangeHi, (pi + 1) << PAGE_SHIFT);
    const from = gatherAt + ((s - rangeLo) << 3);
    // A page with no counts yet needs no window state; one that has them claims its page here.
    let prev = load<u32>(prevEntry(h, pi));
    if (prev == 0 && total(from, end - s) != 0) prev = claimEntry(prevEntry(h, pi), PREV_PAGE_BYTES);
    if (prev != 0) {
      for (; s < end; s++) {
        const c = u32(load<i64>(gatherAt + ((s - rangeLo) << 3)));
        const at = prev + ((s & PAGE_MASK) << 2);
        const d = c - load<u32>(at);
        if (d != 0) {
          n = pair(out, n, s + 2, d);
          store<u32>(at, c);
        }
      }
    }
    s = end;
  }
  return n;
}

function pair(out: u32, n: u32, code: u32, count: u32): u32 {
  store<u32>(out + (n << 3), code);
  store<u32>(out + (n << 3) + 4, count);
  return n + 1;
}

/** dst += the counts h took since its last histDelta (not moving its window state); returns their number. */
export function histAddLive(h: u32, dst: u32): f64 {
  const dz = i64(u32(merged(h, H_ZERO)) - load<u32>(h, H_PREVZERO));
  const dov = i64(u32(merged(h, H_OVER)) - load<u32>(h, H_PREVOVER));
  store<i64>(dst + H_ZERO, load<i64>(dst + H_ZERO) + dz);
  store<i64>(dst + H_OVER, load<i64>(dst + H_OVER) + dov);
  let t = dz + dov;
  findRange(h);
  gather(h, gatherAt);
  let s = rangeLo;
  while (s < rangeHi) {
    const pi = s >> PAGE_SHIFT;
    const end = min(rangeHi, (pi + 1) << PAGE_SHIFT);
    const prev = load<u32>(prevEntry(h, pi));
    for (; s < end; s++) {
      const d =
        u32(load<i64>(gatherAt + ((s - rangeLo) << 3))) - (prev != 0 ? load<u32>(prev + ((s & PAGE_MASK) << 2)) : 0);
      if (d != 0) {
        addToSlot(dst, s, i64(d));
        t += i64(d);
      }
    }
    s = end;
  }
  return f64(t);
}

/** dst += the n pairs at p (a delta); returns the number of values they hold. */
export function histAddPairs(dst: u32, p: u32, n: u32): f64 {
  let t: i64 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const code = load<u32>(p + (k << 3));
    const c = i64(load<u32>(p + (k << 3) + 4));
    t += c;
    if (code >= 2) addToSlot(dst, code - 2, c);
    else store<i64>(dst + H_ZERO + (code << 3), load<i64>(dst + H_ZERO + (code << 3)) + c);
  }
  return f64(t);
}

/** The non-empty counters of h (no lanes: a reader's scratch) as pairs at out; returns their number. */
export function histPairs(h: u32, out: u32): u32 {
  let n: u32 = 0;
  const zero = load<i64>(h + H_ZERO);
  const over = load<i64>(h + H_OVER);
  if (zero != 0) n = pair(out, n, 0, u32(zero));
  if (over != 0) n = pair(out, n, 1, u32(over));
  findRange(h);
  let s = rangeLo;
  while (s < rangeHi) {
    const pi = s >> PAGE_SHIFT;
    const end = min(rangeHi, (pi + 1) << PAGE_SHIFT);
    const pg = load<u32>(h + H_PAGES + (pi << 2));
    if (pg != 0) {
      for (; s < end; s++) {
        const c = load<i64>(pg + ((s & PAGE_MASK) << 3));
        if (c != 0) n = pair(out, n, s + 2, u32(c));
      }
    }
    s = end;
  }
  return n;
}

/**
 * Sets dst's min and max (API unit; NaN for none) as the clamps of a window: a window keeps no
 * min/max of its own, its quantiles are clamped to those of the values it was taken from, and its
 * reads walk no buckets outside them.
 */
export function histSetClamps(dst: u32, minV: f64, maxV: f64): void {
  const mul = load<f64>(shapeOf(dst), S_SUMMUL);
  store<i64>(dst + H_MIN, minV == minV ? i64(minV * mul + 0.5) : i64.MAX_VALUE);
  store<i64>(dst + H_MAX, maxV == maxV ? i64(maxV * mul + 0.5) : -1);
}

/**
 * The counters (lanes added) as f64 into dst: [zero, overflow, buckets...] for the facade to read,
 * and their total (unplaced values included). Only the buckets in [exportedLo(), exportedHi()) are
 * written; every other bucket is empty.
 */
export function histExport(h: u32, dst: u32): f64 {
  const zero = merged(h, H_ZERO);
  const over = merged(h, H_OVER);
  let t = zero + over + merged(h, H_UNPLACED);
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
    t += c;
    store<f64>(p, f64(c));
  }
  return f64(t);
}

/** Upper bound of bucket idx in the bucket unit: 2^e × (1 + bound_j / 2^52), built from bits. */
function upperBound(h: u32, scale: i32, idx: i32): f64 {
  const e = idx >> scale;
  const j = u32(idx - (e << scale));
  const fraction = load<u64>(load<u32>(shapeOf(h), S_BOUNDS) + (j << 3));
  return reinterpret<f64>((u64(1023 + e) << 52) | fraction);
}

/**
 * The q-quantile of the placed values (nearest rank: the smallest value with at least ⌈q·n⌉ values
 * at or below it), reported at its bucket's log-midpoint and clamped to the observed min/max, in the
 * API unit. NaN when empty.
 */
export function histQuantile(h: u32, q: f64): f64 {
  return quantiles(h, q, 0, 0, 0);
}

/** The n quantiles at qs (f64, ascending) into dst (f64; may be qs itself), each as histQuantile gives it, in one walk. */
export function histQuantiles(h: u32, qs: u32, n: u32, dst: u32): void {
  if (n > 0) quantiles(h, load<f64>(qs), qs, n, dst);
}

// histQuantile for one q (n = 0: returned), or histQuantiles for n ≥ 1 (stored; returns 0).
function quantiles(h: u32, q: f64, qs: u32, n: u32, dst: u32): f64 {
  const all = f64(placed(h)); // gathers h's range at gatherAt
  if (all == 0) return fillFrom(NaN, 0, n, dst);
  const sumMul = load<f64>(shapeOf(h), S_SUMMUL);
  const lo = f64(mergedMin(h)) / sumMul;
  const hi = f64(mergedMax(h)) / sumMul;
  let k: u32 = 0;
  let rank = rankOf(q, all);
  let seen = f64(merged(h, H_ZERO));
  while (seen >= rank) {
    if (n == 0) return lo;
    store<f64>(dst + (k << 3), lo);
    if (++k == n) return 0;
    rank = rankOf(load<f64>(qs + (k << 3)), all);
  }
  const scale = load<i32>(shapeOf(h), S_SCALE);
  const idxMin = load<i32>(shapeOf(h), S_IDXMIN);
  const width = rangeHi - rangeLo;
  for (let i: u32 = 0; i < width; i++) {
    // Four buckets at a time are skipped while no rank falls among them: the walk's cost is its
    // chain of dependent adds, and this takes three of every four out of it.
    if (wideReads && i + 4 <= width) {
      const p = gatherAt + (i << 3);
      const pair = i64x2.add(v128.load(p), v128.load(p + 16));
      const block = f64(i64x2.extract_lane(pair, 0) + i64x2.extract_lane(pair, 1));
      if (seen + block < rank) {
        seen += block;
        i += 3;
        continue;
      }
    }
    seen += f64(load<i64>(gatherAt + (i << 3)));
    if (seen < rank) continue;
    const idx = i32(rangeLo + i) + idxMin;
    // log-midpoint: the geometric mean of the bucket's bounds (sqrt is an instruction; no libm)
    let mid = Math.sqrt(upperBound(h, scale, idx) * upperBound(h, scale, idx - 1)) / load<f64>(shapeOf(h), S_IDXMUL);
    mid = mid < lo ? lo : mid > hi ? hi : mid;
    while (seen >= rank) {
      if (n == 0) return mid;
      store<f64>(dst + (k << 3), mid);
      if (++k == n) return 0;
      rank = rankOf(load<f64>(qs + (k << 3)), all);
    }
  }
  return fillFrom(hi, k, n, dst);
}

function rankOf(q: f64, total: f64): f64 {
  const rank = Math.ceil(q * total);
  return rank < 1 ? 1 : rank;
}

// Stores v into dst[k..n) and returns v (the one answer when n is 0).
function fillFrom(v: f64, k: u32, n: u32, dst: u32): f64 {
  for (; k < n; k++) store<f64>(dst + (k << 3), v);
  return v;
}

// ---- which series changed (the tick visits only those) ---------------------------------------

/**
 * Compares each of n series (blocks of `stride` bytes from `first`) with what it held at the last
 * scan and lists at out (u32) those that changed; returns their number. A series' fingerprint is
 * the sum of its monotonic counts, which grows with every record: its i64 counters but the
 * gauge-like `active`, the counter `records` (bumped by every record into its other histograms),
 * its counter lanes, and its latency histogram's sum and zero count, lanes included; its active
 * count and f64 gauges are mixed in. One i64 per series at `stamps`. A few cache lines per series:
 * no pass over buckets.
 */
export function scanSeries(
  first: u32,
  stride: u32,
  n: u32,
  nCounters: u32,
  active: u32,
  nGauges: u32,
  records: u32,
  latency: u32,
  lanePtr: u32,
  laneStride: u32,
  lanes: u32,
  laneSeriesBytes: u32,
  stamps: u32,
  out: u32,
): u32 {
  let changed: u32 = 0;
  for (let s: u32 = 0; s < n; s++) {
    const b = first + s * stride;
    let sum: i64 = atomic.load<i64>(b + (records << 3));
    for (let i: u32 = 0; i < nCounters; i++) if (i != active) sum += atomic.load<i64>(b + (i << 3));
    for (let t: u32 = 0; t < lanes; t++) {
      const l = lanePtr + t * laneStride + s * laneSeriesBytes;
      for (let i: u32 = 0; i < nCounters; i++) sum += i64(reinterpret<f64>(atomic.load<i64>(l + (i << 3))));
    }
    // Every latency record adds at least 1 to sum (values are ≥ 1 ns from histogramRange.minMs up)
    // or 1 to the zero bucket (below it): those two tell a change, overflow and unplaced ones too.
    const h = b + latency;
    sum += merged(h, H_SUM) + merged(h, H_ZERO);
    // The gauge-like figures mixed in, each by a multiply and a rotation of its own, so that no
    // two changes cancel short of a 64-bit coincidence: one word per series to compare.
    let fp = sum ^ rotl<i64>(atomic.load<i64>(b + (active << 3)) * 0x9e3779b97f4a7c15, 17);
    for (let g: u32 = 0; g < nGauges; g++)
      fp ^= rotl<i64>(atomic.load<i64>(b + ((nCounters + g) << 3)) * (0xc2b2ae3d27d4eb4f + (i64(g) << 1)), 23 + g * 7);
    const st = stamps + (s << 3);
    const differs = fp != load<i64>(st);
    if (differs) store<i64>(st, fp);
    if (differs) {
      store<u32>(out + (changed << 2), s);
      changed++;
    }
  }
  return changed;
}
