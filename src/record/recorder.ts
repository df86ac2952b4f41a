// The record path: one small object per series that turns each call into one or a few calls into
// the wasm core at precomputed addresses. No allocation, no clock read, no message passing.
//
// Latencies, the hottest figure, go into a lane of the series' latency histogram that this thread
// owns once the series is hot on this thread (HOT_RECORDS records within about a tick; claimed from
// a thread that has ended or else from the pool while it lasts; see assembly/index.ts and
// lane-owners.ts): plain stores, no atomic read-modify-write, so no lock on the hot path and no
// cache line bouncing between threads. Until then its records take the atomic path into the
// series' own pages: a lane has pages of its own, which a series a thread records into now and
// then would pay for twice.
// Message counts, the integrations' per-message figure, go into this thread's counter lane (its own
// f64 copy of the counters) with plain stores from JS, no call at all. Everything else, and both
// once their lanes run out, uses atomics on the shared block.
import {
  C,
  COUNTER_LANE_BYTES,
  COUNTER_LANE_LIMIT,
  H,
  type HistName,
  initHistogram,
  initSeries,
  LAYOUT_VERSION,
  type Layout,
  MAGIC,
  MAX_LANES,
  R,
} from '../core/layout.js';
import { activeSpanIds, checkExemplarIds, type ExemplarStore } from '../core/exemplars.js';
import { DiscardingRecorder, labelPairsOf } from './labels.js';
import { timer } from '../core/timer.js';
import { LaneOwners } from '../core/lane-owners.js';
import { StringTable } from '../core/string-table.js';
import type { ExemplarIds, Labels, Recorder, SeriesOptions } from '../core/types.js';
import { MAX_MS } from '../core/config.js';
import { COUNT, invalid, isCount, isMs, isRatio, MS, RATIO } from '../core/validate.js';
import { type Core, instantiate, type WasmMemory, type WasmModule } from '../core/wasm.js';

const DEFAULT_SERIES = 0;
/**
 * Latencies a thread records into a series within about a tick (this many, then as many again
 * before the next tick ends) before it takes a lane of its own for that series: below that rate the
 * atomic path costs under a microsecond a second, and a lane's pages would double the series'.
 */
export const HOT_RECORDS = 64;
/** Series table flag: the series stays out of the monitor-wide totals. */
export const SERIES_NOT_IN_TOTALS = 1;
export const OVERFLOW_LABELS: Labels = Object.freeze({ streamgauge_overflow: 'true' });

/**
 * What a series holds, for series the integrations make (gRPC calls, their stages) and that the
 * exposition writes into families of their own. Kept in the series' key under a label name users
 * cannot give (it starts with __), so a user's label set never lands in one of them.
 */
export const SERIES_KIND: unique symbol = Symbol('streamgauge.seriesKind');
const KIND_LABEL = '__kind';

/** SeriesOptions plus the kind, which only this package's integrations set. */
export interface KindedSeriesOptions extends SeriesOptions {
  [SERIES_KIND]?: string;
}

/** What one thread shares between its recorders: the core bound to the memory, the tables, caches. */
export class RecordingContext {
  readonly tables: { series: StringTable; errors: StringTable };
  private readonly bySeriesKey = new Map<string, SeriesRecorder>();
  private readonly byLabelsObject = new WeakMap<Labels, SeriesRecorder>();
  private readonly byKindAndLabels = new Map<string, WeakMap<Labels, SeriesRecorder>>();
  private readonly errorSlots = new Map<string, number>();
  private overflowRecorder: SeriesRecorder | undefined;
  readonly root: SeriesRecorder;
  private readonly rt: Int32Array;
  private readonly i32: Int32Array;
  private readonly owners: LaneOwners;
  /** Where exemplars are kept: the monitor's thread only (an attached recorder has none, see exemplars.ts). */
  exemplars: ExemplarStore | undefined;

