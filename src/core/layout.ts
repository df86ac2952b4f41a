// Where everything lives in the shared memory. Computed once from the configuration, by a pure
// function, and handed to every thread as plain numbers; the memory never grows.
import { boundsBytes, bucketIndex, rangeCells, rangeGeometry, upperBound, writeBounds } from './buckets.js';
import { fieldBytes, HISTORY_FIELDS } from './fields.js';
import type { MonitoringConfig } from './types.js';

/**
 * The whole layout's version, which assembly/index.ts exports too (checked at instantiation): a
 * handle from a memory of another version is refused. Bump it (in both) when any offset changes.
 * The four version numbers and when to bump which: README, "Version numbers".
 */
export const LAYOUT_VERSION = 8;
/**
 * The version of the history regions' layout (rings and rollups), which saved history files
 * depend on: bump it when those change, not for other parts of the memory (README, "Version numbers").
 */
export const HISTORY_LAYOUT_VERSION = 6;
/** Bytes of a WebAssembly memory page. */
const WASM_PAGE = 65536;
/** The wasm module's declared maximum (asconfig.json maximumMemory). */
const MAX_PAGES = 16384;

// Histogram header (bytes): assembly/index.ts exports the same offsets as H_* globals, and
// src/core/wasm.ts refuses a core whose offsets differ from these.
export const H = {
  /** u32: the shape's record (see S), shared by every histogram of the shape. */
  SHAPE: 0,
  /** i32: lanes linked (see assembly/index.ts). */
  LANES: 4,
  /** u32: where the MAX_LANES u32 lane pointers are, in bytes from the header; 0: it takes no lanes. */
  LANEAT: 8,
  /** u32: where the window-state page table is, in bytes from the header; 0: it keeps no windows. */
  PREVAT: 12,
  SUM: 16,
  ZERO: 24,
  OVER: 32,
  MIN: 40,
  MAX: 48,
  /** i64: values counted in no bucket, for want of a page; then their sum (sum unit). */
  UNPLACED: 56,
  UNPLACEDSUM: 64,
  /** u32 ×2: the zero and overflow counts as of the last tick (window state). */
  PREVZERO: 72,
  PREVOVER: 76,
  /** u32 × pages: the page table (0: no page yet), then the optional tables. */
  PAGES: 80,
} as const;

// A shape's record (bytes): its constants, written once per shape; assembly/index.ts S_* mirror these.
export const S = {
  SCALE: 0,
  IDXMIN: 4,
  NBUCKETS: 8,
  BOUNDS: 12,
  IDXMUL: 16,
  SUMMUL: 24,
  /** u32 ×4: the shape's range table (address, then the cell shift, first cell key and cell count; see buckets.ts rangeCells). */
  CELLS: 32,
  CELLSHIFT: 36,
  CELLBASE: 40,
  CELLCOUNT: 44,
  BYTES: 48,
} as const;

/** Bucket slots per page, the bytes of a page of counts (a series' or a lane's), and of a window-state page (a series' counts as of the last tick). */
export const PAGE = { SLOTS: 64, BYTES: 64 * 8, PREV_BYTES: 64 * 4 } as const;

/** Lanes one histogram can have (assembly/index.ts MAX_LANES). */
export const MAX_LANES = 15;

/**
 * Whether this host stores an aligned 64-bit value in one store, so that a thread may own a lane
 * (its counter lane; a histogram lane too where LANE_HISTOGRAMS) and write it without atomics while
 * others read it: true on 64-bit hosts. Elsewhere every record takes the atomic path.
 */
export const LANES_SUPPORTED = !['arm', 'ia32', 'mips', 'mipsel', 'ppc', 's390'].includes(process.arch);

/**
 * Whether threads may have histogram lanes, written with plain stores: x86-64 only. A reader takes
 * a lane's changed sum as the sign of a new record and then reads its counts, so the count's store
 * must be seen before the sum's; x86-64 keeps stores in order, weaker hosts (arm64) may not. There
 * every latency takes the atomic path (exact, a few ns slower).
 */
export const LANE_HISTOGRAMS = LANES_SUPPORTED && process.arch === 'x64';

