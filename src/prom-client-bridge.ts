// A bridge into an existing prom-client Registry, so a service that already serves prom-client
// metrics gets streamgauge's on the same endpoint. prom-client is the caller's: nothing here
// imports it, the registry is used through the small surface below.
import { collectFamilies, FAMILY_NAMES } from './families.js';
import { classicBuckets, DEFAULT_CLASSIC_BOUNDARIES_SECONDS, ladderFor, type MetricFamily } from './metric-families.js';
import type { StreamPerformanceMonitor } from './monitor.js';
import { DEFAULT_PREFIX } from './prometheus.js';

/** The part of a prom-client Registry the bridge uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  readonly contentType?: string;
}

interface Value {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export interface PromClientBridgeOptions {
  prefix?: string;
  classicBoundariesSeconds?: readonly number[];
  /** Collected families are reused for this long (ms), so one scrape collects once. Default 250. */
  cacheMs?: number;
}

/**
 * Registers every streamgauge family in `registry`. Returns a function that removes them again.
 * Histograms appear as classic buckets (exact: the bounds are native bucket boundaries).
 */
export function registerWithPromClient(monitor: StreamPerformanceMonitor, registry: PromClientRegistryLike, options: PromClientBridgeOptions = {}): () => void {
  if (!registry || typeof registry.registerMetric !== 'function') throw new TypeError('registry must be a prom-client Registry');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const ladder = ladderFor(options.classicBoundariesSeconds ?? DEFAULT_CLASSIC_BOUNDARIES_SECONDS);
  const cacheMs = options.cacheMs ?? 250;
  const openMetrics = (registry.contentType ?? '').startsWith('application/openmetrics-text');
  let cached: { at: number; byName: Map<string, MetricFamily> } | undefined;
  const families = () => {
    const now = Date.now();
    if (!cached || now - cached.at > cacheMs) cached = { at: now, byName: new Map(collectFamilies(monitor).map((f) => [f.name, f])) };
    return cached.byName;
  };
  const names: string[] = [];
  for (const [base, type] of FAMILY_NAMES) {
    // prom-client adds `_total` to counters itself in OpenMetrics mode only.
    const name = prefix + base + (type === 'counter' && !openMetrics ? '_total' : '');
    const metric = {
      name,
      help: '',
      type,
      aggregator: 'sum',
      reset() {},
      async get() {
        const f = families().get(base);
        const values: Value[] = [];
        if (f) {
          for (const m of f.metrics) values.push(...toValues(name, m, ladder));
          metric.help = f.help;
        }
        return { name, help: metric.help || base, type, values, aggregator: 'sum' };
      },
    };
    registry.registerMetric(metric);
    names.push(name);
  }
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}

function toValues(name: string, m: MetricFamily['metrics'][number], ladder: ReturnType<typeof ladderFor>): Value[] {
  const labels = { ...m.labels };
  if (m.histogram) {
    const h = m.histogram;
    const { bounds, counts } = classicBuckets(h, ladder);
    const out: Value[] = bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: counts[i] }));
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
    out.push({ metricName: `${name}_sum`, labels, value: h.sum }, { metricName: `${name}_count`, labels, value: h.count });
    return out;
  }
  if (m.summary) {
    const s = m.summary;
    return [
      ...s.quantiles.map((q) => ({ labels: { ...labels, quantile: q.quantile }, value: q.value })),
      { metricName: `${name}_sum`, labels, value: s.sum },
      { metricName: `${name}_count`, labels, value: s.count },
    ];
  }
  return [{ labels, value: m.value ?? Number.NaN }];
}