  constructor(
    readonly core: Core,
    readonly memory: WasmMemory,
    readonly module: WasmModule,
    readonly layout: Layout,
    readonly countInvalid: boolean,
  ) {
    checkLayoutVersion(layout);
    const rt = new Int32Array(memory.buffer, layout.runtimePtr, 64);
    if (Atomics.load(rt, R.MAGIC) !== MAGIC || rt[R.VERSION] !== layout.version) {
      throw new TypeError('handle does not describe a streamgauge memory of this version');
    }
    this.rt = rt;
    this.i32 = new Int32Array(memory.buffer);
    this.owners = new LaneOwners(memory.buffer, layout);
    this.tables = {
      series: new StringTable(memory.buffer, layout.seriesTable, (slot) => initSeries(memory.buffer, layout, slot)),
      errors: new StringTable(memory.buffer, layout.errorTable),
    };
    this.root = new SeriesRecorder(this, DEFAULT_SERIES);
    this.bySeriesKey.set(seriesKey({}), this.root);
  }

  seriesPtr(index: number): number {
    return this.layout.seriesPtr + index * this.layout.seriesStride;
  }

  histPtr(index: number, name: HistName): number {
    return this.seriesPtr(index) + this.layout.histOffset[name];
  }

  series(labels: Labels, options?: KindedSeriesOptions): SeriesRecorder | Recorder {
    const kind = options?.[SERIES_KIND];
    if (kind !== undefined) return this.kindedSeries(labels, kind, options as SeriesOptions);
    // A frozen labels object cannot change, so its series is remembered by identity: callers that
    // keep their labels (integrations opening a session per call) skip building the key again.
    let rec = this.byLabelsObject.get(labels);
    if (rec !== undefined) return rec;
    let key: string;
    try {
      key = seriesKey(labels);
    } catch (e) {
      // Counted and skipped when the caller opted in: what is recorded through it is too.
      this.reject(DEFAULT_SERIES, e as Error);
      return this.discard;
    }
    rec = this.bySeriesKey.get(key);
    // The overflow series' own labels name the overflow series, never a second series beside it.
    if (rec === undefined && key === OVERFLOW_KEY) return this.overflow();
    if (rec === undefined) {
      let index: number;
      try {
        if (options !== undefined && (options === null || typeof options !== 'object'))
          throw new TypeError('options must be an object');
        const flags = options?.inTotals === false ? SERIES_NOT_IN_TOTALS : 0;
        index = this.tables.series.lookup(
          key,
          'labels (their names and values, as the JSON of the sorted pairs)',
          flags,
        );
      } catch (e) {
        this.reject(DEFAULT_SERIES, e as Error);
        return this.discard;
      }
      // Past the bound every label set shares the overflow recorder, and is not remembered: the
      // caches stay as bounded as the shared tables, whatever the label cardinality.
      if (index === this.tables.series.overflowSlot) return this.overflow();
      rec = new SeriesRecorder(this, index);
      this.bySeriesKey.set(key, rec);
    }
    if (Object.isFrozen(labels)) this.byLabelsObject.set(labels, rec);
    return rec;
  }

  /** What series() gives for a label set it refused under invalidValues 'count': records through it are counted as invalid. */
  private get discard(): Recorder {
    this.discarding ??= new DiscardingRecorder(
      this.core,
      this.seriesPtr(DEFAULT_SERIES) + C.INVALID * 8,
      (labels, options) => this.series(labels, options),
    );
    return this.discarding;
  }
  private discarding: Recorder | undefined;

  /** A series of an integration's own kind (see SERIES_KIND), remembered by kind and labels object. */
  private kindedSeries(labels: Labels, kind: string, options: SeriesOptions): SeriesRecorder {
    let byLabels = this.byKindAndLabels.get(kind);
    if (byLabels === undefined) this.byKindAndLabels.set(kind, (byLabels = new WeakMap()));
    let rec = byLabels.get(labels);
    if (rec !== undefined) return rec;
    const key = seriesKey(labels, kind);
    rec = this.bySeriesKey.get(key);
    if (rec === undefined) {
      const index = this.tables.series.lookup(key, 'labels', options.inTotals === false ? SERIES_NOT_IN_TOTALS : 0);
      if (index === this.tables.series.overflowSlot) return this.overflow();
      rec = new SeriesRecorder(this, index);
      this.bySeriesKey.set(key, rec);
    }
    if (Object.isFrozen(labels)) byLabels.set(labels, rec);
    return rec;
  }

