// Exemplars: a latency linked to its trace, given explicitly or taken from the active OpenTelemetry
// span; written as OpenMetrics exemplars on the classic buckets and, in protobuf, on the classic
// Bucket messages and the native histogram; refused when the ids are malformed; kept within a
// bound per series; carried by the gRPC and HTTP integrations.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { render } from '../src/export/exposition.js';
import {
  grpcClientInterceptor,
  grpcServerInterceptor,
  instrumentHttpServer,
  type MetricFamily,
  type StreamPerformanceMonitor,
} from '../src/index.js';
import { type Decoded, decodeProtobuf, labelsOf } from './fixtures/expo-helpers.js';
import { EchoClient, startServer } from './fixtures/grpc-echo.js';
import { inSpan } from './fixtures/otel-context.js';
import { within } from './fixtures/wait.js';
import { testMonitor } from './fixtures/monitor.js';

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0';
const PROTOBUF = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited';
const A = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
const B = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
const C = { traceId: 'a3ce929d0e0e47364bf92f3577b34da6', spanId: '0ba902b700f067aa' };

interface ExemplarLine {
  sample: string;
  le: string;
  traceId: string;
  spanId: string;
  value: number;
  timestampSeconds: number;
}

/** The bucket lines of `family` that carry an exemplar, parsed. */
function exemplarLines(text: string, family: string): ExemplarLine[] {
  const out: ExemplarLine[] = [];
  const re = /^(\S+)_bucket\{(.*)le="([^"]+)"\} \d+ # \{trace_id="([0-9a-f]+)",span_id="([0-9a-f]+)"\} (\S+) (\S+)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m === null || m[1] !== family) continue;
    out.push({
      sample: `${m[1]}{${m[2]}}`,
      le: m[3],
      traceId: m[4],
      spanId: m[5],
      value: Number(m[6]),
      timestampSeconds: Number(m[7]),
    });
  }
  return out;
}

/** A classic bound as configured (0.0025), from the native boundary it was snapped to (0.0025056…). */
function configured(le: string): string {
  return le === '+Inf' ? le : String(Number(Number(le).toPrecision(2)));
}

function openMetrics(monitor: StreamPerformanceMonitor): string {
  return monitor.metrics(OPENMETRICS).body as string;
}

test('an exemplar is written after the classic bucket its value falls in, with its value in seconds and its timestamp', () => {
  let now = 1_700_000_000_000;
  const monitor = testMonitor({ clock: { now: () => now } });
  const api = monitor.series({ route: 'api' });
  for (let i = 0; i < 20; i++) api.recordLatency(3);
  api.recordLatencyWithExemplar(180, A); // 0.1 s < 0.18 s <= 0.25 s
  now += 1500;
  api.recordLatencyWithExemplar(90_000, B); // above the last bound (60 s): the +Inf bucket
  const lines = exemplarLines(openMetrics(monitor), 'streamgauge_request_duration_seconds');
  assert.equal(
    lines.map(({ le, traceId, spanId, value, timestampSeconds }) => ({ le, traceId, spanId, value, timestampSeconds })),
    [
      { le: '0.25', traceId: A.traceId, spanId: A.spanId, value: 0.18, timestampSeconds: 1_700_000_000 },
      { le: '+Inf', traceId: B.traceId, spanId: B.spanId, value: 90, timestampSeconds: 1_700_000_001.5 },
    ],
  );
  assert.ok(lines.every((l) => l.sample.includes('route="api"')));
  // Text format 0.0.4 has no exemplars.
  assert.not.match(monitor.metrics('text/plain; version=0.0.4').body as string, 'trace_id');
  monitor.close();
});

