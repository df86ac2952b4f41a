// Text format 0.0.4, OpenMetrics 1.0, the classic buckets derived from native ones, and the
// Accept-header negotiation that picks between them.

import { upperBound } from '../src/core/buckets.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { negotiate, render } from '../src/export/exposition.js';
import {
  ClassicLadder,
  classicBuckets,
  DEFAULT_CLASSIC_BOUNDARIES_SECONDS,
  type MetricFamily,
  type NativeHistogram,
  snapBoundaries,
} from '../src/core/family-model.js';
import {
  escapeHelpOpenMetrics,
  escapeHelpText,
  escapeLabelValue,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_TEXT_CONTENT_TYPE,
  renderOpenMetrics,
  renderPrometheusText,
  sanitizeLabelName,
  sanitizeMetricName,
} from '../src/export/prometheus-text.js';
import { PROTOBUF_CONTENT_TYPE } from '../src/export/prometheus-protobuf.js';

// Exactly what Prometheus 2.42 sends (captured from a scrape), with and without native histograms.
const ACCEPT_2_42_NATIVE =
  'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const ACCEPT_2_42 =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

function native(buckets: Array<[number, number]>, extra: Partial<NativeHistogram> = {}): NativeHistogram {
  const zeroCount = extra.zeroCount ?? 0;
  const overflowCount = extra.overflowCount ?? 0;
  return {
    count: buckets.reduce((s, [, c]) => s + c, zeroCount + overflowCount),
    sum: 3.25,
    schema: 0,
    zeroThreshold: 0.001,
    zeroCount,
    overflowCount,
    buckets: buckets.map(([index, count]) => ({ index, count })),
    ...extra,
  };
}

const sample: MetricFamily[] = [
  {
    name: 'requests',
    help: 'Requests handled.',
    type: 'counter',
    metrics: [
      { labels: { method: 'Chat/Stream' }, value: 10 },
      { labels: { method: 'Get' }, value: 2, timestampMs: 1_700_000_000_123 },
    ],
  },
  { name: 'memory_bytes', help: 'Heap in use.', type: 'gauge', unit: 'bytes', metrics: [{ labels: {}, value: 1024 }] },
  {
    name: 'request_duration_seconds',
    help: 'Request latency.',
    type: 'histogram',
    unit: 'seconds',
    // schema 0: bucket i is (2^(i-1), 2^i]; zero bucket <= 0.001
    metrics: [
      {
        labels: { method: 'Get' },
        histogram: native(
          [
            [-3, 1],
            [-1, 2],
            [0, 3],
            [2, 1],
          ],
          { zeroCount: 1, overflowCount: 1 },
        ),
      },
    ],
  },
  {
    name: 'window_seconds',
    help: 'Windowed quantiles.',
    type: 'summary',
    metrics: [
      {
        labels: {},
        summary: {
          count: 4,
          sum: 1.5,
          quantiles: [
            { quantile: 0.5, value: 0.25 },
            { quantile: 1, value: 1 },
          ],
        },
      },
    ],
  },
];
const boundaries = [0.125, 0.5, 1, 4];

test('text format 0.0.4, whole output', () => {
  assert.fixture(
    renderPrometheusText(sample, { classicBoundariesSeconds: boundaries }),
    `# HELP streamgauge_requests_total Requests handled.
# TYPE streamgauge_requests_total counter
streamgauge_requests_total{method="Chat/Stream"} 10
streamgauge_requests_total{method="Get"} 2 1700000000123
# HELP streamgauge_memory_bytes Heap in use.
# TYPE streamgauge_memory_bytes gauge
streamgauge_memory_bytes 1024
# HELP streamgauge_request_duration_seconds Request latency.
# TYPE streamgauge_request_duration_seconds histogram
streamgauge_request_duration_seconds_bucket{method="Get",le="0.125"} 2
streamgauge_request_duration_seconds_bucket{method="Get",le="0.5"} 4
streamgauge_request_duration_seconds_bucket{method="Get",le="1"} 7
streamgauge_request_duration_seconds_bucket{method="Get",le="4"} 8
streamgauge_request_duration_seconds_bucket{method="Get",le="+Inf"} 9
streamgauge_request_duration_seconds_sum{method="Get"} 3.25
streamgauge_request_duration_seconds_count{method="Get"} 9
# HELP streamgauge_window_seconds Windowed quantiles.
# TYPE streamgauge_window_seconds summary
streamgauge_window_seconds{quantile="0.5"} 0.25
streamgauge_window_seconds{quantile="1"} 1
streamgauge_window_seconds_sum 1.5
streamgauge_window_seconds_count 4
`,
  );
});

