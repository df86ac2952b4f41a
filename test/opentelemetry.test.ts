// openTelemetryProducer(): the monitor's metrics carried by an @opentelemetry/sdk-metrics reader,
// in memory and through the real OTLP/HTTP protobuf exporter to a receiver on 127.0.0.1 that decodes
// the request with the OTLP protobuf definitions as OpenTelemetry publishes them (generated code of
// an earlier @opentelemetry/otlp-transformer: not the serializer the exporter used).
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { OTLPMetricExporter as OTLPGrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as OTLPJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type ExponentialHistogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from './fixtures/wait.js';
import {
  instrumentHttpServer,
  openTelemetryProducer,
  relativeErrorBound,
  type StreamPerformanceMonitor,
} from '../src/index.js';
import { testMonitor, withMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const require = createRequire(import.meta.url);

const ROUTES = ['Chat/Stream', 'Quote/Get'];
const SCALE = 7;

/** A monitor with two routes of lognormal-like latencies (whole microseconds), a few errors, cache use. */
function setup(): { monitor: StreamPerformanceMonitor; values: Map<string, number[]> } {
  const monitor = testMonitor({ scale: SCALE });
  const values = new Map<string, number[]>();
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return (seed + 1) / 2 ** 31;
  };
  ROUTES.forEach((route, r) => {
    const series = monitor.series({ route });
    const recorded: number[] = [];
    for (let i = 0; i < 2000; i++) {
      // exp of a sum of uniforms: lognormal-like, 0.1 ms .. some 100 ms; whole µs.
      const ms = Math.max(1, Math.round(1000 * (r + 1) * Math.exp(2 * (random() + random() + random() - 1.5)))) / 1000;
      if (i % 100 === 0) series.recordError(i % 200 === 0 ? 'timeout' : 'unavailable', ms);
      else series.recordLatency(ms);
      recorded.push(ms);
    }
    series.recordCacheHit();
    series.recordCacheMiss();
    series.connectionOpened();
    values.set(route, recorded);
  });
  monitor.tick();
  return { monitor, values };
}

function reader(exporter: PushMetricExporter, monitor: StreamPerformanceMonitor): PeriodicExportingMetricReader {
  // A long interval: the test exports by forceFlush(), never on a timer.
  return new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3_600_000,
    metricProducers: [openTelemetryProducer(monitor)],
  });
}

/** OpenTelemetry bucket j of scale s holds (2^(j·2^-s), 2^((j+1)·2^-s)]: the counts of `seconds`, computed independently. */
function expectedBuckets(seconds: number[], scale: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const v of seconds) {
    const j = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
    out.set(j, (out.get(j) ?? 0) + 1);
  }
  return out;
}

/** The q-quantile of an exponential histogram, at its bucket's log-midpoint (as the monitor reports it). */
function quantileOf(
  h: { scale: number; zeroCount: number; count: number; positive: { offset: number; bucketCounts: number[] } },
  q: number,
): number {
  const rank = q * h.count;
  let seen = h.zeroCount;
  if (seen >= rank) return 0;
  for (let k = 0; k < h.positive.bucketCounts.length; k++) {
    seen += h.positive.bucketCounts[k];
    if (seen >= rank) return 2 ** ((h.positive.offset + k + 0.5) * 2 ** -h.scale);
  }
  return Number.NaN;
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-15 * Math.abs(b);
}

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

function metric(all: MetricData[], name: string): MetricData {
  const m = all.find((x) => x.descriptor.name === name);
  if (m === undefined) throw new Error(`no metric ${name} in ${all.map((x) => x.descriptor.name).join(', ')}`);
  return m;
}

