// The protobuf exposition, decoded back with protobufjs against the schema in fixtures/expo-helpers.ts,
// written from the field list of io.prometheus.client's metrics.proto (names, numbers, types).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClassicLadder, classicBuckets, type MetricFamily, type NativeHistogram } from '../src/metric-families.js';
import { PROTOBUF_CONTENT_TYPE, renderProtobuf } from '../src/protobuf.js';
import { type Decoded, decodeProtobuf as decodeAll, nativeBuckets } from './fixtures/expo-helpers.js';

function histogram(buckets: Array<[number, number]>, extra: Partial<NativeHistogram> = {}): NativeHistogram {
  const zeroCount = extra.zeroCount ?? 0;
  const overflowCount = extra.overflowCount ?? 0;
  const count = buckets.reduce((s, [, c]) => s + c, zeroCount + overflowCount);
  return {
    count,
    sum: 12.5,
    schema: 3,
    zeroThreshold: 1e-6,
    zeroCount,
    overflowCount,
    buckets: buckets.map(([index, count]) => ({ index, count })),
    ...extra,
  };
}

function histogramFamily(h: NativeHistogram, labels = {}): MetricFamily {
  return { name: 'latency_seconds', help: 'Latency.', type: 'histogram', metrics: [{ labels, histogram: h }] };
}

test('content type names the delimited MetricFamily encoding', () => {
  assert.is(
    PROTOBUF_CONTENT_TYPE,
    'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
  );
});

test('counters, gauges and summaries decode to what was given', () => {
  const families: MetricFamily[] = [
    {
      name: 'requests',
      help: 'Requests handled.',
      type: 'counter',
      metrics: [
        { labels: { method: 'Chat/Stream', 'bad-name': 'ü"\\\n😀' }, value: 42 },
        { labels: {}, value: 2 ** 60, timestampMs: 1_700_000_000_123 },
      ],
    },
    { name: 'memory_bytes', help: '', type: 'gauge', metrics: [{ labels: {}, value: Number.NaN }] },
    { name: 'neg', help: 'h', type: 'gauge', metrics: [{ labels: {}, value: -Infinity, timestampMs: -5 }] },
    {
      name: 'window_seconds',
      help: 'Windowed.',
      type: 'summary',
      metrics: [
        {
          labels: { x: 'y' },
          summary: {
            count: 5_000_000_000,
            sum: 2.5,
            quantiles: [
              { quantile: 0.5, value: 0.1 },
              { quantile: 0.999, value: 0.9 },
            ],
          },
        },
      ],
    },
  ];
  const [requests, memory, neg, summary] = decodeAll(renderProtobuf(families));
  assert.is(requests.name, 'streamgauge_requests_total');
  assert.is(requests.help, 'Requests handled.');
  assert.is(requests.type, 'COUNTER');
  assert.equal(requests.metric[0].label, [
    { name: 'method', value: 'Chat/Stream' },
    { name: 'bad_name', value: 'ü"\\\n😀' },
  ]);
  assert.is(requests.metric[0].counter.value, 42);
  assert.is(requests.metric[0].timestampMs, undefined);
  assert.is(requests.metric[1].counter.value, 2 ** 60);
  assert.is(requests.metric[1].timestampMs, 1_700_000_000_123);
  assert.is(memory.name, 'streamgauge_memory_bytes');
  assert.is(memory.help, undefined, 'empty help is left out');
  assert.is(memory.type, 'GAUGE');
  assert.ok(Number.isNaN(memory.metric[0].gauge.value));
  assert.is(neg.metric[0].gauge.value, -Infinity);
  assert.is(neg.metric[0].timestampMs, -5, 'negative int64 in two’s complement');
  assert.is(summary.type, 'SUMMARY');
  assert.equal(summary.metric[0].summary, {
    sampleCount: 5_000_000_000,
    sampleSum: 2.5,
    quantile: [
      { quantile: 0.5, value: 0.1 },
      { quantile: 0.999, value: 0.9 },
    ],
  });
});

test('a native histogram decodes to its schema, zero bucket, spans and deltas', () => {
  const h = histogram(
    [
      [-3, 1],
      [-2, 4],
      [0, 2], // gap of 1: filled with a zero delta
      [3, 7], // gap of 2: filled
      [15, 1], // gap of 11: filled
      [28, 1], // gap of 12: new span
      [29, 0], // empty buckets are dropped
      [30, 5_000_000_000], // past 2^32
      [31, 1],
    ],
    { zeroCount: 3, overflowCount: 2 },
  );
  const [family] = decodeAll(renderProtobuf([histogramFamily(h)]));
  assert.is(family.name, 'streamgauge_latency_seconds');
  assert.is(family.type, 'HISTOGRAM');
  const d = family.metric[0].histogram;
  assert.is(d.sampleCount, h.count);
  assert.is(d.sampleSum, 12.5);
  assert.is(d.schema, 3);
  assert.is(d.zeroThreshold, 1e-6);
  assert.is(d.zeroCount, 3);
  assert.equal(d.positiveSpan, [
    { offset: -3, length: 19 },
    { offset: 12, length: 4 },
  ]);
  // -3:1 -2:4 (-1:0) 0:2 (1:0 2:0) 3:7 (4..14:0) 15:1 | 28:1 (29:0) 30:5e9 31:1
  assert.equal(d.positiveDelta, [
    1,
    3,
    -4,
    2,
    -2,
    0,
    7,
    -7,
    ...new Array(10).fill(0),
    1,
    0,
    -1,
    5_000_000_000,
    1 - 5_000_000_000,
  ]);
  assert.equal(
    nativeBuckets(d),
    h.buckets.filter((b) => b.count > 0),
  );
  assert.is(d.negativeSpan, undefined);
  assert.is(d.negativeDelta, undefined);
});

