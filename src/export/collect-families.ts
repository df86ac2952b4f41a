// The monitor's state as metric families: the one place that names what is exposed. Every format
// (text, OpenMetrics, protobuf, prom-client) is written from this.
import { EXPOSITION_LABELS, exposedName } from '../record/labels.js';
import type { HistName } from '../core/layout.js';
import {
  BYTES_CLASSIC_BOUNDARIES,
  type ClassicLadder,
  COUNT_CLASSIC_BOUNDARIES,
  keepClassicOnly,
  ladderFor,
  type Metric,
  type MetricFamily,
  type NativeHistogram,
} from '../core/family-model.js';
import { internalsOf, type MonitorReader, type SeriesInfo } from '../analysis/monitor-reader.js';
import type { Totals } from '../time/totals.js';
import type { Labels } from '../core/types.js';
import { PackedCountsStore } from '../core/packed-counts.js';
import { RUNTIME_FAMILIES, RUNTIME_FAMILY_NAMES, runtimeFamilies } from './runtime-families.js';
import {
  type KindedSeries,
  RPC_FAMILY_NAMES,
  RPC_UNPREFIXED,
  type RpcNames,
  rpcFamilies,
} from './integration-families.js';

type CounterOf = (t: Totals) => number;

export const COUNTERS: [name: string, help: string, get: CounterOf, unit?: string][] = [
  ['requests', 'Requests (messages) handled, successful or failed.', (t) => t.requests],
  ['failed_requests', 'Requests that failed (see errors_total by error_type).', (t) => t.errors],
  ['backpressure_events', 'Backpressure events (writes refused, queues full).', (t) => t.backpressure],
  ['cache_hits', 'Cache hits.', (t) => t.cacheHits],
  ['cache_misses', 'Cache misses.', (t) => t.cacheMisses],
  ['connections_opened', 'Connections (streams, sessions) opened.', (t) => t.connectionsOpened],
  ['invalid_values', 'Values rejected and skipped on the record path.', (t) => t.invalid],
];

/**
 * Histogram families; `gate` reads from the series' totals whether the histogram can hold
 * anything, so empty ones are not exported at all (an export reads every bucket).
 */
type Ladder = readonly number[] | undefined;
const HISTOGRAMS: [
  name: string,
  help: string,
  hist: HistName,
  unit: string | undefined,
  gate: CounterOf | undefined,
  ladder: Ladder,
][] = [
  ['request_duration_seconds', 'Request (message) latency.', 'latency', 'seconds', undefined, undefined],
  [
    'session_duration_seconds',
    'Duration of finished stream sessions.',
    'sessionDuration',
    'seconds',
    (t) => t.sessions,
    undefined,
  ],
  // Not seconds: classic buckets that fit the unit (the seconds ladder would put nearly all in +Inf).
  [
    'session_messages',
    'Messages per finished stream session.',
    'sessionMessages',
    undefined,
    (t) => t.sessions,
    COUNT_CLASSIC_BOUNDARIES,
  ],
  [
    'session_bytes',
    'Bytes per finished stream session.',
    'sessionBytes',
    'bytes',
    (t) => t.sessions,
    BYTES_CLASSIC_BOUNDARIES,
  ],
  ['batch_size', 'Items per processed batch.', 'batchSize', undefined, (t) => t.batches, COUNT_CLASSIC_BOUNDARIES],
  ['batch_duration_seconds', 'Time to process a batch.', 'batchDuration', 'seconds', (t) => t.batches, undefined],
  // A wait is recorded only with a backpressure event (counted first), so no event means no wait.
  [
    'backpressure_wait_seconds',
    'Time until backpressure cleared (drain).',
    'backpressureWait',
    'seconds',
    (t) => t.backpressure,
    undefined,
  ],
];

