// The monitor seen as the dashboard's data source: frames from ticks, columns from history.
import { DASHBOARD_FIELDS, type DashboardField, type DashboardFrame, type DashboardSource, type HistoryColumns, type Resolution } from './dashboard.js';
import type { HistoryPoint } from './history.js';
import type { StreamPerformanceMonitor, TickEvent } from './monitor.js';

export function dashboardSource(monitor: StreamPerformanceMonitor): DashboardSource {
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
        return [{ labels: s.labels, requests, rps: w.rps, p50: w.p50, p95: w.p95, p99: w.p99, errorRate: w.errorRate }];
      }),
      anomalies: monitor.recentAnomalies(),
      errorsByType: monitor.errorsByType(),
    };
  };
  return {
    current: () => frame(monitor.lastTickEvent()),
    history(resolution: Resolution, sinceMs?: number): HistoryColumns {
      const h = monitor.getHistory({ resolution, since: sinceMs });
      const fields = {} as Record<DashboardField, number[]>;
      for (const f of DASHBOARD_FIELDS) fields[f] = h.fields[f];
      return { resolution, t: h.t, fields, anomalies: monitor.recentAnomalies() };
    },
    onTick(listener) {
      const on = (tick: TickEvent) => listener(frame(tick));
      monitor.on('tick', on);
      return () => monitor.off('tick', on);
    },
  };
}