/** How one kind of histogram is shaped: its unit conversions and resolved range. */
export interface HistShape {
  scale: number;
  /** API value × idxMul = the bucket unit (ms → s for latencies, so buckets match Prometheus'). */
  idxMul: number;
  /** API value × sumMul = the integer unit of sum/min/max (ms → ns). */
  sumMul: number;
  idxMin: number;
  nBuckets: number;
  zeroMax: number;
  topMax: number;
  /** Bucket pages (PAGE.SLOTS slots each). */
  pages: number;
  /** Bytes of the header with its page table and no optional table: a lane's, a rollup's. */
  headerBytes: number;
  /** Bytes of a histogram laid out with all its pages (a reader's scratch, a rollup period). */
  bytes: number;
  /** The range table the core looks values up in (ptr is set by the layout; shapes alike share one). */
  cells: { ptr: number; shift: number; base: number; count: number };
  /** Where the shape's record is (S; set by the layout). */
  ptr: number;
}

/** A series histogram's header: where its optional tables are (bytes from it; 0: none), and its bytes with them. */
export interface SeriesHeader {
  prevAt: number;
  laneAt: number;
  bytes: number;
}

/** The header of a histogram with a window-state table (`windowed`) and lane pointers (`laned`) or without. */
function seriesHeader(shape: HistShape, windowed: boolean, laned: boolean): SeriesHeader {
  let at = H.PAGES + shape.pages * 4;
  const prevAt = windowed ? at : 0;
  if (windowed) at += shape.pages * 4;
  const laneAt = laned ? at : 0;
  if (laned) at += MAX_LANES * 4;
  return { prevAt, laneAt, bytes: align(at, 8) };
}

/** Bytes of one range-table cell: the boundary's bits (u64), the lower bucket's offset in the block (u32), the step to the upper one (u32). */
const CELL_BYTES = 16;

function histShape(scale: number, idxMul: number, sumMul: number, minValue: number, maxValue: number): HistShape {
  const idxMin = bucketIndex(minValue * idxMul, scale);
  const idxMax = bucketIndex(maxValue * idxMul, scale);
  const nBuckets = idxMax - idxMin + 1;
  const pages = Math.ceil(nBuckets / PAGE.SLOTS);
  const headerBytes = align(H.PAGES + pages * 4);
  return {
    scale,
    idxMul,
    sumMul,
    idxMin,
    nBuckets,
    zeroMax: upperBound(idxMin - 1, scale),
    topMax: upperBound(idxMax, scale),
    pages,
    headerBytes,
    bytes: headerBytes + pages * PAGE.BYTES,
    cells: { ptr: 0, ...rangeGeometry(scale, idxMul, idxMin, idxMax) },
    ptr: 0,
  };
}

/** Writes a shape's record at shape.ptr (its range table is written apart, see writeRangeTable). */
export function writeShapeRecord(buffer: ArrayBufferLike, layout: Pick<Layout, 'boundsPtr'>, shape: HistShape): void {
  const { i32, u32, f64 } = views(buffer);
  const at = shape.ptr / 4;
  i32[at] = shape.scale;
  i32[at + 1] = shape.idxMin;
  i32[at + 2] = shape.nBuckets;
  i32[at + 3] = layout.boundsPtr[shape.scale];
  f64[(shape.ptr + S.IDXMUL) / 8] = shape.idxMul;
  f64[(shape.ptr + S.SUMMUL) / 8] = shape.sumMul;
  const { cells } = shape;
  const c = (shape.ptr + S.CELLS) / 4;
  u32[c] = cells.ptr;
  u32[c + 1] = cells.shift;
  u32[c + 2] = cells.base;
  u32[c + 3] = cells.count;
}

/** One shape for each range table of the layout (shapes alike share a table). */
function tableShapes(layout: Layout): HistShape[] {
  return [...new Map(Object.values(layout.shapes).map((shape) => [shape.cells.ptr, shape])).values()];
}

/** Bytes of a shape's range table. */
function rangeTableBytes(shape: HistShape): number {
  return shape.cells.count * CELL_BYTES;
}

