// clusterMetrics() / reportToPrimary(): real node:cluster workers, each with its own monitor, and
// one exposition in the primary for all of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clusterMetrics, decodeSnapshot, snapshotQuantile, type StreamPerformanceMonitor } from '../src/index.js';
import {
  ERROR_TYPES,
  FLEET_ROUTES,
  type Op,
  parseExposition,
  pick,
  sampleValue,
  seededOps,
} from './fixtures/expo-helpers.js';
import { exited, fork, record, workers } from './fixtures/cluster.js';
import { within } from './fixtures/wait.js';
import { testMonitor } from './fixtures/monitor.js';

/** The same ops recorded into one monitor here: what the merge must equal. */
function reference(ops: Op[]): StreamPerformanceMonitor {
  const monitor = testMonitor();
  const routes = FLEET_ROUTES.map((route) => monitor.series({ route }));
  for (const op of ops) {
    if (op.error) routes[op.route].recordError(op.error, op.ms);
    else routes[op.route].recordLatency(op.ms);
  }
  return monitor;
}

async function scrape(url: string): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`${url}/metrics`);
  assert.is(res.status, 200);
  return parseExposition(await res.text());
}

const requests = (p: ReturnType<typeof parseExposition>) =>
  pick(p, 'streamgauge_requests_total').reduce((n, s) => n + s.value, 0);

