// Bucket pages: a histogram takes pages as its range grows, from any thread, and when the bound on
// bucket memory is reached a value is counted without a bucket rather than lost or misplaced.
import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StreamPerformanceMonitor } from '../src/index.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';
import { testMonitor } from './fixtures/monitor.js';

/** Values from 1 µs to 40 min on a ratio of 1.07: each lands in another page as the range grows. */
const ladder = Array.from({ length: 320 }, (_, i) => 0.001 * 1.07 ** i);

function bucketsOf(m: StreamPerformanceMonitor, series: number) {
  const h = m.nativeHistogram(series);
  const counts = new Map(h.buckets.filter((b) => b.count > 0).map((b) => [b.index, b.count]));
  const placed = h.zeroCount + h.overflowCount + [...counts.values()].reduce((a, b) => a + b, 0);
  return { h, counts, placed, unplaced: h.count - placed };
}

test('a range that grows while two worker threads and this one record: every count lands where one thread alone puts it', async () => {
  const m = testMonitor();
  const reference = testMonitor();
  const ROUNDS = 40;
  const handle = m.handle();
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.entry).then(({ attach }) => {
      const r = attach(workerData.handle).series({ route: 'shared' });
      for (let round = 0; round < workerData.rounds; round++) for (const v of workerData.ladder) r.recordLatency(v);
      parentPort.postMessage('done');
    });`;
  const entry = new URL('../dist/index.js', import.meta.url).href;
  const workers = [0, 1].map(
    () => new Worker(code, { eval: true, workerData: { entry, handle, rounds: ROUNDS, ladder } }),
  );
  const done = workers.map(
    (w) =>
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
  );
  const own = m.series({ route: 'shared' });
  let finished = false;
  void Promise.all(done).then(() => {
    finished = true;
  });
  // This thread records too and ticks while the workers run, so reads walk pages being claimed.
  for (let round = 0; !finished || round < ROUNDS; round++) {
    if (round < ROUNDS) for (const v of ladder) own.recordLatency(v);
    m.tick();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  const ref = reference.series({ route: 'shared' });
  for (let i = 0; i < 3 * ROUNDS; i++) for (const v of ladder) ref.recordLatency(v);
  const index = m.seriesList().find((s) => s.labels.route === 'shared')?.index ?? -1;
  const refIndex = reference.seriesList().find((s) => s.labels.route === 'shared')?.index ?? -1;
  const got = bucketsOf(m, index);
  const want = bucketsOf(reference, refIndex);
  assert.is(got.h.count, 3 * ROUNDS * ladder.length);
  assert.is(got.unplaced, 0);
  assert.equal([...got.counts], [...want.counts]);
  assert.is(m.totals(index).latencyCount, 3 * ROUNDS * ladder.length);
  assert.is(m.memoryFootprint().bucketPages.refusedClaims, 0);
  m.close();
  reference.close();
});

test('bucketMemory used up: values past it are counted (count, sum, min, max) in no bucket, never in a wrong one, and the refusals are counted', () => {
  const m = testMonitor({ bucketMemory: 65_536 });
  const series = Array.from({ length: 8 }, (_, i) => m.series({ route: `r${i}` }));
  let n = 0;
  let sum = 0;
  for (const r of series) {
    for (const v of ladder) {
      r.recordLatency(v);
      n++;
      sum += v;
    }
  }
  const fp = m.memoryFootprint();
  assert.ok(fp.bucketPages.refusedClaims > 0, 'the arena ran out');
  assert.ok(fp.bucketPages.usedBytes <= 65_536, `${fp.bucketPages.usedBytes} bytes of pages`);
  const t = m.totals();
  assert.is(t.latencyCount, n, 'every value counted');
  assert.ok(Math.abs(t.latencySumMs - sum) <= 1e-6 * sum, 'and summed');
  assert.is(t.latencyMinMs, series.length > 0 ? Math.round(ladder[0] * 1e6) / 1e6 : Number.NaN);
  // A reference with room for every page: each bucket holds what it holds there, or nothing.
  const roomy = testMonitor();
  let unplaced = 0;
  for (const [i, r] of series.entries()) {
    const index = m.seriesList().find((s) => s.labels.route === `r${i}`)?.index ?? -1;
    const ref = roomy.series({ route: `r${i}` });
    for (const v of ladder) ref.recordLatency(v);
    const refIndex = roomy.seriesList().find((s) => s.labels.route === `r${i}`)?.index ?? -1;
    const got = bucketsOf(m, index);
    const want = bucketsOf(roomy, refIndex);
    // The native histogram holds the placed values alone, so that its buckets add up to its count
    // (as Prometheus requires); the series' request count has them all.
    assert.is(got.unplaced, 0, 'buckets add up to the native count');
    assert.is(m.totals(index).latencyCount, ladder.length);
    assert.is(internalsOf(m).readSeries(index).totals.latencyCount, ladder.length);
    const left = ladder.length - got.h.count;
    unplaced += left;
    if (left === 0) assert.ok(Math.abs(got.h.sum - want.h.sum) <= 1e-9 * want.h.sum, `r${i}: the sum of its values`);
    else assert.ok(got.h.sum < want.h.sum, `r${i}: the sum of the placed values alone`);
    for (const [index, c] of got.counts) assert.is(c, want.counts.get(index), `bucket ${index} of r${i}`);
    assert.ok(r === series[i]);
  }
  assert.ok(unplaced > 0, 'some values found no page');
  const refused = /^streamgauge_bucket_pages_refused_total (\d+)$/m.exec(m.metrics('text/plain').body as string);
  assert.ok(refused && Number(refused[1]) >= unplaced, `the refusals are exposed (${refused?.[1]})`);
  m.tick(); // reads and windows keep working with pages refused
  m.close();
  roomy.close();
});

test('a handle from a build with another memory layout is refused with a clear error in the thread that attaches it', async () => {
  const m = testMonitor();
  const handle = m.handle();
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.entry).then(({ attach }) => {
      try {
        attach(workerData.handle);
        parentPort.postMessage('attached');
      } catch (e) {
        parentPort.postMessage(e.constructor.name + ': ' + e.message);
      }
    });`;
  const entry = new URL('../dist/index.js', import.meta.url).href;
  const said = (h: unknown) =>
    new Promise<string>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { entry, handle: h } });
      w.once('message', (msg) => {
        resolve(String(msg));
        void w.terminate();
      });
      w.once('error', reject);
    });
  assert.is(await said(handle), 'attached', 'the same build attaches');
  const other = { ...handle, layout: { ...handle.layout, version: handle.layout.version - 1 } };
  const message = await said(other);
  assert.match(message, /^TypeError: /);
  assert.match(message, /memory layout \d+/);
  assert.match(message, /one version of the package in every thread/);
  m.close();
});

test.run();
