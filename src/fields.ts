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
  'memoryBytes',
  'heapBytes',
  'cpuPercent',
  'eventLoopDelayMs',
  'activeConnections',
  'workerUtilization',
  'queueDepth',
  'cacheHitRatio',
  'backpressure',
  'messagesPerSec',
  'bytesPerSec',
] as const;

export type HistoryField = (typeof HISTORY_FIELDS)[number];