  /**
   * The recorder of a slot the monitor reserved for itself (see RESERVED_SERIES). It records
   * through atomics, never a lane: the lane pool is for the users' threads.
   */
  reservedSeries(index: number): SeriesRecorder {
    return new SeriesRecorder(this, index, false);
  }

  private overflow(): SeriesRecorder {
    this.overflowRecorder ??= new SeriesRecorder(this, this.tables.series.overflowSlot);
    return this.overflowRecorder;
  }

  errorSlot(type: string): number {
    let slot = this.errorSlots.get(type);
    if (slot === undefined) {
      slot = this.tables.errors.lookup(type, 'type');
      if (slot !== this.tables.errors.overflowSlot) this.errorSlots.set(type, slot);
    }
    return slot;
  }

  /** Ticks so far (the tick's thread counts them in the runtime header): the clock by which a series is hot. */
  ticks(): number {
    return Atomics.load(this.rt, R.TICKS);
  }

  /**
   * A lane of latency histogram `h` for this thread alone (its byte address), or 0 when there is
   * none to have: the pool is used up, the histogram has all its lanes, or the host cannot have lanes.
   * A lane of h whose thread has ended is taken over first, so h keeps about as many lanes as
   * threads that record into it at once, however many come and go.
   */
  claimLane(h: number): number {
    const pool = this.layout.lanePool;
    if (pool.count === 0) return 0;
    const bytes = this.layout.shapes.latency.headerBytes;
    const linked = Math.min(Atomics.load(this.i32, (h + H.LANES) >> 2), MAX_LANES);
    for (let j = 0; j < linked; j++) {
      const lane = Atomics.load(this.i32, ((h + this.layout.seriesHeaders.latency.laneAt) >> 2) + j);
      if (lane !== 0 && this.owners.takeOver((lane - pool.ptr) / bytes)) return lane;
    }
    if (linked === MAX_LANES) return 0;
    const i = Atomics.add(this.rt, R.LANES_CLAIMED, 1);
    if (i >= pool.count) return 0;
    // Owned before it is linked: a linked lane always names its thread.
    this.owners.own(i);
    const lane = pool.ptr + i * bytes;
    initHistogram(this.memory.buffer, this.layout, lane, this.layout.shapes.latency);
    return this.core.addLane(h, lane) !== 0 ? lane : 0;
  }

  private counterLaneView: Float64Array | null | undefined;

  /**
   * This thread's counter lane (its own copies of all series' counters, as f64), claimed on first
   * use (one whose thread has ended first); null when there is none to have (all handed out, or
   * the host cannot have lanes).
   */
  counterLane(): Float64Array | null {
    if (this.counterLaneView === undefined) {
      const lanes = this.layout.counterLanes;
      const owner = this.layout.lanePool.count; // counter lanes' owner records follow the pool's
      const claimed = Math.min(Atomics.load(this.rt, R.COUNTER_LANES_CLAIMED), lanes.count);
      let t = 0;
      while (t < claimed && !this.owners.takeOver(owner + t)) t++;
      if (t === claimed && lanes.count > 0) {
        t = Atomics.add(this.rt, R.COUNTER_LANES_CLAIMED, 1);
        if (t < lanes.count) this.owners.own(owner + t);
      }
      this.counterLaneView =
        t < lanes.count ? new Float64Array(this.memory.buffer, lanes.ptr + t * lanes.stride, lanes.stride / 8) : null;
    }
    return this.counterLaneView;
  }