test('OpenMetrics 1.0, whole output', () => {
  assert.fixture(
    renderOpenMetrics(sample, { classicBoundariesSeconds: boundaries }),
    `# HELP streamgauge_requests Requests handled.
# TYPE streamgauge_requests counter
streamgauge_requests_total{method="Chat/Stream"} 10
streamgauge_requests_total{method="Get"} 2 1700000000.123
# HELP streamgauge_memory_bytes Heap in use.
# TYPE streamgauge_memory_bytes gauge
# UNIT streamgauge_memory_bytes bytes
streamgauge_memory_bytes 1024
# HELP streamgauge_request_duration_seconds Request latency.
# TYPE streamgauge_request_duration_seconds histogram
# UNIT streamgauge_request_duration_seconds seconds
streamgauge_request_duration_seconds_bucket{method="Get",le="0.125"} 2
streamgauge_request_duration_seconds_bucket{method="Get",le="0.5"} 4
streamgauge_request_duration_seconds_bucket{method="Get",le="1.0"} 7
streamgauge_request_duration_seconds_bucket{method="Get",le="4.0"} 8
streamgauge_request_duration_seconds_bucket{method="Get",le="+Inf"} 9
streamgauge_request_duration_seconds_sum{method="Get"} 3.25
streamgauge_request_duration_seconds_count{method="Get"} 9
# HELP streamgauge_window_seconds Windowed quantiles.
# TYPE streamgauge_window_seconds summary
streamgauge_window_seconds{quantile="0.5"} 0.25
streamgauge_window_seconds{quantile="1.0"} 1
streamgauge_window_seconds_sum 1.5
streamgauge_window_seconds_count 4
# EOF
`,
  );
});

test('OpenMetrics UNIT only when the name ends with _<unit>', () => {
  const out = renderOpenMetrics([
    { name: 'ratio_thing', help: 'x', type: 'gauge', unit: 'seconds', metrics: [{ labels: {}, value: 1 }] },
    { name: 'cache_hit_ratio', help: 'x', type: 'gauge', unit: 'ratio', metrics: [{ labels: {}, value: 1 }] },
    { name: 'busy_seconds', help: 'x', type: 'counter', unit: 'seconds', metrics: [{ labels: {}, value: 1 }] },
  ]);
  assert.not.match(out, '# UNIT streamgauge_ratio_thing');
  assert.match(out, '# UNIT streamgauge_cache_hit_ratio ratio\n');
  assert.match(
    out,
    '# TYPE streamgauge_busy_seconds counter\n# UNIT streamgauge_busy_seconds seconds\nstreamgauge_busy_seconds_total 1\n',
  );
  assert.ok(out.endsWith('\n# EOF\n'));
  assert.not.match(renderPrometheusText([sample[1]]), '# UNIT');
});

test('NaN and infinities as both formats spell them', () => {
  const fams: MetricFamily[] = [
    {
      name: 'g',
      help: 'x',
      type: 'gauge',
      metrics: [
        { labels: { k: 'nan' }, value: Number.NaN },
        { labels: { k: 'inf' }, value: Infinity },
        { labels: { k: 'ninf' }, value: -Infinity },
        { labels: { k: 'tiny' }, value: 1e-7 },
      ],
    },
  ];
  for (const out of [renderPrometheusText(fams), renderOpenMetrics(fams)]) {
    assert.match(out, 'g{k="nan"} NaN\n');
    assert.match(out, 'g{k="inf"} +Inf\n');
    assert.match(out, 'g{k="ninf"} -Inf\n');
    assert.match(out, 'g{k="tiny"} 1e-7\n');
  }
});

