// Reading a series' cumulative state out of shared memory into plain numbers.
import {
  C,
  COUNTER_LANE_BYTES,
  COUNTER_SLOTS,
  HISTOGRAMS,
  type HistName,
  type Layout,
  R,
  READ_AREA,
} from '../core/layout.js';

import type { StringTable } from '../core/string-table.js';
import type { Core } from '../core/wasm.js';

/** Slots before the first f64 gauge are i64 counters. */
const FIRST_GAUGE = C.MEMORY;

/** The latency quantiles every figure reports: p50, p95, p99, p999. */
export const QUANTILES = [0.5, 0.95, 0.99, 0.999] as const;
export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
  p999: number;
}

/** Cumulative figures of one series (or of all, added up). Counters only grow; gauges are NaN until reported. */
export interface Totals {
  requests: number;
  successes: number;
  errors: number;
  latencyCount: number;
  latencySumMs: number;
  latencyMinMs: number;
  latencyMaxMs: number;
  backpressure: number;
  backpressureWaitSumMs: number;
  cacheHits: number;
  cacheMisses: number;
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  activeConnections: number;
  connectionsOpened: number;
  invalid: number;
  sessions: number;
  sessionMessages: number;
  sessionBytes: number;
  sessionDurationSumMs: number;
  batches: number;
  batchItems: number;
  batchDurationSumMs: number;
  memoryBytes: number;
  peakMemoryBytes: number;
  workerUtilization: number;
  queueDepth: number;
  cacheRatio: number;
}

/** The counters of Totals that add up across series and difference across time. */
export const COUNTER_FIELDS = [
  'requests',
  'successes',
  'errors',
  'latencyCount',
  'latencySumMs',
  'backpressure',
  'backpressureWaitSumMs',
  'cacheHits',
  'cacheMisses',
  'messagesIn',
  'bytesIn',
  'messagesOut',
  'bytesOut',
  'connectionsOpened',
  'invalid',
  'sessions',
  'sessionMessages',
  'sessionBytes',
  'sessionDurationSumMs',
  'batches',
  'batchItems',
  'batchDurationSumMs',
] as const satisfies readonly (keyof Totals)[];
export type CounterField = (typeof COUNTER_FIELDS)[number];

// The helpers below name every counter field outright, generated once from COUNTER_FIELDS (so
// neither the names nor their positions are written twice): a loop over the names would look each
// field up by a string variable, V8's slow generic path (~50× slower for a sum over 100 series),
// while a body with the names written in it reads each at a known offset. A test checks them
// against COUNTER_FIELDS.
const compile = <F>(params: string[], line: (field: CounterField, i: number) => string): F =>
  new Function(...params, COUNTER_FIELDS.map(line).join('\n')) as F;

/** into += t, for every counter field. */
export const addCounters = compile<(into: Totals, t: Totals) => void>(['into', 't'], (f) => `into.${f} += t.${f};`);

/** The counter fields of t, in COUNTER_FIELDS order, into out from index `at`. */
export const writeCounters = compile<(out: Float64Array, at: number, t: Totals) => void>(
  ['out', 'at', 't'],
  (f, i) => `out[at + ${i}] = t.${f};`,
);

/** into's counter fields := those in COUNTER_FIELDS order at `at` of `from` (writeCounters' inverse). */
const readCountersFrom = compile<(from: Float64Array, at: number, into: Totals) => void>(
  ['from', 'at', 'into'],
  (f, i) => `into.${f} = from[at + ${i}];`,
);

// An accumulator of totals rows: the counter fields, then active connections, min, max, memory,
// peak memory, queue depth (NaN until one is reported), and count and sum of utilisation and of the
// cache ratio (they average).
const N = COUNTER_FIELDS.length;
const ACC = {
  ACTIVE: N,
  MIN: N + 1,
  MAX: N + 2,
  MEMORY: N + 3,
  PEAK: N + 4,
  QUEUE: N + 5,
  UTIL_N: N + 6,
  UTIL: N + 7,
  RATIO_N: N + 8,
  RATIO: N + 9,
  WIDTH: N + 10,
};

