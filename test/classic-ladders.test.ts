// Histograms that are not seconds get classic buckets that fit their unit: bytes on powers of 4
// from 64 B, counts (messages per session, items per batch) on 1, 2, 5, 10, … Values across each
// range land in the right buckets, in the text format and in protobuf's classic buckets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StreamPerformanceMonitor } from '../src/index.js';
import { BYTES_CLASSIC_BOUNDARIES, COUNT_CLASSIC_BOUNDARIES } from '../src/core/family-model.js';
import { decodeProtobuf, parseExposition, pick } from './fixtures/expo-helpers.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';
import { testMonitor } from './fixtures/monitor.js';

const PROTOBUF = 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited';

const BYTES = [0, 1, 63, 64, 65, 255, 256, 257, 1000, 1024, 4096, 65_536, 1_000_000, 5e8, 4 * 2 ** 30, 5 * 2 ** 30];
const COUNTS = [
  1, 2, 3, 5, 6, 10, 11, 20, 49, 50, 51, 99, 100, 101, 1000, 1001, 4999, 5000, 999_999, 1_000_000, 2_000_000,
];

function monitorWith(scale?: number): StreamPerformanceMonitor {
  const monitor = testMonitor({
    ...(scale === undefined ? {} : { scale }),
  });
  // One session per byte size (with a message count from COUNTS), one batch per count.
  for (const [i, bytes] of BYTES.entries()) monitor.recordStreamSession(`s${i}`, COUNTS[i % COUNTS.length], 5, bytes);
  for (const n of COUNTS) monitor.recordBatchProcessing(n, 2);
  return monitor;
}

/** Every classic bucket of `name` holds exactly the values at or below its bound. */
function checkBuckets(buckets: { le: number; count: number }[], values: number[], what: string): void {
  assert.ok(buckets.length > 5, `${what}: a ladder, not just +Inf`);
  for (const { le, count } of buckets) {
    assert.is(count, values.filter((v) => v <= le).length, `${what} le=${le}`);
  }
  assert.is(buckets[buckets.length - 1].le, Infinity);
  assert.is(buckets[buckets.length - 1].count, values.length);
}

for (const scale of [undefined, 0, 3]) {
  test(`session_bytes, session_messages and batch_size: classic buckets in their unit, every value in its bucket (scale ${scale ?? 'default'})`, () => {
    const monitor = monitorWith(scale);
    try {
      const text = parseExposition(monitor.metrics().body as string);
      const read = (name: string) =>
        pick(text, `streamgauge_${name}_bucket`).map((s) => ({
          le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le),
          count: s.value,
        }));
      const messages = BYTES.map((_, i) => COUNTS[i % COUNTS.length]);
      checkBuckets(read('session_bytes'), BYTES, 'session_bytes');
      checkBuckets(read('session_messages'), messages, 'session_messages');
      checkBuckets(read('batch_size'), COUNTS, 'batch_size');

      // Bytes: exactly the powers of 4 from 64 B (native boundaries at every schema).
      assert.equal(
        read('session_bytes')
          .map((b) => b.le)
          .slice(0, -1),
        [...BYTES_CLASSIC_BOUNDARIES],
      );
      // Counts: each bound at or just above its nominal value, so `le` 5 holds 5 itself.
      const counts = read('batch_size')
        .map((b) => b.le)
        .slice(0, -1);
      for (const le of counts) {
        const nominal = COUNT_CLASSIC_BOUNDARIES.filter((b) => b <= le).pop() as number;
        assert.ok(
          le >= nominal && le < nominal * 2 ** (2 ** -internalsOf(monitor).layout.shapes.batchSize.scale) + 1e-9,
          `le ${le} next to ${nominal}`,
        );
      }
      // 300 sessions of 1 KiB .. 1 MiB: none in +Inf alone (the seconds ladder put all of them there).
      const more = testMonitor();
      for (let i = 0; i < 300; i++) more.recordStreamSession(`m${i}`, 10 + i, 5, 1024 + i * 3000);
      const inf = pick(parseExposition(more.metrics().body as string), 'streamgauge_session_bytes_bucket');
      assert.is(inf[inf.length - 1].value - inf[inf.length - 2].value, 0, 'nothing above the last finite bound');
      more.close();

      // Protobuf carries the same classic buckets beside the native ones.
      const fams = decodeProtobuf(monitor.metrics(PROTOBUF).body as Uint8Array);
      for (const [name, values] of [
        ['streamgauge_session_bytes', BYTES],
        ['streamgauge_batch_size', COUNTS],
      ] as const) {
        const h = fams.find((f) => f.name === name)?.metric[0].histogram;
        assert.ok(h, name);
        checkBuckets(
          [
            ...h.bucket.map((b: { upperBound: number; cumulativeCount?: number }) => ({
              le: b.upperBound,
              count: b.cumulativeCount ?? 0,
            })),
            { le: Infinity, count: h.sampleCount },
          ],
          [...values],
          `${name} (protobuf)`,
        );
      }
      // The seconds families keep the seconds ladder.
      assert.ok(pick(text, 'streamgauge_session_duration_seconds_bucket').some((s) => s.labels.le === '+Inf'));
    } finally {
      monitor.close();
    }
  });
}

test.run();
