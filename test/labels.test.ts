// Label sets as Prometheus sees them: every label set series() accepts is exposed as a label set of
// its own in every format (text, OpenMetrics, protobuf, the prom-client bridge), or series()
// refuses it. Names the exposition uses itself, their renamed forms, empty values and clashes with
// the labels the families add are drawn by a seeded generator; the outputs are parsed back.

import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registerWithPromClient } from '../src/index.js';
import type { Labels } from '../src/core/types.js';
import {
  type Decoded,
  decodeProtobuf,
  labelsOf,
  type Parsed,
  parseExposition,
  sampleValue,
} from './fixtures/expo-helpers.js';
import { seededRandom } from './fixtures/random.js';
import { testMonitor, withMonitor } from './fixtures/monitor.js';

const PROTOBUF_ACCEPT = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited';
const OM_ACCEPT = 'application/openmetrics-text;version=1.0.0';

const NAMES = [
  'le',
  'quantile',
  'direction',
  'error_type',
  'exported_le',
  'exported_quantile',
  'exported_direction',
  'exported_error_type',
  'exported_exported_le',
  'exported_path',
  'stage',
  'path',
  'streamgauge_overflow',
  '__name__',
  'a',
];
const VALUES = ['', '', '1', '2', 'in', 'out', 'true', 'timeout', '+Inf', '0.5'];

const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());

/** Every sample's (name, labels) once: a second sample with the same name and labels is a collision. */
function assertNoCoincidence(samples: { name: string; labels: Record<string, string> }[], what: string): void {
  const seen = new Set<string>();
  for (const s of samples) {
    const k = `${s.name}${key(s.labels)}`;
    assert.not.ok(seen.has(k), `${what}: two samples ${k}`);
    seen.add(k);
  }
}

function protobufSamples(bytes: Uint8Array): { name: string; labels: Record<string, string> }[] {
  return decodeProtobuf(bytes).flatMap((f: Decoded) =>
    (f.metric ?? []).map((m: Decoded) => ({ name: f.name, labels: labelsOf(m) })),
  );
}

test('README: a label set is one series, and two label sets are never exposed as one', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (m) => {
    m.recordLatency(5);
    for (let i = 0; i < 5; i++) m.series({ path: '' }).recordLatency(6); // an empty value is no label: the series {}
    assert.throws(
      () => m.series({ le: '1', exported_le: '2' }),
      (e: Error) => e instanceof RangeError && /exported_le is reserved/.test(e.message),
    );
    for (let i = 0; i < 3; i++) m.series({ le: '1' }).recordLatency(8); // exposed as exported_le="1"
    const parsed = parseExposition(m.metrics().body as string);
    assert.is(sampleValue(parsed, 'streamgauge_requests_total', {}), 6);
    assert.is(sampleValue(parsed, 'streamgauge_requests_total', { exported_le: '1' }), 3);
    assertNoCoincidence(parsed.samples, 'text');
  });
});

