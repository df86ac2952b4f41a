// The node:http instrument against a real server on 127.0.0.1 and a real client: durations by
// method, route and status code (never the raw URL), requests in flight, body bytes both ways,
// a Server-Sent Events stream's time to first byte, write() backpressure against a slow reader,
// and a request the client aborts.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instrumentHttpServer, setHttpRoute, type StreamPerformanceMonitor } from '../src/index.js';
import { type Parsed, parseExposition, pick, promtool, sampleValue } from './fixtures/expo-helpers.js';
import { until, within } from './fixtures/wait.js';
import { testMonitor } from './fixtures/monitor.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function withServer(
  handler: Handler,
  fn: (port: number, monitor: StreamPerformanceMonitor) => Promise<void>,
): Promise<StreamPerformanceMonitor> {
  const monitor = testMonitor({ maxSeries: 64 });
  const server = http.createServer(handler);
  instrumentHttpServer(monitor, server, {
    // The route from the path's shape: ids become :id, never the raw URL.
    route: (req) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (/^\/users\/\d+$/.test(path)) return '/users/:id';
      return ['/upload', '/fail', '/events', '/big', '/slow'].includes(path) ? path : undefined;
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await fn(port, monitor);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  return monitor;
}

/** A request with an optional body; resolves with the status and body once the response has ended. */
function request(port: number, method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    }),
    10_000,
    `${method} ${path}`,
  );
}

const text = (monitor: StreamPerformanceMonitor): Parsed => parseExposition(monitor.metrics().body as string);
const L = (method: string, route: string) => ({ http_request_method: method, http_route: route });

test('durations by method, route and status code; body bytes both ways; the summary counts each request once', async () => {
  const handler: Handler = (req, res) => {
    const path = req.url ?? '';
    if (path.startsWith('/users/')) return void res.end('hello');
    if (path === '/upload') {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
      });
      req.on('end', () => {
        res.statusCode = 201;
        res.end(String(n));
      });
      return;
    }
    if (path === '/fail') {
      res.statusCode = 503;
      return void res.end();
    }
    res.statusCode = 404;
    res.end('no');
  };
  const monitor = await withServer(handler, async (port) => {
    assert.is((await request(port, 'GET', '/users/1')).body.toString(), 'hello');
    await request(port, 'GET', '/users/2');
    assert.is((await request(port, 'POST', '/upload', Buffer.alloc(100_000, 1))).body.toString(), '100000');
    assert.is((await request(port, 'GET', '/fail')).status, 503);
    assert.is((await request(port, 'GET', '/a/raw/url?x=1')).status, 404);
  });
  try {
    const t = text(monitor);
    const count = (method: string, route: string, code: string) =>
      sampleValue(t, 'http_server_request_duration_seconds_count', {
        ...L(method, route),
        http_response_status_code: code,
      });
    assert.is(count('GET', '/users/:id', '200'), 2);
    assert.is(count('POST', '/upload', '201'), 1);
    assert.is(count('GET', '/fail', '503'), 1);
    assert.is(count('GET', 'unmatched', '404'), 1, 'a path no route matched');
    for (const s of t.samples) {
      if (s.labels.http_route !== undefined)
        assert.ok(
          ['/users/:id', '/upload', '/fail', 'unmatched'].includes(s.labels.http_route),
          `route ${s.labels.http_route}`,
        );
    }
    assert.is(sampleValue(t, 'streamgauge_http_server_request_body_bytes_total', L('POST', '/upload')), 100_000);
    assert.is(sampleValue(t, 'streamgauge_http_server_response_body_bytes_total', L('GET', '/users/:id')), 10);
    assert.is(sampleValue(t, 'streamgauge_http_server_time_to_first_byte_seconds_count', L('GET', '/users/:id')), 2);
    assert.is(sampleValue(t, 'http_server_active_requests', { http_request_method: 'GET' }), 0);
    assert.is(t.types.get('http_server_request_duration_seconds'), 'histogram');
    // The summary: five requests, one failed (5xx); 4xx is the client's.
    const m = monitor.getCurrentMetrics();
    assert.is(m.totalRequests, 5);
    assert.is(m.failedRequests, 1);
    assert.equal(monitor.errorsByType(), { 503: 1 });
    assert.is(sampleValue(t, 'streamgauge_service_requests_total', {}), 5);
    assert.is(sampleValue(t, 'streamgauge_service_failed_requests_total', {}), 1);
    assert.is(sampleValue(t, 'streamgauge_service_request_duration_seconds_count', {}), 5);
    assert.equal(
      pick(t, 'streamgauge_requests_total'),
      [{ name: 'streamgauge_requests_total', labels: {}, value: 0 }],
      'HTTP requests are in their own families',
    );
    const lint = promtool(monitor.metrics().body as string);
    assert.is(lint.output, '', lint.output);
    assert.is(lint.status, 0);
  } finally {
    monitor.close();
  }
});

