// The gRPC interceptors against a real grpc-js server and client on 127.0.0.1: all four call
// kinds, a failing call, a cancelled call, a passed deadline, and a slow client that makes the
// server's call.write() return false.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  GRPC_KINDS,
  grpcClientInterceptor,
  grpcServerInterceptor,
  instrumentServerCall,
  splitMethodPath,
  statusName,
} from '../src/integrations/grpc.js';
import { dashboardSource, type StreamPerformanceMonitor } from '../src/index.js';
import type { Totals } from '../src/time/totals.js';
import { decodeProtobuf, labelsOf, parseExposition, pick, promtool, sampleValue } from './fixtures/expo-helpers.js';
import { EchoClient, METHOD_LABELS, PATHS, startServer } from './fixtures/grpc-echo.js';
import { handClock, seriesIndex, testMonitor, withMonitor } from './fixtures/monitor.js';
import { until, within } from './fixtures/wait.js';

// biome-ignore lint/suspicious/noExplicitAny: grpc-js generic clients and call objects are untyped
type Any = any;

const payload = (i: number, size: number) => Buffer.alloc(size, i % 251);

type Method = keyof typeof METHOD_LABELS;
/** A method's server calls (started, in flight, messages, sessions, backpressure). */
const calls = (monitor: StreamPerformanceMonitor, m: Method): Totals =>
  monitor.totals(seriesIndex(monitor, METHOD_LABELS[m], GRPC_KINDS.server));
/** A method's server calls that ended with status `code`, and their durations. */
const handledIndex = (
  monitor: StreamPerformanceMonitor,
  m: Method,
  code = 'OK',
  kind: string = GRPC_KINDS.serverHandled,
): number => seriesIndex(monitor, { ...METHOD_LABELS[m], grpc_code: code }, kind);
const handled = (monitor: StreamPerformanceMonitor, m: Method, code = 'OK'): Totals =>
  monitor.totals(handledIndex(monitor, m, code));
const clientCalls = (monitor: StreamPerformanceMonitor, m: Method): Totals =>
  monitor.totals(seriesIndex(monitor, METHOD_LABELS[m], GRPC_KINDS.client));
const clientHandledIndex = (monitor: StreamPerformanceMonitor, m: Method, code = 'OK'): number =>
  handledIndex(monitor, m, code, GRPC_KINDS.clientHandled);
const stage = (monitor: StreamPerformanceMonitor, m: Method, kind: string): Totals =>
  monitor.totals(seriesIndex(monitor, METHOD_LABELS[m], kind));
const hasKind = (monitor: StreamPerformanceMonitor, kind: string) => monitor.seriesList().some((x) => x.kind === kind);

/** A bidi call of `n` messages of `size` bytes, each sent once the one before has been echoed; resolves with the echoes. */
function bidiEcho(client: Any, n: number, size: number): Promise<Buffer[]> {
  const echoed: Buffer[] = [];
  return within(
    new Promise<Buffer[]>((res, rej) => {
      const call = client.Bidi();
      call.on('data', (m: Buffer) => {
        echoed.push(m);
        if (echoed.length < n) call.write(payload(echoed.length, size));
        else call.end();
      });
      call.on('error', rej);
      call.on('end', () => res(echoed));
      call.write(payload(0, size));
    }),
    5000,
    'bidi',
  );
}

async function withService(
  monitor: StreamPerformanceMonitor,
  impl: grpc.UntypedServiceImplementation,
  serverOptions: Parameters<typeof grpcServerInterceptor>[1],
  fn: (client: Any, interceptor: ReturnType<typeof grpcServerInterceptor>) => Promise<void>,
): Promise<void> {
  const interceptor = grpcServerInterceptor(monitor, serverOptions);
  const { server, port } = await startServer(impl, { interceptors: [interceptor] });
  const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    interceptors: [grpcClientInterceptor(monitor)],
  }) as Any;
  try {
    await fn(client, interceptor);
  } finally {
    client.close();
    server.forceShutdown();
  }
}

