// The public API. Nothing else is exported.
export { DEFAULT_TARGETS, type UserConfig } from './core/config.js';
export { relativeErrorBound } from './core/buckets.js';
export { HISTORY_FIELDS, type HistoryField } from './core/fields.js';
export type { HistoryColumns, HistoryPoint, Resolution } from './time/history.js';
export type { MemoryFootprint } from './core/layout.js';
export type { SeriesInfo, TickEvent } from './analysis/monitor-reader.js';
export { compareWithTargets } from './analysis/targets.js';
export { attach, StreamPerformanceMonitor } from './monitor.js';
export type { MonitorHandle } from './record/recorder.js';
export type { SessionInfo, SessionStats } from './record/sessions.js';
export type { SystemSample } from './time/system.js';
export type { IntervalFigures } from './time/tick.js';
export type { Totals } from './time/totals.js';
export type * from './core/types.js';
// analysis and reports
export type { AnomalyEvent, MovingAverages, TrendReport } from './analysis/analysis.js';
export { AnomalyDetector, AnomalyTracker } from './analysis/anomaly.js';
export type { Report, SeriesLoad } from './analysis/report.js';
export { type TrendEstimate, type TrendKind, TrendModel } from './analysis/trend.js';
// outputs
export { createDashboardHandler, type DashboardOptions, type DashboardSource } from './serve/dashboard-handler.js';
export { dashboardSource } from './serve/dashboard-source.js';
export type { Rendered } from './export/exposition.js';
export type { MetricFamily, NativeHistogram } from './core/family-model.js';
export type { Exemplar } from './core/exemplars.js';
export {
  type OpenTelemetryProducer,
  type OpenTelemetryProducerOptions,
  openTelemetryProducer,
} from './export/opentelemetry.js';
export { type PromClientBridgeOptions, registerWithPromClient } from './export/prom-client-bridge.js';
export { type MetricsOptions, metricsHandler, type ServeOptions, type Served, serve } from './serve/serve.js';
export { type PrometheusRulesOptions, prometheusRules } from './export/prometheus-rules.js';
export {
  type ClusterMetrics,
  type ClusterMetricsOptions,
  type ClusterServed,
  clusterMetrics,
  type ReportToPrimaryOptions,
  reportToPrimary,
} from './serve/cluster.js';
export { decodeSnapshot, mergeSnapshots, type Snapshot, SnapshotError, snapshotQuantile } from './export/snapshot.js';
export type { ClusterDashboardFrame, ClusterWindowOptions, WorkerRow } from './serve/cluster-dashboard.js';
// integrations
export {
  type GrpcClientInterceptorOptions,
  type GrpcServerInterceptor,
  type GrpcServerInterceptorOptions,
  grpcClientInterceptor,
  grpcServerInterceptor,
  instrumentServerCall,
  type MessageSize,
  type ServerCallInstruments,
  statusName,
} from './integrations/grpc.js';
export {
  type HttpInstrument,
  type HttpServerOptions,
  instrumentHttpServer,
  setHttpRoute,
} from './integrations/http.js';
export { HistoryFileError, type PersistenceOptions } from './time/persistence.js';
export {
  type PoolLike,
  type PoolSample,
  type PoolTracker,
  type TrackPoolOptions,
  trackPool,
} from './integrations/pool.js';
export { type InstrumentStreamOptions, instrumentStream, type MonitorLike } from './integrations/streams.js';
