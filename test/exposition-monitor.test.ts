// A real monitor's exposition: monitor.metrics() in all three formats with hostile label values
// and error types, checked by parsing it back and by promtool; serve() over HTTP (negotiation,
// gzip, /debug, /snapshot, 404/405, 127.0.0.1 by default); naming conventions; the overflow
// series past maxSeries.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { render } from '../src/export/exposition.js';
import {
  CountsArena,
  collectFamilies,
  collectFamiliesInto,
  UNPREFIXED_FAMILIES,
} from '../src/export/collect-families.js';
import type { StreamPerformanceMonitor } from '../src/index.js';
import {
  bucketList,
  checkNativeHistogram,
  type DenseBuckets,
  type MetricFamily,
  type NativeHistogram,
} from '../src/core/family-model.js';
import { renderOpenMetrics, renderPrometheusText } from '../src/export/prometheus-text.js';
import { renderProtobuf } from '../src/export/prometheus-protobuf.js';
import { metricsHandler } from '../src/serve/serve.js';
import { decodeSnapshot } from '../src/export/snapshot.js';
import {
  type Decoded,
  decodeProtobuf,
  labelsOf,
  nativeBuckets,
  type Parsed,
  parseExposition,
  pick,
  PROM_CLIENT_TOTAL_GAUGES,
  promtool,
  sampleValue,
} from './fixtures/expo-helpers.js';
import { seededRandom } from './fixtures/random.js';
import { handClock, quietMonitor, testMonitor, withMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const HOSTILE = [
  'plain',
  'quote " inside',
  'back\\slash \\n not a newline',
  'new\nline\n',
  '<script>alert("x")</script>',
  'ünïcødé ✓ 😀 日本',
  'tab\tcarriage\rreturn',
  '} 1\nfake_metric 2',
];
const ERROR_TYPES = ['timeout', 'bad "type"\n<script>', 'ünï ✓ \\'];
const EXTRA = ['extra-1', 'extra-2', 'extra-3']; // label sets past maxSeries
const MAX_SERIES = HOSTILE.length + 1; // the default series takes one slot
const OVERFLOW = { streamgauge_overflow: 'true' };

const PROMETHEUS_ACCEPT =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const OM_ACCEPT = 'application/openmetrics-text;version=1.0.0';
const TEXT_ACCEPT = 'text/plain;version=0.0.4';

interface Expected {
  requests: number;
  errors: Record<string, number>;
  latencies: number;
  /** Label sets recorded into this series (each: one session, batch, backpressure wait, 3 messages out). */
  sets: number;
}

/** A monitor with known contents in every kind of family; `expected` by label set. */
function build(): { monitor: StreamPerformanceMonitor; expected: Map<string, Expected> } {
  const monitor = testMonitor({ maxSeries: MAX_SERIES });
  const expected = new Map<string, Expected>();
  const add = (labels: Record<string, string>, requests: number, errors: Record<string, number>) => {
    const key = JSON.stringify(labels);
    const e = expected.get(key) ?? { requests: 0, errors: {}, latencies: 0, sets: 0 };
    e.sets++;
    e.requests += requests;
    e.latencies += requests;
    for (const [t, n] of Object.entries(errors)) e.errors[t] = (e.errors[t] ?? 0) + n;
    expected.set(key, e);
  };
  const record = (rec: ReturnType<StreamPerformanceMonitor['series']>, i: number) => {
    const errors: Record<string, number> = {};
    const n = 20 + 3 * i;
    for (let k = 0; k < n; k++) {
      const ms = 0.05 * 1.37 ** ((k * 7 + i) % 40);
      if (k % 6 === 5) {
        const type = ERROR_TYPES[k % ERROR_TYPES.length];
        rec.recordError(type, ms);
        errors[type] = (errors[type] ?? 0) + 1;
      } else {
        rec.recordLatency(ms);
      }
    }
    rec.recordStreamSession(`conn-${i}`, 5 + i, 100 + i, 1000 * (i + 1));
    rec.recordBatchProcessing(10 + i, 2.5);
    rec.recordBackpressureEvent(1.5 + i);
    rec.recordCacheHit();
    rec.recordCacheMiss();
    rec.recordMessages(3, 300, 'out');
    rec.updateQueueDepth(i);
    rec.updateWorkerUtilization(0.5);
    rec.updateMemoryUsage(1_000_000 + i);
    rec.connectionOpened();
    return { n, errors };
  };
  {
    const { n, errors } = record(monitor, 0);
    add({}, n, errors);
    monitor.recordLatency(2 * 3_600_000); // 2 h: past the resolved range (overflow)
    const e = expected.get('{}') as Expected;
    e.requests++;
    e.latencies++;
  }
  HOSTILE.forEach((method, i) => {
    const { n, errors } = record(monitor.series({ method }), i + 1);
    add({ method }, n, errors);
  });
  EXTRA.forEach((method, i) => {
    const { n, errors } = record(monitor.series({ method }), i + 20);
    add(OVERFLOW, n, errors);
  });
  monitor.tick(); // system figures and a window
  return { monitor, expected };
}

function labelSets(expected: Map<string, Expected>): Array<Record<string, string>> {
  return [...expected.keys()].map((k) => JSON.parse(k));
}

// --- monitor.metrics() ----------------------------------------------------------------------------

test('text 0.0.4: every series, exact counters and histograms, hostile labels round-trip', () => {
  const { monitor, expected } = build();
  try {
    const out = monitor.metrics();
    assert.is(out.format, 'text');
    assert.match(out.contentType, /^text\/plain; version=0\.0\.4; charset=utf-8$/);
    const parsed = parseExposition(out.body as string);
    for (const labels of labelSets(expected)) {
      const e = expected.get(JSON.stringify(labels)) as Expected;
      const what = JSON.stringify(labels);
      assert.is(sampleValue(parsed, 'streamgauge_requests_total', labels), e.requests, `requests ${what}`);
      const failed = Object.values(e.errors).reduce((a, b) => a + b, 0);
      assert.is(sampleValue(parsed, 'streamgauge_failed_requests_total', labels), failed, `failed ${what}`);
      for (const [type, n] of Object.entries(e.errors)) {
        assert.is(
          sampleValue(parsed, 'streamgauge_errors_total', { ...labels, error_type: type }),
          n,
          `errors ${what} ${type}`,
        );
      }
      assert.is(
        sampleValue(parsed, 'streamgauge_request_duration_seconds_count', labels),
        e.latencies,
        `count ${what}`,
      );
      checkClassicHistogram(parsed, 'streamgauge_request_duration_seconds', labels, e.latencies);
      assert.is(sampleValue(parsed, 'streamgauge_messages_total', { ...labels, direction: 'out' }), 3 * e.sets);
      assert.is(sampleValue(parsed, 'streamgauge_session_bytes_count', labels), e.sets);
      assert.is(sampleValue(parsed, 'streamgauge_batch_size_count', labels), e.sets);
      assert.is(sampleValue(parsed, 'streamgauge_backpressure_wait_seconds_count', labels), e.sets);
      assert.is(sampleValue(parsed, 'streamgauge_backpressure_events_total', labels), e.sets);
      assert.is(sampleValue(parsed, 'streamgauge_request_duration_window_seconds_count', labels), e.latencies);
      assert.ok(
        Number.isFinite(
          sampleValue(parsed, 'streamgauge_request_duration_window_seconds', { ...labels, quantile: '0.99' }),
        ),
      );
    }
    // Every series the monitor lists, and nothing else, under the label sets we recorded.
    const seen = new Set(pick(parsed, 'streamgauge_requests_total').map((s) => JSON.stringify(s.labels)));
    assert.equal([...seen].sort(), [...expected.keys()].sort());
    // The sum of the per-series histograms is the monitor's own total.
    const total = pick(parsed, 'streamgauge_request_duration_seconds_count').reduce((n, s) => n + s.value, 0);
    assert.is(total, monitor.totals().latencyCount);
    const sum = pick(parsed, 'streamgauge_request_duration_seconds_sum').reduce((n, s) => n + s.value, 0);
    assert.ok(Math.abs(sum - monitor.totals().latencySumMs / 1000) < 1e-9 * sum, 'latency sums in seconds');
  } finally {
    monitor.close();
  }
});

/** Cumulative buckets: ascending `le`, non-decreasing counts, `+Inf` = count, exact against the native buckets. */
function checkClassicHistogram(parsed: Parsed, name: string, labels: Record<string, string>, count: number): void {
  const buckets = pick(parsed, `${name}_bucket`, labels).filter(
    (s) => Object.keys(s.labels).length === Object.keys(labels).length + 1,
  );
  assert.ok(buckets.length > 2, `${name}: classic buckets`);
  let prevLe = -Infinity;
  let prev = 0;
  for (const b of buckets) {
    const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
    assert.ok(le > prevLe, `${name}: le ascending`);
    assert.ok(b.value >= prev, `${name}: cumulative`);
    prevLe = le;
    prev = b.value;
  }
  assert.is(buckets[buckets.length - 1].labels.le, '+Inf');
  assert.is(prev, count, `${name}: +Inf = count`);
}

test("a scrape makes the monitor's families one at a time as it writes them, byte for byte the collected ones", () => {
  const clock = handClock(Date.UTC(2025, 0, 1)); // the same uptime in every render
  const monitor = quietMonitor(clock);
  for (const [i, method] of HOSTILE.entries()) {
    const s = monitor.series({ method });
    for (let k = 0; k < 10 + i; k++) s.recordLatency(0.1 * 1.5 ** k);
    s.recordError(ERROR_TYPES[i % ERROR_TYPES.length]);
    s.recordBatchProcessing(3 + i, 2);
  }
  clock.t += 1000;
  monitor.tick();
  const arena = new CountsArena();
  const made = collectFamiliesInto(monitor, arena, { runtime: false });
  assert.not.ok(Array.isArray(made), 'an iterable made as it is read, not an array of every family');
  const collected = collectFamilies(monitor, { runtime: false });
  assert.is(renderPrometheusText(made), renderPrometheusText(collected));
  for (const [write, accept] of [
    [renderOpenMetrics, OM_ACCEPT],
    [renderProtobuf, PROMETHEUS_ACCEPT],
  ] as const) {
    assert.equal(write(collectFamiliesInto(monitor, arena, { runtime: false })), write(collected), accept);
    assert.equal(monitor.metrics(accept, { runtime: false }).body, write(collected), `metrics(${accept})`);
  }
  monitor.close();
});

test('the overflow series past maxSeries is a labelled series of its own, and counted', async () => {
  const { monitor, expected } = build();
  try {
    const parsed = parseExposition(monitor.metrics().body as string);
    const overflow = expected.get(JSON.stringify(OVERFLOW)) as Expected;
    assert.is(
      sampleValue(parsed, 'streamgauge_requests_total', OVERFLOW),
      overflow.requests,
      'the extra label sets land in the overflow series',
    );
    for (const method of EXTRA)
      assert.is(pick(parsed, 'streamgauge_requests_total', { method }).length, 0, `${method} has no series of its own`);
    assert.is(sampleValue(parsed, 'streamgauge_series', {}), HOSTILE.length + 2, 'default + labelled + overflow');
    assert.is(sampleValue(parsed, 'streamgauge_series_limit', {}), MAX_SERIES);
    assert.is(sampleValue(parsed, 'streamgauge_series_overflow', {}), 1);
    const info = monitor.seriesList().find((s) => s.overflow);
    assert.equal(info?.labels, OVERFLOW);
  } finally {
    monitor.close();
  }
  // Below the bound: no overflow series, and the flag says so.
  await withMonitor({ logger: false, autoStart: false, maxSeries: 4 }, async (quiet) => {
    quiet.series({ method: 'a' }).recordLatency(1);
    const parsed = parseExposition(quiet.metrics().body as string);
    assert.is(pick(parsed, 'streamgauge_requests_total', OVERFLOW).length, 0);
    assert.is(sampleValue(parsed, 'streamgauge_series_overflow', {}), 0);
    assert.is(sampleValue(parsed, 'streamgauge_series', {}), 2);
  });
});

test('series labels named le, quantile, direction or error_type are exposed as exported_<name>', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (monitor) => {
    const labels = { le: 'a', quantile: 'b', direction: 'c', error_type: 'd', method: 'm' };
    const rec = monitor.series(labels);
    rec.recordLatency(3);
    rec.recordError('timeout', 4);
    rec.recordMessages(2, 20, 'out');
    const text = monitor.metrics().body as string;
    const parsed = parseExposition(text);
    const exported = {
      exported_le: 'a',
      exported_quantile: 'b',
      exported_direction: 'c',
      exported_error_type: 'd',
      method: 'm',
    };
    assert.is(sampleValue(parsed, 'streamgauge_requests_total', exported), 2);
    assert.is(sampleValue(parsed, 'streamgauge_errors_total', { ...exported, error_type: 'timeout' }), 1);
    assert.is(sampleValue(parsed, 'streamgauge_messages_total', { ...exported, direction: 'out' }), 2);
    assert.is(sampleValue(parsed, 'streamgauge_request_duration_seconds_count', exported), 2);
    assert.is(sampleValue(parsed, 'streamgauge_request_duration_window_seconds_count', exported), 2);
    const { status, output } = promtool(text);
    assert.is(output, '', output);
    assert.is(status, 0);
    assert.ok(decodeProtobuf(monitor.metrics(PROMETHEUS_ACCEPT).body as Uint8Array).length > 10);
  });
});