test('classic buckets ride in the same message: cumulative, exact, no +Inf', () => {
  const h = histogram(
    [
      [-8, 2], // (0.5, 0.5^(7/8)]
      [0, 5], // (0.917, 1]
      [1, 1],
      [9, 3], // (2.18, 2.38]
    ],
    { zeroCount: 1, overflowCount: 4 },
  );
  const ladder = new ClassicLadder([0.5, 1, 2.5, 5]);
  const [family] = decodeAll(renderProtobuf([histogramFamily(h)], { classicBoundariesSeconds: [0.5, 1, 2.5, 5] }));
  const buckets = family.metric[0].histogram.bucket;
  const expected = classicBuckets(h, ladder);
  assert.equal(
    buckets.map((b: Decoded) => b.upperBound),
    expected.bounds,
  );
  assert.equal(
    buckets.map((b: Decoded) => b.cumulativeCount),
    [3, 8, 12, 12],
  );
  assert.is(expected.bounds[0], 0.5);
  assert.is(expected.bounds[1], 1);
  assert.ok(buckets.every((b: Decoded) => Number.isFinite(b.upperBound)));
});

test('an empty histogram still carries a (0, 0) span so scrapers read it as native', () => {
  const [family] = decodeAll(renderProtobuf([histogramFamily(histogram([]))]));
  const d = family.metric[0].histogram;
  assert.is(d.sampleCount ?? 0, 0);
  assert.equal(d.positiveSpan, [{ offset: 0, length: 0 }]);
  assert.is(d.positiveDelta, undefined);
});

test('random histograms round-trip exactly, including messages past 16 KiB', () => {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 40; round++) {
    const n = round === 0 ? 4096 : Math.floor(rnd() * 600);
    const buckets: Array<[number, number]> = [];
    let index = Math.floor(rnd() * 2000) - 1000;
    for (let k = 0; k < n; k++) {
      index += round === 0 ? 1 : 1 + Math.floor(rnd() * rnd() * 8);
      buckets.push([index, rnd() < 0.1 ? 0 : Math.floor(rnd() ** 4 * (round === 0 ? 1e9 : 1e6))]);
    }
    const schema = (round % 13) - 4;
    const h = histogram(buckets, { schema, zeroCount: Math.floor(rnd() * 10) });
    const labels = { series: `s${round}`, text: 'x'.repeat(round * 10) };
    const bytes = renderProtobuf([histogramFamily(h, labels)]);
    if (round === 0) assert.ok(bytes.length > 16_384, `round 0 should need a 3-byte length (${bytes.length} bytes)`);
    const [family] = decodeAll(bytes);
    const d = family.metric[0].histogram;
    assert.is(d.schema ?? 0, schema);
    assert.is(d.sampleCount ?? 0, h.count);
    assert.equal(
      nativeBuckets(d),
      h.buckets.filter((b) => b.count > 0),
      `round ${round}`,
    );
    assert.equal(family.metric[0].label[1].value, labels.text);
  }
});

test('families are length-delimited one after another', () => {
  const families: MetricFamily[] = [];
  for (let i = 0; i < 50; i++) {
    // From i = 12 on, a metric's labels take 128 bytes or more: its length needs two bytes.
    const labels = { i: String(i), pad: 'p'.repeat(i * 10) };
    families.push({
      name: `g${i}`,
      help: 'h'.repeat(i * 7),
      type: i % 2 ? 'counter' : 'gauge',
      metrics: [
        { labels, value: i },
        { labels: {}, value: i + 0.5 },
      ],
    });
  }
  const decoded = decodeAll(renderProtobuf(families, { prefix: 'app_' }));
  assert.is(decoded.length, 50);
  decoded.forEach((f, i) => {
    assert.is(f.name, i % 2 ? `app_g${i}_total` : `app_g${i}`);
    const value = (k: number) => (i % 2 ? f.metric[k].counter?.value : f.metric[k].gauge?.value) ?? 0;
    assert.is(value(0), i);
    assert.is(value(1), i + 0.5);
    assert.is(f.metric[0].label.find((l: { name?: string }) => l.name === 'pad')?.value, 'p'.repeat(i * 10));
  });
});

test('bad input throws, naming what is wrong', () => {
  const good = histogram([[1, 2]]);
  assert.throws(
    () => renderProtobuf([histogramFamily({ ...good, schema: 9 })]),
    (e: Error) => e instanceof RangeError && /schema/.test(e.message),
  );
  assert.throws(
    () => renderProtobuf([histogramFamily({ ...good, count: 5 })]),
    (e: Error) => e instanceof RangeError && /count/.test(e.message),
  );
  assert.throws(
    () =>
      renderProtobuf([
        histogramFamily(
          histogram([
            [2, 1],
            [1, 1],
          ]),
        ),
      ]),
    (e: Error) => e instanceof RangeError && /buckets\[1\]\.index/.test(e.message),
  );
  assert.throws(
    () => renderProtobuf([histogramFamily(good, { le: '1' })]),
    (e: Error) => e instanceof RangeError && /le/.test(e.message),
  );
  assert.throws(
    () =>
      renderProtobuf([
        { name: 'c', help: '', type: 'counter', metrics: [{ labels: { 'a-b': '1', a_b: '2' }, value: 1 }] },
      ]),
    (e: Error) => e instanceof RangeError && /duplicate label a_b/.test(e.message),
  );
  assert.throws(
    () => renderProtobuf([{ name: 'c', help: '', type: 'counter', metrics: [{ labels: {} }] }]),
    (e: Error) => e instanceof TypeError && /families\[0\]\.metrics\[0\]\.value/.test(e.message),
  );
  assert.throws(() => renderProtobuf([histogramFamily(good), histogramFamily(good)]), /appears twice/);
});

test.run();
