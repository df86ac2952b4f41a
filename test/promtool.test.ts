// `promtool check metrics` (Debian's prometheus 2.42) on our text output, hostile label values
// included. promtool parses with the text 0.0.4 parser and lints (exit 0 clean, 1 parse error,
// 3 lint findings only).

import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MetricFamily, NativeHistogram } from '../src/core/family-model.js';
import { renderOpenMetrics, renderPrometheusText } from '../src/export/prometheus-text.js';

const HOSTILE = [
  '',
  'quote " inside',
  'back\\slash \\n \\" lookalikes',
  'new\nline\n',
  '<script>alert("x")</script>',
  'ünïcødé ✓ 😀 日本 \u0000 \u2028',
  'tab\tcarriage\rreturn',
  '} 1\nfake_metric 2',
  '"',
  '\\',
];

function promtool(input: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input, encoding: 'utf8', timeout: 20_000 });
  if (r.error) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'promtool not found' : r.error.message;
    assert.unreachable(`${why}: apt-get install prometheus`);
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

function latency(seed: number): NativeHistogram {
  const buckets = [];
  let count = 0;
  for (let i = -1100; i < -300; i += 1 + (seed % 5)) {
    const c = (i * seed) % 7 === 0 ? 0 : 1 + ((i * i + seed) % 50);
    buckets.push({ index: i, count: c });
    count += c;
  }
  return { count: count + 3, sum: 12.75, schema: 7, zeroThreshold: 1e-6, zeroCount: 2, overflowCount: 1, buckets };
}

function families(withCounters: boolean): MetricFamily[] {
  const out: MetricFamily[] = [
    {
      name: 'connections_active',
      help: 'Open connections, by method.',
      type: 'gauge',
      metrics: HOSTILE.map((method, i) => ({ labels: { method, 'label.with-dots': method }, value: i })),
    },
    {
      name: 'special_values',
      help: 'NaN and infinities.',
      type: 'gauge',
      metrics: [
        { labels: { v: 'nan' }, value: Number.NaN },
        { labels: { v: 'inf' }, value: Infinity },
        { labels: { v: 'ninf' }, value: -Infinity },
      ],
    },
    {
      name: 'request_duration_seconds',
      help: 'Request latency.',
      type: 'histogram',
      unit: 'seconds',
      metrics: HOSTILE.map((method, i) => ({ labels: { method }, histogram: latency(i + 1) })),
    },
    {
      name: 'request_window_seconds',
      help: 'Windowed latency quantiles.',
      type: 'summary',
      unit: 'seconds',
      metrics: HOSTILE.map((method) => ({
        labels: { method },
        summary: {
          count: 100,
          sum: 5,
          quantiles: [0.5, 0.95, 0.99, 0.999].map((quantile) => ({ quantile, value: quantile / 10 })),
        },
      })),
    },
  ];
  if (withCounters) {
    out.unshift({
      name: 'requests',
      help: 'Requests handled, by method.',
      type: 'counter',
      metrics: HOSTILE.map((method, i) => ({ labels: { method }, value: 10 * i })),
    });
  }
  return out;
}

test('text format 0.0.4 passes promtool check metrics (exit 0), hostile labels and HELP included', () => {
  const fams = families(true);
  fams.push({
    name: 'odd_help',
    help: 'HELP with "quotes", a back\\slash and a\nnewline',
    type: 'gauge',
    metrics: [{ labels: {}, value: 1, timestampMs: 1_700_000_000_000 }],
  });
  const text = renderPrometheusText(fams);
  const { status, output } = promtool(text);
  assert.is(output, '', output);
  assert.is(status, 0);
});

test('OpenMetrics passes promtool check metrics (exit 0), hostile labels included', () => {
  // Without counters: promtool reads text 0.0.4, where an OpenMetrics counter (TYPE `x`, sample
  // `x_total`) looks like an untyped metric without HELP; see the next test.
  const text = renderOpenMetrics(families(false));
  assert.ok(text.endsWith('\n# EOF\n'));
  const { status, output } = promtool(text);
  assert.is(output, '', output);
  assert.is(status, 0);
});

test('OpenMetrics counters parse in promtool; its only finding is the text-format lint on _total', () => {
  const text = renderOpenMetrics(families(true));
  const { status, output } = promtool(text);
  assert.ok(status === 0 || status === 3, `parse error (exit ${status}): ${output}`);
  for (const line of output.split('\n').filter((l) => l.length > 0)) {
    assert.is(line, 'streamgauge_requests_total no help text', `unexpected promtool finding: ${line}`);
  }
});

test('the harness sees a broken exposition (guards against a promtool that passes everything)', () => {
  const good = renderPrometheusText(families(false));
  const broken = good.replace('method="quote \\" inside"', 'method="quote " inside"');
  assert.is.not(broken, good);
  assert.is(promtool(broken).status, 1);
  const unescapedNewline = good.replace('method="new\\nline\\n"', 'method="new\nline\n"');
  assert.is.not(unescapedNewline, good);
  assert.is(promtool(unescapedNewline).status, 1);
});

test.run();
