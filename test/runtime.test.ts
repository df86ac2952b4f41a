// The process and runtime figures side by side with prom-client's collectDefaultMetrics() in the
// same process: the same names mean the same thing, and a 2 s event-loop stall is still visible
// in a scrape taken 5 s later — in the text format and in protobuf — while the tick's own view
// has moved on.
import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { upperBound } from '../src/core/buckets.js';
import { registerWithPromClient, StreamPerformanceMonitor } from '../src/index.js';
import {
  decodeProtobuf,
  labelsOf,
  nativeBuckets,
  type Parsed,
  parseExposition,
  pick,
  promtool,
} from './fixtures/expo-helpers.js';
import { sleep, until } from './fixtures/wait.js';
import { testMonitor, withMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const PROTOBUF = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited';

/** prom-client's text, parsed (it prints NaN as `Nan`, e.g. the lag mean before any sample). */
const promText = async (registry: client.Registry): Promise<Parsed> =>
  parseExposition((await registry.metrics()).replace(/ Nan$/gm, ' NaN'));

const one = (parsed: Parsed, name: string): number => {
  const samples = pick(parsed, name);
  assert.is(samples.length, 1, `${name}: one sample`);
  return samples[0].value;
};

/** Blocks the event loop for `ms` (the stall under test). */
function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

test('same names, same meaning as prom-client; a 2 s stall shows in a scrape 5 s later, in text and protobuf', async () => {
  const monitor = new StreamPerformanceMonitor({ logger: false, collectionInterval: 500 });
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  try {
    // Garbage for a few minor GCs, then both see them.
    let keep = 0;
    for (let i = 0; i < 200; i++) keep += new Array(50_000).fill(i).length;
    assert.ok(keep > 0);
    await until('a minor GC recorded', 10_000, () => internalsOf(monitor).runtimeHistogram(1).count > 0, 20);

    // Scrape both: prom-client's lag gauges start over from here, ours too.
    const before = parseExposition(monitor.metrics().body as string);
    const promBefore = await promText(registry);

    // A few timer callbacks first: Node's delay histogram, once reset by prom-client's collect,
    // measures nothing until its timer has fired again (a stall right after a collect is lost there).
    const samples = internalsOf(monitor).runtimeHistogram(0).count;
    await until(
      'event-loop timer callbacks',
      5000,
      () => internalsOf(monitor).runtimeHistogram(0).count >= samples + 5,
      10,
    );
    busyWait(2000);
    const stallEnd = performance.now();
    const ticksAtStall = monitor.getHistory().t.length;
    // Five seconds and several ticks later (condition waits, no fixed sleep).
    await until(
      '5 s after the stall, and ticks',
      20_000,
      () => performance.now() - stallEnd >= 5000 && monitor.getHistory().t.length >= ticksAtStall + 5,
      100,
    );

    const text = parseExposition(monitor.metrics().body as string);
    const prom = await promText(registry);

    // The stall is in the scrape: our histogram (everything since start) and the max since the last scrape.
    const count = one(text, 'nodejs_eventloop_delay_seconds_count');
    const atOrBelow1s = pick(text, 'nodejs_eventloop_delay_seconds_bucket', { le: '1' })[0].value;
    assert.ok(count - atOrBelow1s >= 1, `a delay above 1 s in the histogram (${count - atOrBelow1s})`);
    assert.ok(
      one(text, 'nodejs_eventloop_lag_max_seconds') >= 2,
      `ours: lag max ${one(text, 'nodejs_eventloop_lag_max_seconds')}`,
    );
    assert.ok(
      one(prom, 'nodejs_eventloop_lag_max_seconds') >= 2,
      `prom-client: lag max ${one(prom, 'nodejs_eventloop_lag_max_seconds')}`,
    );
    // Same meaning: the same stall, measured the same way (interval between timer callbacks).
    assert.ok(
      Math.abs(one(text, 'nodejs_eventloop_lag_max_seconds') - one(prom, 'nodejs_eventloop_lag_max_seconds')) < 0.25,
    );
    const p50 = one(text, 'nodejs_eventloop_lag_p50_seconds');
    assert.ok(p50 >= 0.009 && p50 < 0.1, `p50 near the 10 ms resolution when the loop is free (${p50})`);
    // The per-tick view has moved on; the history kept the tick of the stall.
    const lastTick = internalsOf(monitor).lastTickEvent()?.system;
    assert.ok(
      lastTick !== undefined && lastTick.eventLoopDelayMaxMs < 1000,
      `last tick max ${lastTick?.eventLoopDelayMaxMs}`,
    );
    assert.ok(
      Math.max(...monitor.getHistory().fields.eventLoopDelayMs) >= 1900,
      'a tick in the history holds the stall',
    );

    // Protobuf: the same histogram, native and classic.
    const fams = decodeProtobuf(monitor.metrics(PROTOBUF).body as Uint8Array);
    const delay = fams.find((f) => f.name === 'nodejs_eventloop_delay_seconds');
    assert.ok(delay, 'nodejs_eventloop_delay_seconds in protobuf');
    const h = delay.metric[0].histogram;
    const above = nativeBuckets(h)
      .filter((b) => upperBound(b.index - 1, h.schema) >= 1.9)
      .reduce((n, b) => n + b.count, 0);
    assert.ok(above >= 1, `native buckets above 1.9 s: ${above}`);
    const classic1s = h.bucket.find((b: { upperBound: number }) => b.upperBound === 1);
    assert.ok(h.sampleCount - (classic1s?.cumulativeCount ?? 0) >= 1, 'classic buckets above 1 s');
    const gc = fams.find((f) => f.name === 'nodejs_gc_duration_seconds');
    assert.ok(gc?.metric.some((m: { label: unknown }) => labelsOf(m).kind === 'minor'));

    // CPU: counters of seconds, moving together (prom-client's count from its registration).
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_cpu_system_seconds_total',
      'process_cpu_seconds_total',
    ]) {
      assert.is(text.types.get(name), 'counter', name);
      const ours = one(text, name) - one(before, name);
      const theirs = one(prom, name) - one(promBefore, name);
      assert.ok(Math.abs(ours - theirs) < 0.15, `${name}: ours +${ours}, prom-client +${theirs}`);
      assert.ok(one(text, name) >= one(prom, name), `${name}: ours since the process started`);
    }
    assert.ok(
      one(text, 'process_cpu_user_seconds_total') - one(before, 'process_cpu_user_seconds_total') >= 0.2,
      'the busy loop used CPU',
    );
    assert.ok(Math.abs(one(text, 'process_start_time_seconds') - one(prom, 'process_start_time_seconds')) <= 1);
    assert.ok(
      Math.abs(one(text, 'process_resident_memory_bytes') / one(prom, 'process_resident_memory_bytes') - 1) < 0.1,
    );
    assert.ok(
      Math.abs(one(text, 'nodejs_heap_size_total_bytes') / one(prom, 'nodejs_heap_size_total_bytes') - 1) < 0.2,
    );
    assert.is(one(text, 'process_max_fds'), one(prom, 'process_max_fds'));
    assert.ok(Math.abs(one(text, 'process_open_fds') - one(prom, 'process_open_fds')) <= 3);
    assert.equal(pick(text, 'nodejs_version_info'), pick(prom, 'nodejs_version_info'));
    const spaces = (p: Parsed) =>
      pick(p, 'nodejs_heap_space_size_total_bytes')
        .map((s) => s.labels.space)
        .sort();
    assert.equal(spaces(text), spaces(prom));
    // GC pauses by kind: every pause prom-client saw, we saw (it keeps the first of each batch only).
    const minor = (p: Parsed) => pick(p, 'nodejs_gc_duration_seconds_count', { kind: 'minor' })[0]?.value ?? 0;
    assert.ok(
      minor(prom) >= 1 && minor(text) >= minor(prom),
      `minor GCs: ours ${minor(text)}, prom-client ${minor(prom)}`,
    );
    // prom-client's GC buckets, each at the first native boundary at or above it (exact counts).
    const gcBounds = pick(text, 'nodejs_gc_duration_seconds_bucket', { kind: 'minor' }).map((s) => Number(s.labels.le));
    assert.is(gcBounds.length, 7);
    for (const [i, b] of [0.001, 0.01, 0.1, 1, 2, 5].entries())
      assert.ok(gcBounds[i] >= b && gcBounds[i] < b * 1.006, `le ${gcBounds[i]} for ${b}`);

    // Every family prom-client's default metrics expose, we expose under the same name and type.
    for (const [name, type] of prom.types) {
      const parts = [name, `${name}_bucket`, `${name}_count`, `${name}_sum`];
      // A family without samples in prom-client's scrape (no libuv request in flight just then) has nothing to compare.
      if (!prom.samples.some((s) => parts.includes(s.name))) continue;
      assert.is(text.types.get(name), type, `${name}: ${type}`);
    }
    const lint = promtool(monitor.metrics().body as string);
    assert.is(lint.output, '', lint.output);
    assert.is(lint.status, 0);
  } finally {
    monitor.close();
  }
});

