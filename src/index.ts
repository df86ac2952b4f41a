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
