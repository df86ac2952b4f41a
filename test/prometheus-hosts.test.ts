// Many hosts, one Prometheus: three monitors in three processes (test/fixtures/host-load.ts), each
// serving its own /metrics, scraped by a real Prometheus (Debian's 2.42, native histograms on,
// 1 s scrapes). Two run at scale 7, one at scale 5. Each records a seeded load at a steady rate;
// then the README's queries — histogram_quantile over sum(rate()) of the native histogram, and
// sum(rate()) of the request counter — are checked against the exact figures of every record.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bucketIndex, relativeErrorBound, upperBound } from '../src/buckets.js';
import {
  type PrometheusServer,
  type PromSample,
  query,
  ROOT,
  rateFactor,
  requirePrometheus,
  scalar,
  seededOps,
  startPrometheus,
  stopProcess,
  waitFor,
} from './fixtures/expo-helpers.js';
import { exactQuantileOf } from './fixtures/quantiles.js';

const HOSTS = [
  { seed: 1901, requests: 3000, scale: 7 },
  { seed: 1902, requests: 2400, scale: 7 },
  { seed: 1903, requests: 3000, scale: 5 },
] as const;
const PER_SECOND = 500; // each host: 5–6 s of load
const H = 'streamgauge_request_duration_seconds{job="hosts"}';
const C = 'streamgauge_requests_total{job="hosts"}';

interface Host {
  child: ChildProcess;
  port: number;
  /** Starts the load; resolves with the number recorded once the host has recorded all of it. */
  go(): Promise<number>;
}

