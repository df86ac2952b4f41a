// Reading a series' cumulative state out of shared memory into plain numbers.
import { C, COUNTER_LANE_BYTES, COUNTER_SLOTS, type HistName, type Layout, R, READ_AREA } from './layout.js';

import type { Core } from './wasm.js';

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

// The two helpers below name every counter field outright, in COUNTER_FIELDS order: a loop over the
// names would look each field up by a string variable, V8's slow generic path (~50× slower for a
// sum over 100 series). A test checks both against COUNTER_FIELDS.

/** into += t, for every counter field. */
export function addCounters(into: Totals, t: Totals): void {
  into.requests += t.requests;
  into.successes += t.successes;
  into.errors += t.errors;
  into.latencyCount += t.latencyCount;
  into.latencySumMs += t.latencySumMs;
  into.backpressure += t.backpressure;
  into.backpressureWaitSumMs += t.backpressureWaitSumMs;
  into.cacheHits += t.cacheHits;
  into.cacheMisses += t.cacheMisses;
  into.messagesIn += t.messagesIn;
  into.bytesIn += t.bytesIn;
  into.messagesOut += t.messagesOut;
  into.bytesOut += t.bytesOut;
  into.connectionsOpened += t.connectionsOpened;
  into.invalid += t.invalid;
  into.sessions += t.sessions;
  into.sessionMessages += t.sessionMessages;
  into.sessionBytes += t.sessionBytes;
  into.sessionDurationSumMs += t.sessionDurationSumMs;
  into.batches += t.batches;
  into.batchItems += t.batchItems;
  into.batchDurationSumMs += t.batchDurationSumMs;
}

/** The counter fields of t, in COUNTER_FIELDS order, into out from index `at`. */
export function writeCounters(out: Float64Array, at: number, t: Totals): void {
  out[at + 0] = t.requests;
  out[at + 1] = t.successes;
  out[at + 2] = t.errors;
  out[at + 3] = t.latencyCount;
  out[at + 4] = t.latencySumMs;
  out[at + 5] = t.backpressure;
  out[at + 6] = t.backpressureWaitSumMs;
  out[at + 7] = t.cacheHits;
  out[at + 8] = t.cacheMisses;
  out[at + 9] = t.messagesIn;
  out[at + 10] = t.bytesIn;
  out[at + 11] = t.messagesOut;
  out[at + 12] = t.bytesOut;
  out[at + 13] = t.connectionsOpened;
  out[at + 14] = t.invalid;
  out[at + 15] = t.sessions;
  out[at + 16] = t.sessionMessages;
  out[at + 17] = t.sessionBytes;
  out[at + 18] = t.sessionDurationSumMs;
  out[at + 19] = t.batches;
  out[at + 20] = t.batchItems;
  out[at + 21] = t.batchDurationSumMs;
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
    this.stats = new Float64Array(buffer, layout.readPtr + STATS_AT, 4);
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
    core.readCounters(base, FIRST_GAUGE, COUNTER_SLOTS, layout.readPtr, lanes.ptr + series * COUNTER_LANE_BYTES, lanes.stride, claimed);
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
    const stats = this.stats;
    this.histStats(series, 'latency', countLatency?.(this.histPtr(series, 'latency')));
    into.latencyCount = stats[0];
    into.successes = Math.max(0, into.latencyCount - errorsWithLatency);
    into.requests = into.successes + into.errors;
    into.latencySumMs = stats[1];
    into.latencyMinMs = stats[2];
    into.latencyMaxMs = stats[3];
    into.backpressureWaitSumMs = this.histStats(series, 'backpressureWait')[1];
    this.histStats(series, 'sessionDuration');
    into.sessions = stats[0];
    into.sessionDurationSumMs = stats[1];
    into.sessionMessages = this.histStats(series, 'sessionMessages')[1];
    into.sessionBytes = this.histStats(series, 'sessionBytes')[1];
    this.histStats(series, 'batchSize');
    into.batches = stats[0];
    into.batchItems = stats[1];
    into.batchDurationSumMs = this.histStats(series, 'batchDuration')[1];
    return into;
  }

  /** count, sum, min, max of one of a series' histograms (a view, overwritten by the next call); `count` when known. */
  private histStats(series: number, name: HistName, count = -1): Float64Array {
    this.core.histStats(this.histPtr(series, name), count, this.layout.readPtr + STATS_AT);
    return this.stats;
  }

  /** Adds series totals up (read now). */
  sum(series: readonly number[], into: Totals = emptyTotals()): Totals {
    const t = emptyTotals();
    return sumTotals(
      series.map((s) => ({ ...this.read(s, t) })),
      into,
    );
  }
}

/** Adds totals up. Gauges: memory and queue depth add, utilisation and cache ratio average. */
export function sumTotals(all: Iterable<Totals>, into: Totals = emptyTotals()): Totals {
  let utilN = 0;
  let utilSum = 0;
  let ratioN = 0;
  let ratioSum = 0;
  Object.assign(into, EMPTY);
  for (const t of all) {
    addCounters(into, t);
    into.activeConnections += t.activeConnections;
    if (t.latencyMinMs < into.latencyMinMs || Number.isNaN(into.latencyMinMs)) into.latencyMinMs = t.latencyMinMs;
    if (t.latencyMaxMs > into.latencyMaxMs || Number.isNaN(into.latencyMaxMs)) into.latencyMaxMs = t.latencyMaxMs;
    into.memoryBytes = addGauge(into.memoryBytes, t.memoryBytes);
    into.peakMemoryBytes = addGauge(into.peakMemoryBytes, t.peakMemoryBytes);
    into.queueDepth = addGauge(into.queueDepth, t.queueDepth);
    if (!Number.isNaN(t.workerUtilization)) {
      utilN++;
      utilSum += t.workerUtilization;
    }
    if (!Number.isNaN(t.cacheRatio)) {
      ratioN++;
      ratioSum += t.cacheRatio;
    }
  }
  into.workerUtilization = utilN ? utilSum / utilN : Number.NaN;
  into.cacheRatio = ratioN ? ratioSum / ratioN : Number.NaN;
  return into;
}

const EMPTY = Object.freeze(emptyTotals());

function addGauge(a: number, b: number): number {
  if (Number.isNaN(b)) return a;
  return Number.isNaN(a) ? b : a + b;
}