  /** A rejected value: counted and skipped when the caller opted in, else thrown. */
  reject(seriesIndex: number, error: Error): void {
    if (!this.countInvalid) throw error;
    this.core.inc(this.seriesPtr(seriesIndex) + C.INVALID * 8);
  }
}

/**
 * The canonical key of a label set: its sorted [name, value] pairs as JSON, labels with an empty
 * value left out, an integration's kind first. Validates names and values (see labels.ts).
 */
export function seriesKey(labels: Labels, kind?: string): string {
  const pairs = labelPairsOf(labels);
  if (kind !== undefined) pairs.unshift([KIND_LABEL, kind]);
  return JSON.stringify(pairs);
}

const OVERFLOW_KEY = seriesKey(OVERFLOW_LABELS);

/** A series key's labels and, for an integration's series, its kind. */
export function labelsFromKey(key: string): { labels: Labels; kind: string | undefined } {
  const pairs = JSON.parse(key) as [string, string][];
  const kind = pairs.length > 0 && pairs[0][0] === KIND_LABEL ? (pairs.shift() as [string, string])[1] : undefined;
  return { labels: Object.freeze(Object.fromEntries(pairs)), kind };
}

export class SeriesRecorder implements Recorder {
  private readonly core: Core;
  /** The core's recordOwned, held here: a call through this.core costs the record one more load and check. */
  private readonly recordOwned: Core['recordOwned'];
  private readonly base: number;
  private readonly latency: number;
  private readonly errorTypes: number;
  /** This thread's own lane of the latency histogram (byte address), 0 while it has none. */
  private lane = 0;
  private laneTried = false;
  /** Latencies this thread recorded through atomics since it last read the tick count, and that count. */
  private coldRecords = 0;
  private coldTick = -2;
  /** This thread's counter lane (see RecordingContext.counterLane): null for none, undefined until looked up. */
  private counters: Float64Array | null | undefined;
  /** Where this series' counters start in a counter lane (an f64 index). */
  private readonly countersAt: number;

  constructor(
    readonly ctx: RecordingContext,
    readonly index: number,
    claimsLane = true,
  ) {
    this.laneTried = !claimsLane;
    this.core = ctx.core;
    this.recordOwned = ctx.core.recordOwned;
    this.base = ctx.seriesPtr(index);
    this.latency = ctx.histPtr(index, 'latency');
    this.errorTypes = ctx.layout.errorTypes.ptr + index * ctx.layout.errorTypes.stride;
    this.countersAt = (index * COUNTER_LANE_BYTES) / 8;
  }

  /** Bad input met outside the record methods (a session's arguments): thrown, or counted as invalid in this series. */
  invalid(error: Error): void {
    this.ctx.reject(this.index, error);
  }

  // Kept tiny so that it inlines into the caller: the common case is one check and one wasm call.
  recordLatency(ms: number): void {
    const lane = this.lane;
    if (lane !== 0 && typeof ms === 'number' && ms >= 0 && ms <= 1e10 /* MAX_MS, see isMs */)
      this.recordOwned(lane, ms);
    else this.recordLatencySlow(ms);
  }

  /** This thread's lane of the latency histogram (0 while it has none). */
  get latencyLane(): number {
    return this.lane;
  }

  private recordLatencySlow(ms: number): void {
    if (isMs(ms)) this.latencyValue(ms);
    else this.ctx.reject(this.index, invalid('ms', ms, MS));
  }

  /** Records a validated latency: into this thread's lane (claimed once the series is hot here) or, without one, the shared block. */
  private latencyValue(ms: number): void {
    if (this.lane === 0 && !this.laneTried && ++this.coldRecords >= HOT_RECORDS) this.heated();
    if (this.lane !== 0) this.core.recordOwned(this.lane, ms);
    else this.core.record(this.latency, ms);
  }

