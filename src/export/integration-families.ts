// The integrations' series as metric families. gRPC (src/integrations/grpc.ts): grpc-ecosystem's names by
// default, OpenTelemetry's RPC conventions on request, and our own figures (bytes, calls in
// flight, first response, per-message latency, backpressure) beside them with the same labels.
// Worker pools (src/integrations/pool.ts): tasks, their run and wait times, utilisation, queue.
// Each family holds one kind of series: server calls, client calls, stages and pool tasks never
// share one.
import { GRPC_KINDS } from '../integrations/grpc.js';
import { HTTP_KINDS } from '../integrations/http.js';
import { POOL_KINDS } from '../integrations/pool.js';
import type { Metric, MetricFamily, NativeHistogram } from '../core/family-model.js';
import type { MonitorReader } from '../analysis/monitor-reader.js';
import type { Totals } from '../time/totals.js';
import type { Labels } from '../core/types.js';

export type RpcNames = 'grpc' | 'opentelemetry';

/** One integration series as collectFamilies read it. */
export interface KindedSeries {
  index: number;
  kind: string;
  labels: Labels;
  totals: Totals;
  latency: NativeHistogram;
}

type Type = MetricFamily['type'];

/** Families named by an ecosystem: written without the render's prefix. */
export const RPC_UNPREFIXED: readonly string[] = [
  'grpc_server_started',
  'grpc_server_handled',
  'grpc_server_handling_seconds',
  'grpc_server_msg_received',
  'grpc_server_msg_sent',
  'grpc_client_started',
  'grpc_client_handled',
  'grpc_client_handling_seconds',
  'grpc_client_msg_received',
  'grpc_client_msg_sent',
  'rpc_server_call_duration_seconds',
  'rpc_client_call_duration_seconds',
  'http_server_request_duration_seconds',
  'http_server_active_requests',
];

/** Every family rpcFamilies can produce, with its type. */
export const RPC_FAMILY_NAMES: readonly [string, Type][] = [
  ...RPC_UNPREFIXED.map((name): [string, Type] => [
    name,
    name.endsWith('_seconds') ? 'histogram' : name.endsWith('_active_requests') ? 'gauge' : 'counter',
  ]),
  ['rpc_server_started', 'counter'],
  ['rpc_server_msg_received', 'counter'],
  ['rpc_server_msg_sent', 'counter'],
  ['rpc_client_started', 'counter'],
  ['rpc_client_msg_received', 'counter'],
  ['rpc_client_msg_sent', 'counter'],
  ['grpc_server_msg_received_bytes', 'counter'],
  ['grpc_server_msg_sent_bytes', 'counter'],
  ['grpc_server_in_flight', 'gauge'],
  ['grpc_server_first_response_seconds', 'histogram'],
  ['grpc_server_msg_latency_seconds', 'histogram'],
  ['grpc_server_backpressure_events', 'counter'],
  ['grpc_server_backpressure_wait_seconds', 'histogram'],
  ['grpc_client_msg_received_bytes', 'counter'],
  ['grpc_client_msg_sent_bytes', 'counter'],
  ['grpc_client_in_flight', 'gauge'],
  ['pool_tasks', 'counter'],
  ['pool_task_run_seconds', 'histogram'],
  ['pool_task_wait_seconds', 'histogram'],
  ['pool_utilization_ratio', 'gauge'],
  ['pool_queue_depth', 'gauge'],
  ['pool_needs_drain_events', 'counter'],
  ['pool_drain_wait_seconds', 'histogram'],
  ['http_server_request_body_bytes', 'counter'],
  ['http_server_response_body_bytes', 'counter'],
  ['http_server_time_to_first_byte_seconds', 'histogram'],
  ['http_server_write_backpressure_events', 'counter'],
  ['http_server_write_drain_wait_seconds', 'histogram'],
  ['http_server_aborted_requests', 'counter'],
];

// OpenTelemetry's labels of a series, made once per (frozen) label set.
const otelLabels = new WeakMap<Labels, Labels>();

/**
 * A series' grpc-ecosystem labels as OpenTelemetry names them: `rpc_system_name="grpc"`,
 * `rpc_method="pkg.Service/Method"`, `rpc_response_status_code` for grpc_code; grpc_type has no
 * counterpart there and is left out.
 */
function toOtel(labels: Labels): Labels {
  let out = otelLabels.get(labels);
  if (out === undefined) {
    const o: Record<string, string> = {};
    for (const [name, value] of Object.entries(labels)) {
      if (name === 'grpc_type' || name === 'grpc_service' || name === 'grpc_method') continue;
      o[name === 'grpc_code' ? 'rpc_response_status_code' : name] = value;
    }
    o.rpc_system_name = 'grpc';
    o.rpc_method = `${labels.grpc_service}/${labels.grpc_method}`;
    out = Object.freeze(o);
    otelLabels.set(labels, out);
  }
  return out;
}