test('generated label sets: each accepted one is its own series in text, OpenMetrics, protobuf and prom-client; the rest are refused', async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const rnd = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    const monitor = testMonitor({ maxSeries: 200 });
    const registry = new Registry();
    registerWithPromClient(monitor, registry);
    try {
      // What each accepted label set should show: its requests, keyed by its labels without empty values.
      const expected = new Map<string, { labels: Record<string, string>; requests: number }>();
      let refused = 0;
      for (let i = 0; i < 120; i++) {
        const labels: Record<string, string> = {};
        const n = Math.floor(rnd() * 4);
        for (let j = 0; j < n; j++) labels[pick(NAMES)] = pick(VALUES);
        let rec: ReturnType<typeof monitor.series>;
        try {
          rec = monitor.series(labels as Labels);
        } catch (e) {
          assert.instance(e, RangeError, `${key(labels)}: ${(e as Error).message}`);
          const reserved = Object.keys(labels).some(
            (k) => k.startsWith('__') || /^exported_(le|quantile|direction|error_type)$/.test(k),
          );
          assert.ok(reserved, `${key(labels)} refused: ${(e as Error).message}`);
          refused++;
          continue;
        }
        const kept = Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
        const k = key(kept);
        const entry = expected.get(k) ?? { labels: kept, requests: 0 };
        expected.set(k, entry);
        const times = 1 + Math.floor(rnd() * 3);
        for (let t = 0; t < times; t++) rec.recordLatency(1 + t);
        rec.recordError(pick(['timeout', 'in', 'le']), 2);
        rec.recordMessages(1, 10, pick(['in', 'out'] as const));
        entry.requests += times + 1;
      }
      assert.ok(refused > 0 && expected.size > 10, `seed ${seed}: ${refused} refused, ${expected.size} accepted`);
      // The default series {} is in use only if some label set came down to {}.
      const text = parseExposition(monitor.metrics().body as string);
      const om = parseExposition(monitor.metrics(OM_ACCEPT).body as string);
      const bridged = parseExposition(await registry.metrics());
      for (const [what, parsed] of [
        ['text', text],
        ['OpenMetrics', om],
        ['prom-client', bridged],
      ] as [string, Parsed][]) {
        assertNoCoincidence(parsed.samples, `seed ${seed} ${what}`);
      }
      const proto = protobufSamples(monitor.metrics(PROTOBUF_ACCEPT).body as Uint8Array);
      assertNoCoincidence(proto, `seed ${seed} protobuf`);
      // Each accepted label set's requests are where its (renamed) labels say, in every format.
      const exposed = (labels: Record<string, string>) =>
        Object.fromEntries(
          Object.entries(labels).map(([k, v]) => [
            /^(le|quantile|direction|error_type)$/.test(k) ? `exported_${k}` : k,
            v,
          ]),
        );
      for (const { labels, requests } of expected.values()) {
        if (key(labels) === key({ streamgauge_overflow: 'true' })) continue; // the overflow series' own labels
        const at = exposed(labels);
        assert.is(sampleValue(text, 'streamgauge_requests_total', at), requests, `text ${key(at)}`);
        assert.is(sampleValue(om, 'streamgauge_requests_total', at), requests, `OpenMetrics ${key(at)}`);
        assert.is(sampleValue(bridged, 'streamgauge_requests_total', at), requests, `prom-client ${key(at)}`);
        assert.is(
          proto.filter((s) => s.name === 'streamgauge_requests_total' && key(s.labels) === key(at)).length,
          1,
          `protobuf ${key(at)}`,
        );
      }
    } finally {
      monitor.close();
    }
  }
});

test("invalidValues 'count': refused label sets, session ids and error types are counted, not thrown", async () => {
  await withMonitor({ logger: false, autoStart: false, invalidValues: 'count' }, async (m) => {
    const bad = m.series({ exported_le: '1' });
    bad.recordLatency(1); // skipped and counted
    m.series(null as unknown as Labels);
    m.series({ ok: 'x'.repeat(600) });
    const session = m.openSession(42 as unknown as string);
    session.message(10);
    session.close();
    m.openSession('good').close(7 as unknown as string);
    assert.is(m.totals().invalid, 6);
    assert.is(m.totals().requests, 0);
    assert.is(m.sessionStats().closed, 1);
    assert.is(m.sessionStats().failed, 0);
  });
  await withMonitor({ logger: false, autoStart: false }, async (strict) => {
    assert.throws(
      () => strict.openSession(42 as unknown as string),
      /connectionId must be a non-empty string \(got number\)/,
    );
    const s = strict.openSession('a');
    assert.throws(() => s.close(7 as unknown as string), /errorType must be a non-empty string/);
  });
});

test('too long: the message states the limit and what was measured in the same unit', async () => {
  await withMonitor({ logger: false, autoStart: false }, async (m) => {
    // 43 characters, 129 bytes of UTF-8.
    const type = '€'.repeat(43);
    assert.throws(() => m.recordError(type), /type is too long: at most 128 bytes of UTF-8 \(got 129 bytes\)/);
    const path = 'x'.repeat(600);
    const bytes = JSON.stringify([['path', path]]).length;
    assert.throws(
      () => m.series({ path }),
      new RegExp(`as the JSON of the sorted pairs\\) is too long: at most 512 bytes of UTF-8 \\(got ${bytes} bytes\\)`),
    );
    assert.throws(() => m.updateMemoryUsage(1e308), /bytes must be a whole number from 0 to 9007199254740991/);
  });
});

test.run();