/** Writes a shape's range table at shape.cells.ptr: each cell's bound with the codes (0 zero, 1 overflow, 2 + slot) of the counters below and above it. */
export function writeRangeTable(buffer: ArrayBufferLike, shape: HistShape): void {
  const idxMax = shape.idxMin + shape.nBuckets - 1;
  const { bound, lower, count } = rangeCells(shape.scale, shape.idxMul, shape.idxMin, idxMax);
  const offset = (i: number) => (i < shape.idxMin ? 0 : i > idxMax ? 1 : 2 + i - shape.idxMin);
  const view = new DataView(buffer as ArrayBuffer, shape.cells.ptr, rangeTableBytes(shape));
  for (let c = 0; c < count; c++) {
    const low = offset(lower[c]);
    const split = bound[c] !== 0xffffffffffffffffn;
    view.setBigUint64(c * CELL_BYTES, bound[c], true);
    view.setUint32(c * CELL_BYTES + 8, low, true);
    view.setUint32(c * CELL_BYTES + 12, split ? (offset(lower[c] + 1) - low) >>> 0 : 0, true);
  }
}

// Per-series i64 counters and f64 gauges (slot numbers; ×8 for bytes).
export const C = {
  ERRORS: 0,
  ERRORS_WITH_LATENCY: 1,
  BACKPRESSURE: 2,
  CACHE_HITS: 3,
  CACHE_MISSES: 4,
  MESSAGES_IN: 5,
  BYTES_IN: 6,
  MESSAGES_OUT: 7,
  BYTES_OUT: 8,
  ACTIVE_CONNECTIONS: 9,
  CONNECTIONS_OPENED: 10,
  INVALID: 11,
  // f64 gauges (NaN until reported)
  MEMORY: 12,
  PEAK_MEMORY: 13,
  WORKER_UTILIZATION: 14,
  QUEUE_DEPTH: 15,
  CACHE_RATIO: 16,
  /** i64: records into the series' histograms other than latency (sessions, batches), so that the tick's scan sees them. */
  RECORDS: 17,
} as const;
export const COUNTER_SLOTS = 18;
/** Bytes of one series' counters in a counter lane: the i64 slots, before the first f64 gauge. */
export const COUNTER_LANE_BYTES = C.MEMORY * 8;
/** Threads that can have a counter lane; later ones record counters with atomics. */
const COUNTER_LANES = 16;
/** Largest value a counter lane takes (exact in f64 with room to add); past it, its thread adds to the shared counter. */
export const COUNTER_LANE_LIMIT = 2 ** 52;
/**
 * A lane's owner record: one u64, the owning thread's identity (see thread-identity.ts and
 * lane-owners.ts); 0 until the lane is handed out, or when its thread cannot be named (such a lane
 * is never taken over).
 */
export const OWNER_BYTES = 8;
/**
 * The read area (layout.readPtr), in bytes: a series' counters, then its histograms' stats (4 f64 each),
 * then the quantiles (4 f64), then the histograms' offsets in a series block (u32 each, for the scan).
 */
export const READ_AREA = {
  STATS: COUNTER_SLOTS * 8,
  QUANTILES: COUNTER_SLOTS * 8 + 224,
  OFFSETS: COUNTER_SLOTS * 8 + 256,
  BYTES: COUNTER_SLOTS * 8 + 288,
} as const;
export const GAUGE_SLOTS = [C.MEMORY, C.PEAK_MEMORY, C.WORKER_UTILIZATION, C.QUEUE_DEPTH, C.CACHE_RATIO];

/** The histograms every series keeps, and their shapes' inputs. */
export const HISTOGRAMS = [
  'latency',
  'sessionDuration',
  'sessionMessages',
  'sessionBytes',
  'batchSize',
  'batchDuration',
  'backpressureWait',
] as const;
export type HistName = (typeof HISTOGRAMS)[number];

/** A string table (series label keys, error types): fixed entries of state, hash, length, bytes. */
export interface TableSpec {
  ptr: number;
  entries: number;
  keyBytes: number;
  stride: number;
}

export interface RingSpec {
  ptr: number;
  capacity: number;
  /** Byte offset of each field's column (f64 for `t`, f32 for the rest). */
  columns: Record<string, number>;
}