const WINDOW_FAMILIES: [string, MetricFamily['type']][] = [
  ['messages', 'counter'],
  ['message_bytes', 'counter'],
  ['errors', 'counter'],
  ['request_duration_window_seconds', 'summary'],
  ['requests_per_second', 'gauge'],
  ['error_ratio', 'gauge'],
  ['active_connections', 'gauge'],
  ['worker_utilization_ratio', 'gauge'],
  ['queue_depth', 'gauge'],
  ['reported_memory_bytes', 'gauge'],
  ['cache_hit_ratio', 'gauge'],
  ['service_requests', 'counter'],
  ['service_failed_requests', 'counter'],
  ['service_request_duration_seconds', 'histogram'],
  ['peak_requests_per_second', 'gauge'],
  ['bucket_pages_refused', 'counter'],
  ['uptime_seconds', 'gauge'],
  ['event_loop_utilization_ratio', 'gauge'],
  ['sessions_active', 'gauge'],
  ['sessions_evicted', 'counter'],
  ['sessions_dropped', 'counter'],
  ['series', 'gauge'],
  ['series_limit', 'gauge'],
  ['series_overflow', 'gauge'],
  ['inexact_counters', 'gauge'],
];

/** Every family collectFamilies() can produce, with its type (some appear only once there is data). */
export const FAMILY_NAMES: readonly [string, MetricFamily['type']][] = [
  ...COUNTERS.map(([name]) => [name, 'counter'] as [string, MetricFamily['type']]),
  ...HISTOGRAMS.map(([name]) => [name, 'histogram'] as [string, MetricFamily['type']]),
  ...WINDOW_FAMILIES,
  ...RPC_FAMILY_NAMES,
  ...RUNTIME_FAMILY_NAMES,
];

/** The families whose name an ecosystem fixes: written without the render's prefix (see MetricFamily.prefix). */
export const UNPREFIXED_FAMILIES: ReadonlySet<string> = new Set([...RPC_UNPREFIXED, ...RUNTIME_FAMILIES]);

export interface CollectOptions {
  /**
   * Names of the gRPC families: `'grpc'` (default) for grpc-ecosystem's (`grpc_server_handled_total`,
   * `grpc_server_handling_seconds`, labels grpc_type, grpc_service, grpc_method, grpc_code), or
   * `'opentelemetry'` for the OpenTelemetry RPC conventions' (`rpc_server_call_duration_seconds`,
   * labels rpc_system_name, rpc_method, rpc_response_status_code).
   */
  rpcNames?: RpcNames;
  /** Include the process and runtime families (`process_*`, `nodejs_*`). Default true. */
  runtime?: boolean;
  /**
   * Prefix of the process and runtime families. Default '' (prom-client's names, which Node
   * dashboards read); e.g. `'streamgauge_'` to keep them apart from prom-client's default metrics.
   */
  runtimePrefix?: string;
}

/** Anything recorded or reported in this series (a series nobody used stays out of the exposition). */
function inUse(t: Totals): boolean {
  return (
    t.requests +
      t.messagesIn +
      t.messagesOut +
      t.sessions +
      t.batches +
      t.backpressure +
      t.cacheHits +
      t.cacheMisses +
      t.connectionsOpened +
      t.invalid >
      0 ||
    !Number.isNaN(t.memoryBytes) ||
    !Number.isNaN(t.workerUtilization) ||
    !Number.isNaN(t.queueDepth) ||
    !Number.isNaN(t.cacheRatio)
  );
}

/**
 * A series' labels as exposed: a user label with a name the exposition uses itself is renamed
 * `exported_<name>` (Prometheus' convention for clashing labels), so it neither breaks the
 * histogram and summary families nor yields two samples with the same labels (series() refuses
 * the renamed forms themselves, see labels.ts).
 */
export function exposedLabels(labels: Labels): Labels {
  let clash = false;
  for (const name in labels) if (EXPOSITION_LABELS.has(name)) clash = true;
  if (!clash) return labels;
  let out = renamed.get(labels);
  if (out === undefined) {
    const o: Record<string, string> = {};
    for (const [name, value] of Object.entries(labels)) o[exposedName(name)] = value;
    out = Object.freeze(o);
    renamed.set(labels, out);
  }
  return out;
}

// Label sets derived from a series' (frozen, one object per series) labels are made once and kept
// with it: the writers cache the rendered text of a frozen label set by identity.
const renamed = new WeakMap<Labels, Labels>();
const derived = new WeakMap<Labels, Map<string, Map<string, Labels>>>();