test('the merged service histogram shows the latest exemplar of each range over all series', () => {
  let now = 1_000_000;
  const monitor = testMonitor({ clock: { now: () => now } });
  monitor.series({ route: 'a' }).recordLatencyWithExemplar(180, A);
  now += 10;
  monitor.series({ route: 'b' }).recordLatencyWithExemplar(190, B); // same power of two as 180 ms, later
  now += 10;
  monitor.series({ route: 'b' }).recordLatencyWithExemplar(2, C);
  const text = openMetrics(monitor);
  const service = exemplarLines(text, 'streamgauge_service_request_duration_seconds');
  assert.equal(
    service.map((l) => [configured(l.le), l.traceId]),
    [
      ['0.0025', C.traceId],
      ['0.25', B.traceId],
    ],
  );
  // Each series keeps its own.
  const perSeries = exemplarLines(text, 'streamgauge_request_duration_seconds').map((l) => [l.sample, l.traceId]);
  assert.equal(perSeries, [
    ['streamgauge_request_duration_seconds{route="a",}', A.traceId],
    ['streamgauge_request_duration_seconds{route="b",}', C.traceId],
    ['streamgauge_request_duration_seconds{route="b",}', B.traceId],
  ]);
  monitor.close();
});

test('protobuf: the exemplar on its classic Bucket and every exemplar on the native histogram, with timestamps', () => {
  const monitor = testMonitor({ clock: { now: () => 1_700_000_000_250 } });
  const api = monitor.series({ route: 'api' });
  api.recordLatency(1);
  api.recordLatencyWithExemplar(180, A);
  api.recordLatencyWithExemplar(90_000, B);
  const families = decodeProtobuf(monitor.metrics(PROTOBUF).body as Uint8Array);
  const family = families.find((f: Decoded) => f.name === 'streamgauge_request_duration_seconds');
  const metric = family.metric.find((m: Decoded) => labelsOf(m).route === 'api');
  const h = metric.histogram;
  const withExemplar = h.bucket.filter((b: Decoded) => b.exemplar);
  assert.equal(
    withExemplar.map((b: Decoded) => ({
      le: b.upperBound,
      count: Number(b.cumulativeCount),
      trace: labelsOf(b.exemplar).trace_id,
      value: b.exemplar.value,
    })),
    [
      { le: 0.25, count: 2, trace: A.traceId, value: 0.18 },
      // Written only to carry its exemplar: +Inf, the whole count.
      { le: Infinity, count: 3, trace: B.traceId, value: 90 },
    ],
  );
  assert.equal(
    h.exemplars.map((e: Decoded) => ({
      ...labelsOf(e),
      value: e.value,
      seconds: Number(e.timestamp.seconds),
      nanos: e.timestamp.nanos,
    })),
    [
      { trace_id: A.traceId, span_id: A.spanId, value: 0.18, seconds: 1_700_000_000, nanos: 250_000_000 },
      { trace_id: B.traceId, span_id: B.spanId, value: 90, seconds: 1_700_000_000, nanos: 250_000_000 },
    ],
  );
  // A histogram without exemplars keeps the plain form: no +Inf bucket, no exemplars field.
  const plain = family.metric.find((m: Decoded) => labelsOf(m).route === undefined);
  assert.is((plain.histogram.exemplars ?? []).length, 0);
  assert.ok(plain.histogram.bucket.every((b: Decoded) => b.upperBound !== Infinity && !b.exemplar));
  monitor.close();
});