const echoImpl: grpc.UntypedServiceImplementation = {
  Unary: (call: Any, cb: Any) => cb(null, call.request),
  ServerStream: (call: Any) => {
    const n = call.request.readUInt8(0);
    for (let i = 0; i < n; i++) call.write(payload(i, 10));
    call.end();
  },
  ClientStream: (call: Any, cb: Any) => {
    let total = 0;
    call.on('data', (m: Buffer) => {
      total += m.length;
    });
    call.on('end', () => cb(null, Buffer.from(String(total))));
  },
  Bidi: (call: Any) => {
    call.on('data', (m: Buffer) => call.write(m));
    call.on('end', () => call.end());
  },
};

test('all four call kinds, per method: calls, durations, messages and bytes both ways, sessions, first response, echo latency', async () => {
  await withMonitor({ autoStart: false, maxSeries: 64 }, async (monitor) => {
    await withService(monitor, echoImpl, { echoLatency: [PATHS.bidi] }, async (client) => {
      const reply = await within(
        new Promise<Buffer>((res, rej) =>
          client.Unary(payload(1, 100), (e: Error | null, r: Buffer) => (e ? rej(e) : res(r))),
        ),
        5000,
        'unary',
      );
      assert.is(reply.length, 100);

      const streamed: Buffer[] = [];
      await within(
        new Promise<void>((res, rej) => {
          const call = client.ServerStream(Buffer.from([7]));
          call.on('data', (m: Buffer) => streamed.push(m));
          call.on('error', rej);
          call.on('end', res);
        }),
        5000,
        'server stream',
      );
      assert.is(streamed.length, 7);

      const sum = await within(
        new Promise<Buffer>((res, rej) => {
          const call = client.ClientStream((e: Error | null, r: Buffer) => (e ? rej(e) : res(r)));
          for (let i = 0; i < 5; i++) call.write(payload(i, 20));
          call.end();
        }),
        5000,
        'client stream',
      );
      assert.is(sum.toString(), '100');

      const echoed = await bidiEcho(client, 9, 30);
      assert.is(echoed.length, 9);
    });

    const expect: Record<Method, { in: number; out: number; bytesIn: number; bytesOut: number }> = {
      unary: { in: 1, out: 1, bytesIn: 100, bytesOut: 100 },
      serverStream: { in: 1, out: 7, bytesIn: 1, bytesOut: 70 },
      clientStream: { in: 5, out: 1, bytesIn: 100, bytesOut: 3 },
      bidi: { in: 9, out: 9, bytesIn: 270, bytesOut: 270 },
    };
    const text = parseExposition(monitor.metrics().body as string);
    for (const [m, e] of Object.entries(expect) as [Method, (typeof expect)[Method]][]) {
      const c = calls(monitor, m);
      const h = handled(monitor, m);
      assert.is(h.requests, 1, `${m}: one call finished`);
      assert.is(h.successes, 1, `${m}: OK`);
      assert.is(c.requests, 0, `${m}: the calls series holds no requests (they are in the handled series)`);
      assert.is(c.connectionsOpened, 1, `${m}: one call started`);
      assert.is(c.activeConnections, 0, `${m}: no call active`);
      assert.is(c.sessions, 1, `${m}: one session`);
      assert.is(c.sessionMessages, e.in + e.out, `${m}: session messages (both directions)`);
      assert.is(c.messagesIn, e.in, `${m}: messages in`);
      assert.is(c.messagesOut, e.out, `${m}: messages out`);
      assert.is(c.bytesIn, e.bytesIn, `${m}: bytes in`);
      assert.is(c.bytesOut, e.bytesOut, `${m}: bytes out`);
      assert.ok(h.latencyMinMs > 0, `${m}: call duration recorded`);
      const first = stage(monitor, m, GRPC_KINDS.firstResponse);
      assert.is(first.requests, 1, `${m}: time to first response`);
      assert.ok(first.latencyMaxMs <= h.latencyMaxMs, `${m}: first response within the call`);
      // The client sees the mirror image.
      const cc = clientCalls(monitor, m);
      const ch = monitor.totals(clientHandledIndex(monitor, m));
      assert.is(ch.requests, 1, `${m}: client call`);
      assert.is(ch.successes, 1);
      assert.is(cc.activeConnections, 0);
      assert.is(cc.messagesOut, e.in, `${m}: client messages out`);
      assert.is(cc.messagesIn, e.out, `${m}: client messages in`);
      assert.is(cc.bytesOut, e.bytesIn);
      assert.is(cc.bytesIn, e.bytesOut);

      // The exposition, in grpc-ecosystem's shape.
      const labels = METHOD_LABELS[m];
      const ok = { ...labels, grpc_code: 'OK' };
      for (const side of ['server', 'client']) {
        assert.is(sampleValue(text, `grpc_${side}_started_total`, labels), 1, `${side} ${m}: started`);
        assert.is(sampleValue(text, `grpc_${side}_handled_total`, ok), 1, `${side} ${m}: handled OK`);
        assert.is(sampleValue(text, `grpc_${side}_handling_seconds_count`, ok), 1, `${side} ${m}: duration by code`);
        assert.is(sampleValue(text, `grpc_${side}_handling_seconds_bucket`, { ...ok, le: '+Inf' }), 1);
        assert.is(sampleValue(text, `streamgauge_grpc_${side}_in_flight`, labels), 0);
      }
      assert.is(sampleValue(text, 'grpc_server_msg_received_total', labels), e.in, `${m}: server messages received`);
      assert.is(sampleValue(text, 'grpc_server_msg_sent_total', labels), e.out, `${m}: server messages sent`);
      assert.is(sampleValue(text, 'grpc_client_msg_received_total', labels), e.out, `${m}: client messages received`);
      assert.is(sampleValue(text, 'grpc_client_msg_sent_total', labels), e.in, `${m}: client messages sent`);
      assert.is(sampleValue(text, 'streamgauge_grpc_server_msg_received_bytes_total', labels), e.bytesIn);
      assert.is(sampleValue(text, 'streamgauge_grpc_server_msg_sent_bytes_total', labels), e.bytesOut);
      assert.is(sampleValue(text, 'streamgauge_grpc_server_first_response_seconds_count', labels), 1);
    }
    const perMessage = stage(monitor, 'bidi', GRPC_KINDS.message);
    assert.is(perMessage.requests, 9, 'one echo latency per message');
    assert.ok(perMessage.latencyMaxMs <= handled(monitor, 'bidi').latencyMaxMs);
    assert.is(sampleValue(text, 'streamgauge_grpc_server_msg_latency_seconds_count', METHOD_LABELS.bidi), 9);
    assert.equal(monitor.errorsByType(), {});

    // No family mixes server calls, client calls and stages: each holds one kind of series.
    for (const name of [
      'grpc_server_started_total',
      'grpc_server_handled_total',
      'grpc_client_handled_total',
      'streamgauge_grpc_server_first_response_seconds_count',
    ]) {
      assert.is(pick(text, name).length, 4, `${name}: one sample per method`);
    }
    assert.is(text.types.get('grpc_server_handled_total'), 'counter');
    assert.is(text.types.get('grpc_server_handling_seconds'), 'histogram');
    assert.equal(
      pick(text, 'streamgauge_requests_total'),
      [{ name: 'streamgauge_requests_total', labels: {}, value: 0 }],
      'the generic families hold no gRPC series',
    );
    for (const sample of text.samples)
      assert.not.ok('stage' in sample.labels || 'side' in sample.labels, `${sample.name}: no stage/side labels`);
    // The summary counts each server call once (client calls are the service's dependencies).
    assert.is(monitor.getCurrentMetrics().totalRequests, 4);
    assert.is(sampleValue(text, 'streamgauge_service_requests_total', {}), 4, 'the summary family too');
    // The dashboard's series table tells a call series from its stages (they share their labels).
    const rows = dashboardSource(monitor)
      .current()
      .series.filter((r) => r.labels.grpc_method === 'Bidi' && r.labels.grpc_code === undefined);
    assert.equal(rows.map((r) => r.labels.kind).sort(), [GRPC_KINDS.firstResponse, GRPC_KINDS.message]);
    assert.is(sampleValue(text, 'streamgauge_service_request_duration_seconds_count', {}), 4);
    assert.is(monitor.getCurrentMetrics().activeConnections, 0);
    const lint = promtool(monitor.metrics().body as string);
    assert.is(lint.status, 0, lint.output);

    // Protobuf: the duration histograms are native histograms too.
    const families = decodeProtobuf(
      monitor.metrics('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited')
        .body as Uint8Array,
    );
    const handling = families.find((f) => f.name === 'grpc_server_handling_seconds');
    assert.ok(handling, 'grpc_server_handling_seconds in protobuf');
    assert.is(handling.metric.length, 4);
    for (const metric of handling.metric) {
      assert.is(labelsOf(metric).grpc_code, 'OK');
      assert.is(metric.histogram.sampleCount, 1);
      assert.is(metric.histogram.schema, monitor.config.scale);
    }

    // OpenTelemetry's RPC names on request.
    const otel = parseExposition(monitor.metrics(undefined, { rpcNames: 'opentelemetry' }).body as string);
    assert.is(pick(otel, 'grpc_server_handled_total').length, 0);
    assert.is(
      sampleValue(otel, 'rpc_server_call_duration_seconds_count', {
        rpc_system_name: 'grpc',
        rpc_method: 'streamgauge.test.Echo/Unary',
        rpc_response_status_code: 'OK',
      }),
      1,
    );
    assert.is(
      sampleValue(otel, 'rpc_client_call_duration_seconds_count', {
        rpc_system_name: 'grpc',
        rpc_method: 'streamgauge.test.Echo/Bidi',
        rpc_response_status_code: 'OK',
      }),
      1,
    );
    assert.is(
      sampleValue(otel, 'streamgauge_rpc_server_msg_received_total', {
        rpc_system_name: 'grpc',
        rpc_method: 'streamgauge.test.Echo/Bidi',
      }),
      9,
    );
  });
});

