// The live dashboard's HTTP surface, over a synthetic source that ticks on a timer (one simulated
// second per tick) and keeps tick/minute/hour history. The page in Chromium: dashboard-browser.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createDashboardHandler,
  DASHBOARD_FIELDS,
  type DashboardFrame,
  type HistoryColumns,
} from '../src/serve/dashboard-handler.js';
import { until } from './fixtures/wait.js';
import {
  fetchBounded,
  HOSTILE_ERROR,
  HOSTILE_LABEL,
  parseEvents,
  rawGet,
  readEvents,
  SyntheticSource,
  withServer,
} from './fixtures/dashboard-harness.js';

// ---------------------------------------------------------------------------------------------
// HTTP

test('page and assets are served with their types, nosniff and a content security policy', async () => {
  await withServer({}, async ({ base }) => {
    const page = await fetchBounded(`${base}/`);
    assert.is(page.status, 200);
    assert.is(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.is(page.headers.get('x-content-type-options'), 'nosniff');
    assert.match(page.headers.get('content-security-policy') ?? '', "script-src 'self'");
    const html = await page.text();
    assert.match(html, 'assets/uplot.js');
    assert.not.match(html, /https?:\/\//, 'no asset from another origin');

    const expected: Record<string, string> = {
      'app.js': 'text/javascript; charset=utf-8',
      'charts.js': 'text/javascript; charset=utf-8',
      'uplot.js': 'text/javascript; charset=utf-8',
      'style.css': 'text/css; charset=utf-8',
      'uplot.css': 'text/css; charset=utf-8',
    };
    for (const [name, type] of Object.entries(expected)) {
      const res = await fetchBounded(`${base}/assets/${name}`);
      assert.is(res.status, 200, name);
      assert.is(res.headers.get('content-type'), type, name);
      assert.is(res.headers.get('x-content-type-options'), 'nosniff', name);
      assert.ok((await res.arrayBuffer()).byteLength > 100, name);
    }
    assert.is((await fetchBounded(`${base}/assets/nope.js`)).status, 404);
  });
});

test('history: columns per resolution, since filters, NaN as null, never cached', async () => {
  await withServer({}, async ({ base, source }) => {
    for (const [resolution, count] of [
      ['tick', 300],
      ['minute', 60],
      ['hour', 24],
    ] as const) {
      const res = await fetchBounded(`${base}/api/history?resolution=${resolution}`);
      assert.is(res.status, 200);
      assert.is(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.is(res.headers.get('cache-control'), 'no-store');
      assert.is(res.headers.get('x-content-type-options'), 'nosniff');
      const body = (await res.json()) as HistoryColumns;
      assert.is(body.resolution, resolution);
      assert.is(body.t.length, count);
      for (const f of DASHBOARD_FIELDS) assert.is(body.fields[f].length, count, `${resolution} ${f}`);
    }
    const recent = (await (
      await fetchBounded(`${base}/api/history?resolution=tick&since=${source.now - 9_000}`)
    ).json()) as HistoryColumns;
    assert.is(recent.t.length, 10);
    assert.ok(recent.t.every((t) => t >= source.now - 9_000));
    const all = (await (await fetchBounded(`${base}/api/history`)).json()) as { fields: Record<string, unknown[]> };
    assert.is(all.fields.queueDepth[0], null, 'NaN travels as null (a gap)');
  });
});

test('bad query parameters are answered 400 with a message that says what is wrong', async () => {
  await withServer({}, async ({ base }) => {
    const cases: [string, RegExp][] = [
      ['/api/history?resolution=week', /resolution must be one of tick, minute, hour, day; got "week"/],
      ['/api/history?since=yesterday', /since must be a time in ms/],
      ['/api/history?since=-5', /since must be a time in ms/],
      ['/api/history?since=1e400', /since must be a time in ms/],
      [
        '/api/history?resolutoin=hour',
        /unknown query parameter "resolutoin" \(allowed: resolution, since, until, maxPoints\)/,
      ],
      ['/api/history?resolution=tick&resolution=hour', /"resolution" given more than once/],
      ['/api/current?x=1', /unknown query parameter "x"/],
    ];
    for (const [path, message] of cases) {
      const res = await fetchBounded(base + path);
      assert.is(res.status, 400, path);
      assert.is(res.headers.get('content-type'), 'application/json; charset=utf-8', path);
      const body = (await res.json()) as { error: string };
      assert.match(body.error, message, path);
    }
  });
});

test('methods, HEAD, foreign paths and path tricks', async () => {
  await withServer({}, async ({ base }) => {
    const post = await fetchBounded(`${base}/api/current`, { method: 'POST' });
    assert.is(post.status, 405);
    assert.is(post.headers.get('allow'), 'GET, HEAD');

    const head = await fetchBounded(`${base}/`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 500);
    assert.is(await head.text(), '');

    const metrics = await fetchBounded(`${base}/metrics`);
    assert.is(await metrics.text(), 'not the dashboard', 'other paths are left to the caller');

    for (const path of [
      '/assets/../package.json',
      '/assets/..%2fpackage.json',
      '/assets/%2e%2e/src/dashboard.ts',
      '/assets/sub/app.js',
    ]) {
      const res = await rawGet(base, path);
      assert.ok(res.status === 404, `${path} -> ${res.status}`);
      assert.not.match(res.body, '"name"', path);
    }
  });
});

test('JSON escapes markup: a hostile label round-trips but never appears raw', async () => {
  await withServer({}, async ({ base }) => {
    const text = await (await fetchBounded(`${base}/api/current`)).text();
    assert.not.match(text, '<img');
    assert.not.match(text, '<script');
    assert.match(text, '\\u003cimg src=x onerror=alert(1)\\u003e');
    const frame = JSON.parse(text) as DashboardFrame;
    assert.ok(frame.series.some((s) => s.labels.grpc_method === HOSTILE_LABEL));
    assert.is(frame.errorsByType[HOSTILE_ERROR], 5);
  });
});

test('SSE: retry hint, current frame, one tick event per tick, heartbeats, unsubscribe on close', async () => {
  await withServer({ heartbeatMs: 40, retryMs: 1500 }, async ({ base, source }) => {
    const stream = await readEvents(`${base}/events`, (text) => text.includes(': heartbeat'));
    try {
      assert.is(stream.res.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.is(stream.res.headers['cache-control'], 'no-store');
      assert.is(stream.res.headers['x-content-type-options'], 'nosniff');
      assert.is(source.listenerCount, 1);
      const first = parseEvents(stream.text);
      assert.is(first[0].retry, '1500');
      assert.is(first[1].event, 'tick', 'the current frame is sent at once');
      assert.is((JSON.parse(first[1].data ?? '') as DashboardFrame).t, source.now);
      assert.ok(
        first.some((e) => e.comment === 'heartbeat'),
        'a comment heartbeat',
      );

      // Ticks driven by hand: each becomes exactly one event, in order, on one data line.
      let more = '';
      stream.res.on('data', (chunk: string) => (more += chunk));
      const before = source.now;
      source.advance();
      source.advance();
      await until('two tick events', 5000, () => parseEvents(more).filter((e) => e.event === 'tick').length >= 2, 20);
      const ticks = parseEvents(more).filter((e) => e.event === 'tick');
      assert.equal(
        ticks.map((e) => Number(e.id)),
        [before + 1000, before + 2000],
      );
      for (const e of ticks) {
        const frame = JSON.parse(e.data ?? '') as DashboardFrame;
        assert.is(String(frame.t), e.id);
        assert.is(frame.series.length, 4);
      }
    } finally {
      stream.close();
    }
    await until('the source to be unsubscribed', 5000, () => source.listenerCount === 0, 20);
  });
});

test('SSE: one source subscription for many clients; past maxClients, 503', async () => {
  await withServer({ maxClients: 2 }, async ({ base, source }) => {
    const a = await readEvents(`${base}/events`, (t) => t.includes('event: tick'));
    const b = await readEvents(`${base}/events`, (t) => t.includes('event: tick'));
    try {
      assert.is(source.listenerCount, 1);
      const third = await fetchBounded(`${base}/events`);
      assert.is(third.status, 503);
      assert.match(await third.text(), 'limit 2');
      a.close();
      // Once the server has seen the first client go, its place is free again.
      const c = await until(
        'a place freed by the client that left',
        5000,
        async () => {
          const r = await fetchBounded(`${base}/events`);
          if (r.status === 200) return r;
          await r.text();
          return undefined;
        },
        20,
      );
      assert.is(source.listenerCount, 1, 'still one subscription, for the two clients now listening');
      await c.body?.cancel();
    } finally {
      a.close();
      b.close();
    }
    await until('the source to be unsubscribed', 5000, () => source.listenerCount === 0, 20);
  });
});

test('basePath mounts everything under a prefix', async () => {
  await withServer({ basePath: '/dash/' }, async ({ base }) => {
    const bare = await fetchBounded(`${base}/dash`, { redirect: 'manual' });
    assert.is(bare.status, 308);
    assert.is(bare.headers.get('location'), '/dash/');
    assert.is((await fetchBounded(`${base}/dash/`)).headers.get('content-type'), 'text/html; charset=utf-8');
    assert.is((await fetchBounded(`${base}/dash/api/history?resolution=hour`)).status, 200);
    assert.is(await (await fetchBounded(`${base}/`)).text(), 'not the dashboard');
  });
});

test('options are validated with messages that say what to change', () => {
  const source = new SyntheticSource();
  assert.throws(
    () => createDashboardHandler(source, { heartbeatMs: 0 }),
    /options.heartbeatMs must be a positive number/,
  );
  assert.throws(() => createDashboardHandler(source, { maxClients: Number.NaN }), /options.maxClients/);
  assert.throws(() => createDashboardHandler(source, { basePath: 'dash' }), /options.basePath must be a URL path/);
});

test.run();
