// The tick: one aggregation step on one thread. It reads only cumulative shared state and keeps a
// ring of past cumulative snapshots; every windowed figure is a difference against a snapshot, so
// recording threads never rotate or reset anything.
import { type HistoryPoint, HistoryRing, type Resolution } from './history.js';
import { Rollup, type RollupState } from './rollup.js';
import { C, COUNTER_LANE_BYTES, GAUGE_SLOTS, type Layout, R, SCRATCH } from '../core/layout.js';
import type { SystemSample } from './system.js';
import { emptyTotals, type Totals, type TotalsReader, TotalsTable } from './totals.js';
import type { Core } from '../core/wasm.js';

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

// The counters a window's figures difference, kept at every snapshot: each named outright (a field
// looked up by a string variable takes V8's slow generic path).
const F = {
  requests: 0,
  errors: 1,
  cacheHits: 2,
  cacheMisses: 3,
  latencyCount: 4,
  latencySumMs: 5,
  backpressure: 6,
  messagesIn: 7,
  messagesOut: 8,
  bytesIn: 9,
  bytesOut: 10,
} as const;
const NF = 11;

function writeWindowCounters(out: Float64Array, at: number, t: Totals): void {
  out[at + F.requests] = t.requests;
  out[at + F.errors] = t.errors;
  out[at + F.cacheHits] = t.cacheHits;
  out[at + F.cacheMisses] = t.cacheMisses;
  out[at + F.latencyCount] = t.latencyCount;
  out[at + F.latencySumMs] = t.latencySumMs;
  out[at + F.backpressure] = t.backpressure;
  out[at + F.messagesIn] = t.messagesIn;
  out[at + F.messagesOut] = t.messagesOut;
  out[at + F.bytesIn] = t.bytesIn;
  out[at + F.bytesOut] = t.bytesOut;
}

/**
 * The window state of ROWS_PER_BLOCK ring rows: each row's counters at every snapshot (NF per slot)
 * and where its latency delta of each slot is kept. Blocks are made as series are first ticked, so
 * the window costs the series in use, not maxSeries; rows never move (no copy as they grow).
 */
const ROWS_PER_BLOCK = 64;
class RowBlock {
  readonly counters: Float64Array;
  readonly deltaStart: Int32Array;
  readonly deltaLength: Int32Array;
  constructor(slots: number) {
    this.counters = new Float64Array(ROWS_PER_BLOCK * slots * NF);
    this.deltaStart = new Int32Array(ROWS_PER_BLOCK * slots);
    this.deltaLength = new Int32Array(ROWS_PER_BLOCK * slots);
  }
}

/** What the tick keeps besides shared memory, for persistence: enough to continue where it stopped. */
export interface AggregatorState {
  peakRps: number;
  ticks: number;
  rollups: Record<Exclude<Resolution, 'tick'>, RollupState>;
}

export class Aggregator {
  readonly history: HistoryRing;
  /** The runtime header (i32 slots, see R): the tick counts itself there. */
  private readonly runtime: Int32Array;
  readonly rollups: Record<Exclude<Resolution, 'tick'>, Rollup>;
  private readonly slots: number;
  private readonly times: Float64Array;
  /**
   * Per ring row (series…, total) and slot: the cumulative counters at that snapshot, and where the
   * latency delta of that slot's tick is kept, in blocks of rows (RowBlock). A series has a row
   * from the first tick that finds it changed; before that every snapshot of it is zero, which row
   * 0 of block 0 (never written) stands for.
   */
  private readonly blocks: RowBlock[] = [];
  /** Per series (and the total row, last): its row number, 0 for none yet. */
  private readonly rowOf: Int32Array;
  private rows = 1;
  /**
   * Per slot, the latency counts each ring row took in that slot's tick, packed (see keepDelta):
   * all rows' words in one array per slot, each row's at its start, for its length (0: none). A
   * few arrays, not an object per series and tick; each sized to its tick (see commitDeltas).
   */
  private readonly deltaData: Uint32Array[];
  /** Where the tick in progress writes its deltas, grown as needed and kept for the next tick. */
  private deltaScratch = new Uint32Array(1024);
  /** A packed delta word holds its bucket's code in this many low bits, its count above them. */
  private readonly codeBits: number;
  private readonly countLimit: number;
  private head = 0;
  private filled = 0;
  private readonly totalRow: number;
  private readonly scratch: (i: number) => number;
  /** A series' totals as just read, on their way into the table (which keeps every series' last read). */
  private readonly current = emptyTotals();
  private readonly table: TotalsTable;
  /** Per series: 0 not looked up yet, 1 in the totals, 2 not (a series' flag never changes). */
  private readonly inTotalsFlag: Uint8Array;
  private readonly counted = (s: number): boolean => {
    let f = this.inTotalsFlag[s];
    if (f === 0) this.inTotalsFlag[s] = f = this.inTotals(s) ? 1 : 2;
    return f === 1;
  };
  /** Series that changed since the last tick (their latency deltas are taken at the next one). */
  private readonly dirty: Uint8Array;
  /** Ticks each series has been unchanged, up to the ring's length. */
  private readonly quietFor: Uint16Array;
  /** The series marked dirty since the last tick, each once. */
  private readonly dirtyList: number[] = [];
  /** The series that changed within the ring's span, dirty ones included (those the tick visits and the totals add one by one), and a mark of each. */
  private readonly warm: number[] = [];
  private readonly inWarm: Uint8Array;
  private readonly changed: Uint32Array;
  private readonly pairs: Uint32Array;
  private readonly live = emptyTotals();
  peakRps = 0;
  ticks = 0;