export interface RollupSpec extends RingSpec {
  periodMs: number;
  /** Histograms of each closed period (latency shape), one per slot. */
  histPtr: number;
  /** The open period's histogram, accumulating each tick's interval. */
  openPtr: number;
}

/**
 * Series slots after the users' maxSeries that the monitor keeps for its own runtime histograms
 * (event-loop delay, GC pauses by kind): they never count against maxSeries nor into the totals.
 */
export const RESERVED_SERIES = 5;

export interface Layout {
  version: number;
  id: number;
  bytes: number;
  pages: number;
  scale: number;
  shapes: Record<HistName, HistShape>;
  boundsPtr: Record<number, number>;
  /** Runtime header: i32 slots (see R). */
  runtimePtr: number;
  seriesTable: TableSpec;
  errorTable: TableSpec;
  /**
   * Series blocks: maxSeries user slots (the default series first), RESERVED_SERIES slots the
   * monitor records runtime figures into, then the overflow series.
   */
  seriesPtr: number;
  seriesStride: number;
  seriesCount: number;
  histOffset: Record<HistName, number>;
  /** Each series histogram's header: its latency keeps windows and takes lanes, the others neither. */
  seriesHeaders: Record<HistName, SeriesHeader>;
  /**
   * Errors by type: per series, (maxErrorTypes + 1) i64 counters (the last is the overflow type) at
   * ptr + series × stride, apart from the series blocks so that only series with typed errors touch theirs.
   */
  errorTypes: { ptr: number; stride: number };
  /** Per series, one i64: the fingerprint the tick's scan saw last (see assembly/index.ts scanSeries). */
  stampsPtr: number;
  /** u32 per series: where the scan lists the series that changed. */
  changedPtr: number;
  /** Ticks the sliding window spans, plus one (the window's oldest snapshot). */
  windowSlots: number;
  /** u32 pairs (code, count): a delta going to or coming from the core (one histogram's worth). */
  pairsPtr: number;
  /** i64 counts of the widest histogram's slots: where the core gathers a histogram to read it. */
  gatherPtr: number;
  /** Scratch latency-shaped histograms for the tick's thread. */
  scratchPtr: number;
  scratchCount: number;
  /** f64 [zero, overflow, buckets...] export area for reading a histogram from JS. */
  exportPtr: number;
  /** Buckets the export area holds (the widest shape's). */
  exportBuckets: number;
  /** f64 area where a reader gets a series' counters, histogram stats and quantiles in a few calls (see totals.ts). */
  readPtr: number;
  /** Latency-shaped headers that threads claim as private lanes of series' latency histograms (see recorder.ts). */
  lanePool: { ptr: number; count: number };
  /** Where bucket pages are handed out from (up to `end`; the memory grows as they are). */
  arena: { ptr: number; end: number };
  /** Pages the memory is created with (the fixed part), and may grow to. */
  initialPages: number;
  /**
   * Per-thread copies of every series' counters (the i64 slots below C.MEMORY), as f64: thread slot t
   * holds series s's copy at ptr + t × stride + s × COUNTER_LANE_BYTES. Its thread adds there from
   * JS without atomics (up to COUNTER_LANE_LIMIT); readers add the copies to the shared counters.
   */
  counterLanes: { ptr: number; count: number; stride: number };
  /**
   * Who owns each lane: an OWNER_BYTES record per lane (the pool's lanes first, then the counter lanes),
   * so that a thread can take over the lanes of one that has ended (see lane-owners.ts).
   */
  laneOwners: { ptr: number; count: number };
  history: RingSpec;
  rollups: { minute: RollupSpec; hour: RollupSpec; day: RollupSpec };
}

// Runtime header i32 slots.
export const R = {
  MAGIC: 0,
  VERSION: 1,
  ATTACHED: 2,
  HISTORY_HEAD: 3,
  HISTORY_COUNT: 4,
  MINUTE_HEAD: 5,
  MINUTE_COUNT: 6,
  HOUR_HEAD: 7,
  HOUR_COUNT: 8,
  DAY_HEAD: 9,
  DAY_COUNT: 10,
  /** u32 × 4 from here: the page arena's next free byte, its end, bytes lost to races, claims refused (assembly/index.ts A_*). */
  ARENA: 16,
  /** Lane headers handed out so far (may count past the pool: those claims got none). */
  LANES_CLAIMED: 11,
  /** Counter lanes handed out so far (may count past counterLanes.count: those claims got none). */
  COUNTER_LANES_CLAIMED: 12,
  /** Ticks so far: recorders read it to tell a series hot on their thread (see recorder.ts HOT_RECORDS). */
  TICKS: 13,
} as const;
export const MAGIC = 0x53474147; // "SGAG"