export function rpcFamilies(
  monitor: MonitorReader,
  series: readonly KindedSeries[],
  names: RpcNames,
  take?: (n: number) => Float64Array,
): MetricFamily[] {
  const fams: MetricFamily[] = [];
  if (series.length === 0) return fams;
  const otel = names === 'opentelemetry';
  const labelsOf = otel ? (s: KindedSeries) => toOtel(s.labels) : (s: KindedSeries) => s.labels;
  const of = (kind: string) => series.filter((s) => s.kind === kind);
  const push = (family: MetricFamily) => {
    if (family.metrics.length > 0) fams.push(family);
  };
  const values = (list: readonly KindedSeries[], get: (t: Totals) => number): Metric[] =>
    list.map((s) => ({ labels: labelsOf(s), value: get(s.totals) }));
  const histograms = (
    list: readonly KindedSeries[],
    read: (s: KindedSeries) => NativeHistogram | undefined,
  ): Metric[] => {
    const out: Metric[] = [];
    for (const s of list) {
      const h = read(s);
      if (h !== undefined && h.count > 0) out.push({ labels: labelsOf(s), histogram: h });
    }
    return out;
  };

  for (const side of ['server', 'client'] as const) {
    const calls = of(side === 'server' ? GRPC_KINDS.server : GRPC_KINDS.client);
    const handled = of(side === 'server' ? GRPC_KINDS.serverHandled : GRPC_KINDS.clientHandled);
    const who = side === 'server' ? 'the server' : 'the client';
    const callsBy = side === 'server' ? 'received' : 'made';
    if (otel) {
      push({
        name: `rpc_${side}_call_duration_seconds`,
        prefix: '',
        help: `Duration of RPCs ${callsBy}, by status code.`,
        type: 'histogram',
        unit: 'seconds',
        metrics: histograms(handled, (s) => s.latency),
      });
    } else {
      push({
        name: `grpc_${side}_started`,
        prefix: '',
        help: `RPCs started on ${who}.`,
        type: 'counter',
        metrics: values(calls, (t) => t.connectionsOpened),
      });
      push({
        name: `grpc_${side}_handled`,
        prefix: '',
        help: `RPCs completed on ${who}, by status code.`,
        type: 'counter',
        metrics: values(handled, (t) => t.requests),
      });
      push({
        name: `grpc_${side}_handling_seconds`,
        prefix: '',
        help: `Duration of RPCs on ${who} until completion, by status code.`,
        type: 'histogram',
        unit: 'seconds',
        metrics: histograms(handled, (s) => s.latency),
      });
    }
    // grpc-ecosystem's message counters; under OpenTelemetry's names, which have none, ours.
    const base = otel ? `rpc_${side}` : `grpc_${side}`;
    const own = otel ? {} : { prefix: '' };
    push({
      ...own,
      name: `${base}_msg_received`,
      help: `Stream messages received by ${who}.`,
      type: 'counter',
      metrics: values(calls, (t) => t.messagesIn),
    });
    push({
      ...own,
      name: `${base}_msg_sent`,
      help: `Stream messages sent by ${who}.`,
      type: 'counter',
      metrics: values(calls, (t) => t.messagesOut),
    });
    if (otel)
      push({
        name: `${base}_started`,
        help: `RPCs started on ${who}.`,
        type: 'counter',
        metrics: values(calls, (t) => t.connectionsOpened),
      });

    // Ours, with the render's prefix.
    push({
      name: `grpc_${side}_msg_received_bytes`,
      help: `Bytes of messages received by ${who}.`,
      type: 'counter',
      unit: 'bytes',
      metrics: values(calls, (t) => t.bytesIn),
    });
    push({
      name: `grpc_${side}_msg_sent_bytes`,
      help: `Bytes of messages sent by ${who}.`,
      type: 'counter',
      unit: 'bytes',
      metrics: values(calls, (t) => t.bytesOut),
    });
    push({
      name: `grpc_${side}_in_flight`,
      help: `RPCs started on ${who} and not completed yet.`,
      type: 'gauge',
      metrics: values(calls, (t) => t.activeConnections),
    });
  }

  push({
    name: 'grpc_server_first_response_seconds',
    help: 'Time from an RPC reaching the server to its first response message.',
    type: 'histogram',
    unit: 'seconds',
    metrics: histograms(of(GRPC_KINDS.firstResponse), (s) => s.latency),
  });
  push({
    name: 'grpc_server_msg_latency_seconds',
    help: 'Per-message latency of streaming RPCs (handler timers, or request to matching response).',
    type: 'histogram',
    unit: 'seconds',
    metrics: histograms(of(GRPC_KINDS.message), (s) => s.latency),
  });
  poolFamilies(monitor, of, push, take);
  httpFamilies(monitor, of, push, take);
  const pressured = of(GRPC_KINDS.server).filter((s) => s.totals.backpressure > 0);
  push({
    name: 'grpc_server_backpressure_events',
    help: 'Server writes refused (call.write() returned false).',
    type: 'counter',
    metrics: values(pressured, (t) => t.backpressure),
  });
  push({
    name: 'grpc_server_backpressure_wait_seconds',
    help: 'Time a refused server write waited for drain.',
    type: 'histogram',
    unit: 'seconds',
    metrics: histograms(pressured, (s) => monitor.nativeHistogram(s.index, 'backpressureWait', take)),
  });
  return fams;
}