test('a method path splits into grpc_service and grpc_method, without the slash', () => {
  assert.equal(splitMethodPath('/pkg.v1.Chat/Stream'), ['pkg.v1.Chat', 'Stream']);
  assert.equal(splitMethodPath('Svc/Get'), ['Svc', 'Get']);
  assert.equal(splitMethodPath('/nomethod'), ['unknown', 'unknown']);
  assert.equal(splitMethodPath('/Svc/'), ['unknown', 'unknown']);
});

test('a failing call counts its status as the error type, with its duration, on both sides', async () => {
  await withMonitor({ autoStart: false, maxSeries: 64 }, async (monitor) => {
    const impl = {
      ...echoImpl,
      Unary: (_call: Any, cb: Any) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
    };
    await withService(monitor, impl, {}, async (client) => {
      const err = await within(
        new Promise<Any>((res) => client.Unary(payload(1, 4), (e: Any) => res(e))),
        5000,
        'failing unary',
      );
      assert.is(err.code, grpc.status.NOT_FOUND);
    });
    const s = handledIndex(monitor, 'unary', 'NOT_FOUND');
    assert.equal(monitor.errorsByType(s), { NOT_FOUND: 1 });
    const t = monitor.totals(s);
    assert.is(t.errors, 1);
    assert.is(t.successes, 0);
    assert.is(t.latencyCount, 1, 'the failed call has its duration');
    assert.is(calls(monitor, 'unary').activeConnections, 0);
    assert.equal(monitor.errorsByType(clientHandledIndex(monitor, 'unary', 'NOT_FOUND')), { NOT_FOUND: 1 });
    // Durations by status code: the failed call's duration is apart from OK ones.
    const text = parseExposition(monitor.metrics().body as string);
    const notFound = { ...METHOD_LABELS.unary, grpc_code: 'NOT_FOUND' };
    assert.is(sampleValue(text, 'grpc_server_handled_total', notFound), 1);
    assert.is(sampleValue(text, 'grpc_server_handling_seconds_count', notFound), 1);
    assert.is(sampleValue(text, 'grpc_client_handling_seconds_count', notFound), 1);
    assert.is(pick(text, 'grpc_server_handled_total', { grpc_code: 'OK' }).length, 0, 'no OK call');
    assert.is(monitor.getPerformanceSummary().successRate, 0, 'the summary counts the failed call once');
    assert.is(statusName(grpc.status.UNAVAILABLE), 'UNAVAILABLE');
    assert.is(statusName(99), 'STATUS_99');
    for (const [name, code] of Object.entries(grpc.status))
      if (typeof code === 'number') assert.is(statusName(code), name, `grpc-js's ${name}`);
  });
});