test('label values and HELP are escaped per format', () => {
  assert.is(escapeLabelValue('a"b\\c\nd<script>ü'), 'a\\"b\\\\c\\nd<script>ü');
  assert.is(escapeLabelValue('plain'), 'plain');
  assert.is(escapeHelpText('say "hi"\\\nbye'), 'say "hi"\\\\\\nbye');
  assert.is(escapeHelpOpenMetrics('say "hi"\\\nbye'), 'say \\"hi\\"\\\\\\nbye');
  const fams: MetricFamily[] = [
    { name: 'c', help: 'a "b"\nc\\', type: 'counter', metrics: [{ labels: { v: '"\\\n' }, value: 1 }] },
  ];
  assert.match(renderPrometheusText(fams), '# HELP streamgauge_c_total a "b"\\nc\\\\\n');
  assert.match(renderOpenMetrics(fams), '# HELP streamgauge_c a \\"b\\"\\nc\\\\\n');
  for (const out of [renderPrometheusText(fams), renderOpenMetrics(fams)]) {
    assert.match(out, 'streamgauge_c_total{v="\\"\\\\\\n"} 1\n');
    assert.is(out.split('\n').filter((l) => l.startsWith('streamgauge_c_total')).length, 1, 'one line per sample');
  }
});

test('text beyond ASCII and counts of every size come out as written', () => {
  const fams: MetricFamily[] = [
    {
      name: 'c',
      help: 'Zürich – 東京 🚀',
      type: 'counter',
      metrics: [
        { labels: { city: 'Zürich' }, value: 0 },
        { labels: { city: '東京 🚀' }, value: 9_007_199_254_740_991 },
        { labels: { city: 'plain' }, value: 1e21 },
        { labels: { city: 'neg' }, value: -12 },
        { labels: { city: 'frac' }, value: 0.1 + 0.2 },
        { labels: { city: 'i31' }, value: 2_147_483_647 },
        { labels: { city: 'i32' }, value: 2_147_483_648 },
        { labels: { city: 'ten' }, value: 10 },
      ],
    },
  ];
  const text = renderPrometheusText(fams);
  assert.is(
    text,
    '# HELP streamgauge_c_total Zürich – 東京 🚀\n# TYPE streamgauge_c_total counter\n' +
      'streamgauge_c_total{city="Zürich"} 0\nstreamgauge_c_total{city="東京 🚀"} 9007199254740991\n' +
      'streamgauge_c_total{city="plain"} 1e+21\nstreamgauge_c_total{city="neg"} -12\n' +
      'streamgauge_c_total{city="frac"} 0.30000000000000004\n' +
      'streamgauge_c_total{city="i31"} 2147483647\nstreamgauge_c_total{city="i32"} 2147483648\n' +
      'streamgauge_c_total{city="ten"} 10\n',
  );
  // The next render, ASCII only, is not spelled as the one before it was.
  assert.is(renderPrometheusText([sample[1]]).includes('ü'), false);
  assert.match(renderOpenMetrics(fams), 'streamgauge_c_total{city="東京 🚀"} 9007199254740991\n');
});

test('a render that fails leaves nothing behind for the next one', () => {
  const good: MetricFamily = { name: 'ok', help: 'x', type: 'gauge', metrics: [{ labels: {}, value: 1 }] };
  const bad = { name: 'bad', help: 'x', type: 'gauge', metrics: [{ labels: {}, value: 'x' }] } as never;
  assert.throws(() => renderPrometheusText([good, bad]), /value must be a number/);
  assert.is(renderPrometheusText([good]), '# HELP streamgauge_ok x\n# TYPE streamgauge_ok gauge\nstreamgauge_ok 1\n');
});

test('a large render is whole', () => {
  const metrics = Array.from({ length: 50_000 }, (_, i) => ({ labels: { n: `s${i}` }, value: i }));
  const text = renderPrometheusText([{ name: 'big', help: 'x', type: 'gauge', metrics }]);
  const lines = text.split('\n');
  assert.is(lines.length, 50_000 + 3);
  assert.is(lines[2], 'streamgauge_big{n="s0"} 0');
  assert.is(lines[50_001], 'streamgauge_big{n="s49999"} 49999');
});

