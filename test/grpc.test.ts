// The gRPC interceptors against a real grpc-js server and client on 127.0.0.1: all four call
// kinds, a failing call, a cancelled call, a passed deadline, and a slow client that makes the
// server's call.write() return false.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grpcClientInterceptor, grpcServerInterceptor, instrumentServerCall, statusName } from '../src/grpc.js';
import { StreamPerformanceMonitor } from '../src/index.js';
import { EchoClient, PATHS, startServer } from './fixtures/grpc-echo.js';
import { seriesIndex } from './fixtures/monitor.js';
import { until, within } from './fixtures/wait.js';

// biome-ignore lint/suspicious/noExplicitAny: grpc-js generic clients and call objects are untyped
type Any = any;

const payload = (i: number, size: number) => Buffer.alloc(size, i % 251);

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
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
  try {
    await withService(monitor, echoImpl, { echoLatency: [PATHS.bidi] }, async (client) => {
      const reply = await within(
        new Promise<Buffer>((res, rej) => client.Unary(payload(1, 100), (e: Error | null, r: Buffer) => (e ? rej(e) : res(r)))),
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

    const server = (path: string) => monitor.totals(seriesIndex(monitor, { grpc_method: path }));
    const client = (path: string) => monitor.totals(seriesIndex(monitor, { grpc_method: path, side: 'client' }));
    const expect: Record<string, { in: number; out: number; bytesIn: number; bytesOut: number }> = {
      [PATHS.unary]: { in: 1, out: 1, bytesIn: 100, bytesOut: 100 },
      [PATHS.serverStream]: { in: 1, out: 7, bytesIn: 1, bytesOut: 70 },
      [PATHS.clientStream]: { in: 5, out: 1, bytesIn: 100, bytesOut: 3 },
      [PATHS.bidi]: { in: 9, out: 9, bytesIn: 270, bytesOut: 270 },
    };
    for (const [path, e] of Object.entries(expect)) {
      const s = server(path);
      assert.is(s.requests, 1, `${path}: one call finished`);
      assert.is(s.successes, 1, `${path}: OK`);
      assert.is(s.connectionsOpened, 1, `${path}: one call started`);
      assert.is(s.activeConnections, 0, `${path}: no call active`);
      assert.is(s.sessions, 1, `${path}: one session`);
      assert.is(s.sessionMessages, e.in + e.out, `${path}: session messages (both directions)`);
      assert.is(s.messagesIn, e.in, `${path}: messages in`);
      assert.is(s.messagesOut, e.out, `${path}: messages out`);
      assert.is(s.bytesIn, e.bytesIn, `${path}: bytes in`);
      assert.is(s.bytesOut, e.bytesOut, `${path}: bytes out`);
      assert.ok(s.latencyMinMs > 0, `${path}: call duration recorded`);
      const first = monitor.totals(seriesIndex(monitor, { grpc_method: path, stage: 'first_response' }));
      assert.is(first.requests, 1, `${path}: time to first response`);
      assert.ok(first.latencyMaxMs <= s.latencyMaxMs, `${path}: first response within the call`);
      // The client sees the mirror image.
      const c = client(path);
      assert.is(c.requests, 1, `${path}: client call`);
      assert.is(c.successes, 1);
      assert.is(c.activeConnections, 0);
      assert.is(c.messagesOut, e.in, `${path}: client messages out`);
      assert.is(c.messagesIn, e.out, `${path}: client messages in`);
      assert.is(c.bytesOut, e.bytesIn);
      assert.is(c.bytesIn, e.bytesOut);
    }
    const perMessage = monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi, stage: 'message' }));
    assert.is(perMessage.requests, 9, 'one echo latency per message');
    assert.ok(perMessage.latencyMaxMs <= server(PATHS.bidi).latencyMaxMs);
    assert.equal(monitor.errorsByType(), {});
  } finally {
    monitor.close();
  }
});