test('a call the client cancels ends as CANCELLED; a passed deadline as DEADLINE_EXCEEDED', async () => {
  await withMonitor({ autoStart: false, maxSeries: 64 }, async (monitor) => {
    let serverSawCancel = false;
    const impl = {
      ...echoImpl,
      Bidi: (call: Any) => {
        call.on('data', (m: Buffer) => call.write(m));
        call.on('cancelled', () => {
          serverSawCancel = true;
        });
        call.on('error', () => {});
      },
      // Never answers: the client's deadline passes.
      Unary: () => {},
    };
    await withService(monitor, impl, {}, async (client) => {
      const call = client.Bidi();
      const clientStatus = new Promise<number>((res) => call.on('status', (s: Any) => res(s.code)));
      call.on('error', () => {});
      await within(
        new Promise<void>((res) => {
          call.once('data', () => res());
          call.write(payload(1, 8));
        }),
        5000,
        'first echo',
      );
      // Mid-stream: one active session on the server.
      assert.is(calls(monitor, 'bidi').activeConnections, 1);
      assert.ok(monitor.sessionStats().active >= 1);
      call.cancel();
      assert.is(await within(clientStatus, 5000, 'client status'), grpc.status.CANCELLED);
      await until(
        'server to see the cancel',
        5000,
        () => serverSawCancel && calls(monitor, 'bidi').activeConnections === 0,
        5,
      );

      const deadlineErr = await within(
        new Promise<Any>((res) => client.Unary(payload(1, 4), { deadline: Date.now() + 50 }, (e: Any) => res(e))),
        5000,
        'deadline',
      );
      assert.is(deadlineErr.code, grpc.status.DEADLINE_EXCEEDED);
      await until(
        'server to end the call',
        5000,
        () =>
          monitor
            .seriesList()
            .some((x) => x.kind === GRPC_KINDS.serverHandled && x.labels.grpc_code === 'DEADLINE_EXCEEDED'),
        5,
      );
    });
    assert.equal(monitor.errorsByType(handledIndex(monitor, 'bidi', 'CANCELLED')), { CANCELLED: 1 });
    assert.is(calls(monitor, 'bidi').activeConnections, 0);
    assert.equal(monitor.errorsByType(clientHandledIndex(monitor, 'bidi', 'CANCELLED')), { CANCELLED: 1 });
    assert.equal(monitor.errorsByType(handledIndex(monitor, 'unary', 'DEADLINE_EXCEEDED')), { DEADLINE_EXCEEDED: 1 });
    assert.equal(monitor.errorsByType(clientHandledIndex(monitor, 'unary', 'DEADLINE_EXCEEDED')), {
      DEADLINE_EXCEEDED: 1,
    });
    assert.equal(
      monitor.errorsByType(),
      { CANCELLED: 1, DEADLINE_EXCEEDED: 1 },
      'the summary: the server calls, once each',
    );
    assert.is(monitor.sessionStats().active, 0);
  });
});

