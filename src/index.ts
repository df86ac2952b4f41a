// The public API. Nothing else is exported.
export { DEFAULT_TARGETS, type UserConfig } from './config.js';
export { relativeErrorBound } from './buckets.js';
export { HISTORY_FIELDS, type HistoryField } from './fields.js';
export type { HistoryColumns, HistoryPoint, Resolution } from './history.js';
export { attach, compareWithTargets, type MemoryFootprint, type SeriesInfo, StreamPerformanceMonitor, type TickEvent } from './monitor.js';
export type { MonitorHandle } from './recorder.js';
export type { SessionInfo, SessionStats } from './sessions.js';
export type { SystemSample } from './system.js';
export type { IntervalFigures } from './tick.js';
export type { Totals } from './totals.js';
export type * from './types.js';
// analysis and reports
export type { AnomalyEvent, MovingAverages, TrendReport } from './analysis.js';
export { AnomalyDetector, AnomalyTracker } from './anomaly.js';
export type { Report, SeriesLoad } from './report.js';
export { type TrendEstimate, type TrendKind, TrendModel } from './trend.js';
// outputs
export { createDashboardHandler, type DashboardOptions, type DashboardSource } from './dashboard.js';
export { dashboardSource } from './dashboard-source.js';
export { collectFamilies } from './families.js';
export { negotiate, type Rendered, render } from './exposition.js';
export type { MetricFamily, NativeHistogram } from './metric-families.js';
export type { Exemplar } from './exemplars.js';
export { type OpenTelemetryProducer, type OpenTelemetryProducerOptions, openTelemetryProducer } from './opentelemetry.js';
export { type PromClientBridgeOptions, registerWithPromClient } from './prom-client-bridge.js';
export { debugSnapshot, type MetricsOptions, metricsHandler, renderMetrics, type ServeOptions, type Served, serve } from './serve.js';
export { type PrometheusRulesOptions, prometheusRules } from './rules.js';
export { type ClusterMetrics, type ClusterMetricsOptions, type ClusterServed, clusterMetrics, type ReportToPrimaryOptions, reportToPrimary } from './cluster.js';
export { type ClusterDashboardFrame, type ClusterWindowOptions, type WorkerRow } from './cluster-dashboard.js';
export { decodeSnapshot, encodeSnapshot, mergeSnapshots, type Snapshot, SnapshotError, snapshotQuantile, takeSnapshot } from './snapshot.js';
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
} from './grpc.js';
export { type HttpInstrument, type HttpServerOptions, instrumentHttpServer, setHttpRoute } from './http.js';
export { HistoryFileError, type PersistenceOptions } from './persistence.js';
export { type PoolLike, type PoolSample, type PoolTracker, type TrackPoolOptions, trackPool } from './pool.js';
export { type InstrumentStreamOptions, instrumentStream, type MonitorLike } from './streams.js';