  constructor(
    private readonly core: Core,
    private readonly layout: Layout,
    private readonly reader: TotalsReader,
    buffer: ArrayBufferLike,
    /** Every series in use: each keeps its own window. */
    private readonly activeSeries: () => readonly number[],
    /** Whether a series adds into the monitor-wide totals. */
    private readonly inTotals: (series: number) => boolean = () => true,
  ) {
    this.slots = layout.windowSlots;
    this.totalRow = layout.seriesCount;
    this.times = new Float64Array(this.slots);
    this.blocks.push(new RowBlock(this.slots));
    this.rowOf = new Int32Array(layout.seriesCount + 1);
    this.deltaData = Array.from({ length: this.slots }, () => new Uint32Array(0));
    this.codeBits = 32 - Math.clz32(layout.shapes.latency.nBuckets + 1);
    this.countLimit = 2 ** (32 - this.codeBits);
    this.dirty = new Uint8Array(layout.seriesCount);
    this.quietFor = new Uint16Array(layout.seriesCount);
    this.inWarm = new Uint8Array(layout.seriesCount);
    this.table = new TotalsTable(layout.seriesCount);
    this.inTotalsFlag = new Uint8Array(layout.seriesCount);
    this.changed = new Uint32Array(buffer, layout.changedPtr, layout.seriesCount);
    this.pairs = new Uint32Array(buffer, layout.pairsPtr, 2 * (layout.shapes.latency.nBuckets + 2));
    this.scratch = (i) => layout.scratchPtr + i * layout.shapes.latency.bytes;
    this.history = new HistoryRing(buffer, layout.history, layout.runtimePtr, R.HISTORY_HEAD);
    this.runtime = new Int32Array(buffer, layout.runtimePtr, R.TICKS + 1);
    // Periods nest (a day is whole hours, an hour whole minutes): each closed period's histogram
    // feeds the next resolution's open one, so a tick merges into one histogram, not three.
    const day = new Rollup(
      core,
      reader,
      buffer,
      layout.rollups.day,
      layout.runtimePtr,
      R.DAY_HEAD,
      layout.shapes.latency.bytes,
    );
    const hour = new Rollup(
      core,
      reader,
      buffer,
      layout.rollups.hour,
      layout.runtimePtr,
      R.HOUR_HEAD,
      layout.shapes.latency.bytes,
      day,
    );
    const minute = new Rollup(
      core,
      reader,
      buffer,
      layout.rollups.minute,
      layout.runtimePtr,
      R.MINUTE_HEAD,
      layout.shapes.latency.bytes,
      hour,
    );
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

  /**
   * Rereads the series that changed since the last look (the core compares a fingerprint of each:
   * a few loads per series, no pass over buckets) and marks them for the next tick.
   */
  private refresh(read = true): void {
    // activeSeries(): the used series from 0, then the overflow series (the last block).
    this.scan(0, this.activeSeries().length - 1, read);
    this.scan(this.layout.seriesCount - 1, 1, read);
  }

  private scan(first: number, n: number, read: boolean): void {
    const { core, layout } = this;
    const lanes = layout.counterLanes;
    const claimed = this.reader.counterLanesClaimed();
    const found = core.scanSeries(
      layout.seriesPtr + first * layout.seriesStride,
      layout.seriesStride,
      n,
      C.MEMORY,
      C.ACTIVE_CONNECTIONS,
      GAUGE_SLOTS.length,
      C.RECORDS,
      layout.histOffset.latency,
      lanes.ptr + first * COUNTER_LANE_BYTES,
      lanes.stride,
      claimed,
      COUNTER_LANE_BYTES,
      layout.stampsPtr + first * 8,
      layout.changedPtr,
    );
    for (let i = 0; i < found; i++) {
      const s = first + this.changed[i];
      if (this.dirty[s] === 0) {
        this.dirty[s] = 1;
        this.dirtyList.push(s);
        if (this.inWarm[s] === 0) {
          this.inWarm[s] = 1;
          this.warm.push(s);
        }
      }
      if (read) this.readSeries(s);
    }
  }

  /** The monitor-wide totals, read now (only the series that changed are read again). */
  totals(into: Totals = emptyTotals()): Totals {
    this.refresh();
    return this.sumTotals(into);
  }

  private sumTotals(into: Totals): Totals {
    return this.table.sum(this.activeSeries(), this.warm, this.counted, into);
  }

  /** Reads a series into its row of the table. */
  private readSeries(s: number, countLatency?: (h: number) => number): void {
    this.table.set(s, this.reader.read(s, this.current, countLatency));
  }

  /**
   * Where ring row `row`'s entry of `slot` is: its row number × slots + slot (see blockOf and
   * local). With `make`, a row that has none yet is given one (row 0 reads as zeros).
   */
  private ringIndex(row: number, slot: number, make = false): number {
    let r = this.rowOf[row];
    if (r === 0 && make) {
      r = this.rows++;
      if (r % ROWS_PER_BLOCK === 0) this.blocks.push(new RowBlock(this.slots));
      this.rowOf[row] = r;
    }
    return r * this.slots + slot;
  }

  private blockOf(at: number): RowBlock {
    return this.blocks[Math.floor(at / (ROWS_PER_BLOCK * this.slots))];
  }

  /** An entry's place in its block's arrays (counters × NF, deltas × 1). */
  private local(at: number): number {
    return at % (ROWS_PER_BLOCK * this.slots);
  }

  /** Bytes of JavaScript memory the windows hold: blocks of rows for the series ticked so far, the kept deltas. */
  windowBytes(): number {
    let n = this.rowOf.byteLength + this.times.byteLength;
    for (const b of this.blocks) n += b.counters.byteLength + b.deltaStart.byteLength + b.deltaLength.byteLength;
    for (const d of this.deltaData) if (d !== this.deltaScratch) n += d.byteLength;
    return n + this.deltaScratch.byteLength;
  }

  /** Merges every series' cumulative latency histogram that adds into the totals into the CUMULATIVE_TOTAL scratch. */
  cumulativeTotal(): number {
    const cum = this.scratch(SCRATCH.CUMULATIVE_TOTAL);
    this.core.histReset(cum);
    for (const s of this.activeSeries()) {
      if (!this.counted(s)) continue;
      const h = this.reader.histPtr(s, 'latency');
      // An empty series adds nothing (its max is set by its first record: no pass over buckets).
      if (!Number.isNaN(this.core.histMax(h))) this.core.histMerge(cum, h);
    }
    return cum;
  }

  private storeCounters(row: number, slot: number, t: Totals): void {
    const at = this.ringIndex(row, slot, true);
    writeWindowCounters(this.blockOf(at).counters, this.local(at) * NF, t);
  }

  /** The oldest snapshot still in the ring: the start of the sliding window. */
  private oldestSlot(): number {
    return this.filled < this.slots ? 0 : (this.head + 1) % this.slots;
  }

  /** The first snapshot (memory starts empty: every series' window state is at zero). */
  baseline(now: number): void {
    const zero = emptyTotals();
    // Rows not made yet read as zeros already.
    for (let row = 0; row <= this.totalRow; row++) if (this.rowOf[row] !== 0) this.storeCounters(row, 0, zero);
    this.times[0] = now;
    this.head = 0;
    this.filled = 1;
  }

  /**
   * Adds the deltas of ring row `row` taken after snapshot `from` into dst (whose clamps are set);
   * returns their count.
   */
  private addDeltas(row: number, from: number, dst: number): number {
    let count = 0;
    for (let slot = from; slot !== this.head; ) {
      slot = (slot + 1) % this.slots;
      count += this.addKept(slot, this.ringIndex(row, slot), dst);
    }
    return count;
  }

  private deltaEnd = 0;
  private readonly lastDeltaCount = (): number => this.core.lastDeltaCount();

  /** Adds ring entry `at` of `slot` into dst. */
  private addKept(slot: number, at: number, dst: number): number {
    const block = this.blockOf(at);
    const i = this.local(at);
    const length = block.deltaLength[i];
    if (length === 0) return 0;
    const start = block.deltaStart[i];
    const data = this.deltaData[slot];
    const pairs = this.pairs;
    const bits = this.codeBits;
    const mask = (1 << bits) - 1;
    let n = 0;
    for (let k = start, end = start + length; k < end; k++) {
      const w = data[k];
      const count = w >>> bits;
      pairs[n++] = w & mask;
      pairs[n++] = count !== 0 ? count : data[++k];
    }
    return this.core.histAddPairs(dst, this.layout.pairsPtr, n / 2);
  }

  /**
   * Keeps the n pairs just written to the pairs area as ring entry `at` of the tick's slot. A pair
   * is one word, code | count << codeBits, while its count fits (a tick's count per bucket is
   * nearly always small); otherwise the code alone (count bits 0, a count a delta never has) and
   * the count in the next word. Half the memory of the pairs as they come.
   */
  private keepDelta(slot: number, at: number, n: number): void {
    const block = this.blockOf(at);
    const i = this.local(at);
    if (n === 0) {
      block.deltaLength[i] = 0;
      return;
    }
    let data = this.deltaScratch;
    const start = this.deltaEnd;
    if (start + 2 * n > data.length) {
      const grown = new Uint32Array(Math.max(2 * data.length, start + 2 * n));
      grown.set(data.subarray(0, start));
      this.deltaScratch = this.deltaData[slot] = data = grown;
    }
    const pairs = this.pairs;
    const bits = this.codeBits;
    const limit = this.countLimit;
    let o = start;
    for (let k = 0; k < 2 * n; k += 2) {
      const count = pairs[k + 1];
      if (count < limit) data[o++] = (pairs[k] | (count << bits)) >>> 0;
      else {
        data[o++] = pairs[k];
        data[o++] = count;
      }
    }
    block.deltaStart[i] = start;
    block.deltaLength[i] = o - start;
    this.deltaEnd = o;
  }

  /**
   * Moves the tick's deltas from the scratch into its slot's own array, which keeps its memory when
   * it fits and is not much larger: the ring holds what its ticks took, not the largest tick's room.
   */
  private commitDeltas(slot: number, old: Uint32Array): void {
    const n = this.deltaEnd;
    const data = old.length >= n && old.length <= n + (n >> 2) + 64 ? old : new Uint32Array(n);
    data.set(this.deltaScratch.subarray(0, n));
    this.deltaData[slot] = data;
  }

  /** Figures from snapshot `slot` to `live`, for ring row `row`, whose latency histogram over that time has `count` values in `dst`. */
  private figures(now: number, row: number, slot: number, live: Totals, dst: number): IntervalFigures {
    const entry = this.ringIndex(row, slot);
    const at = this.local(entry) * NF;
    const then = this.blockOf(entry).counters;
    const seconds = Math.max((now - this.times[slot]) / 1000, 1e-9);
    const requests = live.requests - then[at + F.requests];
    const errors = live.errors - then[at + F.errors];
    const hits = live.cacheHits - then[at + F.cacheHits];
    const misses = live.cacheMisses - then[at + F.cacheMisses];
    const latencyCount = live.latencyCount - then[at + F.latencyCount];
    const { p50, p95, p99, p999 } = this.reader.quantiles(dst);
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
      messagesPerSec:
        (live.messagesIn - then[at + F.messagesIn] + live.messagesOut - then[at + F.messagesOut]) / seconds,
      bytesPerSec: (live.bytesIn - then[at + F.bytesIn] + live.bytesOut - then[at + F.bytesOut]) / seconds,
    };
  }