export const SCRATCH = { WINDOW_TOTAL: 0, INTERVAL_TOTAL: 1, CUMULATIVE_TOTAL: 2, SERIES_WINDOW: 3, TMP: 4 } as const;

const align = (n: number, a = 64) => Math.ceil(n / a) * a;

export function computeLayout(config: MonitoringConfig): Layout {
  const scale = config.scale;
  const sub = Math.min(scale, 4);
  const { minMs, maxMs } = config.histogramRange;
  const shapes: Record<HistName, HistShape> = {
    latency: histShape(scale, 1e-3, 1e6, minMs, maxMs),
    sessionDuration: histShape(sub, 1e-3, 1e6, minMs, Math.max(maxMs, 7 * 24 * 3_600_000)),
    sessionMessages: histShape(sub, 1, 1, 1, 2 ** 40),
    sessionBytes: histShape(sub, 1, 1, 1, 2 ** 50),
    batchSize: histShape(sub, 1, 1, 1, 2 ** 32),
    batchDuration: histShape(sub, 1e-3, 1e6, minMs, maxMs),
    backpressureWait: histShape(sub, 1e-3, 1e6, minMs, maxMs),
  };
  let p = 1024; // nothing at address 0
  const runtimePtr = p;
  p += 256;
  const boundsPtr: Record<number, number> = {};
  for (const s of new Set([scale, sub])) {
    boundsPtr[s] = p;
    p = align(p + boundsBytes(s));
  }
  // One range table per distinct shape (the durations measured in ms alike share one).
  const tables = new Map<string, number>();
  for (const shape of Object.values(shapes)) {
    const key = `${shape.scale} ${shape.idxMul} ${shape.idxMin} ${shape.nBuckets}`;
    let at = tables.get(key);
    if (at === undefined) {
      at = p;
      tables.set(key, at);
      p = align(p + rangeTableBytes(shape));
    }
    shape.cells.ptr = at;
  }
  const table = (entries: number, keyBytes: number): TableSpec => {
    const spec = { ptr: p, entries, keyBytes, stride: align(16 + keyBytes, 16) };
    p = align(p + entries * spec.stride);
    return spec;
  };
  const seriesCount = config.maxSeries + RESERVED_SERIES + 1;
  const seriesTable = table(seriesCount, 512);
  const errorTable = table(config.maxErrorTypes + 1, 128);
  // One record per shape, read by every histogram of it.
  for (const shape of Object.values(shapes)) {
    shape.ptr = p;
    p += S.BYTES;
  }
  p = align(p);

  // A series block: its counters, then its histograms' headers packed (8-aligned), the latency's first.
  const histOffset = {} as Record<HistName, number>;
  const seriesHeaders = {} as Record<HistName, SeriesHeader>;
  let stride = COUNTER_SLOTS * 8;
  for (const name of HISTOGRAMS) {
    seriesHeaders[name] = seriesHeader(shapes[name], name === 'latency', name === 'latency');
    histOffset[name] = stride;
    stride += seriesHeaders[name].bytes;
  }
  stride = align(stride);
  const seriesPtr = p;
  p = align(p + seriesCount * stride);
  const errorTypes = { ptr: p, stride: (config.maxErrorTypes + 1) * 8 };
  p = align(p + seriesCount * errorTypes.stride);

  const stampsPtr = p;
  p = align(p + seriesCount * 8);
  const changedPtr = p;
  p = align(p + seriesCount * 4);
  const windowSlots = Math.round(config.throughputWindow / config.collectionInterval) + 1;
  const pairsPtr = p;
  p = align(p + (shapes.latency.nBuckets + 2) * 8);
  const gatherPtr = p;
  p = align(p + Math.max(...Object.values(shapes).map((h) => h.nBuckets)) * 8);

  const scratchCount = Object.keys(SCRATCH).length;
  const scratchPtr = p;
  p = align(p + scratchCount * shapes.latency.bytes);
  // Room for the widest shape: below scale 5 the byte and count ranges (2^50, 2^40) have more
  // buckets than the latency range, and an export must not run into the area after it.
  const exportBuckets = Math.max(...Object.values(shapes).map((s) => s.nBuckets));
  const exportPtr = p;
  p = align(p + (exportBuckets + 2) * 8);
  const readPtr = p;
  p = align(p + READ_AREA.BYTES);

  const ring = (capacity: number): RingSpec => {
    const columns: Record<string, number> = { t: p };
    p = align(p + capacity * 8);
    for (const f of HISTORY_FIELDS) {
      columns[f] = p;
      p = align(p + capacity * fieldBytes(f));
    }
    return { ptr: columns.t, capacity, columns };
  };
  const history = ring(Math.round(config.historyRetention / config.collectionInterval));
  const rollup = (capacity: number, periodMs: number): RollupSpec => {
    const r = ring(capacity);
    const histPtr = p;
    p = align(p + capacity * shapes.latency.bytes);
    const openPtr = p;
    p = align(p + shapes.latency.bytes);
    return { ...r, periodMs, histPtr, openPtr };
  };
  const rollups = {
    minute: rollup(config.rollups.minutes, 60_000),
    hour: rollup(config.rollups.hours, 3_600_000),
    day: rollup(config.rollups.days, 86_400_000),
  };
  // Private lanes: one per (thread, series) where the series is hot on that thread (see
  // recorder.ts HOT_RECORDS), while they last. A lane is a header until values arrive (its pages
  // come from the arena), so two per series cost little; past the pool, records take the atomic
  // path (exact, a few ns slower). Sized by the users' series: the reserved runtime series record
  // through atomics, never a lane.
  const lanePool = { ptr: p, count: LANE_HISTOGRAMS ? Math.min(Math.max(2 * (config.maxSeries + 1), 8), 4096) : 0 };
  p = align(p + lanePool.count * shapes.latency.headerBytes);
  const counterLanes = {
    ptr: p,
    count: LANES_SUPPORTED ? COUNTER_LANES : 0,
    stride: align(seriesCount * COUNTER_LANE_BYTES),
  };
  p = align(p + counterLanes.count * counterLanes.stride);
  const laneOwners = { ptr: p, count: lanePool.count + counterLanes.count };
  p = align(p + laneOwners.count * OWNER_BYTES);
  const fixed = align(p, WASM_PAGE);
  // The arena holds at most every page of every series and lane histogram (and never more than the
  // memory allows, or than bucketMemory when set); it is touched only as values arrive.
  const pagesOf = (names: readonly HistName[], count: number, bytes: number) =>
    count * names.reduce((n, k) => n + shapes[k].pages * bytes, 0);
  const worst =
    pagesOf(HISTOGRAMS, seriesCount, PAGE.BYTES) +
    pagesOf(['latency'], seriesCount, PAGE.PREV_BYTES) +
    pagesOf(['latency'], lanePool.count, PAGE.BYTES);
  const arenaBytes = Math.min(worst, config.bucketMemory ?? worst, MAX_PAGES * WASM_PAGE - fixed);
  if (arenaBytes < Math.min(worst, PAGE.BYTES * 64)) {
    throw new RangeError(
      `config needs ${(fixed / 2 ** 20).toFixed(0)} MiB of shared memory before any bucket, too near the 1 GiB limit: lower maxSeries, historyRetention or scale`,
    );
  }
  const arena = { ptr: fixed, end: fixed + arenaBytes };
  const bytes = arena.end;
  const pages = Math.ceil(bytes / WASM_PAGE);
  return {
    version: LAYOUT_VERSION,
    id: (Math.random() * 2 ** 31) | 0,
    bytes,
    pages,
    scale,
    shapes,
    boundsPtr,
    runtimePtr,
    seriesTable,
    errorTable,
    seriesPtr,
    seriesStride: stride,
    seriesCount,
    histOffset,
    seriesHeaders,
    errorTypes,
    stampsPtr,
    changedPtr,
    windowSlots,
    pairsPtr,
    gatherPtr,
    scratchPtr,
    scratchCount,
    exportPtr,
    exportBuckets,
    readPtr,
    lanePool,
    arena,
    initialPages: fixed / WASM_PAGE,
    counterLanes,
    laneOwners,
    history,
    rollups,
  };
}