function clearAcc(acc: Float64Array): void {
  acc.fill(0);
  for (const i of [ACC.MIN, ACC.MAX, ACC.MEMORY, ACC.PEAK, ACC.QUEUE]) acc[i] = Number.NaN;
}

function addRow(acc: Float64Array, r: Float64Array, at: number): void {
  for (let f = 0; f < N; f++) acc[f] += r[at + f];
  const g = at + N;
  acc[ACC.ACTIVE] += r[g];
  if (r[g + 1] < acc[ACC.MIN] || Number.isNaN(acc[ACC.MIN])) acc[ACC.MIN] = r[g + 1];
  if (r[g + 2] > acc[ACC.MAX] || Number.isNaN(acc[ACC.MAX])) acc[ACC.MAX] = r[g + 2];
  acc[ACC.MEMORY] = addGauge(acc[ACC.MEMORY], r[g + 3]);
  acc[ACC.PEAK] = addGauge(acc[ACC.PEAK], r[g + 4]);
  acc[ACC.QUEUE] = addGauge(acc[ACC.QUEUE], r[g + 5]);
  if (!Number.isNaN(r[g + 6])) {
    acc[ACC.UTIL_N]++;
    acc[ACC.UTIL] += r[g + 6];
  }
  if (!Number.isNaN(r[g + 7])) {
    acc[ACC.RATIO_N]++;
    acc[ACC.RATIO] += r[g + 7];
  }
}

/**
 * Totals of many series as rows of one Float64Array (the counter fields, then the gauges and
 * min/max). Series marked quiet (unchanged for a while) are added up once into a standing partial
 * sum, so that adding a thousand series, of which ten change, costs the ten.
 */
export class TotalsTable {
  static readonly WIDTH = N + 8;
  private readonly rows: Float64Array;
  private readonly acc = new Float64Array(ACC.WIDTH);
  private readonly partial = new Float64Array(ACC.WIDTH);
  private partialValid = false;
  /** 1: the series is in the partial sum. */
  private readonly quiet: Uint8Array;

  constructor(count: number) {
    // A row is written when its series is first read, and sum() reads only rows written since
    // (changed or quiet series): the rows of series never recorded into stay untouched (zero
    // pages the process never maps in), 2.6 MB at 10,000 series.
    this.rows = new Float64Array(count * TotalsTable.WIDTH);
    this.quiet = new Uint8Array(count);
  }

  set(s: number, t: Totals): void {
    if (this.quiet[s] === 1) {
      this.quiet[s] = 0;
      this.partialValid = false;
    }
    const r = this.rows;
    const at = s * TotalsTable.WIDTH;
    writeCounters(r, at, t);
    const g = at + N;
    r[g] = t.activeConnections;
    r[g + 1] = t.latencyMinMs;
    r[g + 2] = t.latencyMaxMs;
    r[g + 3] = t.memoryBytes;
    r[g + 4] = t.peakMemoryBytes;
    r[g + 5] = t.queueDepth;
    r[g + 6] = t.workerUtilization;
    r[g + 7] = t.cacheRatio;
  }

  /** Puts a series that has not changed for a while into the standing partial sum (set() takes it out). */
  markQuiet(s: number): void {
    if (this.quiet[s] === 0) {
      this.quiet[s] = 1;
      this.partialValid = false;
    }
  }