test('Server-Sent Events: time to first byte within the stream, in flight while it runs; a slow reader makes write() return false', async () => {
  let refused = 0;
  const handler: Handler = (req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const tick = () => {
        res.write(`data: ${i}\n\n`);
        if (++i === 3) res.end();
        else setTimeout(tick, 20);
      };
      tick();
      return;
    }
    // /big: 8 MiB in 64 KiB chunks, honouring backpressure.
    const chunk = Buffer.alloc(65_536, 7);
    let sent = 0;
    const pump = () => {
      while (sent < 128) {
        sent++;
        if (!res.write(chunk)) {
          refused++;
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  };
  const monitor = await withServer(handler, async (port, m) => {
    const events = await request(port, 'GET', '/events');
    assert.is(events.body.toString(), 'data: 0\n\ndata: 1\n\ndata: 2\n\n');

    // A reader that stops until the server has been refused, then reads everything.
    const got = await within(
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/big', agent: false }, (res) => {
          let n = 0;
          res.pause();
          res.on('data', (c: Buffer) => {
            n += c.length;
          });
          res.on('end', () => resolve(n));
          until('a refused write', 10_000, () => refused > 0, 5).then(() => {
            // In flight meanwhile.
            assert.is(sampleValue(text(m), 'http_server_active_requests', { http_request_method: 'GET' }), 1);
            res.resume();
          }, reject);
        });
        req.on('error', reject);
        req.end();
      }),
      20_000,
      '/big',
    );
    assert.is(got, 128 * 65_536);
  });
  try {
    const t = text(monitor);
    const sse = L('GET', '/events');
    const ttfb = sampleValue(t, 'streamgauge_http_server_time_to_first_byte_seconds_sum', sse);
    const duration = sampleValue(t, 'http_server_request_duration_seconds_sum', {
      ...sse,
      http_response_status_code: '200',
    });
    assert.ok(ttfb < duration, `first byte (${ttfb} s) before the stream's end (${duration} s)`);
    assert.is(sampleValue(t, 'streamgauge_http_server_response_body_bytes_total', sse), 27, 'three events of 9 bytes');
    const big = L('GET', '/big');
    assert.ok(refused >= 1);
    assert.is(
      sampleValue(t, 'streamgauge_http_server_write_backpressure_events_total', big),
      refused,
      'one event per refused write',
    );
    assert.is(sampleValue(t, 'streamgauge_http_server_write_drain_wait_seconds_count', big), refused);
    assert.is(sampleValue(t, 'streamgauge_http_server_response_body_bytes_total', big), 128 * 65_536);
  } finally {
    monitor.close();
  }
});

test('a request the client aborts mid-response is counted as aborted, not as handled; in flight drops back', async () => {
  let closed = false;
  const handler: Handler = (_req, res) => {
    res.write('first');
    // Never ends on its own: the client goes away.
    res.on('close', () => {
      closed = true;
    });
  };
  const monitor = await withServer(handler, async (port, m) => {
    await within(
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
        req.end();
        req.on('timeout', reject);
      }),
      10_000,
      '/slow',
    );
    await until(
      'the server to see the close',
      10_000,
      () => closed && sampleValue(text(m), 'http_server_active_requests', { http_request_method: 'GET' }) === 0,
      5,
    );
  });
  try {
    const t = text(monitor);
    assert.is(sampleValue(t, 'streamgauge_http_server_aborted_requests_total', L('GET', '/slow')), 1);
    assert.is(
      pick(t, 'http_server_request_duration_seconds_count', { http_route: '/slow' }).length,
      0,
      'not a handled request',
    );
    assert.is(monitor.getCurrentMetrics().totalRequests, 0);
  } finally {
    monitor.close();
  }
});

test('under Express and Fastify: the route is the one their router matched', async () => {
  const monitor = testMonitor({ maxSeries: 64 });
  const express = (await import('express')).default;
  const { default: Fastify } = await import('fastify');
  // Express: its matched route (with the router's mount path) is read when the response ends.
  const app = express();
  const users = express.Router();
  users.get('/:id', (req, res) => void res.send(`user ${req.params.id}`));
  app.use('/users', users);
  const server = http.createServer(app);
  instrumentHttpServer(monitor, server, { labels: { framework: 'express' } });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // Fastify: its route, handed over from an onRequest hook.
  const fastify = Fastify();
  instrumentHttpServer(monitor, fastify.server, { labels: { framework: 'fastify' } });
  fastify.addHook('onRequest', async (request) => setHttpRoute(request.raw, request.routeOptions.url ?? 'unmatched'));
  fastify.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  try {
    const port = (server.address() as AddressInfo).port;
    assert.is((await request(port, 'GET', '/users/41')).body.toString(), 'user 41');
    assert.is((await request(port, 'GET', '/users/42')).status, 200);
    assert.is((await request(port, 'GET', '/nowhere')).status, 404);
    const fport = (fastify.server.address() as AddressInfo).port;
    assert.equal(JSON.parse((await request(fport, 'GET', '/items/7')).body.toString()), { id: '7' });
    const t = text(monitor);
    const count = (framework: string, route: string, code: string) =>
      sampleValue(t, 'http_server_request_duration_seconds_count', {
        framework,
        ...L('GET', route),
        http_response_status_code: code,
      });
    assert.is(count('express', '/users/:id', '200'), 2);
    assert.is(count('express', 'unmatched', '404'), 1);
    assert.is(count('fastify', '/items/:id', '200'), 1);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await fastify.close();
    monitor.close();
  }
});

test('options are checked', () => {
  const monitor = testMonitor();
  const server = http.createServer();
  try {
    assert.throws(() => instrumentHttpServer(monitor, {} as http.Server), /node:http Server/);
    assert.throws(
      () => instrumentHttpServer(monitor, server, { labels: { http_route: 'x' } }),
      /must not set "http_route"/,
    );
    assert.throws(() => instrumentHttpServer(monitor, server, { route: '/x' as never }), /options\.route/);
    const instrument = instrumentHttpServer(monitor, server);
    assert.is(server.listenerCount('request'), 1);
    instrument.stop();
    assert.is(server.listenerCount('request'), 0);
  } finally {
    monitor.close();
  }
});

test.run();