test('malformed ids are refused with a TypeError naming the argument, and nothing is recorded', () => {
  const monitor = testMonitor();
  const bad: Array<[unknown, RegExp]> = [
    [{ traceId: 'abc', spanId: A.spanId }, /^exemplar\.traceId must be 32 lowercase hex digits/],
    [{ traceId: A.traceId.toUpperCase(), spanId: A.spanId }, /^exemplar\.traceId/],
    [{ traceId: '0'.repeat(32), spanId: A.spanId }, /^exemplar\.traceId .*not all zero/],
    [{ traceId: `${A.traceId}00`, spanId: A.spanId }, /^exemplar\.traceId/],
    [{ traceId: A.traceId, spanId: 'b7ad6b716920333' }, /^exemplar\.spanId must be 16 lowercase hex digits/],
    [{ traceId: A.traceId, spanId: 'g7ad6b7169203331' }, /^exemplar\.spanId/],
    [{ traceId: A.traceId, spanId: '0000000000000000' }, /^exemplar\.spanId/],
    [{ traceId: A.traceId }, /^exemplar\.spanId/],
    ['0af7651916cd43dd8448eb211c80319c', /^exemplar must be an object/],
    [null, /^exemplar must be an object/],
  ];
  for (const [exemplar, message] of bad) {
    assert.throws(
      () => monitor.recordLatencyWithExemplar(5, exemplar as typeof A),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      JSON.stringify(exemplar),
    );
    assert.throws(
      () => monitor.series({ route: 'x' }).recordErrorWithExemplar('timeout', 5, exemplar as typeof A),
      (e: Error) => e instanceof TypeError && message.test(e.message),
    );
  }
  assert.is(monitor.totals().latencyCount, 0);
  assert.is(monitor.totals().errors, 0);
  // A bad latency with good ids: the usual RangeError, and no exemplar kept.
  assert.throws(
    () => monitor.recordLatencyWithExemplar(-1, A),
    (e: Error) => e instanceof RangeError && /^ms must be/.test(e.message),
  );
  assert.not.match(openMetrics(monitor), 'trace_id');
  monitor.close();

  // With invalidValues 'count', a refused call is counted as invalid instead.
  const counting = testMonitor({ invalidValues: 'count' });
  counting.recordLatencyWithExemplar(5, { traceId: 'nope', spanId: A.spanId });
  assert.is(counting.totals().invalid, 1);
  assert.is(counting.totals().latencyCount, 0);
  counting.close();
});

test('render(): exemplars given in the model are checked before anything is written', () => {
  const family = (exemplars: unknown): MetricFamily[] => [
    {
      name: 'lookup_duration_seconds',
      help: 'Lookups.',
      type: 'histogram',
      metrics: [
        {
          labels: {},
          histogram: {
            count: 1,
            sum: 0.1,
            schema: 3,
            zeroThreshold: 0,
            zeroCount: 0,
            buckets: [{ index: -26, count: 1 }],
            overflowCount: 0,
            exemplars,
          } as MetricFamily['metrics'][0]['histogram'],
        },
      ],
    },
  ];
  const ok = render(family([{ labels: { trace_id: A.traceId }, value: 0.1 }]), { accept: OPENMETRICS, prefix: '' })
    .body as string;
  assert.match(ok, `lookup_duration_seconds_bucket{le="0.25"} 1 # {trace_id="${A.traceId}"} 0.1\n`);
  const at = 'families[0].metrics[0].histogram.exemplars[0]';
  for (const accept of [OPENMETRICS, PROTOBUF]) {
    assert.throws(
      () => render(family([{ labels: {}, value: 'slow' }]), { accept }),
      (e: Error) => e instanceof TypeError && e.message === `${at}.value must be a number`,
    );
    assert.throws(
      () => render(family([{ labels: { trace_id: 7 }, value: 1 }]), { accept }),
      (e: Error) => e instanceof TypeError && e.message === `${at}.labels.trace_id must be a string`,
    );
    assert.throws(
      () => render(family([{ labels: { note: 'x'.repeat(130) }, value: 1 }]), { accept }),
      (e: Error) =>
        e instanceof RangeError &&
        e.message.startsWith(`${at}.labels: names and values together must be at most 128 characters`),
    );
    assert.throws(
      () => render(family([{ labels: {}, value: 1, timestampMs: 1.5 }]), { accept }),
      (e: Error) =>
        e instanceof RangeError && e.message === `${at}.timestampMs must be an integer number of milliseconds`,
    );
  }
});