// Whole-buffer views, made once per buffer: a header written through them allocates nothing.
const viewsOf = new WeakMap<
  ArrayBufferLike,
  { u8: Uint8Array; i32: Int32Array; u32: Uint32Array; f64: Float64Array; i64: BigInt64Array }
>();
function views(buffer: ArrayBufferLike) {
  let v = viewsOf.get(buffer);
  if (v === undefined) {
    const b = buffer as ArrayBuffer;
    v = {
      u8: new Uint8Array(b),
      i32: new Int32Array(b),
      u32: new Uint32Array(b),
      f64: new Float64Array(b),
      i64: new BigInt64Array(b),
    };
    viewsOf.set(buffer, v);
  }
  return v;
}

/** A header with no optional table (a lane's, a rollup's, a reader's scratch). */
const BARE = { prevAt: 0, laneAt: 0 } as const;

/**
 * Writes a histogram's header (its configuration) and empties it. `paged`: its pages follow the
 * header (a reader's scratch, a rollup period), else it has none until values arrive. `header`:
 * a series histogram's optional tables (see Layout.seriesHeaders).
 */
export function initHistogram(
  buffer: ArrayBufferLike,
  layout: Layout,
  ptr: number,
  shape: HistShape,
  paged = false,
  fresh = false,
  header: Omit<SeriesHeader, 'bytes'> & { bytes?: number } = BARE,
): void {
  const v = views(buffer);
  // A fresh memory is all zeros already: its pages stay untouched until values arrive.
  const end = paged && !fresh ? shape.bytes : (header.bytes ?? shape.headerBytes);
  v.u8.fill(0, ptr + H.LANES, ptr + end);
  writeHistogramHeader(buffer, layout, ptr, shape, paged, header);
  v.i64[(ptr + H.SUM) / 8] = 0n;
  v.i64[(ptr + H.MIN) / 8] = 0x7fffffffffffffffn;
  v.i64[(ptr + H.MAX) / 8] = -1n;
  v.i64[(ptr + H.ZERO) / 8] = 0n;
  v.i64[(ptr + H.OVER) / 8] = 0n;
}