test('a slow client makes the server-streaming call.write() return false: counted as backpressure with the drain wait', async () => {
  const monitor = testMonitor({ maxSeries: 64 });
  const N = 400;
  const SIZE = 1024;
  let writesRefused = 0;
  try {
    const impl = {
      ...echoImpl,
      // Writes N messages of 1 KiB, honouring backpressure; ends only once every write is through.
      ServerStream: (call: Any) => {
        instrumentServerCall(monitor, call);
        let i = 0;
        const pump = () => {
          while (i < N) {
            const ok = call.write(payload(i, SIZE));
            i++;
            if (!ok) {
              writesRefused++;
              call.once('drain', pump);
              return;
            }
          }
          call.end();
        };
        pump();
      },
    };
    const received: Buffer[] = [];
    await withService(monitor, impl, {}, async (client) => {
      const call = client.ServerStream(Buffer.from([0]));
      const done = new Promise<void>((res, rej) => {
        call.on('error', rej);
        call.on('end', res);
      });
      call.on('data', (m: Buffer) => received.push(m));
      // Stall the reader until the server has been refused at least once (the HTTP/2 window is
      // 64 KiB, the writes 400 KiB), then read everything.
      call.pause();
      await until('the server to be refused a write', 10_000, () => writesRefused > 0, 5);
      call.resume();
      await within(done, 10_000, 'server stream to end');
    });
    assert.is(received.length, N);
    for (let i = 0; i < N; i++) assert.ok(received[i].equals(payload(i, SIZE)), `message ${i} intact`);
    const s = calls(monitor, 'serverStream');
    assert.is(s.backpressure, writesRefused, 'one event per refused write (each waited for drain)');
    assert.ok(s.backpressure >= 1);
    assert.ok(s.backpressureWaitSumMs > 0, 'the drain wait is recorded');
    assert.is(s.messagesOut, N);
    assert.is(s.bytesOut, N * SIZE);
    assert.is(handled(monitor, 'serverStream').successes, 1);
    const text = parseExposition(monitor.metrics().body as string);
    assert.is(
      sampleValue(text, 'streamgauge_grpc_server_backpressure_events_total', METHOD_LABELS.serverStream),
      writesRefused,
    );
    assert.is(
      sampleValue(text, 'streamgauge_grpc_server_backpressure_wait_seconds_count', METHOD_LABELS.serverStream),
      writesRefused,
    );
    assert.is(
      pick(text, 'streamgauge_backpressure_events_total').filter((x) => x.value > 0).length,
      0,
      'not in the generic family',
    );
  } finally {
    monitor.close();
  }
});