test('names and units follow Prometheus conventions (_total, _seconds, _bytes, UNIT, HELP)', () => {
  const { monitor } = build();
  try {
    const text = parseExposition(monitor.metrics(TEXT_ACCEPT).body as string);
    const om = parseExposition(monitor.metrics(OM_ACCEPT).body as string);
    assert.ok(text.types.size > 30, `${text.types.size} families`);
    for (const [name, type] of text.types) {
      // Ours carry the prefix; the process and runtime keep prom-client's names (process_*, nodejs_*).
      const base = name.replace(/_total$/, '');
      assert.ok(
        name.startsWith('streamgauge_') || UNPREFIXED_FAMILIES.has(base) || UNPREFIXED_FAMILIES.has(name),
        `${name}: prefix`,
      );
      assert.ok(text.help.has(name) && (text.help.get(name) ?? '').length > 0, `${name}: HELP`);
      if (type === 'counter') assert.ok(name.endsWith('_total'), `${name}: counters end in _total`);
      else
        assert.ok(
          !name.endsWith('_total') || PROM_CLIENT_TOTAL_GAUGES.includes(name),
          `${name}: only counters end in _total`,
        );
      assert.not.match(name, /_(ms|millis|milliseconds|us|ns|kb|mb|kib|mib|percent)(_|$)/, `${name}: base units only`);
      if (/(duration|wait|delay|uptime|latency)/.test(name))
        assert.match(name, /_seconds$/, `${name}: times in seconds`);
      if (/(bytes|memory)/.test(name)) assert.match(name, /_bytes(_total)?$/, `${name}: sizes in bytes`);
      if (/(^|_)(ratio|utilization)(_|$)/.test(name)) assert.match(name, /_ratio$/, `${name}: ratios end in _ratio`);
    }
    // Every sample belongs to a typed family (histogram and summary parts, counters' _total).
    for (const s of text.samples) {
      const family = s.name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(text.types.has(s.name) || text.types.has(family), `${s.name} has a TYPE`);
    }
    // OpenMetrics: counters are typed by their base name, UNIT given where the name carries one.
    for (const [name, type] of om.types) {
      if (type === 'counter')
        assert.ok(text.types.get(`${name}_total`) === 'counter', `${name}: OM counter family without _total`);
      const unit = om.units.get(name);
      if (unit !== undefined) assert.ok(name.endsWith(`_${unit}`), `${name}: UNIT ${unit} is its suffix`);
      for (const suffix of ['seconds', 'bytes']) {
        if (name.endsWith(`_${suffix}`)) assert.is(unit, suffix, `${name}: # UNIT ${suffix}`);
      }
    }
    assert.is(om.units.get('streamgauge_request_duration_seconds'), 'seconds');
    assert.is(om.types.get('streamgauge_requests'), 'counter');
    assert.is(om.types.get('streamgauge_request_duration_window_seconds'), 'summary');
  } finally {
    monitor.close();
  }
});

