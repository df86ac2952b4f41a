// /api/history answers with what a chart can show, whatever the history holds: at most maxPoints
// (default 2000) values per field, runs of consecutive points reduced to one (counts summed,
// quantiles at their highest, rates and gauges averaged), so one request's cost is bounded and
// /metrics keeps answering while dashboards ask. Bad parameters and request targets are 400.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Served, StreamPerformanceMonitor } from '../src/index.js';
import { handClock, testMonitor } from './fixtures/monitor.js';

const T0 = Date.UTC(2025, 0, 1);
const POINTS = 10_800; // three hours of one-second ticks

async function setup(): Promise<{ monitor: StreamPerformanceMonitor; served: Served; clock: { t: number } }> {
  const clock = handClock(T0);
  const monitor = testMonitor({
    clock,
    historyRetention: POINTS * 1000,
  });
  for (let i = 0; i < POINTS; i++) {
    for (let j = 0; j < i % 7; j++) monitor.recordLatency(1 + ((i * 13 + j) % 50));
    if (i % 11 === 0) monitor.recordError('timeout');
    clock.t += 1000;
    monitor.tick();
  }
  return { monitor, served: await monitor.serve(), clock };
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

test('the whole tick ring comes back as at most 2000 points, each standing for a run of 6', async () => {
  const { monitor, served } = await setup();
  try {
    const { status, text } = await get(`${served.url}/api/history?resolution=tick`);
    assert.is(status, 200);
    const h = JSON.parse(text);
    assert.is(h.pointsInRange, POINTS);
    assert.is(h.pointsPerValue, 6);
    assert.is(h.t.length, POINTS / 6);
    for (const column of Object.values(h.fields) as number[][]) assert.is(column.length, h.t.length);
    // What a full answer would weigh: the bounded one is a fraction of it.
    const full = JSON.stringify(monitor.getHistory({ resolution: 'tick' }));
    assert.ok(text.length < full.length / 4, `${text.length} bytes against ${full.length}`);
    // The largest a client may ask for is bounded too.
    const most = JSON.parse((await get(`${served.url}/api/history?resolution=tick&maxPoints=10000`)).text);
    assert.is(most.pointsPerValue, 2);
    assert.is(most.t.length, POINTS / 2);
  } finally {
    monitor.close();
  }
});

test('a reduced run: requests summed, p99 its highest, rps averaged, error rate errors over requests, stamped with its last time', async () => {
  const { monitor, served } = await setup();
  try {
    const since = T0 + 1_000_001;
    const until = T0 + 1_000_000 + 700 * 1000;
    const h = JSON.parse(
      (await get(`${served.url}/api/history?resolution=tick&since=${since}&until=${until}&maxPoints=70`)).text,
    );
    const full = monitor.getHistory({ resolution: 'tick', since, until });
    assert.is(full.t.length, 700);
    assert.is(h.pointsInRange, 700);
    assert.is(h.pointsPerValue, 10);
    assert.is(h.t.length, 70);
    const reduced = monitor.getHistory({ resolution: 'tick', since, until, maxPoints: 70 });
    for (let v = 0; v < 70; v++) {
      const run = (f: keyof typeof full.fields) => full.fields[f].slice(v * 10, v * 10 + 10);
      assert.is(h.t[v], full.t[v * 10 + 9]);
      const requests = run('requests').reduce((a, b) => a + b, 0);
      const errors = run('errors').reduce((a, b) => a + b, 0);
      assert.is(reduced.fields.requests[v], requests);
      assert.is(reduced.fields.errors[v], errors);
      assert.is(reduced.fields.errorRate[v], errors / requests);
      assert.is(h.fields.p99[v], Math.max(...run('p99').filter((x) => !Number.isNaN(x))));
      const rps = run('rps');
      assert.ok(Math.abs(h.fields.rps[v] - rps.reduce((a, b) => a + b, 0) / rps.length) < 1e-9);
    }
  } finally {
    monitor.close();
  }
});

test('bad maxPoints, until and request targets are 400; getHistory checks maxPoints too', async () => {
  const { monitor, served } = await setup();
  try {
    for (const q of ['maxPoints=0', 'maxPoints=10001', 'maxPoints=1.5', 'maxPoints=x', 'until=-1']) {
      const r = await get(`${served.url}/api/history?resolution=tick&${q}`);
      assert.is(r.status, 400, q);
      assert.match(
        r.text,
        q.startsWith('until') ? /until must be a time/ : /maxPoints must be a whole number from 1 to 10000/,
      );
    }
    // A target no URL parser takes is the client's mistake, not the server's.
    const { request } = await import('node:http');
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({ host: served.host, port: served.port, path: '//[', method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.is(status, 400);
    assert.throws(
      () => monitor.getHistory({ maxPoints: 0 }),
      /maxPoints must be a whole number from 1 to 10000 \(got 0\)/,
    );
  } finally {
    monitor.close();
  }
});

test('/metrics answers while dashboards keep asking for the largest history', async () => {
  const { monitor, served } = await setup();
  try {
    let stop = false;
    let asked = 0;
    const dashboards = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = await get(`${served.url}/api/history?resolution=tick&maxPoints=10000`);
        assert.is(r.status, 200);
        asked++;
      }
    });
    // Scrapes in the middle of the dashboards' requests: each completes, whole.
    for (let i = 0; i < 5; i++) {
      const r = await get(`${served.url}/metrics`);
      assert.is(r.status, 200);
      assert.match(r.text, /streamgauge_requests_total \d+/);
    }
    stop = true;
    await Promise.all(dashboards);
    assert.ok(asked >= 8, `${asked} history requests`);
  } finally {
    monitor.close();
  }
});

test.run();
