// registerWithPromClient(): streamgauge's metrics in an existing prom-client Registry, next to the
// service's own metrics, in both of prom-client's formats.

import client from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collectFamilies, FAMILY_NAMES, UNPREFIXED_FAMILIES } from '../src/export/collect-families.js';
import { RUNTIME_FAMILIES } from '../src/export/runtime-families.js';
import type { StreamPerformanceMonitor } from '../src/index.js';
import { registerWithPromClient } from '../src/export/prom-client-bridge.js';
import {
  ERROR_TYPES,
  type Parsed,
  parseExposition,
  pick,
  promtool,
  seededOps,
  sampleValue,
} from './fixtures/expo-helpers.js';
import { testMonitor, withMonitor } from './fixtures/monitor.js';

const { Counter, Registry } = client;
const ROUTES = ['Chat/Stream', 'quote " back\\slash', 'new\nline <script>'];

function setup(): {
  monitor: StreamPerformanceMonitor;
  values: Map<string, number[]>;
  registry: client.Registry<client.RegistryContentType>;
} {
  const monitor = testMonitor();
  const values = new Map<string, number[]>(ROUTES.map((r) => [r, []]));
  const series = ROUTES.map((route) => monitor.series({ route }));
  for (const op of seededOps(99, 3000, ROUTES.length, 4)) {
    if (op.error) series[op.route].recordError(op.error, op.ms);
    else series[op.route].recordLatency(op.ms);
    values.get(ROUTES[op.route])?.push(op.ms);
  }
  monitor.tick();
  const registry = new Registry<client.RegistryContentType>();
  new Counter({ name: 'app_jobs_total', help: 'Jobs done by the app.', registers: [registry] }).inc(3);
  return { monitor, values, registry };
}

test('one registry serves its own metrics and ours; our histogram buckets are exact', async () => {
  const { monitor, values, registry } = setup();
  try {
    registerWithPromClient(monitor, registry);
    const text = await registry.metrics();
    const parsed = parseExposition(text);
    assert.is(sampleValue(parsed, 'app_jobs_total', {}), 3);
    assert.is(parsed.types.get('app_jobs_total'), 'counter');
    for (const route of ROUTES) {
      const recorded = values.get(route) as number[];
      assert.is(sampleValue(parsed, 'streamgauge_requests_total', { route }), recorded.length);
      assert.is(sampleValue(parsed, 'streamgauge_request_duration_seconds_count', { route }), recorded.length);
      const buckets = pick(parsed, 'streamgauge_request_duration_seconds_bucket', { route });
      assert.ok(buckets.length > 10);
      for (const b of buckets) {
        const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
        // The exact number of recorded values at or below the bound (ms × 1e-3, as the monitor converts).
        const below = recorded.filter((ms) => ms * 1e-3 <= le).length;
        assert.is(b.value, below, `${JSON.stringify(route)} le=${b.labels.le}`);
      }
    }
    // The same buckets as the monitor's own exposition.
    const own = parseExposition(monitor.metrics().body as string);
    assert.equal(
      pick(parsed, 'streamgauge_request_duration_seconds_bucket'),
      pick(own, 'streamgauge_request_duration_seconds_bucket'),
    );
    for (const type of ERROR_TYPES) {
      const n = pick(own, 'streamgauge_errors_total', { error_type: type }).reduce((a, s) => a + s.value, 0);
      assert.is(
        pick(parsed, 'streamgauge_errors_total', { error_type: type }).reduce((a, s) => a + s.value, 0),
        n,
        type,
      );
    }
    // Every family collectFamilies() produces is registered (FAMILY_NAMES is complete).
    const known = new Set(FAMILY_NAMES.map(([n]) => n));
    for (const f of collectFamilies(monitor)) assert.ok(known.has(f.name), `${f.name} is in FAMILY_NAMES`);
    for (const [name, type] of FAMILY_NAMES) {
      if (RUNTIME_FAMILIES.has(name)) continue; // registered only with { runtime: true }
      const exposed = `${UNPREFIXED_FAMILIES.has(name) ? '' : 'streamgauge_'}${name}${type === 'counter' ? '_total' : ''}`;
      assert.is(parsed.types.get(exposed), type, exposed);
    }
  } finally {
    monitor.close();
  }
});

test('figures are read at each scrape, not cached across them', async () => {
  const { monitor, registry } = setup();
  try {
    registerWithPromClient(monitor, registry);
    const before = sampleValue(parseExposition(await registry.metrics()), 'streamgauge_requests_total', {
      route: ROUTES[0],
    });
    monitor.series({ route: ROUTES[0] }).recordLatency(1);
    const after = sampleValue(parseExposition(await registry.metrics()), 'streamgauge_requests_total', {
      route: ROUTES[0],
    });
    assert.is(after, before + 1);
    const json = await registry.getMetricsAsJSON();
    const requests = json.find((m) => m.name === 'streamgauge_requests_total');
    assert.ok(requests);
  } finally {
    monitor.close();
  }
});

function checkOpenMetrics(text: string): Parsed {
  assert.ok(text.endsWith('# EOF\n'), 'ends with # EOF');
  assert.not.match(text, /_total_total/);
  const parsed = parseExposition(text);
  assert.is(parsed.types.get('streamgauge_requests'), 'counter');
  assert.is(parsed.types.get('app_jobs'), 'counter');
  assert.ok(pick(parsed, 'streamgauge_requests_total').length >= ROUTES.length);
  assert.is(sampleValue(parsed, 'app_jobs_total', {}), 3);
  for (const [name, type] of parsed.types) {
    if (type === 'counter')
      assert.not.ok(name.endsWith('_total'), `${name}: OpenMetrics counter families are named without _total`);
  }
  return parsed;
}