/** `labels` plus `name="value"`, frozen, the same object every time. */
function withLabel(labels: Labels, name: string, value: string): Labels {
  let byName = derived.get(labels);
  if (byName === undefined) derived.set(labels, (byName = new Map()));
  // Keyed by name, then value: a joined key would be a new string to hash on every call.
  let byValue = byName.get(name);
  if (byValue === undefined) byName.set(name, (byValue = new Map()));
  let out = byValue.get(value);
  if (out === undefined) byValue.set(value, (out = Object.freeze({ ...labels, [name]: value })));
  return out;
}

// Both directions of a series' labels, looked up once for the two families that use them.
const directionsOf = new WeakMap<Labels, readonly [Labels, Labels]>();

/** `labels` with direction="in" and with direction="out" (withLabel's objects). */
function directions(labels: Labels): readonly [Labels, Labels] {
  let pair = directionsOf.get(labels);
  if (pair === undefined) {
    pair = [withLabel(labels, 'direction', 'in'), withLabel(labels, 'direction', 'out')];
    directionsOf.set(labels, pair);
  }
  return pair;
}

/**
 * Storage for the bucket counts of one collect, handed out again by the next: for a caller that
 * renders the families at once and keeps nothing (a scrape), so that scrapes allocate no counts.
 * The series' histograms (one or more per series, all read before anything is written) are kept
 * packed (see PackedCounts); the few others in plain arrays.
 */
export class CountsArena {
  private buf = new Float64Array(1 << 12);
  private used = 0;
  private readonly packed = new PackedCountsStore();
  private classic: ClassicLadder | undefined;

  /**
   * Starts over: counts handed out before may be overwritten from now on. With `classic` (the
   * seconds ladder of a render in a text format), the series' histograms keep only their classic
   * buckets (see keepClassicOnly): all that such a render prints of them.
   */
  reset(classic?: ClassicLadder): void {
    this.used = 0;
    this.packed.reset();
    this.classic = classic;
  }

  readonly take = (n: number): Float64Array => {
    if (this.used + n > this.buf.length) {
      // Views already handed out keep the old buffer; the next collect starts in the larger one.
      this.buf = new Float64Array(Math.max(this.buf.length * 2, n));
      this.used = 0;
    }
    const view = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return view;
  };

  /** Where a histogram that goes to pack() next is exported to: one reused array. */
  readonly takeForPacking = this.packed.take;

  /**
   * `h` (exported through takeForPacking) with its counts packed, readable until the next reset();
   * or only its classic buckets, at its family's `boundaries` (the seconds ladder when absent).
   */
  pack(h: NativeHistogram, boundaries?: readonly number[]): NativeHistogram {
    if (this.classic !== undefined)
      return keepClassicOnly(h, boundaries === undefined ? this.classic : ladderFor(boundaries, 'up'));
    if (h.dense !== undefined) h.dense = this.packed.pack(h.dense.offset, h.dense.counts);
    return h;
  }
}

/** Every metric family of `monitor`, read now. */
export function collectFamilies(monitor: MonitorReader, options: CollectOptions = {}): MetricFamily[] {
  return [...collectWith(monitor, options)];
}

/**
 * collectFamilies for a caller that renders at once, one family at a time: every series is read
 * here, before the first family (so the families agree with each other), and each family is made
 * when the writer asks for it, so that only one family's metrics are alive at a time (about 1 KB
 * of objects per series when all were made first). The histograms' counts live in `arena` (reset
 * here) and stay valid until its next collect; the families must be written before then. With
 * `classic` (for a text format, whose render takes the same seconds ladder), the series'
 * histograms carry only their classic buckets.
 */
export function collectFamiliesInto(
  monitor: MonitorReader,
  arena: CountsArena,
  options: CollectOptions = {},
  classic?: ClassicLadder,
): Iterable<MetricFamily> {
  arena.reset(classic);
  return collectWith(monitor, options, arena);
}