/**
 * Writes a histogram's header (its configuration) and leaves its counts as they are; `paged`, its
 * page table too (pointing at the pages that follow the header), with no lanes.
 */
export function writeHistogramHeader(
  buffer: ArrayBufferLike,
  _layout: Layout,
  ptr: number,
  shape: HistShape,
  paged = false,
  header: Omit<SeriesHeader, 'bytes'> = BARE,
): void {
  const { u32 } = views(buffer);
  const at = ptr / 4;
  u32[at + H.SHAPE / 4] = shape.ptr;
  u32[at + H.LANEAT / 4] = header.laneAt;
  u32[at + H.PREVAT / 4] = header.prevAt;
  if (paged) {
    u32[at + H.LANES / 4] = 0;
    u32[at + H.PREVZERO / 4] = 0;
    u32[at + H.PREVOVER / 4] = 0;
    const table = (ptr + H.PAGES) / 4;
    for (let i = 0; i < shape.pages; i++) u32[table + i] = ptr + shape.headerBytes + i * PAGE.BYTES;
  }
}

/**
 * Lays out series s's block (in fresh memory: all zeros): its histogram headers, then its gauges as
 * NaN (not reported yet). A series' block is laid out when its slot is claimed, so memory follows
 * the series in use; the gauges come last, so that the tick's scan, which notices them, finds the
 * headers written.
 */
export function initSeries(buffer: ArrayBufferLike, layout: Layout, s: number): void {
  const base = layout.seriesPtr + s * layout.seriesStride;
  for (const name of HISTOGRAMS)
    initHistogram(
      buffer,
      layout,
      base + layout.histOffset[name],
      layout.shapes[name],
      false,
      false,
      layout.seriesHeaders[name],
    );
  const { i64 } = views(buffer);
  const nan = new BigInt64Array(new Float64Array([Number.NaN]).buffer)[0];
  for (const g of GAUGE_SLOTS) Atomics.store(i64, base / 8 + g, nan);
}