test("handler timers go to the method's message series; instrumentCall is idempotent", async () => {
  await withMonitor({ autoStart: false, maxSeries: 64 }, async (monitor) => {
    let interceptorRef: ReturnType<typeof grpcServerInterceptor> | undefined;
    const impl = {
      ...echoImpl,
      Bidi: (call: Any) => {
        const t = interceptorRef!.instrumentCall(call);
        assert.is(interceptorRef!.instrumentCall(call), t);
        call.on('data', (m: Buffer) => {
          const done = t.startTimer();
          call.write(m);
          done();
        });
        call.on('end', () => call.end());
      },
    };
    await withService(monitor, impl, { firstResponse: false, sessions: false }, async (client, interceptor) => {
      interceptorRef = interceptor;
      await within(
        new Promise<void>((res, rej) => {
          const call = client.Bidi();
          let n = 0;
          call.on('data', () => {
            if (++n === 3) call.end();
          });
          call.on('error', rej);
          call.on('end', res);
          for (let i = 0; i < 3; i++) call.write(payload(i, 5));
        }),
        5000,
        'bidi',
      );
      assert.is(interceptor.stats().calls, 1);
    });
    assert.is(stage(monitor, 'bidi', GRPC_KINDS.message).requests, 3);
    const s = calls(monitor, 'bidi');
    assert.is(s.sessions, 0, 'sessions: false');
    assert.is(s.connectionsOpened, 1, 'calls are still counted as started');
    assert.is(s.activeConnections, 0);
    assert.not.ok(hasKind(monitor, GRPC_KINDS.firstResponse), 'firstResponse: false');
  });
});

test('two servers on one monitor keep their calls apart; a call whose session is evicted as idle keeps counting', async () => {
  const clock = handClock(1_000_000);
  // invalidValues 'count': a connectionClosed() too many would show as an invalid value.
  const monitor = testMonitor({
    maxSeries: 64,
    sessionIdleTimeout: 1000,
    invalidValues: 'count',
    clock,
  });
  const first = grpcServerInterceptor(monitor);
  const second = grpcServerInterceptor(monitor);
  const a = await startServer(echoImpl, { interceptors: [first] });
  const b = await startServer(echoImpl, { interceptors: [second] });
  const ca = new EchoClient(`127.0.0.1:${a.port}`, grpc.credentials.createInsecure()) as Any;
  const cb = new EchoClient(`127.0.0.1:${b.port}`, grpc.credentials.createInsecure()) as Any;
  const open = (client: Any) => {
    const call = client.Bidi();
    const ended = new Promise<void>((res, rej) => {
      call.on('error', rej);
      call.on('end', res);
    });
    const echo = () =>
      within(
        new Promise<void>((res) => {
          call.once('data', () => res());
          call.write(payload(1, 16));
        }),
        5000,
        'echo',
      );
    return { call, ended, echo };
  };
  try {
    const x = open(ca);
    const y = open(cb);
    await x.echo();
    await y.echo();
    const bidi = seriesIndex(monitor, METHOD_LABELS.bidi, GRPC_KINDS.server);
    assert.is(monitor.totals(bidi).activeConnections, 2, 'both calls active (distinct session ids)');
    assert.is(monitor.sessionStats().active, 2);

    // Both sessions idle past the timeout: the tick evicts them while the calls go on.
    clock.t += 5000;
    monitor.tick();
    assert.is(monitor.sessionStats().evictedIdle, 2);
    await x.echo(); // a message on an evicted session: counted on the series, no throw
    x.call.end();
    y.call.end();
    await within(Promise.all([x.ended, y.ended]), 5000, 'calls to end');
    const t = monitor.totals(bidi);
    assert.is(t.messagesIn, 3);
    assert.is(t.messagesOut, 3);
    assert.is(handled(monitor, 'bidi').successes, 2);
    assert.is(t.activeConnections, 0, 'closed once each: no double decrement after eviction');
    assert.is(t.invalid, 0);
  } finally {
    ca.close();
    cb.close();
    a.server.forceShutdown();
    b.server.forceShutdown();
    monitor.close();
  }
});