function collectWith(monitor: MonitorReader, options: CollectOptions, arena?: CountsArena): Iterable<MetricFamily> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const rpcNames = options.rpcNames ?? 'grpc';
  if (rpcNames !== 'grpc' && rpcNames !== 'opentelemetry')
    throw new RangeError(`options.rpcNames must be 'grpc' or 'opentelemetry' (got ${String(rpcNames)})`);
  const runtime = options.runtime ?? true;
  if (typeof runtime !== 'boolean') throw new TypeError('options.runtime must be a boolean');
  const runtimePrefix = options.runtimePrefix ?? '';
  if (typeof runtimePrefix !== 'string') throw new TypeError('options.runtimePrefix must be a string');
  // The series in use (the default one always), their totals and latency histograms, read once.
  // The integrations' series (gRPC calls and their stages) go to families of their own.
  const used: SeriesInfo[] = [];
  const totals: Totals[] = [];
  const latency: NativeHistogram[] = [];
  const windows: WindowColumns = { p50: [], p95: [], p99: [], p999: [], rps: [], errorRate: [] };
  const kinded: KindedSeries[] = [];
  let overflowUsed = false;
  for (const s of monitor.seriesList()) {
    const read = internalsOf(monitor).readSeries(s.index, arena?.takeForPacking);
    if (arena !== undefined) arena.pack(read.latency);
    const t = read.totals;
    if (s.kind !== undefined) {
      if (inUse(t))
        kinded.push({
          index: s.index,
          kind: s.kind,
          labels: exposedLabels(s.labels),
          totals: t,
          latency: read.latency,
        });
      continue;
    }
    if (s.index !== 0 && !inUse(t)) continue;
    const labels = exposedLabels(s.labels);
    used.push(labels === s.labels ? s : { ...s, labels });
    totals.push(t);
    latency.push(read.latency);
    // Right after the export: the window walks the same buckets while they are still in cache.
    const w = monitor.windowFigures(s.index, t);
    windows.p50.push(w.p50);
    windows.p95.push(w.p95);
    windows.p99.push(w.p99);
    windows.p999.push(w.p999);
    windows.rps.push(w.rps);
    windows.errorRate.push(w.errorRate);
    if (s.overflow) overflowUsed = true;
  }
  return familiesOf(
    monitor,
    { used, totals, latency, windows, kinded, overflowUsed },
    rpcNames,
    runtime,
    runtimePrefix,
    arena,
  );
}

/**
 * The window figures the families use, a column each: arrays of doubles hold them unboxed, where
 * an IntervalFigures object per series kept about 250 bytes alive until the scrape ended.
 */
interface WindowColumns {
  p50: number[];
  p95: number[];
  p99: number[];
  p999: number[];
  rps: number[];
  errorRate: number[];
}

/** What collectWith read of every series, before any family is made. */
interface SeriesRead {
  used: SeriesInfo[];
  totals: Totals[];
  latency: NativeHistogram[];
  windows: WindowColumns;
  kinded: KindedSeries[];
  overflowUsed: boolean;
}

