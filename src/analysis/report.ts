// Periodic reports and structured logs. Driven by the tick (so a simulated clock drives them too);
// noisy events are aggregated per interval, never one line per event.
import { appendFileSync, existsSync, renameSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AnomalyEvent, TrendReport } from './analysis.js';
import { internalsOf, type MonitorReader, type TickEvent } from './monitor-reader.js';
import type { SessionStats } from '../record/sessions.js';
import type { Labels, PerformanceSummary, PerformanceTargets, TargetComparison } from '../core/types.js';

export interface SeriesLoad {
  labels: Labels;
  requests: number;
  rps: number;
  p99Ms: number;
  errorRate: number;
}

export interface Report {
  from: number;
  to: number;
  /** Figures of the period between this report and the previous one. */
  period: {
    seconds: number;
    requests: number;
    errors: number;
    rps: number;
    errorRate: number;
    errorsByType: Record<string, number>;
    backpressureEvents: number;
  };
  summary: PerformanceSummary;
  comparison: TargetComparison;
  targets: PerformanceTargets;
  topSeriesByLoad: SeriesLoad[];
  topSeriesByLatency: SeriesLoad[];
  sessions: SessionStats;
  anomalies: AnomalyEvent[];
  trends: TrendReport[];
}

interface ReportOptions {
  reportInterval: number;
  logInterval: number;
  reportFile?: string;
  reportFileMaxBytes: number;
  reportFileKeep: number;
}

const TOP = 5;

export class Reporter {
  private lastReportAt: number;
  private lastLogAt: number;
  private lastTotals = { requests: 0, errors: 0, backpressure: 0 };
  private lastErrors: Record<string, number> = {};
  private logged = { errors: {} as Record<string, number>, backpressure: 0 };
  private lastSeriesRequests = new Map<number, number>();

  constructor(
    private readonly monitor: MonitorReader,
    private readonly logger: Logger | undefined,
    private readonly options: ReportOptions,
    private readonly analysis: { anomaliesBetween(from: number, to: number): AnomalyEvent[]; trends(): TrendReport[] },
    /** Where a report goes once written (the monitor's 'report' event). */
    private readonly publish: (report: Report) => void,
  ) {
    this.lastReportAt = monitor.config.clock.now();
    this.lastLogAt = this.lastReportAt;
  }

  onTick(tick: TickEvent): void {
    if (this.logger && this.monitor.config.enableDetailedLogging)
      this.logger.debug({ t: tick.t, point: tick.point, system: tick.system }, 'tick');
    this.aggregateNoise(tick.t);
    if (tick.t - this.lastReportAt >= this.options.reportInterval) this.report(tick.t);
  }

  /** Errors and backpressure, one line per logInterval when there were any. */
  private aggregateNoise(now: number): void {
    if (now - this.lastLogAt < this.options.logInterval) return;
    const errors = this.monitor.errorsByType();
    const delta: Record<string, number> = {};
    let any = false;
    for (const [type, n] of Object.entries(errors)) {
      const d = n - (this.logged.errors[type] ?? 0);
      if (d > 0) {
        delta[type] = d;
        any = true;
      }
    }
    const bp = this.monitor.totals().backpressure;
    const bpDelta = bp - this.logged.backpressure;
    if ((any || bpDelta > 0) && this.logger) {
      this.logger.warn(
        { seconds: (now - this.lastLogAt) / 1000, errors: delta, backpressureEvents: bpDelta },
        'errors and backpressure',
      );
    }
    this.logged = { errors, backpressure: bp };
    this.lastLogAt = now;
  }

  /** Builds a report of the period since the last one, logs it, appends it to the file, emits 'report'. */
  report(now = this.monitor.config.clock.now()): Report {
    const m = this.monitor;
    const totals = m.totals();
    const errorsByType = m.errorsByType();
    const periodErrors: Record<string, number> = {};
    for (const [type, n] of Object.entries(errorsByType)) {
      const d = n - (this.lastErrors[type] ?? 0);
      if (d > 0) periodErrors[type] = d;
    }
    const seconds = Math.max((now - this.lastReportAt) / 1000, 1e-9);
    const requests = totals.requests - this.lastTotals.requests;
    const errors = totals.errors - this.lastTotals.errors;
    const loads: SeriesLoad[] = m.seriesList().map((s) => {
      const t = m.totals(s.index);
      const w = m.windowFigures(s.index);
      const periodRequests = t.requests - (this.lastSeriesRequests.get(s.index) ?? 0);
      this.lastSeriesRequests.set(s.index, t.requests);
      // An integration's series shows its kind: a call series and its stages share their labels.
      const labels = s.kind === undefined ? s.labels : { ...s.labels, kind: s.kind };
      return { labels, requests: periodRequests, rps: periodRequests / seconds, p99Ms: w.p99, errorRate: w.errorRate };
    });
    const active = loads.filter((l) => l.requests > 0);
    const summary = m.getPerformanceSummary();
    const report: Report = {
      from: this.lastReportAt,
      to: now,
      period: {
        seconds,
        requests,
        errors,
        rps: requests / seconds,
        errorRate: requests > 0 ? errors / requests : 0,
        errorsByType: periodErrors,
        backpressureEvents: totals.backpressure - this.lastTotals.backpressure,
      },
      summary,
      comparison: m.compareWithTargets(summary),
      targets: m.config.targets,
      topSeriesByLoad: [...active].sort((a, b) => b.requests - a.requests).slice(0, TOP),
      topSeriesByLatency: active
        .filter((l) => !Number.isNaN(l.p99Ms))
        .sort((a, b) => b.p99Ms - a.p99Ms)
        .slice(0, TOP),
      sessions: m.sessionStats(TOP),
      anomalies: this.analysis.anomaliesBetween(this.lastReportAt, now),
      trends: this.analysis.trends(),
    };
    this.lastReportAt = now;
    this.lastTotals = { requests: totals.requests, errors: totals.errors, backpressure: totals.backpressure };
    this.lastErrors = errorsByType;
    this.logger?.info({ report }, 'performance report');
    if (this.options.reportFile) this.append(this.options.reportFile, report);
    this.publish(report);
    return report;
  }

  private append(file: string, report: Report): void {
    try {
      if (existsSync(file) && statSync(file).size >= this.options.reportFileMaxBytes)
        rotate(file, this.options.reportFileKeep);
      appendFileSync(file, `${JSON.stringify(report, finiteOrNull)}\n`);
    } catch (err) {
      this.logger?.error({ err, file }, 'report file could not be written');
      internalsOf(this.monitor).emitProblem(err as Error);
    }
  }
}

/** file → file.1 → file.2 …, keeping `keep` old files. */
function rotate(file: string, keep: number): void {
  for (let i = keep - 1; i >= 1; i--) {
    if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
  }
  renameSync(file, `${file}.1`);
}

/** JSON has no NaN or Infinity: write them as null. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