test('echoSampleEvery times one message in N', async () => {
  await withMonitor({ autoStart: false, maxSeries: 64 }, async (monitor) => {
    await withService(monitor, echoImpl, { echoLatency: true, echoSampleEvery: 3 }, async (client) => {
      await bidiEcho(client, 10, 8);
    });
    assert.is(stage(monitor, 'bidi', GRPC_KINDS.message).requests, 4, 'messages 0, 3, 6, 9');
    assert.is(calls(monitor, 'bidi').messagesIn, 10);
  });
});

test('echoLatency matches in order across many requests in flight; past echoWindow the call stops matching', async () => {
  // Replies only after the client half-closes: every request is in flight at once.
  const batchImpl = {
    ...echoImpl,
    Bidi: (call: Any) => {
      const got: Buffer[] = [];
      call.on('data', (m: Buffer) => got.push(m));
      call.on('end', () => {
        for (const m of got) call.write(m);
        call.end();
      });
    },
  };
  const run = async (echoWindow: number) => {
    const monitor = testMonitor({ maxSeries: 64 });
    try {
      let overflows = -1;
      await withService(monitor, batchImpl, { echoLatency: true, echoWindow }, async (client, interceptor) => {
        await within(
          new Promise<void>((res, rej) => {
            const call = client.Bidi();
            let n = 0;
            call.on('data', () => n++);
            call.on('error', rej);
            call.on('end', () => (n === 100 ? res() : rej(new Error(`${n} replies`))));
            for (let i = 0; i < 100; i++) call.write(payload(i, 8));
            call.end();
          }),
          5000,
          'batch bidi',
        );
        overflows = interceptor.stats().echoOverflows;
      });
      const timed = hasKind(monitor, GRPC_KINDS.message) ? stage(monitor, 'bidi', GRPC_KINDS.message).requests : 0;
      return { timed, overflows };
    } finally {
      monitor.close();
    }
  };
  assert.equal(await run(1024), { timed: 100, overflows: 0 }, 'the ring grew past its first 64 slots');
  assert.equal(await run(50), { timed: 0, overflows: 1 }, 'more than 50 in flight: given up, counted');
});

test('options are checked', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    assert.throws(() => grpcServerInterceptor(monitor, { labels: { grpc_method: 'x' } }), /must not set "grpc_method"/);
    assert.throws(() => grpcServerInterceptor(monitor, { labels: { exported_le: 'x' } }), /exported_le is reserved/);
    assert.throws(() => grpcClientInterceptor(monitor, { labels: { 'bad-name': 'x' } }), /is not a label name/);
    assert.throws(() => grpcClientInterceptor(monitor, { labels: { grpc_code: 'x' } }), /must not set "grpc_code"/);
    assert.throws(() => monitor.metrics(undefined, { rpcNames: 'otel' as Any }), /rpcNames/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoWindow: 0 }), /echoWindow/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoSampleEvery: 1.5 }), /echoSampleEvery/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoLatency: 'yes' as Any }), /echoLatency/);
    assert.throws(() => grpcClientInterceptor(monitor, { messageBytes: 3 as Any }), /messageBytes/);
  });
});

test('the package loads @grpc/grpc-js only when an interceptor is made', () => {
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./fixtures/grpc-lazy.ts', import.meta.url))],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.is(child.status, 0, child.stderr);
  assert.equal(JSON.parse(child.stdout), { afterImport: false, afterInterceptor: true });
});

test.run();