  // HOT_RECORDS more records: the series is hot on this thread if the last HOT_RECORDS came within
  // the same tick or the next (or before any tick), and then takes a lane; else counting starts over.
  private heated(): void {
    const tick = this.ctx.ticks();
    this.coldRecords = 0;
    if (tick - this.coldTick <= 1) {
      this.laneTried = true;
      this.lane = this.ctx.claimLane(this.latency);
    } else this.coldTick = tick;
  }

  recordLatencyWithExemplar(ms: number, exemplar?: ExemplarIds): void {
    const ids = this.exemplarIds(exemplar);
    if (ids === null) return;
    this.recordLatency(ms);
    if (ids !== undefined && isMs(ms)) this.ctx.exemplars?.keep(this.index, ms, ids);
  }

  recordErrorWithExemplar(type: string, latencyMs: number, exemplar?: ExemplarIds): void {
    const ids = this.exemplarIds(exemplar);
    if (ids === null) return;
    if (latencyMs === undefined) return this.ctx.reject(this.index, invalid('latencyMs', latencyMs, MS));
    this.recordError(type, latencyMs);
    if (ids !== undefined && isMs(latencyMs) && typeof type === 'string' && type.length > 0)
      this.ctx.exemplars?.keep(this.index, latencyMs, ids);
  }

  /**
   * The ids an exemplar is to carry: `given` once checked (null when refused: rejected already),
   * else the active span's; undefined for none, or where nothing keeps exemplars (an attached thread).
   */
  private exemplarIds(given: ExemplarIds | undefined): ExemplarIds | undefined | null {
    if (given === undefined) return this.ctx.exemplars === undefined ? undefined : activeSpanIds();
    try {
      checkExemplarIds(given);
    } catch (e) {
      this.ctx.reject(this.index, e as Error);
      return null;
    }
    return given;
  }

  recordError(type: string, latencyMs?: number): void {
    if (typeof type !== 'string' || type.length === 0) {
      return this.ctx.reject(
        this.index,
        new TypeError(
          `type must be a non-empty string (got ${typeof type === 'string' ? 'an empty string' : typeof type})`,
        ),
      );
    }
    if (latencyMs !== undefined && !isMs(latencyMs))
      return this.ctx.reject(this.index, invalid('latencyMs', latencyMs, MS));
    let slot: number;
    try {
      slot = this.ctx.errorSlot(type);
    } catch (e) {
      return this.ctx.reject(this.index, e as Error); // a type too long for the table
    }
    // Latency first, then the marks that make it a failure: a concurrent reader may briefly see one
    // more success, never a negative count.
    if (latencyMs !== undefined) {
      this.latencyValue(latencyMs);
      this.core.inc(this.base + C.ERRORS_WITH_LATENCY * 8);
    }
    this.core.inc(this.errorTypes + slot * 8);
    this.core.inc(this.base + C.ERRORS * 8);
  }

  startTimer(): () => number {
    return timer((ms) => this.recordLatency(ms));
  }

  recordStreamSession(connectionId: string, messageCount: number, durationMs: number, bytesProcessed: number): void {
    if (typeof connectionId !== 'string' || connectionId.length === 0) {
      return this.ctx.reject(
        this.index,
        new TypeError(`connectionId must be a non-empty string (got ${typeof connectionId})`),
      );
    }
    if (!isCount(messageCount)) return this.ctx.reject(this.index, invalid('messageCount', messageCount, COUNT));
    if (!isMs(durationMs)) return this.ctx.reject(this.index, invalid('durationMs', durationMs, MS));
    if (!isCount(bytesProcessed)) return this.ctx.reject(this.index, invalid('bytesProcessed', bytesProcessed, COUNT));
    this.recordSessionEnd(durationMs, messageCount, bytesProcessed);
    this.core.add(this.base + C.MESSAGES_IN * 8, messageCount);
    this.core.add(this.base + C.BYTES_IN * 8, bytesProcessed);
  }