test('a MeterProvider reader exports our histograms bucket for bucket, counters cumulative and monotonic, gauges, resource and attributes', async () => {
  const { monitor, values } = setup();
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const r = reader(exporter, monitor);
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'chat' }), readers: [r] });
  // The SDK's own instruments go out beside ours.
  provider.getMeter('app').createCounter('app.jobs').add(3);
  try {
    await r.forceFlush();
    const [exported] = exporter.getMetrics();
    assert.is(exported.resource.attributes['service.name'], 'chat');
    const scopes = new Map(exported.scopeMetrics.map((s) => [s.scope.name, s.metrics]));
    assert.ok(scopes.get('app')?.some((m) => m.descriptor.name === 'app.jobs'));
    const ours = scopes.get('streamgauge') as MetricData[];

    const duration = metric(ours, 'streamgauge.request.duration');
    assert.is(duration.descriptor.unit, 's');
    assert.is(duration.dataPointType, DataPointType.EXPONENTIAL_HISTOGRAM);
    assert.is(duration.aggregationTemporality, AggregationTemporality.CUMULATIVE);
    for (const route of ROUTES) {
      const point = duration.dataPoints.find((p) => p.attributes.route === route);
      assert.ok(point, route);
      const h = point.value as ExponentialHistogram;
      const recorded = (values.get(route) as number[]).map((ms) => ms / 1000);
      const native = monitor.nativeHistogram(monitor.series({ route }));
      assert.is(h.scale, SCALE);
      assert.is(h.count, recorded.length);
      assert.is(h.zeroCount, 0);
      assert.ok(Math.abs((h.sum as number) - recorded.reduce((a, b) => a + b, 0)) < 1e-9 * recorded.length);
      // The core keeps min and max in its own unit (ms): equal up to the last bit of ms → s.
      assert.ok(close(h.min as number, Math.min(...recorded)));
      assert.ok(close(h.max as number, Math.max(...recorded)));
      // Every bucket: the monitor's native bucket i is OpenTelemetry's i − 1, and holds what the values say.
      const expected = expectedBuckets(recorded, SCALE);
      const got = new Map<number, number>();
      h.positive.bucketCounts.forEach((c, k) => {
        if (c > 0) got.set(h.positive.offset + k, c);
      });
      assert.equal(got, expected);
      for (const b of native.buckets) assert.is(got.get(b.index - 1), b.count);
      assert.equal(h.negative.bucketCounts, []);
      // Quantiles from the exported buckets agree with the monitor's own and with the exact ones.
      const sorted = [...recorded].sort((a, b) => a - b);
      for (const q of [0.5, 0.95, 0.99, 0.999]) {
        const exact = exactQuantile(sorted, q);
        const fromOtel = quantileOf(h, q);
        assert.ok(
          Math.abs(fromOtel / exact - 1) <= relativeErrorBound(SCALE) + 1e-12,
          `p${q * 100} ${fromOtel} vs exact ${exact}`,
        );
      }
    }

    const requests = metric(ours, 'streamgauge.requests');
    assert.is(requests.dataPointType, DataPointType.SUM);
    assert.is(requests.aggregationTemporality, AggregationTemporality.CUMULATIVE);
    assert.ok(requests.dataPointType === DataPointType.SUM && requests.isMonotonic);
    for (const route of ROUTES) {
      assert.is(
        requests.dataPoints.find((p) => p.attributes.route === route)?.value,
        monitor.totals(monitor.series({ route })).requests,
      );
    }
    const errors = metric(ours, 'streamgauge.errors');
    assert.is(
      errors.dataPoints.find((p) => p.attributes.route === 'Chat/Stream' && p.attributes['error.type'] === 'timeout')
        ?.value,
      10,
    );
    const ratio = metric(ours, 'streamgauge.cache.hit');
    assert.is(ratio.descriptor.unit, '1');
    assert.is(ratio.dataPointType, DataPointType.GAUGE);
    assert.is(ratio.dataPoints.find((p) => p.attributes.route === 'Quote/Get')?.value, 0.5);
    assert.is(
      metric(ours, 'streamgauge.active.connections').dataPoints.find((p) => p.attributes.route === 'Quote/Get')?.value,
      1,
    );
    const bytes = metric(ours, 'streamgauge.message');
    assert.is(bytes.descriptor.unit, 'By');
    // The window's quantiles, as a gauge by quantile.
    const window = metric(ours, 'streamgauge.request.duration.window');
    assert.ok(window.dataPoints.some((p) => p.attributes.quantile === 0.99 && p.attributes.route === 'Chat/Stream'));
    assert.ok(ours.some((m) => m.descriptor.name === 'process.cpu'));
  } finally {
    await provider.shutdown();
    monitor.close();
  }
});