/** Lays a fresh memory out: tables, the histogram headers of the scratch and rollup histograms, the runtime header. */
export function initMemory(buffer: ArrayBufferLike, layout: Layout): void {
  for (const [scale, ptr] of Object.entries(layout.boundsPtr)) writeBounds(buffer, ptr, Number(scale));
  for (const shape of tableShapes(layout)) writeRangeTable(buffer, shape);
  for (const shape of Object.values(layout.shapes)) writeShapeRecord(buffer, layout, shape);
  const lat = layout.shapes.latency;
  for (let i = 0; i < layout.scratchCount; i++)
    initHistogram(buffer, layout, layout.scratchPtr + i * lat.bytes, lat, true, true);
  for (const r of Object.values(layout.rollups)) {
    for (let i = 0; i < r.capacity; i++) initHistogram(buffer, layout, r.histPtr + i * lat.bytes, lat, true, true);
    initHistogram(buffer, layout, r.openPtr, lat, true, true);
  }
  // Lane headers are written when a thread claims one (recorder.ts): untouched until then.
  const rt = new Int32Array(buffer, layout.runtimePtr, 64);
  new Uint32Array(buffer, layout.runtimePtr + R.ARENA * 4, 2).set([layout.arena.ptr, layout.arena.end]);
  rt[R.VERSION] = layout.version;
  Atomics.store(rt, R.MAGIC, MAGIC);
}

export interface MemoryFootprint {
  /** Shared memory now: the fixed part laid out at creation, plus the bucket pages handed out so far (it grows with them). */
  sharedBytes: number;
  /** What the shared memory may grow to: every bucket of every series and lane histogram in use. */
  maxSharedBytes: number;
  /** Bucket pages: bytes handed out, bytes the arena allows, bytes lost to threads racing for one page, claims refused (arena used up). */
  bucketPages: { usedBytes: number; maxBytes: number; wastedBytes: number; refusedClaims: number };
  /** The fixed part, by what it holds, and the bucket pages in use. */
  parts: Record<string, number>;
}

/** What the shared memory holds and may grow to, from the layout and the arena's counters in it. */
export function memoryFootprint(L: Layout, buffer: ArrayBufferLike): MemoryFootprint {
  const ringBytes = (r: { capacity: number }) => r.capacity * HISTORY_FIELDS.reduce((n, f) => n + fieldBytes(f), 8);
  const arena = new Uint32Array(buffer, L.runtimePtr + R.ARENA * 4, 4);
  const used = Atomics.load(arena, 0) - L.arena.ptr;
  return {
    sharedBytes: buffer.byteLength,
    maxSharedBytes: L.pages * WASM_PAGE,
    bucketPages: {
      usedBytes: Math.min(used, L.arena.end - L.arena.ptr),
      maxBytes: L.arena.end - L.arena.ptr,
      wastedBytes: Atomics.load(arena, 2),
      refusedClaims: Atomics.load(arena, 3),
    },
    parts: {
      series: L.seriesCount * L.seriesStride,
      errorTypes: L.seriesCount * L.errorTypes.stride,
      windowState: L.seriesCount * 8 + (L.shapes.latency.nBuckets + 2) * 8,
      history: ringBytes(L.history),
      rollups: Object.values(L.rollups).reduce(
        (n, r) => n + ringBytes(r) + (r.capacity + 1) * L.shapes.latency.bytes,
        0,
      ),
      tables: L.seriesTable.entries * L.seriesTable.stride + L.errorTable.entries * L.errorTable.stride,
      recordingLanes:
        L.lanePool.count * L.shapes.latency.headerBytes +
        L.counterLanes.count * L.counterLanes.stride +
        L.laneOwners.count * OWNER_BYTES,
      bucketTables: tableShapes(L).reduce((n, s) => n + rangeTableBytes(s), 0),
      bucketPages: Math.min(used, L.arena.end - L.arena.ptr),
    },
  };
}
