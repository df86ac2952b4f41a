// A bridge into an existing prom-client Registry, so a service that already serves prom-client
// metrics gets streamgauge's on the same endpoint. prom-client is the caller's: nothing here
// imports it, the registry is used through the small surface below.
import { collectFamilies, FAMILY_NAMES, UNPREFIXED_FAMILIES } from './collect-families.js';
import {
  classicBuckets,
  DEFAULT_CLASSIC_BOUNDARIES_SECONDS,
  ladderFor,
  type MetricFamily,
} from '../core/family-model.js';
import type { MonitorReader } from '../analysis/monitor-reader.js';
import { RUNTIME_FAMILIES } from './runtime-families.js';
import { DEFAULT_PREFIX, familyLadder, sanitizeMetricName } from './prometheus-text.js';

/** The part of a prom-client Registry the bridge uses. */
interface PromClientRegistryLike {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  readonly contentType?: string;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName?: string;
}

export interface PromClientBridgeOptions {
  prefix?: string;
  /**
   * Register the process and runtime families (`process_*`, `nodejs_*`) too. Default false: a
   * prom-client registry usually has them from `collectDefaultMetrics()`, under the same names.
   */
  runtime?: boolean;
  /** Prefix of the runtime families when `runtime` is true. Default ''. */
  runtimePrefix?: string;
  classicBoundariesSeconds?: readonly number[];
  /**
   * How long (ms) collected figures are reused. Default 0: once per scrape — prom-client asks every
   * metric in one synchronous pass, and that pass shares one collection.
   */
  cacheMs?: number;
}

/**
 * Registers every streamgauge family in `registry`. Returns a function that removes them again.
 * Histograms appear as classic buckets (exact: the bounds are native bucket boundaries).
 */
export function registerWithPromClient(
  monitor: MonitorReader,
  registry: PromClientRegistryLike,
  options: PromClientBridgeOptions = {},
): () => void {
  if (!registry || typeof registry.registerMetric !== 'function')
    throw new TypeError('registry must be a prom-client Registry');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const ladder = ladderFor(options.classicBoundariesSeconds ?? DEFAULT_CLASSIC_BOUNDARIES_SECONDS);
  const cacheMs = options.cacheMs ?? 0;
  if (typeof cacheMs !== 'number' || !(cacheMs >= 0))
    throw new RangeError(`cacheMs must be a number >= 0 (got ${String(cacheMs)})`);
  let cached: Map<string, MetricFamily> | undefined;
  let cachedAt = 0;
  const families = () => {
    const now = Date.now();
    if (cached === undefined || (cacheMs > 0 && now - cachedAt > cacheMs)) {
      cached = new Map(collectFamilies(monitor, { runtime, runtimePrefix }).map((f) => [f.name, f]));
      cachedAt = now;
      if (cacheMs === 0) {
        queueMicrotask(() => {
          cached = undefined;
        });
      }
    }
    return cached;
  };
  const names: string[] = [];
  const runtime = options.runtime ?? false;
  const runtimePrefix = options.runtimePrefix ?? '';
  for (const [base, type] of FAMILY_NAMES) {
    if (!runtime && RUNTIME_FAMILIES.has(base)) continue;
    // Registered as prom-client registers its own counters (`x_total`). The name a scrape shows is
    // decided at collection: prom-client appends `_total` to counter samples itself in OpenMetrics
    // mode (only), so the family is then `x` — whenever the registry's content type was set.
    const own = RUNTIME_FAMILIES.has(base) ? runtimePrefix : UNPREFIXED_FAMILIES.has(base) ? '' : prefix;
    const family = sanitizeMetricName(own + base);
    const key = family + (type === 'counter' ? '_total' : '');
    const metric = {
      name: key,
      help: base,
      type,
      aggregator: aggregatorFor(base, type),
      reset() {},
      // registry.metrics() asks getForPromString(): bucket and quantile samples share their series'
      // labels by reference (as prom-client's own histograms do), so prom-client formats each
      // label set once per scrape instead of once per sample. Everything else asks get().
      async getForPromString() {
        return collect(true);
      },
      async get() {
        return collect(false);
      },
    };
    const collect = (shared: boolean) => {
      const openMetrics = (registry.contentType ?? '').startsWith('application/openmetrics-text');
      const name = type === 'counter' && openMetrics ? family : key;
      const f = families().get(base);
      const values: Value[] = [];
      if (f) {
        for (const m of f.metrics) {
          // prom-client prints NaN as "Nan", which OpenMetrics parsers refuse: an unknown value
          // (a quantile of an empty window) is left out instead.
          for (const v of toValues(name, m, familyLadder(f, ladder), shared))
            if (!Number.isNaN(v.value)) values.push(v);
        }
        metric.help = f.help;
      }
      return { name, help: metric.help, type, values, aggregator: metric.aggregator };
    };
    try {
      registry.registerMetric(metric);
    } catch (err) {
      // A name already taken: leave the registry as it was.
      for (const n of names) registry.removeSingleMetric(n);
      throw err;
    }
    names.push(key);
  }
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}