test('a failing call counts its status as the error type, with its duration, on both sides', async () => {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
  try {
    const impl = { ...echoImpl, Unary: (_call: Any, cb: Any) => cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }) };
    await withService(monitor, impl, {}, async (client) => {
      const err = await within(
        new Promise<Any>((res) => client.Unary(payload(1, 4), (e: Any) => res(e))),
        5000,
        'failing unary',
      );
      assert.is(err.code, grpc.status.NOT_FOUND);
    });
    const s = seriesIndex(monitor, { grpc_method: PATHS.unary });
    assert.equal(monitor.errorsByType(s), { NOT_FOUND: 1 });
    const t = monitor.totals(s);
    assert.is(t.errors, 1);
    assert.is(t.successes, 0);
    assert.is(t.latencyCount, 1, 'the failed call has its duration');
    assert.is(t.activeConnections, 0);
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { grpc_method: PATHS.unary, side: 'client' })), { NOT_FOUND: 1 });
    assert.is(statusName(grpc.status.UNAVAILABLE), 'UNAVAILABLE');
    assert.is(statusName(99), 'STATUS_99');
    for (const [name, code] of Object.entries(grpc.status)) if (typeof code === 'number') assert.is(statusName(code), name, `grpc-js's ${name}`);
  } finally {
    monitor.close();
  }
});

test('a call the client cancels ends as CANCELLED; a passed deadline as DEADLINE_EXCEEDED', async () => {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
  try {
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
      const bidi = seriesIndex.bind(null, monitor);
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
      assert.is(monitor.totals(bidi({ grpc_method: PATHS.bidi })).activeConnections, 1);
      assert.ok(monitor.sessionStats().active >= 1);
      call.cancel();
      assert.is(await within(clientStatus, 5000, 'client status'), grpc.status.CANCELLED);
      await until('server to see the cancel', 5000, () => serverSawCancel && monitor.totals(bidi({ grpc_method: PATHS.bidi })).activeConnections === 0, 5);

      const deadlineErr = await within(
        new Promise<Any>((res) => client.Unary(payload(1, 4), { deadline: Date.now() + 50 }, (e: Any) => res(e))),
        5000,
        'deadline',
      );
      assert.is(deadlineErr.code, grpc.status.DEADLINE_EXCEEDED);
      await until('server to end the call', 5000, () => monitor.totals(bidi({ grpc_method: PATHS.unary })).requests === 1, 5);
    });
    const s = seriesIndex(monitor, { grpc_method: PATHS.bidi });
    assert.equal(monitor.errorsByType(s), { CANCELLED: 1 });
    assert.is(monitor.totals(s).activeConnections, 0);
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { grpc_method: PATHS.bidi, side: 'client' })), { CANCELLED: 1 });
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { grpc_method: PATHS.unary })), { DEADLINE_EXCEEDED: 1 });
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { grpc_method: PATHS.unary, side: 'client' })), { DEADLINE_EXCEEDED: 1 });
    assert.is(monitor.sessionStats().active, 0);
  } finally {
    monitor.close();
  }
});

test('a slow client makes the server-streaming call.write() return false: counted as backpressure with the drain wait', async () => {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
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
      await new Promise((r) => setTimeout(r, 30));
      call.resume();
      await within(done, 10_000, 'server stream to end');
    });
    assert.is(received.length, N);
    for (let i = 0; i < N; i++) assert.ok(received[i].equals(payload(i, SIZE)), `message ${i} intact`);
    const s = monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.serverStream }));
    assert.is(s.backpressure, writesRefused, 'one event per refused write (each waited for drain)');
    assert.ok(s.backpressure >= 1);
    assert.ok(s.backpressureWaitSumMs > 0, 'the drain wait is recorded');
    assert.is(s.messagesOut, N);
    assert.is(s.bytesOut, N * SIZE);
    assert.is(s.successes, 1);
  } finally {
    monitor.close();
  }
});