  /** A session's own figures, without its messages (a tracked session counted those as they came). */
  recordSessionEnd(durationMs: number, messageCount: number, bytesProcessed: number): void {
    this.core.record(this.ctx.histPtr(this.index, 'sessionDuration'), Math.min(durationMs, MAX_MS));
    this.core.record(this.ctx.histPtr(this.index, 'sessionMessages'), messageCount);
    this.core.record(this.ctx.histPtr(this.index, 'sessionBytes'), bytesProcessed);
    this.core.inc(this.base + C.RECORDS * 8); // after the values: the tick that sees this reads them
  }

  recordBatchProcessing(batchSize: number, durationMs: number): void {
    if (!isCount(batchSize)) return this.ctx.reject(this.index, invalid('batchSize', batchSize, COUNT));
    if (!isMs(durationMs)) return this.ctx.reject(this.index, invalid('durationMs', durationMs, MS));
    this.core.record(this.ctx.histPtr(this.index, 'batchSize'), batchSize);
    this.core.record(this.ctx.histPtr(this.index, 'batchDuration'), durationMs);
    this.core.inc(this.base + C.RECORDS * 8);
  }

  recordMessages(count: number, bytes = 0, direction: 'in' | 'out' = 'in'): void {
    if (!isCount(count)) return this.ctx.reject(this.index, invalid('count', count, COUNT));
    if (!isCount(bytes)) return this.ctx.reject(this.index, invalid('bytes', bytes, COUNT));
    if (direction !== 'in' && direction !== 'out') {
      return this.ctx.reject(this.index, new TypeError(`direction must be 'in' or 'out' (got ${String(direction)})`));
    }
    this.addMessages(count, bytes, direction);
  }

  /** recordMessages with its arguments already checked (sessions check them themselves). */
  addMessages(count: number, bytes: number, direction: 'in' | 'out'): void {
    // Count and bytes sit side by side (C.MESSAGES_x, C.BYTES_x). The per-message path of every
    // integration, so into this thread's own counter lane when it has one: plain JS stores, no call.
    const slot = direction === 'in' ? C.MESSAGES_IN : C.MESSAGES_OUT;
    const lane = this.counters === undefined ? (this.counters = this.ctx.counterLane()) : this.counters;
    if (lane !== null) {
      const i = this.countersAt + slot;
      const n = lane[i] + count;
      const b = lane[i + 1] + bytes;
      if (n <= COUNTER_LANE_LIMIT && b <= COUNTER_LANE_LIMIT) {
        lane[i] = n;
        lane[i + 1] = b;
        return;
      }
    }
    // One call, no allocation.
    this.core.add2(this.base + slot * 8, count, bytes);
  }

  recordBackpressureEvent(waitMs?: number): void {
    if (waitMs !== undefined && !isMs(waitMs)) return this.ctx.reject(this.index, invalid('waitMs', waitMs, MS));
    this.core.inc(this.base + C.BACKPRESSURE * 8);
    if (waitMs !== undefined) this.core.record(this.ctx.histPtr(this.index, 'backpressureWait'), waitMs);
  }

  recordCacheHit(): void {
    this.core.inc(this.base + C.CACHE_HITS * 8);
  }

  recordCacheMiss(): void {
    this.core.inc(this.base + C.CACHE_MISSES * 8);
  }

  updateCacheHitRatio(ratio: number): void {
    if (!isRatio(ratio)) return this.ctx.reject(this.index, invalid('ratio', ratio, RATIO));
    this.core.setF64(this.base + C.CACHE_RATIO * 8, ratio);
  }

  updateMemoryUsage(bytes: number): void {
    if (!isCount(bytes)) return this.ctx.reject(this.index, invalid('bytes', bytes, COUNT));
    this.core.setF64(this.base + C.MEMORY * 8, bytes);
    this.core.maxF64(this.base + C.PEAK_MEMORY * 8, bytes);
  }

  updateWorkerUtilization(ratio: number): void {
    if (!isRatio(ratio)) return this.ctx.reject(this.index, invalid('ratio', ratio, RATIO));
    this.core.setF64(this.base + C.WORKER_UTILIZATION * 8, ratio);
  }