test('names and label names are sanitised; the prefix is configurable', () => {
  assert.is(sanitizeMetricName('http.requests-total:rate'), 'http_requests_total:rate');
  assert.is(sanitizeMetricName('5xx_errors'), '_5xx_errors');
  assert.is(sanitizeMetricName('ok_name'), 'ok_name');
  assert.is(sanitizeMetricName('ünï'), '_n_');
  assert.is(sanitizeLabelName('grpc.method'), 'grpc_method');
  assert.is(sanitizeLabelName('a:b'), 'a_b');
  assert.is(sanitizeLabelName('1st'), '_1st');
  assert.throws(() => sanitizeMetricName(''), RangeError);
  const fams: MetricFamily[] = [
    { name: 'cache.hits', help: 'x', type: 'counter', metrics: [{ labels: { 'grpc.method': 'a' }, value: 1 }] },
    { name: 'already_total', help: 'x', type: 'counter', metrics: [{ labels: {}, value: 2 }] },
  ];
  const out = renderPrometheusText(fams, { prefix: 'my-app_' });
  assert.match(out, '# TYPE my_app_cache_hits_total counter\nmy_app_cache_hits_total{grpc_method="a"} 1\n');
  assert.match(out, 'my_app_already_total 2\n', 'no _total_total');
  assert.match(renderPrometheusText(fams, { prefix: '' }), '\ncache_hits_total{');
  assert.match(renderPrometheusText(fams), '\nstreamgauge_cache_hits_total{');
});

test('duplicate and reserved labels are programming errors', () => {
  const counter = (labels: Record<string, string>): MetricFamily[] => [
    { name: 'c', help: 'x', type: 'counter', metrics: [{ labels, value: 1 }] },
  ];
  assert.throws(() => renderPrometheusText(counter({ 'a.b': '1', a_b: '2' })), /duplicate label a_b/);
  assert.throws(() => renderOpenMetrics(counter({ __name__: 'x' })), /reserved/);
  assert.throws(
    () =>
      renderPrometheusText([
        { name: 'h', help: 'x', type: 'histogram', metrics: [{ labels: { le: '1' }, histogram: native([]) }] },
      ]),
    /label le is reserved/,
  );
  assert.throws(
    () =>
      renderPrometheusText([
        {
          name: 's',
          help: 'x',
          type: 'summary',
          metrics: [{ labels: { quantile: '1' }, summary: { count: 0, sum: 0, quantiles: [] } }],
        },
      ]),
    /label quantile is reserved/,
  );
  assert.throws(() => renderPrometheusText([sample[1], sample[1]]), /appears twice/);
});

test('bad arguments throw TypeError/RangeError naming the argument', () => {
  const is = (type: new (message?: string) => Error, re: RegExp) => (e: Error) =>
    e instanceof type && re.test(e.message);
  assert.throws(() => renderPrometheusText('x' as never), is(TypeError, /families/));
  assert.throws(() => renderPrometheusText([], { prefix: 5 as never }), is(TypeError, /prefix/));
  assert.throws(
    () => renderPrometheusText([], { classicBoundariesSeconds: [1, 0.5] }),
    is(RangeError, /classicBoundariesSeconds/),
  );
  assert.throws(
    () => renderPrometheusText([], { classicBoundariesSeconds: [0, 1] }),
    is(RangeError, /classicBoundariesSeconds\[0\]/),
  );
  assert.throws(
    () => renderPrometheusText([{ name: 'x', help: 'h', type: 'meter' as never, metrics: [] }]),
    is(TypeError, /families\[0\]\.type/),
  );
  assert.throws(
    () =>
      renderPrometheusText([
        { name: 'g', help: 'h', type: 'gauge', metrics: [{ labels: { a: 1 as never }, value: 1 }] },
      ]),
    is(TypeError, /families\[0\]\.metrics\[0\]\.labels\.a/),
  );
  assert.throws(
    () => renderOpenMetrics([{ name: 'h', help: 'h', type: 'histogram', metrics: [{ labels: {}, value: 1 }] }]),
    is(TypeError, /families\[0\]\.metrics\[0\]\.histogram/),
  );
  assert.throws(
    () =>
      renderOpenMetrics([
        {
          name: 'h',
          help: 'h',
          type: 'histogram',
          metrics: [{ labels: {}, histogram: { ...native([[1, 1]]), count: 7 } }],
        },
      ]),
    is(RangeError, /families\[0\]\.metrics\[0\]\.histogram\.count/),
  );
  assert.throws(
    () =>
      renderOpenMetrics([
        { name: 'g', help: 'h', type: 'gauge', metrics: [{ labels: {}, value: 1, timestampMs: 1.5 }] },
      ]),
    is(RangeError, /timestampMs/),
  );
  assert.throws(
    () =>
      renderOpenMetrics([
        {
          name: 's',
          help: 'h',
          type: 'summary',
          metrics: [{ labels: {}, summary: { count: 1, sum: 1, quantiles: [{ quantile: 2, value: 1 }] } }],
        },
      ]),
    is(RangeError, /quantiles\[0\]\.quantile/),
  );
});