  /**
   * The rows of `series` for which include(s) holds, added up as sumTotals does. `unquiet` lists
   * every series of them not marked quiet (others may be there too); the quiet ones are in the
   * standing partial sum, added up again only when it changes.
   */
  sum(series: readonly number[], unquiet: readonly number[], include: (s: number) => boolean, into: Totals): Totals {
    const r = this.rows;
    const W = TotalsTable.WIDTH;
    if (!this.partialValid) {
      clearAcc(this.partial);
      for (let i = 0; i < series.length; i++) {
        const s = series[i];
        if (this.quiet[s] === 1 && include(s)) addRow(this.partial, r, s * W);
      }
      this.partialValid = true;
    }
    const acc = this.acc;
    acc.set(this.partial);
    for (let i = 0; i < unquiet.length; i++) {
      const s = unquiet[i];
      if (this.quiet[s] === 0 && include(s)) addRow(acc, r, s * W);
    }
    readCountersFrom(acc, 0, into);
    into.activeConnections = acc[ACC.ACTIVE];
    into.latencyMinMs = acc[ACC.MIN];
    into.latencyMaxMs = acc[ACC.MAX];
    into.memoryBytes = acc[ACC.MEMORY];
    into.peakMemoryBytes = acc[ACC.PEAK];
    into.queueDepth = acc[ACC.QUEUE];
    into.workerUtilization = acc[ACC.UTIL_N] ? acc[ACC.UTIL] / acc[ACC.UTIL_N] : Number.NaN;
    into.cacheRatio = acc[ACC.RATIO_N] ? acc[ACC.RATIO] / acc[ACC.RATIO_N] : Number.NaN;
    return into;
  }
}

export function emptyTotals(): Totals {
  return {
    requests: 0,
    successes: 0,
    errors: 0,
    latencyCount: 0,
    latencySumMs: 0,
    latencyMinMs: Number.NaN,
    latencyMaxMs: Number.NaN,
    backpressure: 0,
    backpressureWaitSumMs: 0,
    cacheHits: 0,
    cacheMisses: 0,
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    activeConnections: 0,
    connectionsOpened: 0,
    invalid: 0,
    sessions: 0,
    sessionMessages: 0,
    sessionBytes: 0,
    sessionDurationSumMs: 0,
    batches: 0,
    batchItems: 0,
    batchDurationSumMs: 0,
    memoryBytes: Number.NaN,
    peakMemoryBytes: Number.NaN,
    workerUtilization: Number.NaN,
    queueDepth: Number.NaN,
    cacheRatio: Number.NaN,
  };
}

const { STATS: STATS_AT, QUANTILES: QUANTILES_AT } = READ_AREA;

export class TotalsReader {
  private readonly out: Float64Array;
  private readonly stats: Float64Array;
  private readonly q: Float64Array;
  private readonly rt: Int32Array;

  constructor(
    private readonly core: Core,
    private readonly layout: Layout,
    buffer: ArrayBufferLike,
  ) {
    this.out = new Float64Array(buffer, layout.readPtr, COUNTER_SLOTS);
    this.stats = new Float64Array(buffer, layout.readPtr + STATS_AT, 4 * HISTOGRAMS.length);
    // The histograms' offsets in a series block, where the core's series-wide calls read them.
    new Uint32Array(buffer, layout.readPtr + READ_AREA.OFFSETS, HISTOGRAMS.length).set(
      HISTOGRAMS.map((h) => layout.histOffset[h]),
    );
    this.q = new Float64Array(buffer, layout.readPtr + QUANTILES_AT, QUANTILES.length);
    this.rt = new Int32Array(buffer, layout.runtimePtr, 64);
  }

  /** QUANTILES of the latency-shaped histogram at h, in ms (NaN when empty): one pass of the core for all. */
  quantiles(h: number): Quantiles {
    const q = this.q;
    q.set(QUANTILES);
    const at = this.layout.readPtr + QUANTILES_AT;
    this.core.histQuantiles(h, at, q.length, at);
    return { p50: q[0], p95: q[1], p99: q[2], p999: q[3] };
  }

  /** Threads that hold a counter lane (some may have ended: their counts stay). */
  counterLanesClaimed(): number {
    return Math.min(Atomics.load(this.rt, R.COUNTER_LANES_CLAIMED), this.layout.counterLanes.count);
  }

