// Prometheus rules from the monitor's targets: promtool accepts them (native and classic forms,
// custom prefixes and selectors), the file shipped in the package is the default configuration's,
// and a real Prometheus that loads them scrapes a monitor with injected errors and fires the
// error-budget alert.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_TARGETS, prometheusRules, StreamPerformanceMonitor } from '../src/index.js';
import { jobsUp, query, ROOT, startPrometheus, waitFor } from './fixtures/expo-helpers.js';
import { withMonitor } from './fixtures/monitor.js';

function checkRules(yaml: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'streamgauge-rules-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), yaml);
    const r = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8', timeout: 20_000 });
    if (r.error) assert.unreachable(`promtool: ${r.error.message}: apt-get install prometheus`);
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('promtool check rules accepts them: native and classic, with prefixes, a selector and other labels to aggregate by', async () => {
  await withMonitor(
    { autoStart: false, logger: false, targets: { targetSuccessRate: 0.999, targetP95LatencyMs: 40 } },
    async (monitor) => {
      for (const options of [
        {},
        { histograms: 'classic' as const },
        { prefix: 'chat_', runtimePrefix: 'chat_', selector: 'job="chat",env=~"prod|staging"', by: ['job', 'cluster'] },
        { histograms: 'classic' as const, stallSeconds: 0.5, for: '0s' },
      ]) {
        const yaml = monitor.prometheusRules(options);
        const r = checkRules(yaml);
        assert.is(r.status, 0, `${JSON.stringify(options)}: ${r.output}`);
        assert.match(r.output, /SUCCESS: 12 rules found/);
      }
      const yaml = monitor.prometheusRules();
      // The targets are in the thresholds: a 0.1 % error budget, a 40 ms p95.
      assert.match(
        yaml,
        /streamgauge:service_error_ratio:rate1h > 0\.0144 and streamgauge:service_error_ratio:rate5m > 0\.0144/,
      );
      assert.match(yaml, /streamgauge:service_request_duration_seconds:p95_5m > 0\.04"/);
      assert.match(
        yaml,
        /histogram_quantile\(0\.95, sum by \(job\) \(rate\(streamgauge_service_request_duration_seconds\[5m\]\)\)\)/,
      );
      assert.match(
        monitor.prometheusRules({ histograms: 'classic' }),
        /sum by \(job, le\) \(rate\(streamgauge_service_request_duration_seconds_bucket\[5m\]\)\)/,
      );
      assert.match(
        monitor.prometheusRules({ selector: 'job="chat"' }),
        /streamgauge_service_failed_requests_total\{job=\\"chat\\"\}\[30m\]/,
      );
    },
  );
});

test("the rules file in the package is the default configuration's", () => {
  const shipped = readFileSync(join(ROOT, 'rules', 'streamgauge.rules.yml'), 'utf8');
  assert.is(shipped, prometheusRules(DEFAULT_TARGETS));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('rules'), 'published with the package');
});

test('options are checked', () => {
  assert.throws(() => prometheusRules(DEFAULT_TARGETS, { histograms: 'both' as never }), /histograms/);
  assert.throws(() => prometheusRules(DEFAULT_TARGETS, { selector: '{job="x"}' }), /selector/);
  assert.throws(() => prometheusRules(DEFAULT_TARGETS, { by: ['job', 'bad-label'] }), /by/);
  assert.throws(() => prometheusRules(DEFAULT_TARGETS, { for: '5 minutes' }), /for/);
  assert.throws(() => prometheusRules(DEFAULT_TARGETS, { histograms: 'classic', stallSeconds: 2 }), /stallSeconds/);
  assert.throws(() => prometheusRules({ ...DEFAULT_TARGETS, targetSuccessRate: 1 }), /error budget/);
});

test('a real Prometheus loads them and fires the error-budget alert on injected errors', async () => {
  const monitor = new StreamPerformanceMonitor({ logger: false });
  const served = await monitor.serve({ dashboard: false });
  // Half the requests fail: far above the 1 % budget's 14.4× burn threshold.
  const load = setInterval(() => {
    for (let i = 0; i < 10; i++) {
      monitor.recordLatency(2 + i);
      monitor.recordError('unavailable', 3);
    }
  }, 50);
  const prom = await startPrometheus(
    [{ name: 'svc', targets: [new URL(served.url).host] }],
    monitor.prometheusRules({ for: '0s' }),
  );
  try {
    await waitFor(prom, 'a first scrape', () => jobsUp(prom.base, ['svc']));
    await waitFor(
      prom,
      'StreamgaugeErrorBudgetBurnFast firing',
      async () => {
        const res = await fetch(`${prom.base}/api/v1/alerts`);
        const alerts = (
          (await res.json()) as { data: { alerts: { labels: { alertname: string; job: string }; state: string }[] } }
        ).data.alerts;
        return alerts.some(
          (a) =>
            a.labels.alertname === 'StreamgaugeErrorBudgetBurnFast' && a.labels.job === 'svc' && a.state === 'firing',
        );
      },
      60_000,
    );
    // The recording rules hold figures, the p95 read from the native histogram among them.
    const ratio = await query(prom.base, 'streamgauge:service_error_ratio:rate5m');
    assert.ok(Math.abs(Number(ratio[0].value?.[1]) - 0.5) < 0.05, `error ratio ${JSON.stringify(ratio)}`);
    const p95 = await query(prom.base, 'streamgauge:service_request_duration_seconds:p95_5m');
    const v = Number(p95[0]?.value?.[1]);
    assert.ok(v > 0.002 && v < 0.02, `p95 ${v} s`);
  } finally {
    clearInterval(load);
    await prom.stop();
    await served.close();
    monitor.close();
  }
});

test.run();
