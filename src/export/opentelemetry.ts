// The monitor's metrics as an OpenTelemetry MetricProducer: a MetricReader of
// @opentelemetry/sdk-metrics (and so any exporter behind it: OTLP over HTTP/protobuf, HTTP/JSON or
// gRPC, Prometheus, the console) collects them beside the SDK's own instruments. Our histograms are
// base-2 exponential histograms already, so they go out as OpenTelemetry exponential histograms
// bucket for bucket, never re-bucketed.
import { createRequire } from 'node:module';
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { CollectionResult, DataPoint, ExponentialHistogram, MetricData } from '@opentelemetry/sdk-metrics';
import { type CollectOptions, collectFamilies } from './collect-families.js';
import { firstIndexAbove, type MetricFamily, type NativeHistogram } from '../core/family-model.js';
import { internalsOf, type MonitorReader, withExtremes } from '../analysis/monitor-reader.js';
import { distUrl } from '../core/module-url.js';

export interface OpenTelemetryProducerOptions {
  /** Prefix of our own families' names. Default `'streamgauge.'` (`streamgauge.request.duration`). */
  prefix?: string;
  /**
   * Names of the gRPC families, as for `monitor.metrics()`. Default `'opentelemetry'`: the RPC
   * semantic conventions' `rpc.server.call.duration` with `rpc.method`, `rpc.response.status_code`.
   */
  rpcNames?: CollectOptions['rpcNames'];
  /** Include the process and runtime families (`process.*`, `nodejs.*`). Default true. */
  runtime?: boolean;
  /** Prefix of the process and runtime families. Default `''`. */
  runtimePrefix?: string;
  /**
   * The resource of what `collect()` returns when called by itself. A MetricReader ignores it and
   * uses its MeterProvider's resource. Default: an empty resource.
   */
  resource?: unknown;
}

/**
 * An `@opentelemetry/sdk-metrics` MetricProducer (pass it in a reader's `metricProducers`).
 * Written out so that this package's declarations compile where @opentelemetry/sdk-metrics (an
 * optional peer dependency) is not installed.
 */
export interface OpenTelemetryProducer {
  // biome-ignore lint/suspicious/noExplicitAny: an sdk-metrics CollectionResult
  collect(options?: { timeoutMillis?: number }): Promise<any>;
}

// The sdk-metrics enums this file writes (their values are part of its API).
interface SdkMetrics {
  DataPointType: { EXPONENTIAL_HISTOGRAM: number; GAUGE: number; SUM: number };
  AggregationTemporality: { CUMULATIVE: number };
}
const INT = 0; // @opentelemetry/api ValueType.INT
const DOUBLE = 1; // ValueType.DOUBLE

// sdk-metrics, loaded when the first producer is made: a program that never uses OpenTelemetry
// does not need it installed.
const requireHere = createRequire(distUrl);
let sdkModule: { sdk: SdkMetrics; emptyResource: () => unknown } | undefined;
function sdkMetrics(): { sdk: SdkMetrics; emptyResource: () => unknown } {
  if (sdkModule === undefined) {
    let sdk: SdkMetrics;
    try {
      sdk = requireHere('@opentelemetry/sdk-metrics') as SdkMetrics;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      throw new Error(
        'the OpenTelemetry bridge needs @opentelemetry/sdk-metrics (an optional peer dependency): npm install @opentelemetry/sdk-metrics',
        { cause: err },
      );
    }
    // @opentelemetry/resources as sdk-metrics itself resolves it (its dependency, not ours).
    const resources = createRequire(requireHere.resolve('@opentelemetry/sdk-metrics'))('@opentelemetry/resources') as {
      emptyResource: () => unknown;
    };
    sdkModule = { sdk, emptyResource: resources.emptyResource };
  }
  return sdkModule;
}

let version: string | undefined;
function packageVersion(): string {
  version ??= (requireHere('../../package.json') as { version: string }).version;
  return version;
}

// Prometheus unit suffixes and the UCUM units OpenTelemetry writes instead.
const UNITS: [suffix: string, unit: string][] = [
  ['_seconds', 's'],
  ['_bytes', 'By'],
  ['_ratio', '1'],
];