test('promtool check metrics: the text format is clean (exit 0)', () => {
  const { monitor } = build();
  try {
    const { status, output } = promtool(monitor.metrics().body as string);
    assert.is(output, '', output);
    assert.is(status, 0);
  } finally {
    monitor.close();
  }
});

test("promtool check metrics: OpenMetrics parses; its only findings are promtool 2.42's text-format lint on counters", () => {
  const { monitor } = build();
  try {
    const body = monitor.metrics(OM_ACCEPT).body as string;
    assert.ok(body.endsWith('\n# EOF\n'));
    // promtool 2.42 reads OpenMetrics with the 0.0.4 parser: a counter's HELP names the family
    // (`x`) while its sample is `x_total`, so it reports "x_total no help text" per counter family.
    const counters = [...parseExposition(body).types].filter(([, t]) => t === 'counter').map(([n]) => `${n}_total`);
    const { status, output } = promtool(body);
    assert.ok(status === 0 || status === 3, `parse error (exit ${status}): ${output}`);
    for (const line of output.split('\n').filter((l) => l.length > 0)) {
      const name = line.replace(/ no help text$/, '');
      assert.ok(line.endsWith(' no help text') && counters.includes(name), `unexpected promtool finding: ${line}`);
    }
    // Everything but the counters: no finding at all.
    const rest = render(
      collectFamilies(monitor).filter((f) => f.type !== 'counter'),
      { accept: OM_ACCEPT },
    );
    const clean = promtool(rest.body as string);
    assert.is(clean.output, '', clean.output);
    assert.is(clean.status, 0);
  } finally {
    monitor.close();
  }
});