// --- classic buckets ------------------------------------------------------------------------------

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

test('classic buckets equal a direct count of the raw observations at every boundary', () => {
  const rnd = lcg(99);
  for (const schema of [-4, -1, 0, 3, 7, 8]) {
    const values: number[] = [];
    for (let i = 0; i < 5000; i++) values.push(Math.exp(rnd() * 16 - 11)); // ~17 µs .. 150 s
    values.push(1e-7, 5e-7); // zero bucket
    const zeroThreshold = 1e-6;
    const top = 100;
    const counts = new Map<number, number>();
    let zeroCount = 0;
    let overflowCount = 0;
    for (const v of values) {
      if (v <= zeroThreshold) zeroCount++;
      else if (v > top) overflowCount++;
      else {
        const i = Math.ceil(Math.log2(v) * 2 ** schema);
        counts.set(i, (counts.get(i) ?? 0) + 1);
      }
    }
    const h: NativeHistogram = {
      count: values.length,
      sum: values.reduce((a, b) => a + b, 0),
      schema,
      zeroThreshold,
      zeroCount,
      overflowCount,
      overflowThreshold: top,
      buckets: [...counts].sort((a, b) => a[0] - b[0]).map(([index, count]) => ({ index, count })),
    };
    const ladder = new ClassicLadder(DEFAULT_CLASSIC_BOUNDARIES_SECONDS);
    const { bounds, counts: cumulative } = classicBuckets(h, ladder);
    assert.ok(bounds.length > 0, `schema ${schema}: some boundaries survive`);
    bounds.forEach((b, k) => {
      assert.ok(b >= zeroThreshold && b <= top, `schema ${schema}: bound ${b} within the exact range`);
      assert.is(cumulative[k], values.filter((v) => v <= b).length, `schema ${schema}: le=${b}`);
      if (k > 0) assert.ok(b > bounds[k - 1] && cumulative[k] >= cumulative[k - 1], 'ascending, cumulative');
    });
    const text = renderPrometheusText([
      { name: 'lat_seconds', help: 'h', type: 'histogram', metrics: [{ labels: {}, histogram: h }] },
    ]);
    assert.match(text, `streamgauge_lat_seconds_bucket{le="+Inf"} ${values.length}\n`);
    assert.match(text, `streamgauge_lat_seconds_count ${values.length}\n`);
  }
});

test('boundaries snap to the nearest native boundary, and that value is printed', () => {
  const s7 = snapBoundaries([0.001, 0.1, 1, 60], 7);
  s7.bounds.forEach((b, k) => {
    assert.is(b, upperBound(s7.indices[k], 7), 'the very boundary the core buckets by');
    const asked = [0.001, 0.1, 1, 60][k];
    assert.ok(Math.abs(Math.log2(b / asked)) <= 0.5 / 128 + 1e-12, `${b} is the nearest native boundary to ${asked}`);
  });
  assert.is(s7.bounds[2], 1);
  assert.equal(snapBoundaries([0.3, 0.5, 0.7, 1], 0).bounds, [0.25, 0.5, 1], 'merged when two snap together');
  assert.equal(snapBoundaries([0.001, 1, 60], -4).bounds, [2 ** -16, 1], 'schema -4: one boundary per factor 65536');
  const h = native([[-553, 1]], { schema: 7, zeroThreshold: 0.002 }); // one observation near 0.05
  const out = renderPrometheusText(
    [{ name: 'h_seconds', help: 'h', type: 'histogram', metrics: [{ labels: {}, histogram: h }] }],
    { classicBoundariesSeconds: [0.001, 0.1] },
  );
  assert.not.match(out, `le="${s7.bounds[0]}"`, 'a boundary under the zero threshold is not exact: left out');
  assert.match(out, `le="${s7.bounds[1]}"} 1\n`);
});