function poolFamilies(
  monitor: MonitorReader,
  of: (kind: string) => KindedSeries[],
  push: (family: MetricFamily) => void,
  take?: (n: number) => Float64Array,
): void {
  const pools = of(POOL_KINDS.pool);
  const run = of(POOL_KINDS.run);
  const wait = of(POOL_KINDS.wait);
  const hist = (list: KindedSeries[], read: (s: KindedSeries) => NativeHistogram): Metric[] =>
    list.map((s) => ({ labels: s.labels, histogram: read(s) })).filter((m) => m.histogram.count > 0);
  const gauge = (get: (t: Totals) => number): Metric[] =>
    pools.filter((s) => !Number.isNaN(get(s.totals))).map((s) => ({ labels: s.labels, value: get(s.totals) }));
  push({
    name: 'pool_tasks',
    help: 'Tasks the pool has run to completion.',
    type: 'counter',
    metrics: run.map((s) => ({ labels: s.labels, value: s.totals.requests })),
  });
  push({
    name: 'pool_task_run_seconds',
    help: 'Time a task ran on a worker.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(run, (s) => s.latency),
  });
  push({
    name: 'pool_task_wait_seconds',
    help: 'Time a task waited in the queue.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(wait, (s) => s.latency),
  });
  push({
    name: 'pool_utilization_ratio',
    help: 'Share of the pool’s capacity busy over the last sample, 0..1.',
    type: 'gauge',
    unit: 'ratio',
    metrics: gauge((t) => t.workerUtilization),
  });
  push({
    name: 'pool_queue_depth',
    help: 'Tasks queued in the pool.',
    type: 'gauge',
    metrics: gauge((t) => t.queueDepth),
  });
  const pressured = pools.filter((s) => s.totals.backpressure > 0);
  push({
    name: 'pool_needs_drain_events',
    help: 'Times the pool asked callers to wait (needsDrain).',
    type: 'counter',
    metrics: pressured.map((s) => ({ labels: s.labels, value: s.totals.backpressure })),
  });
  push({
    name: 'pool_drain_wait_seconds',
    help: 'Time from needsDrain to drain.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(pressured, (s) => monitor.nativeHistogram(s.index, 'backpressureWait', take)),
  });
}

function httpFamilies(
  monitor: MonitorReader,
  of: (kind: string) => KindedSeries[],
  push: (family: MetricFamily) => void,
  take?: (n: number) => Float64Array,
): void {
  const hist = (list: KindedSeries[], read: (s: KindedSeries) => NativeHistogram): Metric[] =>
    list.map((s) => ({ labels: s.labels, histogram: read(s) })).filter((m) => m.histogram.count > 0);
  const counter = (list: KindedSeries[], get: (t: Totals) => number): Metric[] =>
    list.map((s) => ({ labels: s.labels, value: get(s.totals) }));
  // Prometheus' and OpenTelemetry's names (http.server.request.duration, http.server.active_requests).
  push({
    name: 'http_server_request_duration_seconds',
    prefix: '',
    help: 'Duration of HTTP server requests, by method, route and status code.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(of(HTTP_KINDS.handled), (s) => s.latency),
  });
  push({
    name: 'http_server_active_requests',
    prefix: '',
    help: 'HTTP server requests in flight.',
    type: 'gauge',
    metrics: counter(of(HTTP_KINDS.active), (t) => t.activeConnections),
  });
  const requests = of(HTTP_KINDS.requests);
  push({
    name: 'http_server_request_body_bytes',
    help: 'Bytes of request bodies received.',
    type: 'counter',
    unit: 'bytes',
    metrics: counter(requests, (t) => t.bytesIn),
  });
  push({
    name: 'http_server_response_body_bytes',
    help: 'Bytes of response bodies sent.',
    type: 'counter',
    unit: 'bytes',
    metrics: counter(requests, (t) => t.bytesOut),
  });
  push({
    name: 'http_server_time_to_first_byte_seconds',
    help: 'Time from a request’s arrival to the first write of its response.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(of(HTTP_KINDS.firstByte), (s) => s.latency),
  });
  const pressured = requests.filter((s) => s.totals.backpressure > 0);
  push({
    name: 'http_server_write_backpressure_events',
    help: 'Response writes refused (res.write() returned false).',
    type: 'counter',
    metrics: counter(pressured, (t) => t.backpressure),
  });
  push({
    name: 'http_server_write_drain_wait_seconds',
    help: 'Time a refused response write waited for drain.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hist(pressured, (s) => monitor.nativeHistogram(s.index, 'backpressureWait', take)),
  });
  push({
    name: 'http_server_aborted_requests',
    help: 'Requests whose connection closed before the response was complete.',
    type: 'counter',
    metrics: counter(of(HTTP_KINDS.aborted), (t) => t.requests),
  });
}