test('a counter never goes down between exports, and its start time stays', async () => {
  const { monitor } = setup();
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const r = reader(exporter, monitor);
  const provider = new MeterProvider({ readers: [r] });
  try {
    await r.forceFlush();
    monitor.series({ route: 'Chat/Stream' }).recordLatency(2);
    await r.forceFlush();
    const [first, second] = exporter
      .getMetrics()
      .map((rm) =>
        metric(rm.scopeMetrics.find((s) => s.scope.name === 'streamgauge')?.metrics ?? [], 'streamgauge.requests'),
      );
    const at = (m: MetricData) => m.dataPoints.find((p) => p.attributes.route === 'Chat/Stream');
    assert.is((at(second)?.value as number) - (at(first)?.value as number), 1);
    assert.equal(at(second)?.startTime, at(first)?.startTime);
  } finally {
    await provider.shutdown();
    monitor.close();
  }
});

test('values below the range are the zero count, values above it the first bucket above the range: the buckets add up to the count', async () => {
  const monitor = testMonitor({
    histogramRange: { minMs: 0.01, maxMs: 1000 },
  });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const r = reader(exporter, monitor);
  const provider = new MeterProvider({ readers: [r] });
  try {
    for (const ms of [0.001, 1, 1, 5000]) monitor.recordLatency(ms);
    await r.forceFlush();
    const ours = exporter.getMetrics()[0].scopeMetrics.find((s) => s.scope.name === 'streamgauge')?.metrics ?? [];
    const h = metric(ours, 'streamgauge.request.duration').dataPoints[0].value as ExponentialHistogram;
    assert.is(h.count, 4);
    assert.is(h.zeroCount, 1);
    assert.is(h.max, 5);
    const placed = h.positive.bucketCounts.reduce((a, b) => a + b, 0);
    assert.is(h.zeroCount + placed, h.count);
    // The last bucket holds the overflow and lies wholly above 1 s: its lower bound 2^(j·2^-scale) >= 1.
    const last = h.positive.offset + h.positive.bucketCounts.length - 1;
    assert.is(h.positive.bucketCounts[h.positive.bucketCounts.length - 1], 1);
    assert.ok(2 ** (last * 2 ** -h.scale) >= 1);
    assert.is(h.positive.bucketCounts.filter((c) => c > 0).length, 2);
  } finally {
    await provider.shutdown();
    monitor.close();
  }
});

test('HTTP requests go out under the semantic conventions: http.server.request.duration with http.request.method, http.route, http.response.status_code', async () => {
  const monitor = testMonitor();
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/missing' ? 404 : 200;
    res.end('ok');
  });
  instrumentHttpServer(monitor, server, { route: (req) => (req.url === '/missing' ? '/missing' : '/items/:id') });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const r = reader(exporter, monitor);
  const provider = new MeterProvider({ readers: [r] });
  try {
    const { port } = server.address() as AddressInfo;
    for (const path of ['/items/1', '/items/2', '/missing'])
      await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
    // The response is counted when it finishes on the server, which may be just after the client has it.
    await until('three requests counted', 5000, () => monitor.totals().requests === 3, 5);
    await r.forceFlush();
    const ours = exporter.getMetrics()[0].scopeMetrics.find((s) => s.scope.name === 'streamgauge')?.metrics ?? [];
    const duration = metric(ours, 'http.server.request.duration');
    assert.is(duration.descriptor.unit, 's');
    const ok = duration.dataPoints.find((p) => p.attributes['http.route'] === '/items/:id');
    assert.equal(ok?.attributes, {
      'http.request.method': 'GET',
      'http.route': '/items/:id',
      'http.response.status_code': '200',
    });
    assert.is((ok?.value as ExponentialHistogram | undefined)?.count, 2);
    const missing = duration.dataPoints.find((p) => p.attributes['http.route'] === '/missing');
    assert.is(missing?.attributes['http.response.status_code'], '404');
    assert.ok(ours.some((m) => m.descriptor.name === 'http.server.active_requests'));
  } finally {
    await provider.shutdown();
    monitor.close();
    server.close();
  }
});

test("a read that fails is a collection error: the SDK's own metrics still go out", async () => {
  const { monitor } = setup();
  const r = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
    metricProducers: [openTelemetryProducer(monitor)],
  });
  const provider = new MeterProvider({ readers: [r] });
  provider.getMeter('app').createCounter('app.jobs').add(1);
  monitor.seriesList = () => {
    throw new Error('damaged');
  };
  try {
    const { resourceMetrics, errors } = await r.collect();
    assert.equal(
      errors.map((e) => (e as Error).message),
      ['damaged'],
    );
    assert.equal(
      resourceMetrics.scopeMetrics.map((s) => s.scope.name),
      ['app'],
    );
  } finally {
    await provider.shutdown();
    monitor.close();
  }
});