// Names the semantic conventions give with a multi-word component, which `_` → `.` would split.
const NAMES: Record<string, string> = { 'http.server.active.requests': 'http.server.active_requests' };

// Labels that stand for semantic-convention attributes (Prometheus names cannot hold dots).
const ATTRIBUTES: Record<string, string> = {
  http_request_method: 'http.request.method',
  http_route: 'http.route',
  http_response_status_code: 'http.response.status_code',
  rpc_system_name: 'rpc.system.name',
  rpc_method: 'rpc.method',
  rpc_response_status_code: 'rpc.response.status_code',
  error_type: 'error.type',
};

/** A family's OpenTelemetry name and unit: the Prometheus name without its unit suffix, dotted. */
function openTelemetryName(family: MetricFamily, prefix: string): { name: string; unit: string } {
  let base = family.name;
  let unit = '';
  for (const [suffix, u] of UNITS) {
    if (base.endsWith(suffix)) {
      base = base.slice(0, -suffix.length);
      unit = u;
      break;
    }
  }
  // A family's own prefix (a runtime prefix, '' for names an ecosystem fixes) is dotted too.
  const name = (family.prefix !== undefined ? family.prefix.replaceAll('_', '.') : prefix) + base.replaceAll('_', '.');
  return { name: NAMES[name] ?? name, unit };
}

/**
 * A MetricProducer of every family the monitor exposes to Prometheus, as OpenTelemetry metrics:
 * histograms as exponential histograms (exact: the same buckets), counters as cumulative monotonic
 * sums, gauges as gauges, series labels as attributes.
 */
export function openTelemetryProducer(
  monitor: MonitorReader,
  options: OpenTelemetryProducerOptions = {},
): OpenTelemetryProducer {
  if (monitor === null || typeof monitor !== 'object' || typeof monitor.seriesList !== 'function')
    throw new TypeError('monitor must be a StreamPerformanceMonitor');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const prefix = options.prefix ?? 'streamgauge.';
  if (typeof prefix !== 'string') throw new TypeError('options.prefix must be a string');
  const collect: CollectOptions = {
    rpcNames: options.rpcNames ?? 'opentelemetry',
    runtime: options.runtime ?? true,
    runtimePrefix: options.runtimePrefix ?? '',
  };
  if (collect.rpcNames !== 'grpc' && collect.rpcNames !== 'opentelemetry')
    throw new RangeError(`options.rpcNames must be 'grpc' or 'opentelemetry' (got ${String(collect.rpcNames)})`);
  if (typeof collect.runtime !== 'boolean') throw new TypeError('options.runtime must be a boolean');
  if (typeof collect.runtimePrefix !== 'string') throw new TypeError('options.runtimePrefix must be a string');
  const { sdk, emptyResource } = sdkMetrics();
  const resource = options.resource ?? emptyResource();
  const scope = { name: 'streamgauge', version: packageVersion() };
  return {
    async collect(): Promise<CollectionResult> {
      const clock = monitor.config.clock;
      const startTime = hrTime(internalsOf(monitor).startedAt);
      const endTime = hrTime(clock.now());
      const metrics: MetricData[] = [];
      const errors: unknown[] = [];
      try {
        for (const f of withExtremes(() => collectFamilies(monitor, collect)))
          metrics.push(toMetric(sdk, f, prefix, startTime, endTime));
      } catch (err) {
        // A collection error, as the SDK reports one: the reader logs it and exports the rest.
        errors.push(err);
      }
      return {
        resourceMetrics: {
          resource: resource as CollectionResult['resourceMetrics']['resource'],
          scopeMetrics: errors.length ? [] : [{ scope, metrics }],
        },
        errors,
      };
    },
  };
}

