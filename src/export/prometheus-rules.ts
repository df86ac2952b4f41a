// Prometheus recording and alerting rules generated from the monitor's targets: error-budget burn
// rates for the success-rate target (the multiwindow, multi-burn-rate alerts of Google's SRE
// workbook), the p95 latency objective on the service's histogram, saturation (memory against its
// target, worker and pool utilisation) and event-loop stalls. Written as a rules file (YAML).
import type { PerformanceTargets } from '../core/types.js';

export interface PrometheusRulesOptions {
  /** The prefix the metrics are exposed with. Default `streamgauge_`. */
  prefix?: string;
  /** The prefix of the runtime families (`runtimePrefix` of the exposition). Default ''. */
  runtimePrefix?: string;
  /**
   * Read the latency and event-loop histograms as native histograms (Prometheus with
   * `--enable-feature=native-histograms`, scraping protobuf) or as classic buckets. Default 'native'.
   */
  histograms?: 'native' | 'classic';
  /** Label matchers added to every selector, e.g. `job="chat"`. Default none. */
  selector?: string;
  /** Labels the figures are aggregated by. Default ['job']. */
  by?: readonly string[];
  /** An event-loop delay longer than this (seconds) is a stall. Default 1. */
  stallSeconds?: number;
  /** Utilisation (0..1) above which workers and pools count as saturated. Default 0.9. */
  saturation?: number;
  /** Overrides every alert's `for` (e.g. `'0s'` to try the rules and their routing out). */
  for?: string;
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The rules as a Prometheus rules file (YAML; every string JSON-quoted, which YAML reads as is). */
export function prometheusRules(targets: PerformanceTargets, options: PrometheusRulesOptions = {}): string {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const prefix = options.prefix ?? 'streamgauge_';
  const runtime = options.runtimePrefix ?? '';
  for (const [name, v] of [
    ['prefix', prefix],
    ['runtimePrefix', runtime],
  ] as const) {
    if (typeof v !== 'string' || !/^[a-zA-Z_:]?[a-zA-Z0-9_:]*$/.test(v))
      throw new TypeError(`options.${name} must be a metric name prefix`);
  }
  const native = (options.histograms ?? 'native') === 'native';
  if (options.histograms !== undefined && options.histograms !== 'native' && options.histograms !== 'classic') {
    throw new RangeError(`options.histograms must be 'native' or 'classic' (got ${String(options.histograms)})`);
  }
  const by = options.by ?? ['job'];
  if (!Array.isArray(by) || !by.every((l) => typeof l === 'string' && LABEL.test(l)))
    throw new TypeError('options.by must be a list of label names');
  const sel = options.selector ?? '';
  if (typeof sel !== 'string' || /[{}]/.test(sel))
    throw new TypeError('options.selector must be label matchers without braces, e.g. job="chat"');
  const stall = options.stallSeconds ?? 1;
  if (typeof stall !== 'number' || !(stall > 0) || !Number.isFinite(stall))
    throw new RangeError('options.stallSeconds must be a positive number');
  // Classic buckets hold exact counts at bounds that are native boundaries: of the default seconds
  // ladder, 0.5 and 1 print exactly.
  if (!native && stall !== 0.5 && stall !== 1)
    throw new RangeError("options.stallSeconds must be 0.5 or 1 with histograms: 'classic'");
  const saturation = options.saturation ?? 0.9;
  if (typeof saturation !== 'number' || !(saturation > 0 && saturation <= 1))
    throw new RangeError('options.saturation must be in (0, 1]');
  const budget = 1 - targets.targetSuccessRate;
  if (!(budget > 0)) throw new RangeError('targets.targetSuccessRate must be below 1 for an error budget');

  const s = (name: string, extra = '') => {
    const matchers = [sel, extra].filter((x) => x.length > 0).join(',');
    return matchers.length > 0 ? `${name}{${matchers}}` : name;
  };
  const num = (v: number) => String(+v.toPrecision(6));
  const byList = by.join(', ');
  const sumBy = (extra: string[] = []) => `sum by (${[...by, ...extra].join(', ')})`;
  const requests = `${prefix}service_requests_total`;
  const failed = `${prefix}service_failed_requests_total`;
  const latency = `${prefix}service_request_duration_seconds`;
  const delay = `${runtime}nodejs_eventloop_delay_seconds`;
  const rec = (what: string) => `${prefix.replace(/_$/, '')}:${what}`;

  const recording: Rule[] = [{ record: rec('service_requests:rate5m'), expr: `${sumBy()} (rate(${s(requests)}[5m]))` }];
  for (const w of ['5m', '30m', '1h', '6h']) {
    recording.push({
      record: rec(`service_error_ratio:rate${w}`),
      expr: `${sumBy()} (rate(${s(failed)}[${w}])) / ${sumBy()} (rate(${s(requests)}[${w}]))`,
    });
  }
  recording.push({
    record: rec('service_request_duration_seconds:p95_5m'),
    expr: native
      ? `histogram_quantile(0.95, ${sumBy()} (rate(${s(latency)}[5m])))`
      : `histogram_quantile(0.95, ${sumBy(['le'])} (rate(${s(`${latency}_bucket`)}[5m])))`,
  });

  const ratio = (w: string) => rec(`service_error_ratio:rate${w}`);
  const pct = (v: number) => `${+(v * 100).toPrecision(4)} %`;
  const alerts: Rule[] = [
    {
      alert: 'StreamgaugeErrorBudgetBurnFast',
      expr: `${ratio('1h')} > ${num(14.4 * budget)} and ${ratio('5m')} > ${num(14.4 * budget)}`,
      for: '2m',
      labels: { severity: 'page' },
      annotations: {
        summary: `Errors burn the ${pct(targets.targetSuccessRate)} success target's budget 14.4× too fast (2 % of 30 days' budget in 1 h)`,
        description: 'Error ratio over 1 h and 5 min: {{ $value | humanizePercentage }} (5 min).',
      },
    },
    {
      alert: 'StreamgaugeErrorBudgetBurnSlow',
      expr: `${ratio('6h')} > ${num(6 * budget)} and ${ratio('30m')} > ${num(6 * budget)}`,
      for: '15m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: `Errors burn the ${pct(targets.targetSuccessRate)} success target's budget 6× too fast (5 % of 30 days' budget in 6 h)`,
        description: 'Error ratio over 6 h and 30 min: {{ $value | humanizePercentage }} (30 min).',
      },
    },
    {
      alert: 'StreamgaugeLatencyObjective',
      expr: `${rec('service_request_duration_seconds:p95_5m')} > ${num(targets.targetP95LatencyMs / 1000)}`,
      for: '5m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: `p95 latency above its ${targets.targetP95LatencyMs} ms target`,
        description: 'p95 over 5 min: {{ $value | humanizeDuration }}.',
      },
    },
    {
      alert: 'StreamgaugeMemoryAboveTarget',
      expr: `max by (${byList}) (${s(`${runtime}process_resident_memory_bytes`)}) > ${targets.targetMemoryMb * 1_048_576}`,
      for: '10m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: `Resident memory above its ${targets.targetMemoryMb} MB target`,
        description: '{{ $value | humanize1024 }}B resident.',
      },
    },
    {
      alert: 'StreamgaugeWorkersSaturated',
      expr: `max by (${byList}) (${s(`${prefix}worker_utilization_ratio`)}) > ${saturation} or max by (${[...by, 'pool'].join(', ')}) (${s(`${prefix}pool_utilization_ratio`)}) > ${saturation}`,
      for: '10m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: `Workers busy more than ${pct(saturation)} of the time`,
        description: 'Utilisation {{ $value | humanizePercentage }}.',
      },
    },
    {
      alert: 'StreamgaugeEventLoopStall',
      expr: native
        ? `histogram_count(${sumBy()} (increase(${s(delay)}[5m]))) * (1 - histogram_fraction(0, ${stall}, ${sumBy()} (increase(${s(delay)}[5m])))) >= 1`
        : `${sumBy()} (increase(${s(`${delay}_count`)}[5m])) - ${sumBy()} (increase(${s(`${delay}_bucket`, `le=~"${stall}(\\\\.0)?"`)}[5m])) >= 1`,
      labels: { severity: 'ticket' },
      annotations: {
        summary: `The event loop stalled for more than ${stall} s in the last 5 minutes`,
        description:
          '{{ $value }} delays longer than the threshold: a blocking call on the loop (sync I/O, a long computation, a large JSON parse).',
      },
    },
  ];
  if (options.for !== undefined) {
    if (typeof options.for !== 'string' || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(options.for))
      throw new TypeError("options.for must be a Prometheus duration, e.g. '0s' or '5m'");
    for (const a of alerts) a.for = options.for;
  }
  return toYaml([
    { name: `${prefix}recording`, rules: recording },
    { name: `${prefix}alerts`, rules: alerts },
  ]);
}

function toYaml(groups: { name: string; rules: Rule[] }[]): string {
  const q = (v: string) => JSON.stringify(v);
  let out = 'groups:\n';
  for (const g of groups) {
    out += `  - name: ${q(g.name)}\n    rules:\n`;
    for (const r of g.rules) {
      out += r.record !== undefined ? `      - record: ${q(r.record)}\n` : `      - alert: ${q(r.alert ?? '')}\n`;
      out += `        expr: ${q(r.expr)}\n`;
      if (r.for !== undefined) out += `        for: ${r.for}\n`;
      for (const key of ['labels', 'annotations'] as const) {
        const map = r[key];
        if (map === undefined) continue;
        out += `        ${key}:\n`;
        for (const [k, v] of Object.entries(map)) out += `          ${k}: ${q(v)}\n`;
      }
    }
  }
  return out;
}