test('bad options are refused, naming the option', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (monitor) => {
    assert.throws(() => openTelemetryProducer(monitor, { prefix: 3 as unknown as string }), /options\.prefix/);
    assert.throws(
      () => openTelemetryProducer(monitor, { rpcNames: 'x' as 'grpc' }),
      /options\.rpcNames must be 'grpc' or 'opentelemetry'/,
    );
    assert.throws(() => openTelemetryProducer(monitor, { runtime: 'yes' as unknown as boolean }), /options\.runtime/);
    assert.throws(
      () => openTelemetryProducer({} as StreamPerformanceMonitor),
      /monitor must be a StreamPerformanceMonitor/,
    );
  });
});

type Num = number | string; // OTLP/JSON may write 64-bit integers as strings
interface DecodedPoint {
  attributes: Array<{ key: string; value: { stringValue?: string; doubleValue?: number } }>;
  count?: Num;
  sum?: number;
  scale?: number;
  zeroCount?: Num;
  min?: number;
  max?: number;
  positive?: { offset?: number; bucketCounts?: Num[] };
  asInt?: Num;
  asDouble?: number;
}
interface DecodedMetric {
  name: string;
  unit?: string;
  exponentialHistogram?: { dataPoints: DecodedPoint[]; aggregationTemporality: number };
  sum?: { dataPoints: DecodedPoint[]; aggregationTemporality: number; isMonotonic: boolean };
  gauge?: { dataPoints: DecodedPoint[] };
}
interface DecodedRequest {
  resourceMetrics: Array<{
    resource: { attributes: DecodedPoint['attributes'] };
    scopeMetrics: Array<{ scope: { name: string }; metrics: DecodedMetric[] }>;
  }>;
}

// The OTLP request message as OpenTelemetry's protobuf definitions generate it.
const ExportMetricsServiceRequest = require('otlp-transformer-protobuf/build/src/generated/root.js').opentelemetry.proto
  .collector.metrics.v1.ExportMetricsServiceRequest;
const decodeProtobuf = (body: Uint8Array): DecodedRequest =>
  ExportMetricsServiceRequest.toObject(ExportMetricsServiceRequest.decode(body), { longs: Number, defaults: true });

