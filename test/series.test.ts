import { Worker } from 'node:worker_threads';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testMonitor } from './fixtures/monitor.js';

test('a series created with inTotals: false keeps its own figures but stays out of the monitor-wide ones', () => {
  const monitor = testMonitor();
  const calls = monitor.series({ grpc_method: '/svc/Chat' });
  const firstResponse = monitor.series({ grpc_method: '/svc/Chat', stage: 'first_response' }, { inTotals: false });
  for (let i = 0; i < 10; i++) calls.recordLatency(20);
  for (let i = 0; i < 10; i++) firstResponse.recordLatency(1);
  firstResponse.recordError('late');

  const m = monitor.getCurrentMetrics();
  assert.is(m.totalRequests, 10, 'only the calls are requests');
  assert.is(m.failedRequests, 0);
  assert.is(m.latencyP50Ms, 20, 'the stage does not pull the latency down');
  assert.equal(monitor.errorsByType(), {});

  const list = monitor.seriesList();
  const stage = list.find((s) => s.labels.stage === 'first_response')!;
  assert.is(stage.inTotals, false);
  assert.is(list.find((s) => s.labels.grpc_method === '/svc/Chat' && !s.labels.stage)!.inTotals, true);
  assert.is(monitor.totals(stage.index).requests, 11, 'its own figures are all there');
  assert.equal(monitor.errorsByType(stage.index), { late: 1 });
  assert.match(
    String(monitor.metrics().body),
    /streamgauge_requests_total\{grpc_method="\/svc\/Chat",stage="first_response"\} 11/,
  );
  monitor.close();
});

test('the flag is fixed by whoever creates the series first, in any thread', async () => {
  const monitor = testMonitor();
  const worker = new Worker(new URL('./fixtures/ts-worker.mjs', import.meta.url), {
    workerData: { handle: monitor.handle(), entry: new URL('./fixtures/series-worker.ts', import.meta.url).href },
  });
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  monitor.series({ pool: 'p', stage: 'run' }).recordLatency(5);
  assert.is(monitor.seriesList().find((s) => s.labels.stage === 'run')!.inTotals, false);
  assert.is(monitor.getCurrentMetrics().totalRequests, 0);
  monitor.close();
});

test('series options are checked', () => {
  const monitor = testMonitor();
  assert.throws(() => monitor.series({ a: 'b' }, 5 as never), /options must be an object/);
  monitor.close();
});

test.run();