test('a failed request keeps its exemplar too', () => {
  const monitor = testMonitor();
  monitor.series({ route: 'pay' }).recordErrorWithExemplar('timeout', 1200, A);
  assert.is(monitor.totals().errors, 1);
  const lines = exemplarLines(openMetrics(monitor), 'streamgauge_request_duration_seconds');
  assert.equal(
    lines.map((l) => [configured(l.le), l.traceId, l.value]),
    [['2.5', A.traceId, 1.2]],
  );
  monitor.close();
});

test('retention: the latest exemplar per power of two of the value, at most 44 per series with the default range', () => {
  let now = 0;
  const monitor = testMonitor({ clock: { now: () => now } });
  const s = monitor.series({ route: 'churn' });
  // 20,000 records spread over the whole accepted range (0 .. 1e10 ms), each with its own ids.
  const ids = (i: number) => ({
    traceId: (i + 1).toString(16).padStart(32, '0'),
    spanId: (i + 1).toString(16).padStart(16, '0'),
  });
  for (let i = 0; i < 20_000; i++) {
    now++;
    const ms = i % 100 === 0 ? 0 : 10 ** (-4 + (14 * ((i * 7919) % 20_000)) / 20_000);
    s.recordLatencyWithExemplar(ms, ids(i));
  }
  const h = monitor.nativeHistogram(s);
  const kept = h.exemplars ?? [];
  // Every power of two from 2^-10 ms (the bottom slot, zeros included) to 2^33 ms: 44, the bound.
  assert.is(kept.length, 44);
  // One per power of two (values at or below the range's bottom, 1 µs, share one), the latest of each.
  const slot = (seconds: number) => Math.max(Math.floor(Math.log2(seconds * 1000)), Math.floor(Math.log2(0.001)));
  const slots = kept.map((e) => slot(e.value));
  assert.is(new Set(slots).size, kept.length);
  assert.ok(
    kept.every((e) => (e.timestampMs ?? 0) > 20_000 - 2000),
    'each slot holds one of the latest records',
  );

  // Same range again: replaced, not added.
  s.recordLatencyWithExemplar(3, A);
  s.recordLatencyWithExemplar(3.5, B);
  const again = monitor.nativeHistogram(s).exemplars ?? [];
  assert.is(again.length, kept.length);
  assert.equal(
    again
      .filter((e) => e.labels.trace_id === A.traceId || e.labels.trace_id === B.traceId)
      .map((e) => e.labels.trace_id),
    [B.traceId],
  );
  monitor.close();
});

test('without ids: the active sampled OpenTelemetry span, if any', () => {
  const monitor = testMonitor();
  const s = monitor.series({ route: 'otel' });
  inSpan(A.traceId, A.spanId, () => s.recordLatencyWithExemplar(40));
  inSpan(B.traceId, B.spanId, () => s.recordLatencyWithExemplar(400), false); // not sampled: no trace to link to
  s.recordLatencyWithExemplar(4000); // no span active
  assert.is(monitor.totals(s).latencyCount, 3, 'every call recorded its latency');
  const lines = exemplarLines(openMetrics(monitor), 'streamgauge_request_duration_seconds');
  assert.equal(
    lines.map((l) => [l.traceId, l.spanId, l.value]),
    [[A.traceId, A.spanId, 0.04]],
  );
  monitor.close();
});

test('a recorder attached in a worker thread records the latency but keeps no exemplar (exemplars live in the monitor thread)', async () => {
  const monitor = testMonitor();
  const worker = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: {
      entry: new URL('./fixtures/exemplar-worker.ts', import.meta.url).href,
      handle: monitor.handle(),
      ...A,
    },
  });
  const refused = await within(
    new Promise<string>((resolve, reject) => worker.once('message', resolve).once('error', reject)),
    30_000,
    'the worker',
  );
  await worker.terminate();
  assert.match(refused, /^TypeError: exemplar\.traceId must be 32 lowercase hex digits/);
  assert.is(monitor.totals().latencyCount, 1);
  assert.not.match(openMetrics(monitor), 'trace_id');
  // The same call in the monitor's thread keeps it.
  monitor.series({ route: 'w' }).recordLatencyWithExemplar(50, A);
  assert.match(openMetrics(monitor), `trace_id="${A.traceId}"`);
  monitor.close();
});

