/** Gauges averaged over a rollup's ticks; the rest are summed or come from the merged histogram. */
export const MEAN_FIELDS = [
  'memoryBytes',
  'heapBytes',
  'cpuPercent',
  'eventLoopDelayMs',
  'activeConnections',
  'workerUtilization',
  'queueDepth',
  'cacheHitRatio',
] as const;

// The figures kept for every history point (tick or rollup), in column order.
export const HISTORY_FIELDS = [
  'requests',
  'errors',
  'rps',
  'errorRate',
  'p50',
  'p95',
  'p99',
  'p999',
  'meanLatency',
  ...MEAN_FIELDS,
  'backpressure',
  'messagesPerSec',
  'bytesPerSec',
] as const;

export type HistoryField = (typeof HISTORY_FIELDS)[number];

/** Counts kept as f64 (exact to 2^53); the other figures are f32, ample for rates and gauges. */
const WIDE_FIELDS: ReadonlySet<HistoryField> = new Set(['requests', 'errors']);

/** Bytes of one value of a history column. */
export const fieldBytes = (f: HistoryField): number => (WIDE_FIELDS.has(f) ? 8 : 4);