// Each family is made by a function of its own and yielded at once, so that nothing of it stays
// referenced from the generator once the writer has moved on.
function* familiesOf(
  monitor: MonitorReader,
  read: SeriesRead,
  rpcNames: RpcNames,
  runtime: boolean,
  runtimePrefix: string,
  arena: CountsArena | undefined,
): Generator<MetricFamily> {
  const internals = internalsOf(monitor);
  for (const [name, help, get] of COUNTERS) yield counterFamily(read, name, help, get);
  yield directionFamily(
    read,
    'messages',
    (t) => t.messagesIn,
    (t) => t.messagesOut,
  );
  yield directionFamily(
    read,
    'message_bytes',
    (t) => t.bytesIn,
    (t) => t.bytesOut,
  );
  yield errorFamily(monitor, read);
  for (const spec of HISTOGRAMS) {
    const f = histogramFamily(monitor, read, spec, arena);
    if (f !== undefined) yield f;
  }
  const windowSeconds = monitor.config.throughputWindow / 1000;
  yield windowSummaryFamily(read, windowSeconds);
  yield {
    name: 'requests_per_second',
    help: `Request rate over the last ${windowSeconds} s.`,
    type: 'gauge',
    metrics: read.windows.rps.map((value, i) => ({ labels: read.used[i].labels, value })),
  };
  yield {
    name: 'error_ratio',
    help: `Share of requests that failed over the last ${windowSeconds} s.`,
    type: 'gauge',
    unit: 'ratio',
    metrics: read.windows.errorRate.map((value, i) => ({ labels: read.used[i].labels, value })),
  };
  for (const [name, help, get, unit] of GAUGES) {
    const f = gaugeFamily(read, name, help, get, unit);
    if (f !== undefined) yield f;
  }
  yield single('peak_requests_per_second', 'Highest one-tick request rate since start.', internals.peakRps());
  yield single(
    'bucket_pages_refused',
    'Bucket page claims refused because bucketMemory was used up: the value was counted (requests, sums) in no bucket, so native histograms leave it out.',
    monitor.memoryFootprint().bucketPages.refusedClaims,
    undefined,
    'counter',
  );
  yield single(
    'uptime_seconds',
    'Seconds since the monitor started.',
    (monitor.config.clock.now() - internals.startedAt) / 1000,
    'seconds',
  );

  // The summary's own counts: every request in the totals once, whichever family its series is in
  // (generic, gRPC, HTTP), so alert rules can read one family for the whole service.
  const all = monitor.totals();
  yield single(
    'service_requests',
    'Requests the summary counts (each once: the series in the totals, whatever their family).',
    all.requests,
    undefined,
    'counter',
  );
  yield single('service_failed_requests', 'Failed requests the summary counts.', all.errors, undefined, 'counter');
  yield {
    name: 'service_request_duration_seconds',
    help: 'Latency of the requests the summary counts, all series in the totals merged.',
    type: 'histogram',
    unit: 'seconds',
    metrics: [{ labels: {}, histogram: internals.totalLatencyHistogram(arena?.take) }],
  };

  // The runtime under prom-client's names (process_*, nodejs_*); event-loop utilisation, which
  // has none there, as ours.
  if (runtime) yield* runtimeFamilies(monitor, runtimePrefix, arena?.take);
  const sys = internals.lastTickEvent()?.system;
  if (sys)
    yield single(
      'event_loop_utilization_ratio',
      'Share of the last tick the event loop was busy.',
      sys.eventLoopUtilization,
      'ratio',
    );

  const sessions = monitor.sessionStats(0);
  yield single('sessions_active', 'Tracked stream sessions open now.', sessions.active);
  yield single(
    'sessions_evicted',
    'Tracked sessions evicted after the idle timeout.',
    sessions.evictedIdle,
    undefined,
    'counter',
  );
  yield single(
    'sessions_dropped',
    'Tracked sessions dropped past the maxSessions bound.',
    sessions.droppedOverBound,
    undefined,
    'counter',
  );
  yield* rpcFamilies(monitor, read.kinded, rpcNames, arena?.take);
  yield single(
    'series',
    'Label sets in use (the overflow series counts once used).',
    read.used.length + read.kinded.length,
  );
  yield single('series_limit', 'Bound on label sets (maxSeries).', monitor.config.maxSeries);
  yield single(
    'series_overflow',
    '1 once records of label sets past maxSeries went to the overflow series (label streamgauge_overflow), else 0.',
    read.overflowUsed ? 1 : 0,
  );
  yield single(
    'inexact_counters',
    'Count figures whose monitor-wide total passed 2^53 - 1, from where they are rounded to the nearest double.',
    monitor.inexactCounters().length,
  );
}

function counterFamily({ used, totals }: SeriesRead, name: string, help: string, get: CounterOf): MetricFamily {
  const metrics: Metric[] = new Array(used.length);
  for (let i = 0; i < used.length; i++) metrics[i] = { labels: used[i].labels, value: get(totals[i]) };
  return { name, help, type: 'counter', metrics };
}

/** messages or message_bytes: two samples per series, direction="in" and "out". */
function directionFamily(
  { used, totals }: SeriesRead,
  name: 'messages' | 'message_bytes',
  getIn: CounterOf,
  getOut: CounterOf,
): MetricFamily {
  const metrics: Metric[] = new Array(2 * used.length);
  for (let i = 0; i < used.length; i++) {
    const [labelsIn, labelsOut] = directions(used[i].labels);
    const t = totals[i];
    metrics[2 * i] = { labels: labelsIn, value: getIn(t) };
    metrics[2 * i + 1] = { labels: labelsOut, value: getOut(t) };
  }
  return name === 'messages'
    ? { name, help: 'Stream messages, by direction.', type: 'counter', metrics }
    : { name, help: 'Bytes of stream messages, by direction.', type: 'counter', unit: 'bytes', metrics };
}

