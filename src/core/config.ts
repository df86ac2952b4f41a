// Defaults and validation of MonitoringConfig. Every message says what to change.
import type { Clock, MonitoringConfig, PerformanceTargets } from './types.js';

const HOUR = 3_600_000;

/** Largest duration accepted, in ms (about 115 days): keeps integer-nanosecond sums exact. */
export const MAX_MS = 1e10;

const realClock: Clock = { now: () => Date.now() };

export const DEFAULT_TARGETS: PerformanceTargets = Object.freeze({
  targetRps: 2000,
  targetP95LatencyMs: 25,
  targetMemoryMb: 100,
  targetSuccessRate: 0.99,
});

function defaultConfig(): MonitoringConfig {
  return {
    collectionInterval: 1000,
    historyRetention: 24 * HOUR,
    throughputWindow: 10_000,
    enableDetailedLogging: false,
    anomalyDetectionThreshold: 2.0,
    anomalyLearningPeriod: Number.NaN, // 150 collection intervals unless set
    anomalyMinChange: 0.1,
    scale: 7,
    histogramRange: { minMs: 0.001, maxMs: HOUR },
    maxSeries: 1000,
    bucketMemory: null,
    maxErrorTypes: 64,
    rollups: { minutes: 60, hours: 24, days: 7 },
    clock: realClock,
    autoStart: true,
    sessionIdleTimeout: 300_000,
    maxSessions: 10_000,
    invalidValues: 'throw',
    targets: { ...DEFAULT_TARGETS },
    reportInterval: 60_000,
    logInterval: 10_000,
    reportFile: undefined,
    reportFileMaxBytes: 10 * 2 ** 20,
    reportFileKeep: 3,
    eventLoopResolution: 10,
    logger: undefined,
  };
}

export type UserConfig = Partial<Omit<MonitoringConfig, 'histogramRange' | 'rollups' | 'targets'>> & {
  histogramRange?: Partial<MonitoringConfig['histogramRange']>;
  rollups?: Partial<MonitoringConfig['rollups']>;
  targets?: Partial<PerformanceTargets>;
};