test('handler timers go to the method\'s message series; instrumentCall is idempotent', async () => {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
  try {
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
    assert.is(monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi, stage: 'message' })).requests, 3);
    const s = monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi }));
    assert.is(s.sessions, 0, 'sessions: false');
    assert.is(s.connectionsOpened, 1, 'calls are still counted as started');
    assert.is(s.activeConnections, 0);
    assert.ok(!monitor.seriesList().some((x) => x.labels.stage === 'first_response'), 'firstResponse: false');
  } finally {
    monitor.close();
  }
});

test('two servers on one monitor keep their calls apart; a call whose session is evicted as idle keeps counting', async () => {
  let now = 1_000_000;
  // invalidValues 'count': a connectionClosed() too many would show as an invalid value.
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64, sessionIdleTimeout: 1000, invalidValues: 'count', clock: { now: () => now } });
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
    const bidi = seriesIndex(monitor, { grpc_method: PATHS.bidi });
    assert.is(monitor.totals(bidi).activeConnections, 2, 'both calls active (distinct session ids)');
    assert.is(monitor.sessionStats().active, 2);

    // Both sessions idle past the timeout: the tick evicts them while the calls go on.
    now += 5000;
    monitor.tick();
    assert.is(monitor.sessionStats().evictedIdle, 2);
    await x.echo(); // a message on an evicted session: counted on the series, no throw
    x.call.end();
    y.call.end();
    await within(Promise.all([x.ended, y.ended]), 5000, 'calls to end');
    const t = monitor.totals(bidi);
    assert.is(t.messagesIn, 3);
    assert.is(t.messagesOut, 3);
    assert.is(t.successes, 2);
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
  const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
  try {
    await withService(monitor, echoImpl, { echoLatency: true, echoSampleEvery: 3 }, async (client) => {
      await bidiEcho(client, 10, 8);
    });
    assert.is(monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi, stage: 'message' })).requests, 4, 'messages 0, 3, 6, 9');
    assert.is(monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi })).messagesIn, 10);
  } finally {
    monitor.close();
  }
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
    const monitor = new StreamPerformanceMonitor({ autoStart: false, maxSeries: 64 });
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
      const timed = monitor.seriesList().some((x) => x.labels.stage === 'message')
        ? monitor.totals(seriesIndex(monitor, { grpc_method: PATHS.bidi, stage: 'message' })).requests
        : 0;
      return { timed, overflows };
    } finally {
      monitor.close();
    }
  };
  assert.equal(await run(1024), { timed: 100, overflows: 0 }, 'the ring grew past its first 64 slots');
  assert.equal(await run(50), { timed: 0, overflows: 1 }, 'more than 50 in flight: given up, counted');
});

test('options are checked', () => {
  const monitor = new StreamPerformanceMonitor({ autoStart: false });
  try {
    assert.throws(() => grpcServerInterceptor(monitor, { labels: { grpc_method: 'x' } }), /must not set "grpc_method"/);
    assert.throws(() => grpcServerInterceptor(monitor, { labels: { exported_le: 'x' } }), /exported_le is reserved/);
    assert.throws(() => grpcClientInterceptor(monitor, { labels: { 'bad-name': 'x' } }), /is not a label name/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoWindow: 0 }), /echoWindow/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoSampleEvery: 1.5 }), /echoSampleEvery/);
    assert.throws(() => grpcServerInterceptor(monitor, { echoLatency: 'yes' as Any }), /echoLatency/);
    assert.throws(() => grpcClientInterceptor(monitor, { messageBytes: 3 as Any }), /messageBytes/);
  } finally {
    monitor.close();
  }
});

test('the package loads @grpc/grpc-js only when an interceptor is made', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/grpc-lazy.ts', import.meta.url))], { encoding: 'utf8', timeout: 60_000 });
  assert.is(child.status, 0, child.stderr);
  assert.equal(JSON.parse(child.stdout), { afterImport: false, afterInterceptor: true });
});

test.run();