function toMetric(sdk: SdkMetrics, f: MetricFamily, prefix: string, startTime: HrTime, endTime: HrTime): MetricData {
  const { name, unit } = openTelemetryName(f, prefix);
  const description = f.help;
  const cumulative = sdk.AggregationTemporality.CUMULATIVE;
  if (f.type === 'histogram') {
    const dataPoints: DataPoint<ExponentialHistogram>[] = [];
    for (const m of f.metrics)
      if (m.histogram)
        dataPoints.push({ startTime, endTime, attributes: attributes(m.labels), value: exponential(m.histogram) });
    return {
      descriptor: { name, description, unit, valueType: DOUBLE },
      aggregationTemporality: cumulative,
      dataPointType: sdk.DataPointType.EXPONENTIAL_HISTOGRAM,
      dataPoints,
    } as MetricData;
  }
  if (f.type === 'summary') {
    // The SDK has no summary: the window's quantiles go out as a gauge with a `quantile`
    // attribute (its count and sum are the histogram's).
    const dataPoints: DataPoint<number>[] = [];
    for (const m of f.metrics) {
      for (const q of m.summary?.quantiles ?? []) {
        if (!Number.isNaN(q.value))
          dataPoints.push({
            startTime,
            endTime,
            attributes: { ...attributes(m.labels), quantile: q.quantile },
            value: q.value,
          });
      }
    }
    return {
      descriptor: { name, description, unit, valueType: DOUBLE },
      aggregationTemporality: cumulative,
      dataPointType: sdk.DataPointType.GAUGE,
      dataPoints,
    } as MetricData;
  }
  const dataPoints: DataPoint<number>[] = [];
  let whole = true;
  for (const m of f.metrics) {
    const value = m.value;
    if (value === undefined || Number.isNaN(value)) continue;
    if (!Number.isSafeInteger(value)) whole = false;
    dataPoints.push({ startTime, endTime, attributes: attributes(m.labels), value });
  }
  if (f.type === 'counter') {
    return {
      descriptor: { name, description, unit, valueType: whole && unit === '' ? INT : DOUBLE },
      aggregationTemporality: cumulative,
      dataPointType: sdk.DataPointType.SUM,
      isMonotonic: true,
      dataPoints,
    } as MetricData;
  }
  return {
    descriptor: { name, description, unit, valueType: DOUBLE },
    aggregationTemporality: cumulative,
    dataPointType: sdk.DataPointType.GAUGE,
    dataPoints,
  } as MetricData;
}

const attributeCache = new WeakMap<object, Attributes>();
function attributes(labels: Readonly<Record<string, string>>): Attributes {
  let out = attributeCache.get(labels);
  if (out === undefined) {
    out = {};
    for (const [k, v] of Object.entries(labels)) out[ATTRIBUTES[k] ?? k] = v;
    if (Object.isFrozen(labels)) attributeCache.set(labels, out);
  }
  return out;
}

/**
 * A native histogram as an OpenTelemetry exponential one. Same base: Prometheus bucket i covers
 * (2^((i-1)·2^-s), 2^(i·2^-s)], OpenTelemetry bucket j covers (2^(j·2^-s), 2^((j+1)·2^-s)], so j = i − 1.
 * Observations above the range go to the first bucket wholly above it (as in the protobuf
 * exposition), so the buckets and the zero count add up to the count.
 */
function exponential(h: NativeHistogram): ExponentialHistogram {
  let offset = 0;
  let counts: number[] = [];
  if (h.dense !== undefined) {
    offset = h.dense.offset;
    counts = Array.from(h.dense.counts);
  } else if (h.buckets.length > 0) {
    offset = h.buckets[0].index;
    const last = h.buckets[h.buckets.length - 1].index;
    counts = new Array(last - offset + 1).fill(0);
    for (const b of h.buckets) counts[b.index - offset] += b.count;
  }
  if (h.overflowCount > 0) {
    const top = h.overflowThreshold;
    const above =
      top !== undefined && top > 0 && Number.isFinite(top) ? firstIndexAbove(h.schema, top) : offset + counts.length;
    if (counts.length === 0) offset = above;
    const at = Math.max(above, offset + counts.length);
    while (offset + counts.length <= at) counts.push(0);
    counts[at - offset] += h.overflowCount;
  }
  const out: ExponentialHistogram = {
    count: h.count,
    sum: h.sum,
    scale: h.schema,
    zeroCount: h.zeroCount,
    positive: { offset: counts.length > 0 ? offset - 1 : 0, bucketCounts: counts },
    negative: { offset: 0, bucketCounts: [] },
  };
  if (h.min !== undefined) out.min = h.min;
  if (h.max !== undefined) out.max = h.max;
  return out;
}

function hrTime(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(Math.round((ms - s * 1000) * 1e6), 999_999_999)];
}