  /** Window figures of all series together, read now (records are visible at once). */
  window(now: number, live?: Totals): IntervalFigures {
    live ??= this.totals(emptyTotals());
    const dst = this.scratch(SCRATCH.WINDOW_TOTAL);
    this.core.histReset(dst);
    this.core.histSetClamps(dst, live.latencyMinMs, live.latencyMaxMs);
    const oldest = this.oldestSlot();
    this.addDeltas(this.totalRow, oldest, dst);
    for (const s of this.dirtyList) if (this.counted(s)) this.core.histAddLive(this.reader.histPtr(s, 'latency'), dst);
    return this.figures(now, this.totalRow, oldest, live, dst);
  }

  /** Window figures of one series; its window histogram is left in the SERIES_WINDOW scratch. */
  seriesWindow(now: number, series: number, live: Totals = this.reader.read(series, emptyTotals())): IntervalFigures {
    const dst = this.scratch(SCRATCH.SERIES_WINDOW);
    this.core.histReset(dst);
    this.core.histSetClamps(dst, live.latencyMinMs, live.latencyMaxMs);
    const oldest = this.oldestSlot();
    this.addDeltas(series, oldest, dst);
    this.core.histAddLive(this.reader.histPtr(series, 'latency'), dst);
    return this.figures(now, series, oldest, live, dst);
  }