function fail(name: string, value: unknown, what: string): never {
  throw new RangeError(`config.${name} must be ${what} (got ${describe(value)})`);
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

function num(name: string, v: unknown, lo: number, hi: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(name, v, `a finite number`);
  if (v < lo || v > hi) fail(name, v, `between ${lo} and ${hi}`);
  if (integer && !Number.isInteger(v)) fail(name, v, 'a whole number');
  return v;
}

const KNOWN = new Set(Object.keys(defaultConfig()));

/** Merges user settings over the defaults and checks every value. */
export function resolveConfig(user: UserConfig = {}): MonitoringConfig {
  if (user === null || typeof user !== 'object') throw new TypeError('config must be an object');
  for (const key of Object.keys(user)) {
    if (!KNOWN.has(key)) throw new RangeError(`config.${key} is not a setting (known: ${[...KNOWN].join(', ')})`);
  }
  const d = defaultConfig();
  const c: MonitoringConfig = {
    ...d,
    ...stripUndefined(user),
    histogramRange: { ...d.histogramRange, ...stripUndefined(user.histogramRange ?? {}) },
    rollups: { ...d.rollups, ...stripUndefined(user.rollups ?? {}) },
    targets: resolveTargets(user.targets),
  } as MonitoringConfig;
  num('collectionInterval', c.collectionInterval, 10, HOUR);
  num('historyRetention', c.historyRetention, c.collectionInterval, 366 * 24 * HOUR);
  if (c.historyRetention / c.collectionInterval > 10_000_000) {
    fail('historyRetention', c.historyRetention, 'at most 10 million collection intervals');
  }
  num('throughputWindow', c.throughputWindow, c.collectionInterval, HOUR);
  if (c.throughputWindow / c.collectionInterval > 3600) {
    fail('throughputWindow', c.throughputWindow, 'at most 3600 collection intervals');
  }
  if (typeof c.enableDetailedLogging !== 'boolean') fail('enableDetailedLogging', c.enableDetailedLogging, 'a boolean');
  if (typeof c.autoStart !== 'boolean') fail('autoStart', c.autoStart, 'a boolean');
  num('anomalyDetectionThreshold', c.anomalyDetectionThreshold, 0.5, 20);
  if (Number.isNaN(c.anomalyLearningPeriod)) c.anomalyLearningPeriod = 150 * c.collectionInterval;
  num('anomalyLearningPeriod', c.anomalyLearningPeriod, 0, 366 * 24 * HOUR);
  num('anomalyMinChange', c.anomalyMinChange, 0, 100);
  num('scale', c.scale, 0, 8, true);
  num('histogramRange.minMs', c.histogramRange.minMs, 1e-6, 1e9);
  num('histogramRange.maxMs', c.histogramRange.maxMs, c.histogramRange.minMs * 2, MAX_MS);
  num('maxSeries', c.maxSeries, 1, 10_000, true);
  if (c.bucketMemory !== null) num('bucketMemory', c.bucketMemory, 65536, 2 ** 30, true);
  num('maxErrorTypes', c.maxErrorTypes, 1, 10_000, true);
  num('rollups.minutes', c.rollups.minutes, 1, 100_000, true);
  num('rollups.hours', c.rollups.hours, 1, 100_000, true);
  num('rollups.days', c.rollups.days, 1, 10_000, true);
  num('sessionIdleTimeout', c.sessionIdleTimeout, 1, 366 * 24 * HOUR);
  num('maxSessions', c.maxSessions, 1, 10_000_000, true);
  if (c.invalidValues !== 'throw' && c.invalidValues !== 'count')
    fail('invalidValues', c.invalidValues, "'throw' or 'count'");
  num('reportInterval', c.reportInterval, c.collectionInterval, 366 * 24 * HOUR);
  num('logInterval', c.logInterval, c.collectionInterval, 366 * 24 * HOUR);
  if (c.reportFile !== undefined && (typeof c.reportFile !== 'string' || c.reportFile === ''))
    fail('reportFile', c.reportFile, 'a file path');
  num('reportFileMaxBytes', c.reportFileMaxBytes, 1024, 2 ** 40, true);
  num('reportFileKeep', c.reportFileKeep, 1, 1000, true);
  num('eventLoopResolution', c.eventLoopResolution, 1, 1000);
  if (
    c.logger !== undefined &&
    c.logger !== false &&
    (typeof c.logger !== 'object' || typeof c.logger.info !== 'function')
  ) {
    fail('logger', c.logger, 'a pino logger, or false for no logging');
  }
  if (!c.clock || typeof c.clock.now !== 'function')
    fail('clock', c.clock, 'an object with a now() method returning milliseconds');
  return c;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Targets over the defaults, checked. */
export function resolveTargets(user: Partial<PerformanceTargets> = {}): PerformanceTargets {
  if (user === null || typeof user !== 'object') throw new TypeError('targets must be an object');
  const t = { ...DEFAULT_TARGETS, ...stripUndefined(user) };
  for (const key of Object.keys(t)) {
    if (!(key in DEFAULT_TARGETS))
      throw new RangeError(`targets.${key} is not a target (known: ${Object.keys(DEFAULT_TARGETS).join(', ')})`);
  }
  const pos = (name: keyof PerformanceTargets) => {
    const v = t[name];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`targets.${name} must be a finite number above 0 (got ${describe(v)})`);
    }
  };
  pos('targetRps');
  pos('targetP95LatencyMs');
  pos('targetMemoryMb');
  pos('targetSuccessRate');
  if (t.targetSuccessRate > 1)
    throw new RangeError(`targets.targetSuccessRate must be at most 1 (got ${t.targetSuccessRate})`);
  return t;
}
