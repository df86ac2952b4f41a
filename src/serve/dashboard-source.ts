// The monitor seen as the dashboard's data source: frames from ticks, columns from history.
import type { AnomalyEvent } from '../analysis/analysis.js';
import {
  type AnomalyMark,
  DASHBOARD_FIELDS,
  type DashboardField,
  type DashboardFrame,
  type DashboardSource,
  type HistoryColumns,
  type HistoryQuery,
  type Resolution,
} from './dashboard-handler.js';
import type { HistoryPoint } from '../time/history.js';
import { internalsOf, type MonitorReader, type TickEvent } from '../analysis/monitor-reader.js';

export function dashboardSource(monitor: MonitorReader): DashboardSource {
  const internals = internalsOf(monitor);
  const anomalies = () =>
    monitor.recentAnomalies().map((a) => anomalyMark(a, monitor.config.anomalyDetectionThreshold));
  const frame = (tick: TickEvent | undefined): DashboardFrame => {
    const point = {} as Record<DashboardField, number>;
    for (const f of DASHBOARD_FIELDS) point[f] = tick ? tick.point[f as keyof HistoryPoint] : Number.NaN;
    const summary = monitor.getPerformanceSummary();
    return {
      t: tick?.t ?? monitor.config.clock.now(),
      point,
      summary,
      comparison: monitor.compareWithTargets(summary),
      targets: monitor.config.targets,
      series: monitor.seriesList().flatMap((s) => {
        const w = monitor.windowFigures(s.index);
        const requests = monitor.totals(s.index).requests;
        if (requests === 0) return [];
        // An integration's series shows its kind: a call series and its stages share their labels.
        const labels = s.kind === undefined ? s.labels : { ...s.labels, kind: s.kind };
        return [{ labels, requests, rps: w.rps, p50: w.p50, p95: w.p95, p99: w.p99, errorRate: w.errorRate }];
      }),
      anomalies: anomalies(),
      errorsByType: monitor.errorsByType(),
    };
  };
  return {
    current: () => frame(internals.lastTickEvent()),
    history(resolution: Resolution, sinceMs?: number, query?: HistoryQuery): HistoryColumns {
      const h = monitor.getHistory({ resolution, since: sinceMs, until: query?.untilMs, maxPoints: query?.maxPoints });
      const fields = {} as Record<DashboardField, number[]>;
      for (const f of DASHBOARD_FIELDS) fields[f] = h.fields[f];
      const out: HistoryColumns = { resolution, t: h.t, fields, anomalies: anomalies() };
      if (h.pointsPerValue !== undefined)
        Object.assign(out, { pointsPerValue: h.pointsPerValue, pointsInRange: h.pointsInRange });
      return out;
    },
    onTick(listener) {
      const on = (tick: TickEvent) => listener(frame(tick));
      monitor.on('tick', on);
      return () => monitor.off('tick', on);
    },
  };
}

/**
 * An anomaly as the page shows it: its most extreme value, and that value's distance from the
 * expectation in standard deviations. The detector's expected range is the central part of its
 * reference window outside which `threshold` σ lie (centre ± threshold·σ for normal data), so σ is
 * read back from the range's width. (The detector's own score is a tail probability on a 0..1
 * scale, not a distance.) A zero-width range gives no σ: the score is then NaN (shown as a dash).
 */
function anomalyMark(a: AnomalyEvent, threshold: number): AnomalyMark {
  const value = Number.isFinite(a.peak) ? a.peak : a.value;
  const sigma = (a.expectedHigh - a.expectedLow) / (2 * threshold);
  const centre = (a.expectedHigh + a.expectedLow) / 2;
  const score = sigma > 0 ? Math.abs(value - centre) / sigma : Number.NaN;
  const mark: AnomalyMark = {
    series: a.series,
    value,
    expectedLow: a.expectedLow,
    expectedHigh: a.expectedHigh,
    score,
    direction: a.direction,
    start: a.start,
  };
  if (a.end !== undefined) mark.end = a.end;
  return mark;
}