/** Exports once through `exporter` and checks what the receiver decoded against the monitor. */
async function exportAndCompare(exporter: PushMetricExporter, received: DecodedRequest[]): Promise<void> {
  const { monitor, values } = setup();
  const r = reader(exporter, monitor);
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'chat' }), readers: [r] });
  try {
    await r.forceFlush();
    assert.is(received.length, 1);
    const [rm] = received[0].resourceMetrics;
    assert.ok(rm.resource.attributes.some((a) => a.key === 'service.name' && a.value.stringValue === 'chat'));
    const metrics = rm.scopeMetrics.find((s) => s.scope.name === 'streamgauge')?.metrics ?? [];
    const find = (name: string) => metrics.find((m) => m.name === name) as DecodedMetric;
    const route = (p: DecodedPoint) => p.attributes.find((a) => a.key === 'route')?.value.stringValue;
    const histogramOf = (p: DecodedPoint) => ({
      scale: p.scale as number,
      zeroCount: Number(p.zeroCount),
      count: Number(p.count),
      positive: { offset: p.positive?.offset ?? 0, bucketCounts: (p.positive?.bucketCounts ?? []).map(Number) },
    });

    const duration = find('streamgauge.request.duration');
    assert.is(duration.unit, 's');
    assert.is(duration.exponentialHistogram?.aggregationTemporality, 2); // AGGREGATION_TEMPORALITY_CUMULATIVE
    for (const name of ROUTES) {
      const p = duration.exponentialHistogram?.dataPoints.find((x) => route(x) === name) as DecodedPoint;
      const series = monitor.series({ route: name });
      const native = monitor.nativeHistogram(series);
      const totals = internalsOf(monitor).readSeries(series).totals;
      const recorded = (values.get(name) as number[]).map((ms) => ms / 1000);
      const h = histogramOf(p);
      assert.is(h.count, native.count);
      assert.is(h.count, recorded.length);
      assert.is(p.sum, native.sum);
      assert.is(h.scale, SCALE);
      assert.is(h.zeroCount, native.zeroCount);
      assert.ok(close(p.min as number, totals.latencyMinMs / 1000));
      assert.ok(close(p.max as number, totals.latencyMaxMs / 1000));
      const { offset, bucketCounts } = h.positive;
      for (const b of native.buckets) assert.is(bucketCounts[b.index - 1 - offset], b.count);
      assert.is(
        bucketCounts.reduce((a, b) => a + b, 0),
        native.count,
      );
      const sorted = [...recorded].sort((a, b) => a - b);
      for (const q of [0.5, 0.99]) {
        const fromOtlp = quantileOf(h, q);
        assert.ok(
          Math.abs(fromOtlp / exactQuantile(sorted, q) - 1) <= relativeErrorBound(SCALE) + 1e-12,
          `p${q * 100} of ${name}`,
        );
      }
    }
    // The service's histogram (both routes merged): its quantiles, read from the exported buckets
    // as the monitor reads its own (log-midpoint, clamped to min and max), are the summary's.
    const [service] = find('streamgauge.service.request.duration').exponentialHistogram?.dataPoints ?? [];
    const merged = histogramOf(service);
    const summary = monitor.getPerformanceSummary();
    for (const [q, ms] of [
      [0.5, summary.p50LatencyMs],
      [0.95, summary.p95LatencyMs],
      [0.99, summary.p99LatencyMs],
    ]) {
      const fromOtlp = Math.min(Math.max(quantileOf(merged, q), service.min as number), service.max as number);
      assert.ok(
        Math.abs(fromOtlp / (ms / 1000) - 1) < 1e-9,
        `service p${q * 100}: ${fromOtlp} vs the summary's ${ms / 1000}`,
      );
    }
    const requests = find('streamgauge.requests');
    assert.is(requests.sum?.isMonotonic, true);
    assert.is(requests.sum?.aggregationTemporality, 2);
    for (const name of ROUTES) {
      assert.is(
        Number(requests.sum?.dataPoints.find((x) => route(x) === name)?.asInt),
        monitor.totals(monitor.series({ route: name })).requests,
      );
    }
    assert.is(find('streamgauge.cache.hit').gauge?.dataPoints.find((x) => route(x) === 'Chat/Stream')?.asDouble, 0.5);
  } finally {
    await provider.shutdown();
    monitor.close();
  }
}

/** An OTLP/HTTP receiver on 127.0.0.1 that decodes each request by its content type. */
async function httpReceiver(received: DecodedRequest[]): Promise<{ url: string; close(): void }> {
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const type = req.headers['content-type'];
    if (req.url !== '/v1/metrics') {
      res.writeHead(404).end();
    } else if (type === 'application/x-protobuf') {
      received.push(decodeProtobuf(body));
      res.writeHead(200, { 'content-type': type }).end();
    } else if (type === 'application/json') {
      received.push(JSON.parse(body.toString('utf8')));
      res.writeHead(200, { 'content-type': type }).end('{}');
    } else {
      res.writeHead(415).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/metrics`, close: () => server.close() };
}

test('through the OTLP/HTTP protobuf exporter to a receiver on 127.0.0.1: counts, sums and quantiles as the monitor has them', async () => {
  const received: DecodedRequest[] = [];
  const receiver = await httpReceiver(received);
  try {
    await exportAndCompare(new OTLPMetricExporter({ url: receiver.url }), received);
  } finally {
    receiver.close();
  }
});

test('through the OTLP/HTTP JSON exporter: the same', async () => {
  const received: DecodedRequest[] = [];
  const receiver = await httpReceiver(received);
  try {
    await exportAndCompare(new OTLPJsonMetricExporter({ url: receiver.url }), received);
  } finally {
    receiver.close();
  }
});

test('through the OTLP/gRPC exporter to a MetricsService on 127.0.0.1: the same', async () => {
  const received: DecodedRequest[] = [];
  const server = new grpc.Server();
  // The service by its path, on raw bytes: the request is decoded with the OTLP definitions above.
  const raw = (b: Buffer) => b;
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
        requestStream: false,
        responseStream: false,
        requestDeserialize: raw,
        requestSerialize: raw,
        responseSerialize: () => Buffer.alloc(0), // an empty ExportMetricsServiceResponse
        responseDeserialize: raw,
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        received.push(decodeProtobuf(call.request));
        callback(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  try {
    await exportAndCompare(new OTLPGrpcMetricExporter({ url: `http://127.0.0.1:${port}` }), received);
  } finally {
    server.forceShutdown();
  }
});

test.run();
