// Analysis in the tick: anomaly detection, moving averages, meters and trends over the derived
// series. Reads tick points only; never touches the record path.
import type { Logger } from 'pino';
import { AnomalyDetector, AnomalyTracker } from './anomaly.js';
import type { HistoryPoint } from '../time/history.js';
import { Ewma, Meter, SimpleMovingAverage, type TrendKind, TrendModel } from './trend.js';
import type { MonitoringConfig } from '../core/types.js';

/** The series watched for anomalies and trends, with their units. */
const WATCHED = [
  { series: 'rps', unit: 'requests/s' },
  { series: 'p95', unit: 'ms' },
  { series: 'p99', unit: 'ms' },
  { series: 'errorRate', unit: 'ratio' },
  { series: 'memoryBytes', unit: 'bytes' },
  { series: 'eventLoopDelayMs', unit: 'ms' },
] as const satisfies readonly { series: keyof HistoryPoint; unit: string }[];
type WatchedSeries = (typeof WATCHED)[number]['series'];

export interface AnomalyEvent {
  series: WatchedSeries;
  unit: string;
  value: number;
  expectedLow: number;
  expectedHigh: number;
  /** The detector's score in [0, 1] (0.5 = tail probability 1e-5). */
  score: number;
  direction: 'up' | 'down';
  start: number;
  /** Set when it recovered. */
  end?: number;
  /** The most extreme value seen during the incident. */
  peak: number;
  /** On recovery: true when the series did not come back but settled at a new level. */
  newLevel?: boolean;
}

export interface TrendReport {
  series: WatchedSeries;
  unit: string;
  current: number;
  /**
   * What the trend window shows: `flat` (noise about a level), `trend` (a line) or `levelShift`
   * (a step to a new level; the figures below then describe the points after it).
   */
  change: TrendKind;
  /** For a level shift: the size of the step. */
  shiftBy?: number;
  /** Slope of the model now, per minute: 0 when flat or right after a step. */
  slopePerMinute: number;
  /** The same model `horizonMinutes` ahead: the level now plus slopePerMinute × horizonMinutes. */
  forecast: number;
  horizonMinutes: number;
  /** When a limit is known (targets): ms until the same model reaches it, or null if it does not approach it. */
  limit?: number;
  msToLimit?: number | null;
}

export interface MovingAverages {
  rps: { sma: number; ewma: number };
  latencyMs: { sma: number; ewma: number };
  /** Classic 1/5/15-minute exponentially weighted request rates (per second). */
  requestRate: { m1: number; m5: number; m15: number };
  errorRate: { m1: number; m5: number; m15: number };
}

interface DetectorState {
  detector: AnomalyDetector;
  tracker: AnomalyTracker;
  open?: AnomalyEvent;
  /** Points in a row back within the range expected when the open incident began. */
  inRange: number;
  /** Points since the detector itself stopped finding the open incident unusual. */
  calmFor: number;
}

const RECENT = 200;
const RECOVER_IN_RANGE = 5;
const NEW_LEVEL_AFTER_MS = 10 * 60_000;
const TREND_WINDOW_MS = 5 * 60_000;
// Memory moves in GC sawtooth: a line through a few teeth is biased by where the window cuts
// them, so leaks are judged over a longer window.
const MEMORY_TREND_WINDOW_MS = 15 * 60_000;
const HORIZON_MINUTES = 10;

export class Analysis {
  private readonly detectors = new Map<WatchedSeries, DetectorState>();
  private readonly acceptNewLevelAfter: number;
  private lastT = Number.NEGATIVE_INFINITY;
  private readonly trends = new Map<WatchedSeries, { model: TrendModel; last: number }>();
  private readonly recent: AnomalyEvent[] = [];
  private readonly rpsSma: SimpleMovingAverage;
  private readonly latencySma: SimpleMovingAverage;
  private readonly rpsEwma: Ewma;
  private readonly latencyEwma: Ewma;
  private readonly requests: Meter;
  private readonly errors: Meter;

  constructor(
    private readonly config: MonitoringConfig,
    private readonly emit: (event: 'anomaly' | 'recovered', a: AnomalyEvent) => void,
    private readonly logger?: Logger,
  ) {
    const interval = config.collectionInterval;
    const windowPoints = Math.max(2, Math.round(config.throughputWindow / interval));
    const trendPoints = Math.max(3, Math.round(TREND_WINDOW_MS / interval));
    const learningPoints = Math.round(config.anomalyLearningPeriod / interval);
    this.acceptNewLevelAfter = Math.max(RECOVER_IN_RANGE, Math.round(NEW_LEVEL_AFTER_MS / interval));
    for (const { series } of WATCHED) {
      this.detectors.set(series, {
        detector: new AnomalyDetector({ threshold: config.anomalyDetectionThreshold, learningPoints }),
        tracker: new AnomalyTracker(),
        inRange: 0,
        calmFor: 0,
      });
      const points =
        series === 'memoryBytes' ? Math.max(3, Math.round(MEMORY_TREND_WINDOW_MS / interval)) : trendPoints;
      this.trends.set(series, { model: new TrendModel(points), last: Number.NaN });
    }
    this.rpsSma = new SimpleMovingAverage(windowPoints);
    this.latencySma = new SimpleMovingAverage(windowPoints);
    this.rpsEwma = new Ewma({ halfLifeMs: config.throughputWindow });
    this.latencyEwma = new Ewma({ halfLifeMs: config.throughputWindow });
    this.requests = new Meter({ tickIntervalMs: interval });
    this.errors = new Meter({ tickIntervalMs: interval });
  }