function errorFamily(monitor: MonitorReader, { used, totals }: SeriesRead): MetricFamily {
  const metrics: Metric[] = [];
  for (let i = 0; i < used.length; i++) {
    if (totals[i].errors === 0) continue; // no failed request, no error type to list
    for (const [type, count] of Object.entries(monitor.errorsByType(used[i].index))) {
      metrics.push({ labels: withLabel(used[i].labels, 'error_type', type), value: count });
    }
  }
  return { name: 'errors', help: 'Failed requests by error type.', type: 'counter', metrics };
}

function histogramFamily(
  monitor: MonitorReader,
  { used, totals, latency }: SeriesRead,
  [name, help, hist, unit, gate, classicBoundaries]: (typeof HISTOGRAMS)[number],
  arena: CountsArena | undefined,
): MetricFamily | undefined {
  const metrics: Metric[] = [];
  for (let i = 0; i < used.length; i++) {
    if (gate !== undefined && gate(totals[i]) === 0) continue;
    const h =
      hist === 'latency'
        ? latency[i]
        : arena === undefined
          ? monitor.nativeHistogram(used[i].index, hist)
          : arena.pack(monitor.nativeHistogram(used[i].index, hist, arena.takeForPacking), classicBoundaries);
    if (h.count > 0 || hist === 'latency') metrics.push({ labels: used[i].labels, histogram: h });
  }
  return metrics.length ? { name, help, type: 'histogram', unit, classicBoundaries, metrics } : undefined;
}

/** The summary of the last throughputWindow, per series. */
function windowSummaryFamily({ used, totals, windows }: SeriesRead, windowSeconds: number): MetricFamily {
  const metrics: Metric[] = new Array(used.length);
  for (let i = 0; i < used.length; i++) {
    const t = totals[i];
    metrics[i] = {
      labels: used[i].labels,
      summary: {
        count: t.latencyCount,
        sum: t.latencySumMs / 1000,
        quantiles: [
          { quantile: 0.5, value: windows.p50[i] / 1000 },
          { quantile: 0.95, value: windows.p95[i] / 1000 },
          { quantile: 0.99, value: windows.p99[i] / 1000 },
          { quantile: 0.999, value: windows.p999[i] / 1000 },
        ],
      },
    };
  }
  return {
    name: 'request_duration_window_seconds',
    help: `Request latency quantiles over the last ${windowSeconds} s (NaN when the window is empty).`,
    type: 'summary',
    unit: 'seconds',
    metrics,
  };
}

const GAUGES: [name: string, help: string, get: (t: Totals) => number, unit?: string][] = [
  ['active_connections', 'Connections (streams, sessions) open now.', (t) => t.activeConnections],
  ['worker_utilization_ratio', 'Reported worker utilisation, 0..1.', (t) => t.workerUtilization, 'ratio'],
  ['queue_depth', 'Reported queue depth.', (t) => t.queueDepth],
  ['reported_memory_bytes', 'Memory use reported by the application.', (t) => t.memoryBytes, 'bytes'],
  [
    'cache_hit_ratio',
    'Cache hits / (hits + misses) since start, or the reported ratio.',
    (t) => (t.cacheHits + t.cacheMisses > 0 ? t.cacheHits / (t.cacheHits + t.cacheMisses) : t.cacheRatio),
    'ratio',
  ],
];

/** A gauge per series that has a value (undefined: none has). */
function gaugeFamily(
  { used, totals }: SeriesRead,
  name: string,
  help: string,
  get: (t: Totals) => number,
  unit: string | undefined,
): MetricFamily | undefined {
  const metrics: Metric[] = [];
  for (let i = 0; i < used.length; i++) {
    const value = get(totals[i]);
    if (!Number.isNaN(value)) metrics.push({ labels: used[i].labels, value });
  }
  return metrics.length ? { name, help, type: 'gauge', unit, metrics } : undefined;
}

function single(
  name: string,
  help: string,
  value: number,
  unit?: string,
  type: 'gauge' | 'counter' = 'gauge',
): MetricFamily {
  return { name, help, type, unit, metrics: [{ labels: {}, value }] };
}