const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];
test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts one host and waits (bounded) for the line with its port. */
async function startHost(seed: number, requests: number, scale: number): Promise<Host> {
  const args = [String(seed), String(requests), String(scale), String(PER_SECOND)];
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/host-load.ts'), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  cleanups.push(() => stopProcess(child));
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const next = (what: string, ms: number) =>
    new Promise<Record<string, number>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host ${seed}: no ${what} within ${ms} ms\n${stderr}`)), ms);
      const onExit = (code: number | null) =>
        reject(new Error(`host ${seed} exited (${code}) before ${what}\n${stderr}`));
      child.once('exit', onExit);
      lines.once('line', (line) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(JSON.parse(line));
      });
    });
  const { port } = await next('port', 30_000);
  return {
    child,
    port,
    go() {
      const done = next('end of its load', 60_000);
      child.stdin?.write('go\n');
      return done.then((m) => m.done);
    },
  };
}

/** The native bucket (lower, upper] at `scale` that holds `seconds`. */
function bucketOf(seconds: number, scale: number): [number, number] {
  const i = bucketIndex(seconds, scale);
  return [upperBound(i - 1, scale), upperBound(i, scale)];
}

function inBucket(v: number, [lo, hi]: [number, number], what: string): void {
  assert.ok(v > lo * (1 - 1e-12) && v <= hi * (1 + 1e-12), `${what}: ${v} outside the bucket (${lo}, ${hi}]`);
}

test('three hosts, one Prometheus: cross-instance p99 and total rate from PromQL agree with every record', async () => {
  requirePrometheus();
  const hosts = await Promise.all(HOSTS.map((h) => startHost(h.seed, h.requests, h.scale)));
  const instance = hosts.map((h) => `127.0.0.1:${h.port}`);
  const prom: PrometheusServer = await startPrometheus([{ name: 'hosts', targets: instance }]);
  children.push(prom.proc);
  cleanups.push(() => prom.stop());

  // Every host scraped once before its load, counter and histogram at zero: the 1 m range below
  // then starts from zero, so rate() and the histogram's rate() see all of the load.
  await waitFor(prom, 'a first scrape of every host, at zero', async () => {
    const [c, h] = await Promise.all([query(prom.base, C), query(prom.base, `histogram_count(${H})`)]);
    return [c, h].every((r) => r.length === hosts.length && r.every((s) => Number(s.value?.[1]) === 0));
  });
  const loadStart = Date.now() / 1000;
  assert.equal(
    await Promise.all(hosts.map((h) => h.go())),
    HOSTS.map((h) => h.requests),
  );

  // What the hosts recorded, regenerated from their seeds.
  const ops = HOSTS.map((h) => seededOps(h.seed, h.requests, 1, 3));
  const total = ops.reduce((n, o) => n + o.length, 0);
  await waitFor(prom, 'every host scraped after its load', async () => {
    const [c, h] = await Promise.all([query(prom.base, `sum(${C})`), query(prom.base, `histogram_count(sum(${H}))`)]);
    return [c, h].every((r) => Number(r[0]?.value?.[1]) === total);
  });
  // Evaluated at one instant T, the 1 m range holding the whole load (the test runs well under 1 m).
  const T = Date.now() / 1000; // whole ms, as Prometheus takes it
  const W = 60;
  assert.ok(T - W < loadStart, 'the 1 m range starts before the load');

  // Counters: exact at the end, per host and summed.
  assert.is(await scalar(prom.base, `sum(${C})`, T), total);
  for (const [i, inst] of instance.entries()) {
    assert.is(
      await scalar(prom.base, `streamgauge_requests_total{job="hosts",instance="${inst}"}`, T),
      HOSTS[i].requests,
      inst,
    );
  }

  // Total rate. Every record lies inside [T-1m, T], so the true rate over the range is total / 60 s.
  // rate() takes each host's increase between its first and last sample in the range (here: zero,
  // then its total) and extrapolates it to the range's end when the last sample is under 1.1 scrape
  // intervals from it, else by half an interval (not to the start: a counter is not extrapolated
  // below zero). So sum(rate()) = Σ total_i · factor_i exactly, with factor_i from the samples'
  // timestamps, and it lies between total / 60 s and (1 + 1.1 · interval / sampled span) times that.
  const range = await query(prom.base, `${C}[1m]`, T);
  assert.is(range.length, hosts.length);
  let expected = 0;
  let slack = 0; // the largest 1.1 · interval / sampled span
  for (const s of range) {
    const points = (s.values ?? []).map(([t, v]) => [Number(t), Number(v)] as const);
    const i = instance.indexOf(s.metric.instance);
    assert.ok(points.length >= 3, `${s.metric.instance}: ${points.length} samples`);
    assert.is(points[0][1], 0, `${s.metric.instance}: the range begins before its load`);
    assert.is(points[points.length - 1][1], HOSTS[i].requests);
    // Timestamps as whole ms before T: seconds since 1970 as floats would cost the 1e-9 below.
    const times = points.map(([t]) => (Math.round(t * 1000) - Math.round(T * 1000)) / 1000);
    expected += HOSTS[i].requests * rateFactor(times, 0, HOSTS[i].requests, 0, W);
    slack = Math.max(slack, 1.1 / (times.length - 1));
  }
  const promRate = await scalar(prom.base, `sum(rate(${C}[1m]))`, T);
  assert.ok(Math.abs(promRate / expected - 1) <= 1e-9, `sum(rate()) ${promRate}/s, expected ${expected}/s`);
  const trueRate = total / W;
  assert.ok(
    promRate >= trueRate * (1 - 1e-9) && promRate <= trueRate * (1 + slack),
    `sum(rate()) ${promRate}/s vs the true ${trueRate}/s`,
  );
  const promIncrease = await scalar(prom.base, `sum(increase(${C}[1m]))`, T);
  assert.ok(Math.abs(promIncrease / (expected * W) - 1) <= 1e-9, `sum(increase()) ${promIncrease}`);

  // p99 across the hosts. The sum of histograms of scales 7 and 5 is a histogram of scale 5: each
  // bucket of the sum spans 2^(1/32). Prometheus 2.42 interpolates inside the bucket holding the
  // rank, so the PromQL p99 and the exact p99 share a bucket: relative error < 2^(2^-5) - 1, i.e.
  // (1 + relativeErrorBound(5))^2 - 1.
  const all = ops.flat().map((o) => o.ms * 1e-3);
  const exact = exactQuantileOf(all, 0.99);
  const p99 = await scalar(prom.base, `histogram_quantile(0.99, sum(rate(${H}[1m])))`, T);
  inBucket(p99, bucketOf(exact, 5), 'cross-instance p99, scales 7+7+5');
  assert.ok(Math.abs(p99 / exact - 1) <= (1 + relativeErrorBound(5)) ** 2 - 1, `p99 ${p99} vs exact ${exact}`);
  const merged = await query(prom.base, `sum(rate(${H}[1m]))`, T);
  assertScale(merged[0]?.histogram, 5, 'the sum over scales 7, 7 and 5');

  // The two scale-7 hosts alone keep scale 7 and its finer bound.
  const fine = `${H.slice(0, -1)},instance=~"${instance[0]}|${instance[1]}"}`;
  const exactFine = exactQuantileOf(
    [...ops[0], ...ops[1]].map((o) => o.ms * 1e-3),
    0.99,
  );
  const p99Fine = await scalar(prom.base, `histogram_quantile(0.99, sum(rate(${fine}[1m])))`, T);
  inBucket(p99Fine, bucketOf(exactFine, 7), 'cross-instance p99, scales 7+7');
  assert.ok(
    Math.abs(p99Fine / exactFine - 1) <= (1 + relativeErrorBound(7)) ** 2 - 1,
    `p99 ${p99Fine} vs exact ${exactFine}`,
  );
  assertScale((await query(prom.base, `sum(rate(${fine}[1m]))`, T))[0]?.histogram, 7, 'the sum over scales 7 and 7');

  // The summed histogram counts every record, as the counters do.
  const count = await scalar(prom.base, `histogram_count(sum(${H}))`, T);
  assert.is(count, total);
});

/** Every positive bucket of a histogram from the query API spans one bucket of `scale`. */
function assertScale(h: PromSample['histogram'], scale: number, what: string): void {
  assert.ok(h, `${what}: a native histogram`);
  // The API gives each bucket as [boundary rule, lower, upper, count].
  const all = (h[1] as { buckets?: Array<[number, string, string, string]> }).buckets ?? [];
  const buckets = all.filter(([, lo]) => Number(lo) > 0);
  assert.ok(buckets.length > 10, `${what}: ${buckets.length} buckets`);
  for (const [, lo, hi] of buckets) {
    const ratio = Number(hi) / Number(lo);
    assert.ok(
      Math.abs(ratio / 2 ** (2 ** -scale) - 1) < 1e-9,
      `${what}: bucket (${lo}, ${hi}] is not of scale ${scale}`,
    );
  }
}

test.run();