  updateQueueDepth(depth: number): void {
    if (!isCount(depth)) return this.ctx.reject(this.index, invalid('depth', depth, COUNT));
    this.core.setF64(this.base + C.QUEUE_DEPTH * 8, depth);
  }

  connectionOpened(): void {
    this.core.inc(this.base + C.ACTIVE_CONNECTIONS * 8);
    this.core.inc(this.base + C.CONNECTIONS_OPENED * 8);
  }

  connectionClosed(): void {
    const p = this.base + C.ACTIVE_CONNECTIONS * 8;
    if (this.core.addGet(p, -1) < 0) {
      this.core.add(p, 1);
      this.ctx.reject(this.index, new RangeError('connectionClosed() called more often than connectionOpened()'));
    }
  }

  series(labels: Labels, options?: SeriesOptions): Recorder {
    return this.ctx.series(labels, options);
  }
}

/**
 * Where a handle keeps the context of the monitor that made it. Structured clone leaves
 * symbol-keyed properties out, so only the thread that made the handle finds it there: attach()
 * in that thread uses the monitor's own context rather than a second instance of the core over the
 * same memory. Nothing module-level refers to a monitor's context (a WeakRef would keep it, and its
 * memory, alive until the current task ends: monitors made and closed in one synchronous loop
 * would all stay until it returns).
 */
export const LOCAL_CONTEXT: unique symbol = Symbol('streamgauge.localContext');

/** What a worker thread needs to record into a monitor's memory; structured-cloneable. */
export interface MonitorHandle {
  readonly kind: 'streamgauge-handle';
  readonly memory: WasmMemory;
  readonly module: WasmModule;
  readonly layout: Layout;
  readonly countInvalid: boolean;
  /** In the thread that made the handle only (see LOCAL_CONTEXT). */
  readonly [LOCAL_CONTEXT]?: RecordingContext;
}

// One context per memory per thread for handles that arrive from elsewhere, as fresh clones (e.g.
// every piscina task): keyed on the layout's id rather than on the object. These stay for the
// thread's life (a task may drop its recorder and attach again in the next one).
const attached = new Map<number, RecordingContext>();

/** A layout from another build of the package (a worker may load another copy) is refused. */
function checkLayoutVersion(layout: Layout): void {
  if (layout.version !== LAYOUT_VERSION) {
    throw new TypeError(
      `the handle comes from a streamgauge build with memory layout ${layout.version}, and this thread's build has layout ${LAYOUT_VERSION}: use one version of the package in every thread`,
    );
  }
}

function isHandle(h: MonitorHandle): boolean {
  if (h === null || typeof h !== 'object' || h.kind !== 'streamgauge-handle') return false;
  const { layout, memory, module } = h;
  return (
    layout !== null &&
    typeof layout === 'object' &&
    typeof layout.id === 'number' &&
    typeof layout.runtimePtr === 'number' &&
    memory !== null &&
    typeof memory === 'object' &&
    memory.buffer instanceof SharedArrayBuffer &&
    module !== null &&
    typeof module === 'object'
  );
}

/** In any thread: a recorder writing into the monitor that made `handle` (instantiated once per thread). */
export function attach(handle: MonitorHandle): Recorder {
  if (!isHandle(handle)) throw new TypeError('attach(handle) needs the object returned by monitor.handle()');
  let ctx = handle[LOCAL_CONTEXT] ?? attached.get(handle.layout.id);
  if (ctx === undefined) {
    checkLayoutVersion(handle.layout);
    ctx = new RecordingContext(
      instantiate(handle.module, handle.memory, handle.layout),
      handle.memory,
      handle.module,
      handle.layout,
      handle.countInvalid,
    );
    Atomics.add(new Int32Array(handle.memory.buffer, handle.layout.runtimePtr, 64), R.ATTACHED, 1);
    attached.set(handle.layout.id, ctx);
  }
  return ctx.root;
}