test('protobuf: native histograms carry exactly the monitor buckets; counters and labels exact', () => {
  const { monitor, expected } = build();
  try {
    const out = monitor.metrics(PROMETHEUS_ACCEPT);
    assert.is(out.format, 'protobuf');
    assert.match(
      out.contentType,
      /^application\/vnd\.google\.protobuf; proto=io\.prometheus\.client\.MetricFamily; encoding=delimited/,
    );
    const families = new Map(decodeProtobuf(out.body as Uint8Array).map((f: Decoded) => [f.name, f]));
    const requests = families.get('streamgauge_requests_total');
    assert.is(requests.type, 'COUNTER');
    for (const m of requests.metric) {
      const e = expected.get(JSON.stringify(labelsOf(m)));
      assert.ok(e, `unexpected series ${JSON.stringify(labelsOf(m))}`);
      assert.is(m.counter.value, e.requests);
    }
    const latency = families.get('streamgauge_request_duration_seconds');
    assert.is(latency.type, 'HISTOGRAM');
    const bySeries = new Map(monitor.seriesList().map((s) => [JSON.stringify(s.labels), s.index]));
    assert.is(latency.metric.length, expected.size);
    let sawOverflow = false;
    for (const m of latency.metric) {
      const index = bySeries.get(JSON.stringify(labelsOf(m)));
      assert.ok(index !== undefined);
      const native = monitor.nativeHistogram(index, 'latency');
      const h = m.histogram;
      assert.is(h.schema, monitor.config.scale);
      assert.is(h.sampleCount, native.count);
      assert.is(h.zeroThreshold, native.zeroThreshold);
      assert.is(h.zeroCount ?? 0, native.zeroCount);
      // Prometheus (2.48 on) rejects a native histogram whose buckets do not add up to its count:
      // overflow observations sit in the first bucket above the range.
      const decoded = nativeBuckets(h);
      assert.is(
        decoded.reduce((n, b) => n + b.count, h.zeroCount ?? 0),
        h.sampleCount,
        'buckets add up to the count',
      );
      if (native.overflowCount > 0) {
        const top = decoded[decoded.length - 1];
        assert.equal(decoded.slice(0, -1), bucketList(native));
        assert.equal(top, {
          index: Math.round(Math.log2(native.overflowThreshold ?? 0) * 2 ** h.schema) + 1,
          count: native.overflowCount,
        });
        sawOverflow = true;
      } else {
        assert.equal(decoded, bucketList(native));
      }
      assert.ok(h.bucket.length > 0, 'classic buckets ride along');
    }
    assert.ok(sawOverflow, 'the 2 h observation is in the overflow');
  } finally {
    monitor.close();
  }
});

// --- the dense bucket form -------------------------------------------------------------------

test('a monitor histogram lists its buckets when read, as an own property that spread and JSON carry', () => {
  const m = testMonitor();
  for (const ms of [1, 1, 2, 5]) m.recordLatency(ms);
  const h = m.nativeHistogram(0);
  const expected = bucketList(h);
  assert.is(expected.length, 3);
  assert.equal({ ...h }.buckets, expected, 'spread');
  assert.equal(JSON.parse(JSON.stringify({ ...h, dense: undefined })).buckets, expected, 'JSON');
  assert.is(h.buckets, h.buckets, 'made once');
  assert.equal(Object.keys(h).sort(), [
    'buckets',
    'count',
    'dense',
    'overflowCount',
    'overflowThreshold',
    'schema',
    'sum',
    'zeroCount',
    'zeroThreshold',
  ]);
  // A copy is anybody's histogram: its counts are checked one by one again, not only their total.
  const dense = h.dense as DenseBuckets;
  const copy: NativeHistogram = {
    ...h,
    dense: { offset: dense.offset, counts: Float64Array.from(dense.counts, (c, k) => (k === 0 ? c - 0.5 : c)) },
  };
  const family: MetricFamily[] = [
    { name: 'd_seconds', help: 'h', type: 'histogram', unit: 'seconds', metrics: [{ labels: {}, histogram: copy }] },
  ];
  assert.throws(() => renderProtobuf(family), /counts\[0\] must be a non-negative integer/);
  m.close();
});

test("a monitor's histograms, runs of buckets apart by 1 to 40 empty ones, render byte for byte like the same buckets as a list", () => {
  const m = testMonitor();
  const series = m.series({ route: 'gaps' });
  // Runs of buckets separated by 1 to 40 empty buckets (scale 7: bucket i holds 2^((i - 0.5)/128) s).
  let index = -900;
  for (const gap of [0, 3, 0, 1, 0, 2, 0, 0, 3, 0, 10, 11, 0, 12, 1, 13, 2, 0, 3, 40, 0, 17, 0]) {
    index += gap + 1;
    for (let i = 0; i <= gap; i++) series.recordLatency(2 ** ((index - 0.5) / 128) * 1000);
  }
  const random = seededRandom(5);
  for (let i = 0; i < 3000; i++) m.recordLatency(0.5 * 10 ** (random() * 3)); // dense in the middle, sparse tails
  const gaps = m.seriesList().find((s) => s.labels.route === 'gaps');
  assert.ok(gaps !== undefined);
  for (const index of [0, gaps.index]) {
    const h = m.nativeHistogram(index);
    assert.ok(h.dense?.counts.includes(0), 'dense, with empty buckets inside');
    const list: NativeHistogram = { ...h, buckets: bucketList(h), dense: undefined };
    const family = (hist: NativeHistogram): MetricFamily[] => [
      { name: 'd_seconds', help: 'h', type: 'histogram', unit: 'seconds', metrics: [{ labels: {}, histogram: hist }] },
    ];
    assert.equal(renderProtobuf(family(h)), renderProtobuf(family(list)), `series ${index}`);
  }
  m.close();
});