test('gRPC: the server records each call with the span active when it answered; the client with the caller span', async () => {
  const monitor = testMonitor();
  const { server, port } = await startServer(
    {
      Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        // The handler runs in its span (as OpenTelemetry's gRPC instrumentation arranges).
        inSpan(A.traceId, A.spanId, () => callback(null, call.request));
      },
    },
    { interceptors: [grpcServerInterceptor(monitor)] },
  );
  const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    interceptors: [grpcClientInterceptor(monitor)],
  });
  try {
    await inSpan(B.traceId, B.spanId, () =>
      within(
        new Promise<void>((resolve, reject) => {
          (client as unknown as { Unary: (b: Buffer, cb: (err: Error | null) => void) => void }).Unary(
            Buffer.from('hi'),
            (err) => (err ? reject(err) : resolve()),
          );
        }),
        10_000,
        'the unary call',
      ),
    );
  } finally {
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
  const text = openMetrics(monitor);
  const serverSide = exemplarLines(text, 'grpc_server_handling_seconds');
  assert.is(
    serverSide.length,
    1,
    text
      .split('\n')
      .filter((l) => l.includes('trace_id'))
      .join('\n'),
  );
  assert.equal([serverSide[0].traceId, serverSide[0].spanId], [A.traceId, A.spanId]);
  assert.match(serverSide[0].sample, 'grpc_method="Unary"');
  const clientSide = exemplarLines(text, 'grpc_client_handling_seconds');
  assert.equal(
    clientSide.map((l) => l.traceId),
    [B.traceId],
  );
  monitor.close();
});

test('gRPC and HTTP: exemplars: false records plain latencies', async () => {
  const monitor = testMonitor();
  const server = http.createServer((_req, res) => inSpan(A.traceId, A.spanId, () => res.end('ok')));
  instrumentHttpServer(monitor, server, { exemplars: false, route: () => '/x' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await get((server.address() as AddressInfo).port, '/x');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  assert.is(monitor.totals().requests, 1);
  assert.not.match(openMetrics(monitor), 'trace_id');
  assert.throws(
    () => grpcServerInterceptor(monitor, { exemplars: 'yes' as unknown as boolean }),
    (e: Error) => e instanceof TypeError && e.message === 'options.exemplars must be a boolean',
  );
  monitor.close();
});

test('HTTP: each request is linked to the span active when its response ended', async () => {
  const monitor = testMonitor();
  const server = http.createServer((req, res) => {
    const ids = req.url === '/slow' ? A : B;
    setTimeout(() => inSpan(ids.traceId, ids.spanId, () => res.end('ok')), req.url === '/slow' ? 30 : 0);
  });
  instrumentHttpServer(monitor, server, { route: (req) => req.url });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    await get(port, '/slow');
    await get(port, '/fast');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  const lines = exemplarLines(openMetrics(monitor), 'http_server_request_duration_seconds');
  const byRoute = Object.fromEntries(lines.map((l) => [/http_route="([^"]+)"/.exec(l.sample)?.[1], l.traceId]));
  assert.equal(byRoute, { '/slow': A.traceId, '/fast': B.traceId });
  const slow = lines.find((l) => l.sample.includes('/slow'));
  // Its value is the slow request's own duration. A 30 ms timer may fire up to a millisecond early
  // by the high-resolution clock (libuv counts in whole milliseconds of its cached loop time), and
  // is never bounded above on a loaded host: only a lower bound with that margin holds.
  assert.ok(slow !== undefined && slow.value >= 0.028, `the slow request took about 30 ms at least: ${slow?.value}`);
  monitor.close();
});

function get(port: number, path: string): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    }),
    10_000,
    `GET ${path}`,
  );
}

test.run();