test('the primary serves one exposition: counters summed, histograms merged bucket for bucket, ratios from their parts', async () => {
  // Exact totals need every live worker's answer: wait for it (bounded) rather than the default
  // 500 ms, which a loaded machine can miss.
  const metrics = clusterMetrics({ timeoutMs: 30_000 });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const opsA = seededOps(1, 1500, FLEET_ROUTES.length, 4);
  const opsB = seededOps(2, 1000, FLEET_ROUTES.length, 40);
  try {
    await Promise.all([
      record(a, opsA, { connections: 3, utilization: 0.2 }),
      record(b, opsB, { connections: 2, utilization: 0.6 }),
    ]);
    const parsed = await scrape(served.url);
    const all = [...opsA, ...opsB];
    for (const [i, route] of FLEET_ROUTES.entries()) {
      const mine = all.filter((op) => op.route === i);
      assert.is(sampleValue(parsed, 'streamgauge_requests_total', { route }), mine.length, route);
      assert.is(
        sampleValue(parsed, 'streamgauge_failed_requests_total', { route }),
        mine.filter((op) => op.error).length,
        route,
      );
      for (const type of ERROR_TYPES) {
        const n = mine.filter((op) => op.error === type).length;
        if (n > 0) assert.is(sampleValue(parsed, 'streamgauge_errors_total', { route, error_type: type }), n);
      }
    }
    assert.is(sampleValue(parsed, 'streamgauge_active_connections', {}), 5);
    assert.is(sampleValue(parsed, 'streamgauge_worker_utilization_ratio', {}), 0.4);
    assert.is(sampleValue(parsed, 'streamgauge_cluster_workers', {}), 2);
    // The service totals the alert rules read: every request once.
    assert.is(sampleValue(parsed, 'streamgauge_service_requests_total', {}), all.length);
    assert.is(
      sampleValue(parsed, 'streamgauge_service_failed_requests_total', {}),
      all.filter((op) => op.error).length,
    );
    assert.is(sampleValue(parsed, 'streamgauge_service_request_duration_seconds_count', {}), all.length);

    // The merged histogram is the one a single monitor recording every op would have.
    const ref = reference(all);
    try {
      const own = parseExposition(ref.metrics().body as string);
      assert.equal(
        pick(parsed, 'streamgauge_request_duration_seconds_bucket').map((s) => [s.labels, s.value]),
        pick(own, 'streamgauge_request_duration_seconds_bucket').map((s) => [s.labels, s.value]),
      );
      const merged = decodeSnapshot(new Uint8Array(await (await fetch(`${served.url}/snapshot`)).arrayBuffer()));
      const exact = decodeSnapshot(ref.snapshot());
      for (const route of FLEET_ROUTES) {
        const m = merged.series.find((s) => s.labels.route === route);
        const e = exact.series.find((s) => s.labels.route === route);
        assert.equal(m?.latency.buckets, e?.latency.buckets, route);
        for (const q of [0.5, 0.99])
          assert.is(
            snapshotQuantile(merged, q, { route }),
            snapshotQuantile(exact, q, { route }),
            `${route} p${q * 100}`,
          );
      }
    } finally {
      ref.close();
    }
  } finally {
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test('a worker killed and replaced: its counts stay, no counter goes backwards, its gauges leave', async () => {
  // Exact totals need every live worker's answer: wait for it (bounded) rather than the default
  // 500 ms, which a loaded machine can miss.
  const metrics = clusterMetrics({ timeoutMs: 30_000 });
  const served = await metrics.serve();
  const [a, b] = await Promise.all([fork(), fork()]);
  const seen: number[] = [];
  const check = async () => {
    const p = await scrape(served.url);
    const n = requests(p);
    if (seen.length) assert.ok(n >= seen[seen.length - 1], `requests_total went from ${seen[seen.length - 1]} to ${n}`);
    seen.push(n);
    return p;
  };
  try {
    await Promise.all([
      record(a, seededOps(3, 800, 3, 4), { connections: 3 }),
      record(b, seededOps(4, 500, 3, 4), { connections: 2 }),
    ]);
    await check();
    assert.is(seen[0], 1300);
    // Killed mid-run (recording, between scrapes): what it reported stays in the totals.
    const load = record(a, seededOps(5, 400, 3, 4)).catch(() => {});
    a.process.kill('SIGKILL');
    await load;
    await exited(a);
    let p = await check();
    assert.ok(seen[1] >= 1300);
    assert.is(sampleValue(p, 'streamgauge_cluster_exited_workers_total', {}), 1);
    assert.is(sampleValue(p, 'streamgauge_cluster_workers', {}), 1);
    assert.is(sampleValue(p, 'streamgauge_active_connections', {}), 2);
    // Its replacement starts from zero; the totals go on from where they were.
    const c = await fork();
    await check();
    await record(c, seededOps(6, 300, 3, 4));
    await record(b, seededOps(7, 200, 3, 4));
    p = await check();
    assert.is(requests(p), seen[1] + 500);
    // A graceful stop sends its last counts before the worker leaves.
    await record(c, seededOps(8, 100, 3, 4));
    const closed = within(
      new Promise<void>((resolve) => c.on('message', (m: { cmd: string }) => m.cmd === 'closed' && resolve())),
      30_000,
      'the worker to close',
    );
    c.send({ cmd: 'close' });
    await closed;
    await exited(c);
    p = await check();
    assert.is(requests(p), seen[1] + 600);
    assert.is(sampleValue(p, 'streamgauge_service_requests_total', {}), seen[1] + 600);
    assert.is(sampleValue(p, 'streamgauge_cluster_exited_workers_total', {}), 2);
  } finally {
    metrics.close();
    await served.close();
    for (const w of workers) w.kill();
    await Promise.all([a, b].map(exited));
  }
});

test('with intervalMs, a worker reports unasked: killed before any scrape, its counts are kept', async () => {
  const metrics = clusterMetrics();
  const a = await fork({ REPORT_INTERVAL_MS: '100' });
  try {
    await record(a, seededOps(9, 250, 3, 4));
    // The next report it sends on its own carries what it recorded.
    await within(
      new Promise<void>((resolve) =>
        a.on(
          'message',
          (m: { type?: string; id?: number }) => m.type === 'streamgauge:snapshot' && m.id === 0 && resolve(),
        ),
      ),
      30_000,
      'a report sent unasked',
    );
    a.process.kill('SIGKILL');
    await exited(a);
    const merged = await metrics.collect();
    assert.is(
      merged.series.reduce((n, s) => n + s.counters.requests, 0),
      250,
    );
  } finally {
    metrics.close();
    a.kill();
    await exited(a);
  }
});

test('clusterMetrics checks where it runs and its options', () => {
  assert.throws(() => clusterMetrics({ timeoutMs: 0 }), /timeoutMs must be a finite number > 0/);
  const m = clusterMetrics();
  m.close();
  return m.collect().then(
    () => assert.unreachable('collect() after close()'),
    (err: Error) => assert.match(err.message, /after close/),
  );
});

test.run();