  /** Failed requests by error type (`table`: the error-type strings), over the given series together. */
  errorsByType(series: readonly number[], table: StringTable): Record<string, number> {
    const { core, layout } = this;
    const out: Record<string, number> = {};
    const used = table.used();
    const add = (base: number, slot: number) => {
      const n = core.getI64(base + slot * 8);
      if (n > 0) {
        const name = table.key(slot) ?? 'other';
        out[name] = (out[name] ?? 0) + n;
      }
    };
    for (const s of series) {
      const block = layout.seriesPtr + s * layout.seriesStride;
      if (core.getI64(block + C.ERRORS * 8) === 0) continue; // no failed request: no type to list
      const base = layout.errorTypes.ptr + s * layout.errorTypes.stride;
      for (let slot = 0; slot < used; slot++) add(base, slot);
      add(base, table.overflowSlot);
    }
    return out;
  }

  histPtr(series: number, name: HistName): number {
    return this.layout.seriesPtr + series * this.layout.seriesStride + this.layout.histOffset[name];
  }

  /**
   * A series' totals. `countLatency(h)`, when given, is called where the latency histogram h is
   * read and returns its count (a caller that exports h anyway saves the core a pass over it).
   */
  read(series: number, into: Totals = emptyTotals(), countLatency?: (h: number) => number): Totals {
    const { core, layout, out } = this;
    const base = layout.seriesPtr + series * layout.seriesStride;
    // Counters first, then the latency histogram: the reverse of the writer's order (latency, then
    // the marks of a failure), so a read racing a failed request sees at most one success too many.
    const lanes = layout.counterLanes;
    const claimed = Math.min(Atomics.load(this.rt, R.COUNTER_LANES_CLAIMED), lanes.count);
    core.readCounters(
      base,
      FIRST_GAUGE,
      COUNTER_SLOTS,
      layout.readPtr,
      lanes.ptr + series * COUNTER_LANE_BYTES,
      lanes.stride,
      claimed,
    );
    into.errors = out[C.ERRORS];
    const errorsWithLatency = out[C.ERRORS_WITH_LATENCY];
    into.backpressure = out[C.BACKPRESSURE];
    into.cacheHits = out[C.CACHE_HITS];
    into.cacheMisses = out[C.CACHE_MISSES];
    into.messagesIn = out[C.MESSAGES_IN];
    into.bytesIn = out[C.BYTES_IN];
    into.messagesOut = out[C.MESSAGES_OUT];
    into.bytesOut = out[C.BYTES_OUT];
    into.activeConnections = out[C.ACTIVE_CONNECTIONS];
    into.connectionsOpened = out[C.CONNECTIONS_OPENED];
    into.invalid = out[C.INVALID];
    into.memoryBytes = out[C.MEMORY];
    into.peakMemoryBytes = out[C.PEAK_MEMORY];
    into.workerUtilization = out[C.WORKER_UTILIZATION];
    into.queueDepth = out[C.QUEUE_DEPTH];
    into.cacheRatio = out[C.CACHE_RATIO];
    // Every histogram's count, sum, min and max in one call: 4 f64 each, in HISTOGRAMS order.
    const st = this.stats;
    core.seriesStats(
      base,
      layout.readPtr + READ_AREA.OFFSETS,
      HISTOGRAMS.length,
      countLatency?.(this.histPtr(series, 'latency')) ?? -1,
      layout.readPtr + STATS_AT,
    );
    into.latencyCount = st[0];
    into.successes = Math.max(0, into.latencyCount - errorsWithLatency);
    into.requests = into.successes + into.errors;
    into.latencySumMs = st[1];
    into.latencyMinMs = st[2];
    into.latencyMaxMs = st[3];
    into.sessions = st[4];
    into.sessionDurationSumMs = st[5];
    into.sessionMessages = st[9];
    into.sessionBytes = st[13];
    into.batches = st[16];
    into.batchItems = st[17];
    into.batchDurationSumMs = st[21];
    into.backpressureWaitSumMs = st[25];
    return into;
  }
}

function addGauge(a: number, b: number): number {
  if (Number.isNaN(b)) return a;
  return Number.isNaN(a) ? b : a + b;
}
