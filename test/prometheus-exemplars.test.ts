// Exemplars end to end with a real Prometheus (Debian's 2.42, native histograms and
// exemplar-storage on, 1 s scrapes), scraping one monitor two ways:
//   job "native":      monitor.serve(), where Prometheus negotiates protobuf (native histograms)
//   job "openmetrics": the same monitor in OpenMetrics text, whatever the scraper asks for
// A request linked to a trace explicitly and one recorded inside an active OpenTelemetry span must
// come back from /api/v1/query_exemplars with their trace and span ids and values: on the classic
// `_bucket` series from OpenMetrics text, on the native histogram's series from protobuf.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jobsUp, type PrometheusServer, requirePrometheus, startPrometheus, waitFor } from './fixtures/expo-helpers.js';
import { inSpan } from './fixtures/otel-context.js';
import { testMonitor } from './fixtures/monitor.js';

const EXPLICIT = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
const ACTIVE = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };

interface ExemplarResult {
  seriesLabels: Record<string, string>;
  exemplars: Array<{ labels: Record<string, string>; value: string; timestamp: number }>;
}

async function queryExemplars(base: string, promql: string, start: number, end: number): Promise<ExemplarResult[]> {
  const url = `${base}/api/v1/query_exemplars?query=${encodeURIComponent(promql)}&start=${start}&end=${end}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const json = (await res.json()) as { status: string; error?: string; data: ExemplarResult[] };
  if (json.status !== 'success') throw new Error(`query_exemplars ${promql} failed: ${json.error}`);
  return json.data ?? [];
}

const cleanups: Array<() => Promise<unknown>> = [];
test.after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

test('a real Prometheus 2.42 with exemplar-storage returns the exemplars of both exposition formats', async () => {
  requirePrometheus();
  const startSeconds = Date.now() / 1000 - 60;
  const monitor = testMonitor();
  cleanups.push(async () => monitor.close());
  const checkout = monitor.series({ route: 'checkout' });
  for (let i = 0; i < 50; i++) checkout.recordLatency(2 + (i % 7));
  checkout.recordLatencyWithExemplar(180, EXPLICIT);
  inSpan(ACTIVE.traceId, ACTIVE.spanId, () => checkout.recordLatencyWithExemplar(2500));

  const served = await monitor.serve({ dashboard: false });
  cleanups.push(() => served.close());
  const openMetrics = http.createServer((_req, res) => {
    const out = monitor.metrics('application/openmetrics-text; version=1.0.0');
    res.writeHead(200, { 'content-type': out.contentType }).end(out.body);
  });
  await new Promise<void>((r) => openMetrics.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    openMetrics.closeAllConnections();
    await new Promise((r) => openMetrics.close(r));
  });
  const prom: PrometheusServer = await startPrometheus(
    [
      { name: 'native', targets: [`127.0.0.1:${served.port}`] },
      { name: 'openmetrics', targets: [`127.0.0.1:${(openMetrics.address() as AddressInfo).port}`] },
    ],
    undefined,
    ['exemplar-storage'],
  );
  cleanups.push(() => prom.stop());
  await waitFor(prom, 'a first successful scrape of both jobs', () => jobsUp(prom.base, ['native', 'openmetrics']));

  // Trace id -> [value, series name], per job, once both exemplars are in.
  const found = async (job: string) => {
    const result = await queryExemplars(
      prom.base,
      `{__name__=~"streamgauge_request_duration_seconds.*",job="${job}",route="checkout"}`,
      startSeconds,
      Date.now() / 1000 + 60,
    );
    const byTrace = new Map<string, { value: number; series: string; spanId: string }>();
    for (const r of result)
      for (const e of r.exemplars)
        byTrace.set(e.labels.trace_id, {
          value: Number(e.value),
          series: r.seriesLabels.__name__,
          spanId: e.labels.span_id,
        });
    return byTrace;
  };
  let openmetrics = new Map<string, { value: number; series: string; spanId: string }>();
  await waitFor(prom, 'both exemplars from the OpenMetrics scrape', async () => {
    openmetrics = await found('openmetrics');
    return openmetrics.size >= 2;
  });
  assert.equal(openmetrics.get(EXPLICIT.traceId), {
    value: 0.18,
    series: 'streamgauge_request_duration_seconds_bucket',
    spanId: EXPLICIT.spanId,
  });
  assert.equal(openmetrics.get(ACTIVE.traceId), {
    value: 2.5,
    series: 'streamgauge_request_duration_seconds_bucket',
    spanId: ACTIVE.spanId,
  });

  // Protobuf: the native histogram's exemplar. 2.42 takes one per histogram and scrape, the first
  // classic bucket's that has one (prometheus/prometheus#12553, fixed in 2.46): the 180 ms request's.
  let native = new Map<string, { value: number; series: string; spanId: string }>();
  await waitFor(prom, 'an exemplar from the protobuf scrape', async () => {
    native = await found('native');
    return native.size >= 1;
  });
  assert.equal(native.get(EXPLICIT.traceId), {
    value: 0.18,
    series: 'streamgauge_request_duration_seconds',
    spanId: EXPLICIT.spanId,
  });
});

test.run();