test('eventLoopResolution sets the delay timer: a free loop reads about that much delay', async () => {
  await withMonitor({ logger: false, autoStart: false, eventLoopResolution: 50 }, async (monitor) => {
    monitor.metrics(); // the lag gauges start over here
    await until('delay samples', 10_000, () => internalsOf(monitor).runtimeHistogram(0).count >= 4, 20);
    const t = parseExposition(monitor.metrics().body as string);
    assert.ok(one(t, 'nodejs_eventloop_lag_min_seconds') >= 0.045, `min ${one(t, 'nodejs_eventloop_lag_min_seconds')}`);
    assert.match(t.help.get('nodejs_eventloop_delay_seconds') ?? '', /50 ms timer/);
  });
});

test('runtimePrefix keeps ours apart from prom-client default metrics in one registry', async () => {
  const monitor = testMonitor();
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  try {
    const prefixed = parseExposition(monitor.metrics(undefined, { runtimePrefix: 'streamgauge_' }).body as string);
    assert.is(prefixed.types.get('streamgauge_process_cpu_user_seconds_total'), 'counter');
    assert.is(prefixed.types.get('streamgauge_nodejs_eventloop_delay_seconds'), 'histogram');
    assert.not.ok(prefixed.types.has('process_cpu_user_seconds_total'));
    const none = parseExposition(monitor.metrics(undefined, { runtime: false }).body as string);
    assert.not.ok([...none.types.keys()].some((n) => n.startsWith('process_') || n.startsWith('nodejs_')));

    // The bridge leaves the runtime to the registry's own default metrics unless asked.
    const remove = registerWithPromClient(monitor, registry);
    remove();
    assert.throws(() => registerWithPromClient(monitor, registry, { runtime: true }), /already|registered/);
    const undo = registerWithPromClient(monitor, registry, { runtime: true, runtimePrefix: 'streamgauge_' });
    const both = await promText(registry);
    assert.is(both.types.get('process_cpu_user_seconds_total'), 'counter');
    assert.is(both.types.get('streamgauge_process_cpu_user_seconds_total'), 'counter');
    undo();
    assert.throws(() => monitor.metrics(undefined, { runtimePrefix: 3 as unknown as string }), /runtimePrefix/);
  } finally {
    monitor.close();
  }
  await sleep(0);
});

test.run();
