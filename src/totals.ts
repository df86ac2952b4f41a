// Reading a series' cumulative state out of shared memory into plain numbers.
import { C, type HistName, type Layout } from './layout.js';
import type { Core } from './wasm.js';

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

export class TotalsReader {
  constructor(
    private readonly core: Core,
    private readonly layout: Layout,
  ) {}

  histPtr(series: number, name: HistName): number {
    return this.layout.seriesPtr + series * this.layout.seriesStride + this.layout.histOffset[name];
  }

  read(series: number, into: Totals = emptyTotals()): Totals {
    const { core } = this;
    const base = this.layout.seriesPtr + series * this.layout.seriesStride;
    const i64 = (slot: number) => core.getI64(base + slot * 8);
    const f64 = (slot: number) => core.getF64(base + slot * 8);
    const lat = this.histPtr(series, 'latency');
    // In the order opposite to the writer's (latency first, then the marks of a failure), so that a
    // read racing a failed request sees at most one success too many, never one too few.
    into.errors = i64(C.ERRORS);
    const errorsWithLatency = i64(C.ERRORS_WITH_LATENCY);
    into.latencyCount = core.histCount(lat);
    into.successes = Math.max(0, into.latencyCount - errorsWithLatency);
    into.requests = into.successes + into.errors;
    into.latencySumMs = core.histSum(lat);
    into.latencyMinMs = core.histMin(lat);
    into.latencyMaxMs = core.histMax(lat);
    into.backpressure = i64(C.BACKPRESSURE);
    const bp = this.histPtr(series, 'backpressureWait');
    into.backpressureWaitSumMs = core.histSum(bp);
    into.cacheHits = i64(C.CACHE_HITS);
    into.cacheMisses = i64(C.CACHE_MISSES);
    into.messagesIn = i64(C.MESSAGES_IN);
    into.bytesIn = i64(C.BYTES_IN);
    into.messagesOut = i64(C.MESSAGES_OUT);
    into.bytesOut = i64(C.BYTES_OUT);
    into.activeConnections = i64(C.ACTIVE_CONNECTIONS);
    into.connectionsOpened = i64(C.CONNECTIONS_OPENED);
    into.invalid = i64(C.INVALID);
    const sd = this.histPtr(series, 'sessionDuration');
    into.sessions = core.histCount(sd);
    into.sessionDurationSumMs = core.histSum(sd);
    into.sessionMessages = core.histSum(this.histPtr(series, 'sessionMessages'));
    into.sessionBytes = core.histSum(this.histPtr(series, 'sessionBytes'));
    const bs = this.histPtr(series, 'batchSize');
    into.batches = core.histCount(bs);
    into.batchItems = core.histSum(bs);
    into.batchDurationSumMs = core.histSum(this.histPtr(series, 'batchDuration'));
    into.memoryBytes = f64(C.MEMORY);
    into.peakMemoryBytes = f64(C.PEAK_MEMORY);
    into.workerUtilization = f64(C.WORKER_UTILIZATION);
    into.queueDepth = f64(C.QUEUE_DEPTH);
    into.cacheRatio = f64(C.CACHE_RATIO);
    return into;
  }

  /** Adds series totals up. Gauges: memory and queue depth add, utilisation and cache ratio average. */
  sum(series: readonly number[], into: Totals = emptyTotals()): Totals {
    const t = emptyTotals();
    let utilN = 0;
    let utilSum = 0;
    let ratioN = 0;
    let ratioSum = 0;
    Object.assign(into, emptyTotals());
    for (const s of series) {
      this.read(s, t);
      for (const f of COUNTER_FIELDS) into[f] += t[f];
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
}

function addGauge(a: number, b: number): number {
  if (Number.isNaN(b)) return a;
  return Number.isNaN(a) ? b : a + b;
}
