// The edges of the API: after close(), malformed handles, series arguments, a port in use, the
// summary's counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attach, type MonitorHandle } from '../src/index.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';
import { testMonitor } from './fixtures/monitor.js';

test('after close(): recording never throws, tick(), start() and serve() say the monitor is closed, reads return the final state', async () => {
  const monitor = testMonitor();
  const chat = monitor.series({ grpc_method: '/chat.Chat/Stream' });
  const worker = attach(monitor.handle());
  monitor.recordLatency(5);
  const stop = monitor.startTimer();
  monitor.connectionOpened();
  monitor.close();

  // Requests still in flight while the service shuts down.
  stop();
  monitor.recordLatency(3);
  monitor.recordError('timeout', 10);
  chat.recordLatency(2);
  worker.recordLatency(1);
  attach(monitor.handle()).recordMessages(1, 10);
  monitor.connectionClosed();

  assert.throws(() => monitor.tick(), /tick\(\) after monitor\.close\(\)/);
  assert.throws(() => monitor.start(), /start\(\) after monitor\.close\(\)/);
  monitor.stop(); // stopping a closed monitor is harmless
  try {
    await monitor.serve({ port: 0 });
    assert.unreachable('serve() after close()');
  } catch (err) {
    assert.match((err as Error).message, /serve\(\) after monitor\.close\(\)/);
  }
  assert.ok(monitor.getPerformanceSummary().totalRequests >= 1, 'the summary reads');
  assert.match(String(monitor.metrics().body), /streamgauge_requests_total/);
  monitor.close(); // idempotent
});

test('attach() gives the same clear error for every malformed handle', () => {
  const monitor = testMonitor();
  const h = monitor.handle();
  const malformed: unknown[] = [
    undefined,
    null,
    42,
    {},
    { kind: 'streamgauge-handle' },
    { kind: 'streamgauge-handle', layout: {} },
    { ...h, layout: null },
    { ...h, memory: {} },
    { ...h, memory: { buffer: new ArrayBuffer(8) } },
    { ...h, module: null },
    { ...h, kind: 'other' },
  ];
  for (const bad of malformed) {
    assert.throws(
      () => attach(bad as MonitorHandle),
      (err: Error) =>
        err instanceof TypeError && err.message === 'attach(handle) needs the object returned by monitor.handle()',
      JSON.stringify(bad) ?? String(bad),
    );
  }
  assert.ok(attach(h), 'the real handle attaches');
  monitor.close();
});

test('totals(), readSeries() and the other per-series reads take what series() returns, or an index, and nothing else', () => {
  const monitor = testMonitor();
  const other = testMonitor();
  const chat = monitor.series({ grpc_method: '/chat.Chat/Stream' });
  chat.recordLatency(2);
  chat.recordLatency(4);
  chat.recordError('timeout');
  monitor.recordLatency(1);

  const index = monitor.seriesList().find((s) => s.labels.grpc_method === '/chat.Chat/Stream')!.index;
  assert.is(monitor.totals(chat).requests, 3);
  assert.equal(monitor.totals(chat), monitor.totals(index));
  const read = internalsOf(monitor).readSeries(chat);
  assert.is(read.totals.latencyCount, 2);
  assert.is(read.latency.count, 2);
  assert.equal(monitor.errorsByType(chat), { timeout: 1 });
  assert.is(monitor.nativeHistogram(chat).count, 2);
  assert.is(monitor.windowFigures(chat).requests, 3);

  const wrong = [other.series({ grpc_method: '/chat.Chat/Stream' }), 'chat', {}, 1.5, -1, 1e9, Number.NaN];
  for (const series of wrong) {
    const message = /series must be a recorder from this monitor's series\(\) or an index from seriesList\(\)/;
    assert.throws(() => monitor.totals(series as number), message, `totals(${String(series)})`);
    assert.throws(() => internalsOf(monitor).readSeries(series as number), message, `readSeries(${String(series)})`);
  }
  monitor.close();
  other.close();
});

test('serve() on a port in use names the port and says that port: 0 picks a free one', async () => {
  const a = testMonitor();
  const b = testMonitor();
  const first = await a.serve({ port: 0 });
  try {
    await b.serve({ port: first.port });
    assert.unreachable('a second server on the same port');
  } catch (err) {
    assert.match((err as Error).message, `port ${first.port} on 127.0.0.1 is in use`);
    assert.match((err as Error).message, 'port: 0 picks a free port');
  } finally {
    await first.close();
    a.close();
    b.close();
  }
});

test('getPerformanceSummary() has the counts: requests, successful, failed, and errors by type', () => {
  const monitor = testMonitor();
  monitor.recordLatency(5);
  monitor.recordLatency(7);
  monitor.recordLatency(9);
  monitor.recordError('timeout', 100);
  monitor.recordError('reset');
  const s = monitor.getPerformanceSummary();
  assert.is(s.totalRequests, 5);
  assert.is(s.successfulRequests, 3);
  assert.is(s.failedRequests, 2);
  assert.equal(s.errorsByType, { timeout: 1, reset: 1 });
  assert.is(s.successRate, 0.6);
  monitor.close();
});

test.run();
