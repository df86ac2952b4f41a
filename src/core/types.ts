// Public types of the monitor. Implementation lives elsewhere; this file only names shapes.

/** A label set of a series, e.g. `{ grpc_method: 'Chat/Stream' }`. Keys are Prometheus label names. */
export type Labels = Readonly<Record<string, string>>;

/** Milliseconds since the epoch (or any monotonic origin), injectable for tests. */
export interface Clock {
  now(): number;
}

/**
 * The trace an observation belongs to, for an exemplar: the shape of OpenTelemetry's SpanContext,
 * so `span.spanContext()` can be passed as it is.
 */
export interface ExemplarIds {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  spanId: string;
}

/** What every recorder — the monitor, a series, a worker's attached recorder — can record. */
export interface Recorder {
  /** A successful request (message) and its latency in milliseconds. */
  recordLatency(ms: number): void;
  /**
   * recordLatency, linked to a trace: `exemplar`'s ids, or without it those of the active sampled
   * span when `@opentelemetry/api` is installed (none active: a plain record). Kept as the latest
   * exemplar of its value's range in this series (monitor's thread only; see the README's Exemplars).
   */
  recordLatencyWithExemplar(ms: number, exemplar?: ExemplarIds): void;
  /** A failed request, counted by `type`; its latency too when known. */
  recordError(type: string, latencyMs?: number): void;
  /** recordError with its latency linked to a trace, as recordLatencyWithExemplar. */
  recordErrorWithExemplar(type: string, latencyMs: number, exemplar?: ExemplarIds): void;
  /** Starts a timer; calling the returned function records the elapsed time as a success and returns it (ms). */
  startTimer(): () => number;
  /** A finished stream session: its duration, the messages and bytes it carried. */
  recordStreamSession(connectionId: string, messageCount: number, durationMs: number, bytesProcessed: number): void;
  /** A processed batch: its size and how long it took. */
  recordBatchProcessing(batchSize: number, durationMs: number): void;
  /** Messages (and their bytes) passing through, `in` (received) or `out` (sent). */
  recordMessages(count: number, bytes?: number, direction?: 'in' | 'out'): void;
  /** A backpressure event (a write refused, a queue full); `waitMs` is how long until it cleared, when known. */
  recordBackpressureEvent(waitMs?: number): void;
  recordCacheHit(): void;
  recordCacheMiss(): void;
  /** For callers that only know a ratio (0..1). */
  updateCacheHitRatio(ratio: number): void;
  updateMemoryUsage(bytes: number): void;
  updateWorkerUtilization(ratio: number): void;
  updateQueueDepth(depth: number): void;
  connectionOpened(): void;
  connectionClosed(): void;
  /** A recorder bound to one label set (bounded by `maxSeries`; past it, an overflow series). */
  series(labels: Labels, options?: SeriesOptions): Recorder;
}

export interface SeriesOptions {
  /**
   * Whether the series adds into the monitor-wide totals (requests, latency, errors). Default true;
   * false for figures that are not requests of their own, e.g. a stage of another series' calls.
   * Fixed by the first thread that creates the series.
   */
  inTotals?: boolean;
}

export interface HistogramRange {
  /** Smallest value resolved, in ms (smaller values count in the zero bucket). Default 0.001 (1 µs). */
  minMs: number;
  /** Largest value resolved, in ms (larger ones count as overflow). Default 3_600_000 (1 h). */
  maxMs: number;
}