test('dense buckets (a monitor export) render byte for byte like the same buckets as a list', () => {
  const rnd = seededRandom(77);
  const shapes: Array<{ offset: number; counts: number[] }> = [
    { offset: -1400, counts: [] },
    { offset: -1400, counts: [0, 0, 0] },
    { offset: 5, counts: [1] },
    { offset: -3, counts: [0, 2, 0, 0, 5, 0, 0, 0, 7, 1, 0, 3, 0] }, // gaps of 1, 2, 3 and zero ends
    { offset: 0, counts: [5_000_000_000, 1, 0, 0, 3] },
  ];
  // Gaps around the length that starts a new span (12 empty buckets), at every alignment, and long ones.
  for (let lead = 0; lead < 5; lead++) {
    for (const gap of [10, 11, 12, 13, 15, 16, 19, 40]) {
      const counts = [
        ...new Array(lead).fill(0),
        3,
        ...new Array(lead).fill(1),
        ...new Array(gap).fill(0),
        2,
        ...new Array(gap + lead).fill(0),
        1,
        0,
        0,
      ];
      shapes.push({ offset: lead - 7, counts });
    }
  }
  for (let r = 0; r < 40; r++) {
    const n = 1 + Math.floor(rnd() * 1500);
    shapes.push({
      offset: Math.floor(rnd() * 3000) - 2000,
      counts: Array.from({ length: n }, () => (rnd() < 0.3 ? 0 : Math.floor(rnd() ** 3 * 5000))),
    });
  }
  // Runs of empty buckets from 1 to 30 long between runs of counts from small to large (deltas of
  // one to four bytes, also just before a long gap), some with counts past 2^29.
  for (let r = 0; r < 60; r++) {
    const counts: number[] = [];
    const top = r % 10 === 9 ? 2 ** 33 : 10 ** (1 + (r % 5));
    while (counts.length < 400) {
      for (let k = Math.floor(rnd() * 9); k >= 0; k--) counts.push(1 + Math.floor(rnd() ** 2 * top));
      for (let k = Math.floor(rnd() ** 2 * 31); k > 0; k--) counts.push(0);
    }
    shapes.push({ offset: Math.floor(rnd() * 100) - 50, counts });
  }
  for (const [i, shape] of shapes.entries()) {
    const buckets = shape.counts.map((count, k) => ({ index: shape.offset + k, count })).filter((b) => b.count > 0);
    const overflowCount = i % 3 === 2 ? 4 : 0; // with overflow, the writers go through the list form
    const base = {
      count: shape.counts.reduce((a, b) => a + b, 2 + overflowCount),
      sum: 1.5,
      schema: 7,
      zeroThreshold: 1e-6,
      zeroCount: 2,
      overflowCount,
      overflowThreshold: 3600,
    };
    const list: NativeHistogram = { ...base, buckets };
    const dense: NativeHistogram = {
      ...base,
      buckets,
      dense: { offset: shape.offset, counts: Float64Array.from(shape.counts) },
    };
    const family = (h: NativeHistogram): MetricFamily[] => [
      {
        name: 'd_seconds',
        help: 'h',
        type: 'histogram',
        unit: 'seconds',
        metrics: [{ labels: { i: String(i) }, histogram: h }],
      },
    ];
    assert.equal(renderProtobuf(family(dense)), renderProtobuf(family(list)), `protobuf, shape ${i}`);
    assert.is(renderPrometheusText(family(dense)), renderPrometheusText(family(list)), `text, shape ${i}`);
    assert.is(renderOpenMetrics(family(dense)), renderOpenMetrics(family(list)), `OpenMetrics, shape ${i}`);
    assert.equal(bucketList(dense), buckets);
  }
  const good: NativeHistogram = {
    count: 3,
    sum: 1,
    schema: 3,
    zeroThreshold: 0,
    zeroCount: 0,
    overflowCount: 0,
    buckets: [],
    dense: { offset: 2, counts: Float64Array.from([1, 0, 2]) },
  };
  checkNativeHistogram(good);
  const bad = (dense: unknown, message: RegExp) =>
    assert.throws(
      () => checkNativeHistogram({ ...good, dense } as NativeHistogram),
      (err: Error) => message.test(err.message),
    );
  bad({ offset: 2, counts: [1, 0, 2] }, /dense must be \{ offset, counts: Float64Array \}/);
  bad({ offset: 2.5, counts: Float64Array.from([1, 0, 2]) }, /offset must be an integer/);
  bad({ offset: 2, counts: Float64Array.from([1, -1, 3]) }, /counts\[1\] must be a non-negative integer/);
  bad({ offset: 2, counts: Float64Array.from([1, 0.5, 1.5]) }, /counts\[1\] must be a non-negative integer/);
  bad({ offset: 2, counts: Float64Array.from([1, 0, 3]) }, /count \(3\) must equal/);
});