test('OpenMetrics mode: no _total_total, whether the content type is set before or after registering', async () => {
  for (const order of ['before', 'after'] as const) {
    const { monitor, registry } = setup();
    try {
      if (order === 'before') registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      registerWithPromClient(monitor, registry);
      if (order === 'after') registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      checkOpenMetrics(await registry.metrics());
      // And back to text 0.0.4: counters named with _total again.
      registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      const text = await registry.metrics();
      assert.not.match(text, /_total_total/);
      assert.is(parseExposition(text).types.get('streamgauge_requests_total'), 'counter', order);
    } finally {
      monitor.close();
    }
  }
});

test('promtool accepts the registry output (text 0.0.4)', async () => {
  const { monitor, registry } = setup();
  try {
    registerWithPromClient(monitor, registry);
    const { status, output } = promtool(await registry.metrics());
    assert.is(output, '', output);
    assert.is(status, 0);
  } finally {
    monitor.close();
  }
});

test('the returned function removes ours and leaves the registry as it was; a name clash changes nothing', async () => {
  const { monitor, registry } = setup();
  try {
    const alone = await registry.metrics();
    const unregister = registerWithPromClient(monitor, registry);
    assert.match(await registry.metrics(), /streamgauge_requests_total/);
    // Registering twice clashes on the first name: it throws, and nothing half-registered stays.
    assert.throws(() => registerWithPromClient(monitor, registry), /already been registered/);
    assert.match(await registry.metrics(), /streamgauge_requests_total/);
    unregister();
    const after = await registry.metrics();
    assert.not.match(after, /streamgauge_/);
    assert.is(after, alone);
    // Free to register again (another prefix works side by side).
    const again = registerWithPromClient(monitor, registry, { prefix: 'edge_' });
    const text = await registry.metrics();
    assert.match(text, /^edge_requests_total\{route="Chat\/Stream"\} \d+$/m);
    again();
    assert.is(await registry.metrics(), alone);
  } finally {
    monitor.close();
  }
});

test('registerWithPromClient checks its arguments', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (monitor) => {
    assert.throws(
      () => registerWithPromClient(monitor, {} as client.Registry),
      /registry must be a prom-client Registry/,
    );
    assert.throws(
      () => registerWithPromClient(monitor, new Registry(), { cacheMs: -1 }),
      /cacheMs must be a number >= 0/,
    );
  });
});

test("under prom-client's AggregatorRegistry, counters and histograms add up and ratios, limits and quantiles are not summed", async () => {
  // Two cluster workers: 10 requests (2 failed, 4 of 4 cache lookups hit) and 10 (0 failed, 0 of 4 hit).
  const workers = [
    { errors: 2, hits: 4, misses: 0, connections: 3, utilization: 0.2 },
    { errors: 0, hits: 0, misses: 4, connections: 2, utilization: 0.6 },
  ];
  const monitors: StreamPerformanceMonitor[] = [];
  try {
    const json = [];
    for (const w of workers) {
      const monitor = testMonitor({ maxSeries: 32 });
      monitors.push(monitor);
      for (let i = 0; i < 10; i++) {
        if (i < w.errors) monitor.recordError('timeout', 5);
        else monitor.recordLatency(1 + i);
      }
      for (let i = 0; i < w.hits; i++) monitor.recordCacheHit();
      for (let i = 0; i < w.misses; i++) monitor.recordCacheMiss();
      for (let i = 0; i < w.connections; i++) monitor.connectionOpened();
      monitor.updateWorkerUtilization(w.utilization);
      monitor.tick();
      const registry = new Registry();
      registerWithPromClient(monitor, registry);
      json.push(await registry.getMetricsAsJSON());
    }
    const parsed = parseExposition(await client.AggregatorRegistry.aggregate(json).metrics());
    assert.is(sampleValue(parsed, 'streamgauge_requests_total', {}), 20);
    assert.is(sampleValue(parsed, 'streamgauge_failed_requests_total', {}), 2);
    assert.is(sampleValue(parsed, 'streamgauge_cache_hits_total', {}), 4);
    assert.is(sampleValue(parsed, 'streamgauge_request_duration_seconds_count', {}), 20);
    const own = monitors.map((m) => parseExposition(m.metrics().body as string));
    for (const b of pick(parsed, 'streamgauge_request_duration_seconds_bucket')) {
      const parts = own.map((p) => sampleValue(p, 'streamgauge_request_duration_seconds_bucket', b.labels));
      assert.is(b.value, parts[0] + parts[1], `le=${b.labels.le}`);
    }
    assert.is(sampleValue(parsed, 'streamgauge_active_connections', {}), 5);
    assert.is(sampleValue(parsed, 'streamgauge_worker_utilization_ratio', {}), 0.4);
    // Summed, these read 0.333, 1 and 64; none of them is a sum of the workers' figures.
    assert.is(sampleValue(parsed, 'streamgauge_series_limit', {}), 32);
    assert.is(pick(parsed, 'streamgauge_error_ratio').length, 0);
    assert.is(pick(parsed, 'streamgauge_cache_hit_ratio').length, 0);
    assert.is(pick(parsed, 'streamgauge_request_duration_window_seconds').length, 0);
    // What stands in for them: the ratio from the summed counters (PromQL's sum(a) / sum(b)).
    assert.is(
      sampleValue(parsed, 'streamgauge_cache_hits_total', {}) /
        (sampleValue(parsed, 'streamgauge_cache_hits_total', {}) +
          sampleValue(parsed, 'streamgauge_cache_misses_total', {})),
      0.5,
    );
  } finally {
    for (const m of monitors) m.close();
  }
});

test.run();