  /** One tick's point: feed every detector, average and trend. */
  update(t: number, point: HistoryPoint): void {
    // Two ticks in the same millisecond (by hand) add nothing a time series can use.
    if (!(t > this.lastT)) return;
    this.lastT = t;
    if (Number.isFinite(point.requests) && Number.isFinite(point.errors)) {
      this.requests.tick(point.requests);
      this.errors.tick(point.errors);
    }
    if (Number.isFinite(point.rps)) {
      this.rpsSma.push(point.rps);
      this.rpsEwma.update(point.rps, t);
    }
    if (Number.isFinite(point.meanLatency)) {
      this.latencySma.push(point.meanLatency);
      this.latencyEwma.update(point.meanLatency, t);
    }
    for (const { series, unit } of WATCHED) {
      const value = point[series];
      if (!Number.isFinite(value)) continue;
      const tr = this.trends.get(series)!;
      tr.model.push(t, value);
      tr.last = value;
      this.detect(series, unit, t, value);
    }
  }

  private detect(series: WatchedSeries, unit: string, t: number, value: number): void {
    const d = this.detectors.get(series)!;
    const result = d.detector.update(value);
    const transition = d.tracker.update(result);
    const open = d.open;
    if (open) {
      open.peak = open.direction === 'up' ? Math.max(open.peak, value) : Math.min(open.peak, value);
      // The detector gets used to a new level within a few points; "recovered" should mean back
      // to normal: within the range expected when the incident began, for a few points running —
      // or, for a level that stays, once the detector has long accepted it as the new normal.
      const back = value >= open.expectedLow && value <= open.expectedHigh;
      d.inRange = back ? d.inRange + 1 : 0;
      if (transition === 'recovered' || !d.tracker.active) d.calmFor++;
      if (d.inRange >= RECOVER_IN_RANGE || d.calmFor >= this.acceptNewLevelAfter) this.recover(d, t, value);
      return;
    }
    if (transition !== 'start') return;
    // Statistically unusual is not enough to page anyone: the move must also be material, at least
    // anomalyMinChange of the expected level (a p95 that wobbles by 1 % is not an incident).
    const center = (result.expectedLow + result.expectedHigh) / 2;
    if (Math.abs(value - center) < this.config.anomalyMinChange * Math.abs(center)) {
      d.tracker.reset();
      return;
    }
    const a: AnomalyEvent = {
      series,
      unit,
      value,
      expectedLow: result.expectedLow,
      expectedHigh: result.expectedHigh,
      score: result.score,
      direction: result.direction,
      start: t,
      peak: value,
    };
    d.open = a;
    d.inRange = 0;
    d.calmFor = 0;
    this.recent.push(a);
    if (this.recent.length > RECENT) this.recent.shift();
    this.logger?.warn(
      { anomaly: a },
      `anomaly in ${series}: ${fmt(value)} ${unit}, expected ${fmt(a.expectedLow)}..${fmt(a.expectedHigh)}`,
    );
    this.emit('anomaly', a);
  }

  private recover(d: DetectorState, t: number, value: number): void {
    const a = d.open!;
    a.end = t;
    a.newLevel = value < a.expectedLow || value > a.expectedHigh;
    d.open = undefined;
    if (d.tracker.active) d.tracker.reset();
    const after = `after ${((t - a.start) / 1000).toFixed(0)} s`;
    this.logger?.info(
      { anomaly: a },
      a.newLevel
        ? `${a.series} settled at a new level (${fmt(value)} ${a.unit}) ${after}`
        : `${a.series} recovered ${after}`,
    );
    this.emit('recovered', a);
  }

  /** Recent anomalies (open ones without `end`), oldest first. */
  anomalies(): AnomalyEvent[] {
    return this.recent.slice();
  }

  /** Anomalies that overlap [from, to]. */
  anomaliesBetween(from: number, to: number): AnomalyEvent[] {
    return this.recent.filter((a) => a.start <= to && (a.end === undefined || a.end >= from));
  }

  movingAverages(): MovingAverages {
    return {
      rps: { sma: this.rpsSma.value, ewma: this.rpsEwma.value },
      latencyMs: { sma: this.latencySma.value, ewma: this.latencyEwma.value },
      requestRate: this.requests.rates(),
      errorRate: this.errors.rates(),
    };
  }

  /** Trend of each watched series; `limits` gives levels worth a time-to-reach (e.g. the memory target). */
  trendReports(limits: Partial<Record<WatchedSeries, number>> = {}): TrendReport[] {
    const out: TrendReport[] = [];
    for (const { series, unit } of WATCHED) {
      const tr = this.trends.get(series)!;
      const e = tr.model.estimate();
      if (Number.isNaN(tr.last) || e === null) continue;
      const report: TrendReport = {
        series,
        unit,
        current: tr.last,
        change: e.kind,
        slopePerMinute: e.slopePerMs * 60_000,
        forecast: tr.model.forecast(HORIZON_MINUTES * 60_000),
        horizonMinutes: HORIZON_MINUTES,
      };
      if (e.shiftBy !== undefined) report.shiftBy = e.shiftBy;
      const limit = limits[series];
      if (limit !== undefined) {
        report.limit = limit;
        const ms = tr.model.timeToReach(limit);
        report.msToLimit = Number.isFinite(ms) && ms >= 0 ? ms : null;
      }
      out.push(report);
    }
    return out;
  }
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}