test('scrapes reuse their storage: each shows the records made before it, families collected earlier stay as they were', () => {
  const monitor = testMonitor();
  const api = monitor.series({ route: 'api' });
  const rnd = seededRandom(5);
  const recordSome = (n: number) => {
    for (let i = 0; i < n; i++) api.recordLatency(0.2 + rnd() * 40);
  };
  recordSome(500);
  const kept = collectFamilies(monitor); // a caller's own collect: its counts are its own
  const keptText = renderPrometheusText(kept);
  const native = monitor.nativeHistogram(1);
  const nativeCounts = Float64Array.from(native.dense?.counts ?? []);
  const countLine = (text: string) =>
    sampleValue(parseExposition(text), 'streamgauge_request_duration_seconds_count', { route: 'api' });
  for (let scrape = 1; scrape <= 4; scrape++) {
    recordSome(300);
    const text = monitor.metrics('text/plain;version=0.0.4').body as string;
    assert.is(countLine(text), 500 + 300 * scrape, `scrape ${scrape}`);
    // The protobuf scrape (same storage) agrees bucket for bucket with a fresh export.
    const latency = decodeProtobuf(monitor.metrics(PROMETHEUS_ACCEPT).body as Uint8Array).find(
      (f: Decoded) => f.name === 'streamgauge_request_duration_seconds',
    );
    const metric = latency.metric.find((m: Decoded) => labelsOf(m).route === 'api');
    assert.equal(nativeBuckets(metric.histogram), bucketList(monitor.nativeHistogram(1)), `scrape ${scrape}, protobuf`);
  }
  assert.is(renderPrometheusText(kept), keptText, 'families collected before the scrapes are unchanged');
  assert.equal(native.dense?.counts, nativeCounts, 'a histogram read before the scrapes is unchanged');
  // Where the counts go is the caller's choice.
  const mine = new Float64Array(4096);
  const h = monitor.nativeHistogram(1, 'latency', (n) => mine.subarray(100, 100 + n));
  assert.is(h.dense?.counts.buffer, mine.buffer);
  assert.equal(bucketList(h), bucketList(monitor.nativeHistogram(1)));
  assert.throws(
    () => monitor.nativeHistogram(1, 'latency', () => new Float64Array(1)),
    /alloc\(\d+\) must return a Float64Array of \d+ elements/,
  );
  monitor.close();
});

// --- serving ------------------------------------------------------------------------------------

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A raw request: no automatic decompression, so gzip can be seen. */
function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