// How prom-client's AggregatorRegistry combines a family over cluster workers. It applies one
// function to every sample of a family, so a family gets 'sum' only when its samples add up.
const ADDITIVE_GAUGES = new Set([
  'requests_per_second', // rates over the same window add
  'active_connections',
  'queue_depth',
  'reported_memory_bytes',
  'sessions_active',
  'grpc_server_in_flight',
  'grpc_client_in_flight',
  'pool_queue_depth',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes',
  'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
]);
/** Utilisations: each worker weighs the same, so their mean is the pool's busy share. */
const AVERAGED_GAUGES = new Set(['worker_utilization_ratio', 'event_loop_utilization_ratio', 'pool_utilization_ratio']);
/** Limits, flags and worst cases: the largest worker's figure. */
const MAX_GAUGES = new Set([
  'series',
  'series_limit',
  'series_overflow',
  'inexact_counters',
  'uptime_seconds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_max_seconds',
]);
const MIN_GAUGES = new Set(['nodejs_eventloop_lag_min_seconds']);
const FIRST_GAUGES = new Set(['nodejs_version_info']);

/**
 * The prom-client aggregator of a family. Counters and histograms sum (their buckets, sums and
 * counts add exactly); a summary's quantiles cannot be combined, so summaries are omitted; a
 * ratio of the whole (error_ratio, cache_hit_ratio) is no function of the workers' ratios, so it is
 * omitted too (compute it in PromQL from the summed counters); the rest as listed above, and
 * omitted when no rule fits (peaks, lag quantiles, process start time).
 */
function aggregatorFor(base: string, type: MetricFamily['type']): 'sum' | 'average' | 'max' | 'min' | 'first' | 'omit' {
  if (type === 'counter' || type === 'histogram') return 'sum';
  if (type === 'summary') return 'omit';
  if (ADDITIVE_GAUGES.has(base)) return 'sum';
  if (AVERAGED_GAUGES.has(base)) return 'average';
  if (MAX_GAUGES.has(base)) return 'max';
  if (MIN_GAUGES.has(base)) return 'min';
  if (FIRST_GAUGES.has(base)) return 'first';
  return 'omit';
}

function toValues(
  name: string,
  m: MetricFamily['metrics'][number],
  ladder: ReturnType<typeof ladderFor>,
  shared: boolean,
): Value[] {
  const labels = { ...m.labels };
  // One label per sample plus the series' labels: shared by reference, or merged into each sample.
  const sample = (metricName: string | undefined, label: string, value: string | number, v: number): Value =>
    shared
      ? { metricName, labels: { [label]: value }, sharedLabels: labels, value: v }
      : { metricName, labels: { ...labels, [label]: value }, value: v };
  if (m.histogram) {
    const h = m.histogram;
    const { bounds, counts } = classicBuckets(h, ladder);
    const bucket = `${name}_bucket`;
    const out: Value[] = bounds.map((le, i) => sample(bucket, 'le', le, counts[i]));
    out.push(sample(bucket, 'le', '+Inf', h.count));
    out.push(
      { metricName: `${name}_sum`, labels, value: h.sum },
      { metricName: `${name}_count`, labels, value: h.count },
    );
    return out;
  }
  if (m.summary) {
    const s = m.summary;
    return [
      ...s.quantiles.map((q) => sample(undefined, 'quantile', q.quantile, q.value)),
      { metricName: `${name}_sum`, labels, value: s.sum },
      { metricName: `${name}_count`, labels, value: s.count },
    ];
  }
  return [{ labels, value: m.value ?? Number.NaN }];
}