  /**
   * One aggregation step: interval figures, a history point, rollups. Visits only the series that
   * changed since the last tick; the others' snapshots carry over. Returns the point and the totals.
   */
  tick(now: number, system: SystemSample): { point: HistoryPoint; interval: IntervalFigures; totals: Totals } {
    // Counted for the recorders of every thread: a series hot on a thread takes a lane there.
    Atomics.add(this.runtime, R.TICKS, 1);
    // Which series changed; each is read where its latency delta is taken (which counts it too).
    this.refresh(false);
    const slot = (this.head + 1) % this.slots;
    const prev = this.head;
    const pairsPtr = this.layout.pairsPtr;
    this.deltaEnd = 0;
    // The slot's entries are rewritten now: until the commit below, they are read from the scratch.
    const recycled = this.deltaData[slot];
    this.deltaData[slot] = this.deltaScratch;
    for (const s of this.dirtyList) {
      const n = this.core.histDelta(this.reader.histPtr(s, 'latency'), pairsPtr);
      this.keepDelta(slot, this.ringIndex(s, slot, true), n);
      this.readSeries(s, this.lastDeltaCount);
      this.storeCounters(s, slot, this.current);
    }
    this.dirtyList.length = 0;
    const totals = this.sumTotals(this.live);
    const ih = this.scratch(SCRATCH.INTERVAL_TOTAL);
    this.core.histReset(ih);
    this.core.histSetClamps(ih, totals.latencyMinMs, totals.latencyMaxMs);
    // The series that changed within the ring's span: a series that never records, or has been
    // quiet for a whole ring (every slot holds its state and no delta), costs the tick nothing.
    let kept = 0;
    for (let i = 0; i < this.warm.length; i++) {
      const s = this.warm[i];
      const at = this.ringIndex(s, slot, true);
      if (this.dirty[s] === 1) {
        // Its counters were stored where its delta was taken, above.
        this.dirty[s] = 0;
        this.quietFor[s] = 0;
        if (this.counted(s)) this.addKept(slot, at, ih);
      } else {
        // Unchanged: its snapshot carries over (both entries are in its row, in one block).
        const block = this.blockOf(at);
        const i = this.local(at);
        const from = this.local(this.ringIndex(s, prev));
        block.deltaLength[i] = 0;
        block.counters.copyWithin(i * NF, from * NF, (from + 1) * NF);
        if (++this.quietFor[s] === this.slots) {
          this.table.markQuiet(s);
          this.inWarm[s] = 0;
          continue;
        }
      }
      this.warm[kept++] = s;
    }
    this.warm.length = kept;
    const interval = this.figures(now, this.totalRow, prev, totals, ih);
    this.keepDelta(slot, this.ringIndex(this.totalRow, slot, true), this.core.histPairs(ih, pairsPtr));
    this.commitDeltas(slot, recycled);
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
    this.rollups.minute.add(now, interval, point, ih, totals);
    this.rollups.hour.add(now, interval, point, ih, totals);
    this.rollups.day.add(now, interval, point, ih, totals);
    this.storeCounters(this.totalRow, slot, totals);
    this.times[slot] = now;
    this.head = slot;
    this.filled = Math.min(this.filled + 1, this.slots);
    this.ticks++;
    return { point, interval, totals };
  }
}