test('serve(): binds 127.0.0.1 by default; /metrics negotiates the format from Accept', async () => {
  const { monitor, expected } = build();
  const served = await monitor.serve();
  try {
    assert.is(served.host, '127.0.0.1');
    assert.is((served.server.address() as AddressInfo).address, '127.0.0.1');
    assert.is(served.url, `http://127.0.0.1:${served.port}`);

    const plain = await request(`${served.url}/metrics`);
    assert.is(plain.status, 200);
    assert.match(String(plain.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const parsed = parseExposition(plain.body.toString('utf8'));
    assert.is(
      sampleValue(parsed, 'streamgauge_requests_total', { method: HOSTILE[3] }),
      expected.get(JSON.stringify({ method: HOSTILE[3] }))?.requests,
    );

    const om = await request(`${served.url}/metrics`, { headers: { accept: OM_ACCEPT } });
    assert.match(String(om.headers['content-type']), /^application\/openmetrics-text; version=1\.0\.0/);
    assert.ok(om.body.toString('utf8').endsWith('# EOF\n'));

    const proto = await request(`${served.url}/metrics`, { headers: { accept: PROMETHEUS_ACCEPT } });
    assert.match(
      String(proto.headers['content-type']),
      /^application\/vnd\.google\.protobuf; proto=io\.prometheus\.client\.MetricFamily; encoding=delimited/,
    );
    assert.ok(decodeProtobuf(proto.body).some((f: Decoded) => f.name === 'streamgauge_request_duration_seconds'));
    assert.match(String(proto.headers.vary), /accept/);

    const unknown = await request(`${served.url}/metrics`, { headers: { accept: 'application/json' } });
    assert.match(
      String(unknown.headers['content-type']),
      /^text\/plain; version=0\.0\.4/,
      'nothing acceptable: text 0.0.4',
    );

    const head = await request(`${served.url}/metrics`, { method: 'HEAD' });
    assert.is(head.status, 200);
    assert.is(head.body.length, 0);

    const query = await request(`${served.url}/metrics?x=1`);
    assert.is(query.status, 200, 'a query string does not change the path');
  } finally {
    await served.close();
    monitor.close();
  }
});

test('serve(): the text sent is metrics().body as UTF-8, labels beyond ASCII included', async () => {
  // A clock of its own: rates and ages are the same in both scrapes.
  const clock = handClock(0);
  const monitor = quietMonitor(clock);
  const cafe = monitor.series({ route: 'café/東京' });
  for (let i = 0; i < 50; i++) cafe.recordLatency(0.2 + i);
  monitor.series({ route: 'plain' }).recordLatency(3);
  clock.t += 1000;
  monitor.tick();
  const served = await monitor.serve({ runtime: false, dashboard: false });
  try {
    for (const accept of ['text/plain; version=0.0.4', 'application/openmetrics-text; version=1.0.0']) {
      const res = await request(`${served.url}/metrics`, { headers: { accept } });
      assert.is(res.status, 200);
      const body = monitor.metrics(accept, { runtime: false }).body as string;
      assert.ok(body.includes('route="café/東京"'));
      // The series' lines (the process's own figures move between two scrapes).
      const routes = (text: string) => text.split('\n').filter((line) => line.includes('route="'));
      assert.ok(routes(body).length > 20);
      assert.equal(routes(res.body.toString('utf8')), routes(body), accept);
      assert.ok(res.body.includes(Buffer.from('route="café/東京"', 'utf8')));
      assert.is(Number(res.headers['content-length']), res.body.length);
    }
  } finally {
    await served.close();
    monitor.close();
  }
});

test('serve(): gzip when asked (and only then), the same exposition inside', async () => {
  const { monitor } = build();
  const served = await monitor.serve();
  try {
    const gz = await request(`${served.url}/metrics`, { headers: { 'accept-encoding': 'gzip, deflate' } });
    assert.is(gz.status, 200);
    assert.is(gz.headers['content-encoding'], 'gzip');
    assert.is(Number(gz.headers['content-length']), gz.body.length);
    assert.match(String(gz.headers.vary), /accept-encoding/);
    const inside = parseExposition(gunzipSync(gz.body).toString('utf8'));
    const direct = parseExposition(monitor.metrics().body as string);
    assert.equal(pick(inside, 'streamgauge_requests_total'), pick(direct, 'streamgauge_requests_total'));
    assert.equal(
      pick(inside, 'streamgauge_request_duration_seconds_bucket'),
      pick(direct, 'streamgauge_request_duration_seconds_bucket'),
    );

    const protoGz = await request(`${served.url}/metrics`, {
      headers: { accept: PROMETHEUS_ACCEPT, 'accept-encoding': 'gzip' },
    });
    assert.is(protoGz.headers['content-encoding'], 'gzip');
    assert.ok(decodeProtobuf(gunzipSync(protoGz.body)).length > 10);

    const identity = await request(`${served.url}/metrics`);
    assert.is(identity.headers['content-encoding'], undefined);
    const refused = await request(`${served.url}/metrics`, { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    assert.is(refused.headers['content-encoding'], undefined, 'gzip;q=0 means no gzip');
    const star = await request(`${served.url}/metrics`, { headers: { 'accept-encoding': '*' } });
    assert.is(star.headers['content-encoding'], 'gzip');
  } finally {
    await served.close();
    monitor.close();
  }
});

test('serve(): /debug is JSON with every series, its buckets and counters, safe to embed', async () => {
  const { monitor } = build();
  const served = await monitor.serve();
  try {
    const res = await request(`${served.url}/debug`);
    assert.is(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const text = res.body.toString('utf8');
    assert.not.ok(/[<>]/.test(text), 'no raw < or > (labels carry <script>)');
    const debug = JSON.parse(text);
    const list = monitor.seriesList();
    assert.is(debug.series.length, list.length);
    for (const info of list) {
      const s = debug.series.find((x: Decoded) => x.index === info.index);
      assert.ok(s, `series ${info.index} in /debug`);
      assert.equal(s.labels, { ...info.labels });
      assert.is(s.overflow, info.overflow);
      const native = monitor.nativeHistogram(info.index, 'latency');
      assert.equal(s.histograms.latency.buckets, bucketList(native), `series ${info.index}: every latency bucket`);
      assert.is(s.histograms.latency.count, native.count);
      for (const name of [
        'sessionDuration',
        'sessionMessages',
        'sessionBytes',
        'batchSize',
        'batchDuration',
        'backpressureWait',
      ]) {
        assert.equal(
          s.histograms[name].buckets,
          bucketList(monitor.nativeHistogram(info.index, name as 'latency')),
          `${name} buckets`,
        );
      }
      assert.is(s.totals.requests, monitor.totals(info.index).requests);
      assert.equal(s.errorsByType, monitor.errorsByType(info.index));
    }
    assert.ok(
      debug.series.some((s: Decoded) => s.labels.method === '<script>alert("x")</script>'),
      'hostile labels survive JSON',
    );
    assert.is(debug.layout.seriesCount, internalsOf(monitor).layout.seriesCount);
    assert.ok(debug.memoryFootprint.sharedBytes > 0);
    assert.is(debug.config.maxSeries, MAX_SERIES);
  } finally {
    await served.close();
    monitor.close();
  }
});

test('serve(): /snapshot decodes to the monitor state', async () => {
  const { monitor, expected } = build();
  const served = await monitor.serve();
  try {
    const res = await request(`${served.url}/snapshot`);
    assert.is(res.status, 200);
    assert.is(res.headers['content-type'], 'application/octet-stream');
    const snap = decodeSnapshot(new Uint8Array(res.body));
    assert.is(snap.sources, 1);
    for (const s of snap.series) {
      const e = expected.get(JSON.stringify(s.labels));
      if (!e) {
        assert.is(s.counters.requests, 0, `an unused series ${JSON.stringify(s.labels)} is empty`);
        continue;
      }
      assert.is(s.counters.requests, e.requests);
      assert.equal(s.errorsByType, e.errors);
      assert.is(s.latency.count, e.latencies);
    }
  } finally {
    await served.close();
    monitor.close();
  }
});

test('serve(): 404 for unknown paths, 405 for other methods', async () => {
  const monitor = testMonitor();
  const served = await monitor.serve({ dashboard: false });
  try {
    const missing = await request(`${served.url}/nope`);
    assert.is(missing.status, 404);
    assert.is((await request(`${served.url}/`)).status, 404, 'no dashboard when turned off');
    for (const path of ['/metrics', '/debug', '/snapshot']) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await request(`${served.url}${path}`, { method });
        assert.is(res.status, 405, `${method} ${path}`);
        assert.is(res.headers.allow, 'GET, HEAD');
      }
    }
  } finally {
    await served.close();
    monitor.close();
  }
});

async function rejects(fn: () => Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected a rejection matching ${message}`);
}

test('serve(): host and port are checked; close() of the monitor closes the server', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (monitor) => {
    await rejects(() => monitor.serve({ port: -1 }), /port must be a whole number/);
    await rejects(() => monitor.serve({ port: 1.5 }), /port must be a whole number/);
    await rejects(() => monitor.serve({ host: '' }), /host must be a non-empty string/);
    const served = await monitor.serve({ dashboard: false });
    const closed = new Promise<void>((r) => served.server.once('close', () => r()));
    monitor.close();
    await closed;
    assert.not.ok(served.server.listening);
  });
});

test('metricsHandler() serves /metrics on an existing node:http server and leaves other paths alone', async () => {
  const { monitor } = build();
  const handler = metricsHandler(monitor);
  const server = http.createServer((req, res) => {
    if (handler(req, res)) return;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('app');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const metrics = await request(`${url}/metrics`, { headers: { accept: OM_ACCEPT } });
    assert.match(String(metrics.headers['content-type']), /^application\/openmetrics-text/);
    assert.ok(pick(parseExposition(metrics.body.toString('utf8')), 'streamgauge_requests_total').length > 0);
    assert.is((await request(`${url}/other`)).body.toString(), 'app');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    monitor.close();
  }
});

test("a scrape holds every series' counts packed until it writes them: counts past one, two and four bytes come out exact", () => {
  const monitor = testMonitor();
  // Each series a different largest count per bucket: under 2^8, under 2^16, and past 2^16.
  const sizes = [200, 300, 70_000];
  const series = sizes.map((n, i) => {
    const s = monitor.series({ size: String(i) });
    for (let k = 0; k < n; k++) s.recordLatency(5);
    for (let k = 0; k < 3; k++) s.recordLatency(0.7 + k * 3);
    return s;
  });
  const scraped = monitor.metrics('text/plain;version=0.0.4').body as string;
  const text = parseExposition(scraped);
  // The same lines as the text of families collected without the scrape's storage.
  const latencyLines = (t: string) =>
    t.split('\n').filter((line) => line.startsWith('streamgauge_request_duration_seconds_'));
  assert.equal(latencyLines(scraped), latencyLines(renderPrometheusText(collectFamilies(monitor))));
  const families = decodeProtobuf(monitor.metrics(PROMETHEUS_ACCEPT).body as Uint8Array);
  const latency = families.find((f: Decoded) => f.name === 'streamgauge_request_duration_seconds');
  sizes.forEach((n, i) => {
    const fresh = monitor.nativeHistogram(series[i]);
    const metric = latency.metric.find((m: Decoded) => labelsOf(m).size === String(i));
    assert.equal(nativeBuckets(metric.histogram), bucketList(fresh), `series ${i}, protobuf`);
    assert.is(
      sampleValue(text, 'streamgauge_request_duration_seconds_count', { size: String(i) }),
      n + 3,
      `series ${i}, text`,
    );
    assert.is(
      sampleValue(text, 'streamgauge_request_duration_seconds_bucket', { size: String(i), le: '+Inf' }),
      n + 3,
      `series ${i}, +Inf`,
    );
  });
  monitor.close();
});

test('a text scrape, which reads only the classic buckets, prints what every native bucket gives, recorded from two threads', async () => {
  const clock = handClock(Date.UTC(2025, 0, 1)); // the same uptime in every render
  const monitor = quietMonitor(clock, { maxSeries: 8 });
  const methods = ['a', 'b', 'c'];
  const until = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: {
      handle: monitor.handle(),
      entry: new URL('./fixtures/classic-worker.ts', import.meta.url).href,
      methods,
      rounds: 500,
      seed: 7,
      until,
    },
  });
  try {
    const done = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    // The same series from this thread, at the same time.
    const random = seededRandom(11);
    const mine = methods.map((method) => monitor.series({ method }));
    for (let r = 0; r < 500; r++) {
      for (const s of mine) {
        s.recordLatency(0.05 + random() * 400);
        if (r % 10 === 0) {
          s.recordStreamSession(`m${r}`, 1 + Math.floor(random() * 3000), random() * 5000, Math.floor(random() * 1e7));
          s.recordBatchProcessing(1 + Math.floor(random() * 500), random() * 30);
        }
      }
    }
    await done;
    // While the worker goes on recording: each series' buckets agree with its count in every scrape.
    for (let k = 0; k < 5; k++) {
      const parsed = parseExposition(monitor.metrics(TEXT_ACCEPT).body as string);
      for (const method of methods) {
        const count = sampleValue(parsed, 'streamgauge_request_duration_seconds_count', { method });
        assert.ok(count >= 1000, `${method}: both threads' latencies`);
        checkClassicHistogram(parsed, 'streamgauge_request_duration_seconds', { method }, count);
        assert.is(sampleValue(parsed, 'streamgauge_requests_total', { method }), count, `${method}: requests`);
      }
    }
    Atomics.store(new Int32Array(until), 0, 1);
    await new Promise((resolve) => worker.once('message', resolve));
    clock.t += 1000;
    monitor.tick();
    // At rest: byte for byte the text of the full native histograms, with the default ladder and
    // with one given anew to each call, for the latency, session and batch histograms.
    const seconds = () => [0.001, 0.01, 0.1, 1, 10];
    for (const [accept, write] of [
      [TEXT_ACCEPT, renderPrometheusText],
      [OM_ACCEPT, renderOpenMetrics],
    ] as const) {
      for (const ladder of [undefined, seconds]) {
        const full = write(collectFamilies(monitor, { runtime: false }), { classicBoundariesSeconds: ladder?.() });
        const scraped = monitor.metrics(accept, { runtime: false, classicBoundariesSeconds: ladder?.() }).body;
        assert.is(scraped, full, `${accept}, ${ladder === undefined ? 'default' : 'given'} ladder`);
      }
    }
    const parsed = parseExposition(monitor.metrics(TEXT_ACCEPT).body as string);
    for (const method of methods) {
      checkClassicHistogram(parsed, 'streamgauge_session_bytes', { method }, 100);
      checkClassicHistogram(parsed, 'streamgauge_batch_size', { method }, 100);
    }
  } finally {
    await worker.terminate();
    monitor.close();
  }
});

test.run();
