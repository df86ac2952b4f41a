// A real Prometheus (2.42, native histograms on, 1 s scrapes) scraping the primary of a real
// node:cluster whose worker is killed and replaced mid-run: no counter reset, the totals exact,
// and histogram_quantile() of the merged native histogram in the bucket of the exact p99.
import type { Worker } from 'node:cluster';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketIndex, upperBound } from '../src/buckets.js';
import { clusterMetrics } from '../src/index.js';
import { FLEET_ROUTES, type Op, query, scalar, seededOps, startPrometheus, waitFor } from './fixtures/expo-helpers.js';
import { exactQuantileOf } from './fixtures/quantiles.js';
import { exited, fork, record } from './fixtures/cluster.js';

test('Prometheus scraping the primary: a worker killed and replaced, no reset, exact totals, p99 in the exact bucket', async () => {
  const metrics = clusterMetrics();
  const served = await metrics.serve();
  const prom = await startPrometheus([{ name: 'cluster', targets: [`127.0.0.1:${served.port}`] }]);
  const live: Worker[] = [];
  try {
    const [a, b] = await Promise.all([fork(), fork()]);
    live.push(a, b);
    const recorded: Op[] = [];
    const load = async (w: Worker, seed: number, n: number) => {
      const ops = seededOps(seed, n, FLEET_ROUTES.length, 4);
      await record(w, ops);
      recorded.push(...ops);
    };
    const scraped = (n: number) =>
      waitFor(
        prom,
        `Prometheus to scrape ${n} requests`,
        async () => (await query(prom.base, `streamgauge_service_requests_total == ${n}`)).length === 1,
      );

    await Promise.all([load(a, 11, 1500), load(b, 12, 1000)]);
    await scraped(recorded.length);
    // Everything a recorded is reported (a scrape asks for it), then it is killed.
    await metrics.collect();
    a.process.kill('SIGKILL');
    await exited(a);
    await waitFor(
      prom,
      'a scrape after the kill',
      async () => (await query(prom.base, 'streamgauge_cluster_exited_workers_total == 1')).length === 1,
    );
    const c = await fork();
    live.push(c);
    await waitFor(
      prom,
      'a scrape with the replacement',
      async () => (await query(prom.base, 'streamgauge_cluster_workers == 2')).length === 1,
    );
    await Promise.all([load(b, 13, 700), load(c, 14, 800)]);
    await scraped(recorded.length);

    // No counter was ever seen going backwards: Prometheus counts no reset in any series.
    for (const name of [
      'requests',
      'failed_requests',
      'errors',
      'messages',
      'service_requests',
      'service_failed_requests',
    ]) {
      const seen = await query(prom.base, `resets(streamgauge_${name}_total[10m])`);
      assert.ok(seen.length > 0, name);
      for (const s of seen)
        assert.is(Number(s.value?.[1]), 0, `resets of streamgauge_${name}_total ${JSON.stringify(s.metric)}`);
    }
    for (const [i, route] of FLEET_ROUTES.entries()) {
      const n = recorded.filter((op) => op.route === i).length;
      assert.is(await scalar(prom.base, `streamgauge_requests_total{route=${JSON.stringify(route)}}`), n, route);
    }
    // The merged native histogram's p99 lies in the native bucket of the exact p99 of every record.
    const exact = exactQuantileOf(
      recorded.map((op) => op.ms),
      0.99,
    );
    const i = bucketIndex(exact * 1e-3, 7);
    const p99 = await scalar(prom.base, 'histogram_quantile(0.99, sum(streamgauge_request_duration_seconds))');
    assert.ok(
      p99 > upperBound(i - 1, 7) * (1 - 1e-12) && p99 <= upperBound(i, 7) * (1 + 1e-12),
      `PromQL p99 ${p99} s, exact ${exact * 1e-3} s`,
    );
  } finally {
    metrics.close();
    await served.close();
    await prom.stop();
    for (const w of live) w.kill();
    await Promise.all(live.map(exited));
  }
});

test.run();