export interface MonitoringConfig {
  /** Milliseconds between aggregation ticks. Default 1000. */
  collectionInterval: number;
  /** Milliseconds of per-tick history kept. Default 24 h. */
  historyRetention: number;
  /** Milliseconds of the sliding window for current rates and percentiles. Default 10 000. */
  throughputWindow: number;
  enableDetailedLogging: boolean;
  /** Anomaly threshold in standard deviations. Default 2.0. */
  anomalyDetectionThreshold: number;
  /** Time the detectors learn each series before they may alarm (ms). Default 150 collection intervals. */
  anomalyLearningPeriod: number;
  /** Smallest move that counts as an anomaly, as a fraction of the expected level. Default 0.1 (10 %). */
  anomalyMinChange: number;
  /** Histogram precision, 0..8 (bucket ratio 2^(2^-scale)). Default 7 (≤ 0.27 % error). */
  scale: number;
  histogramRange: HistogramRange;
  /** Bound on label sets. Default 1000. */
  maxSeries: number;
  /**
   * Bound on the bytes of bucket pages (memory grows in pages as values arrive, up to this). Default
   * null: every bucket of every series could have its page (within the 1 GiB the core can address).
   * Past it, a value whose page cannot be had is counted (count, sum, min, max) but placed in no bucket.
   */
  bucketMemory: number | null;
  /** Bound on distinct error types per monitor. Default 64. */
  maxErrorTypes: number;
  /** Minute rollups kept (default 60), hour rollups (default: retention in hours), day rollups (default 7). */
  rollups: { minutes: number; hours: number; days: number };
  clock: Clock;
  /** Start the tick timer at construction. Default true. */
  autoStart: boolean;
  /** Live sessions idle longer than this (ms) are evicted. Default 5 min. */
  sessionIdleTimeout: number;
  /** Bound on live sessions tracked; past it the oldest is dropped. Default 10 000. */
  maxSessions: number;
  /** Bad values on the record path: 'throw' (default) or 'count' (skipped and counted as invalid). */
  invalidValues: 'throw' | 'count';
  /** Targets the summary is compared with. */
  targets: PerformanceTargets;
  /** Milliseconds between periodic reports (a 'report' event and a log line). Default 60 000. */
  reportInterval: number;
  /** Milliseconds over which noisy events (errors, backpressure) are aggregated into one log line. Default 10 000. */
  logInterval: number;
  /** Append each report as a JSON line to this file (rotated by size). */
  reportFile: string | undefined;
  /** Rotate the report file past this size. Default 10 MiB. */
  reportFileMaxBytes: number;
  /** Rotated report files kept. Default 3. */
  reportFileKeep: number;
  /**
   * Milliseconds between the event-loop delay timer's callbacks (prom-client's
   * eventLoopMonitoringPrecision). Default 10; larger costs less when idle, and a free loop then
   * reads about this much delay.
   */
  eventLoopResolution: number;
  /** A pino logger to log to, or false for none. Default: a pino logger on stdout. */
  logger: import('pino').Logger | false | undefined;
}

export interface PerformanceMetrics {
  totalRequests: number;
  successfulRequests: number;
  failedRequests: number;
  activeConnections: number;
  latencySumMs: number;
  latencyMinMs: number;
  latencyMaxMs: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  latencyP999Ms: number;
  currentRps: number;
  peakRps: number;
  avgRps: number;
  memoryUsageBytes: number;
  peakMemoryBytes: number;
  cpuUsagePercent: number;
  workerUtilization: number;
  queueDepth: number;
  cacheHitRatio: number;
  backpressureEvents: number;
  monitoringStart: number;
  lastUpdate: number;
}

export interface PerformanceSummary {
  /** Requests since start: successful + failed. */
  totalRequests: number;
  successfulRequests: number;
  failedRequests: number;
  /** Failed requests by error type, since start. */
  errorsByType: Record<string, number>;
  throughputRps: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p95LatencyMs: number;
  p99LatencyMs: number;
  p999LatencyMs: number;
  successRate: number;
  memoryUsageMb: number;
  activeConnections: number;
  workerUtilization: number;
  cacheEfficiency: number;
  uptimeSeconds: number;
}

export interface PerformanceTargets {
  targetRps: number;
  targetP95LatencyMs: number;
  targetMemoryMb: number;
  targetSuccessRate: number;
}

export interface TargetComparison {
  throughputAchievement: number;
  latencyAchievement: number;
  memoryEfficiency: number;
  successRate: number;
  overallScore: number;
  meetsTargets: boolean;
}

/** A live stream session (a gRPC stream, a socket, a Node stream), from `monitor.openSession()`. */
export interface Session {
  readonly connectionId: string;
  /** One message through the session (and its size in bytes), received (`in`, default) or sent (`out`). */
  message(bytes?: number, direction?: 'in' | 'out'): void;
  /** Ends the session; an error type counts it as failed. */
  close(errorType?: string): void;
}