test('default ladder: 0.5 ms .. 60 s, and overflow only in +Inf', () => {
  assert.is(DEFAULT_CLASSIC_BOUNDARIES_SECONDS[0], 0.0005);
  assert.is(DEFAULT_CLASSIC_BOUNDARIES_SECONDS[DEFAULT_CLASSIC_BOUNDARIES_SECONDS.length - 1], 60);
  const h = native([[0, 2]], { schema: 7, zeroThreshold: 1e-6, overflowCount: 3 });
  const { bounds, counts } = classicBuckets(h, new ClassicLadder());
  assert.is(bounds.length, DEFAULT_CLASSIC_BOUNDARIES_SECONDS.length);
  assert.is(counts[counts.length - 1], 2);
  const capped = classicBuckets({ ...h, overflowThreshold: 10 }, new ClassicLadder());
  assert.ok(
    capped.bounds.every((b) => b <= 10),
    'boundaries above the resolved range are left out',
  );
});

// --- negotiation ----------------------------------------------------------------------------------

test('negotiation: Prometheus 2.42 headers, q values, fallbacks', () => {
  assert.equal(negotiate(ACCEPT_2_42_NATIVE), { format: 'protobuf', contentType: PROTOBUF_CONTENT_TYPE });
  assert.equal(negotiate(ACCEPT_2_42), { format: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE });
  assert.equal(negotiate('text/plain;version=0.0.4;q=0.5,*/*;q=0.1'), {
    format: 'text',
    contentType: PROMETHEUS_TEXT_CONTENT_TYPE,
  });
  assert.is(negotiate(undefined).format, 'text');
  assert.is(negotiate('').format, 'text');
  assert.is(negotiate('application/json').format, 'text', 'nothing supported: text');
  assert.is(negotiate('*/*').format, 'text');
  assert.is(negotiate('application/openmetrics-text').format, 'openmetrics');
  assert.match(negotiate('application/openmetrics-text; version=0.0.1').contentType, 'version=0.0.1');
  assert.is(negotiate('application/openmetrics-text;version=2.0.0,text/plain;q=0.2').format, 'text', 'unknown version');
  assert.is(
    negotiate('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text').format,
    'text',
  );
  assert.is(negotiate('application/vnd.google.protobuf;proto=other;encoding=delimited').format, 'text');
  assert.is(negotiate('text/plain;q=0.9, application/openmetrics-text;q=0.8').format, 'text', 'higher q wins');
  assert.is(negotiate('application/openmetrics-text;q=0, text/plain;q=0.1').format, 'text', 'q=0 is refused');
  assert.is(
    negotiate('Application/Vnd.Google.Protobuf; Proto=io.prometheus.client.MetricFamily; Encoding=Delimited; q=1')
      .format,
    'protobuf',
    'media types and parameter names are case-insensitive',
  );
  assert.is(negotiate(ACCEPT_2_42_NATIVE).format, 'protobuf', 'cached answer stays right');
  assert.is(negotiate(ACCEPT_2_42).format, 'openmetrics');
});

test('render picks the writer and the content type together', () => {
  const text = render(sample, { accept: 'text/plain;version=0.0.4' });
  assert.is(text.contentType, PROMETHEUS_TEXT_CONTENT_TYPE);
  assert.is(text.body, renderPrometheusText(sample));
  const om = render(sample, { accept: ACCEPT_2_42, prefix: 'x_' });
  assert.is(om.contentType, OPENMETRICS_CONTENT_TYPE);
  assert.is(om.body, renderOpenMetrics(sample, { prefix: 'x_' }));
  const pb = render(sample, { accept: ACCEPT_2_42_NATIVE });
  assert.is(pb.contentType, PROTOBUF_CONTENT_TYPE);
  assert.instance(pb.body, Uint8Array);
  assert.is(render([], {}).body, '');
});

test.run();
