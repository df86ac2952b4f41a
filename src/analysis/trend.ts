// Moving averages, rates and trends for one series, updated one point at a time.
//
// Every class here keeps a fixed amount of state, allocates nothing per point and does O(1) work
// per point (amortised where a periodic exact recomputation undoes floating-point drift).
// Times are milliseconds (as from the monitor's clock); slopes are per millisecond (multiply by
// 60 000 for per minute) and meter rates are per second.

function checkFinite(name: string, x: unknown): asserts x is number {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new TypeError(`${name} must be a finite number, got ${String(x)}`);
  }
}

function checkPositiveInteger(name: string, x: unknown): asserts x is number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) {
    throw new RangeError(`${name} must be an integer ≥ 1, got ${String(x)}`);
  }
}

function checkPositive(name: string, x: unknown): asserts x is number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) {
    throw new RangeError(`${name} must be a finite number > 0, got ${String(x)}`);
  }
}

// ---------------------------------------------------------------------------------------------

/** Mean of the last `window` values (fewer until the window fills). */
export class SimpleMovingAverage {
  readonly window: number;
  private readonly ring: Float64Array;
  private at = 0;
  private held = 0;
  private sum = 0;

  constructor(window: number) {
    checkPositiveInteger('window', window);
    this.window = window;
    this.ring = new Float64Array(window);
  }

  /** Adds a value and returns the new average. */
  push(value: number): number {
    checkFinite('value', value);
    const ring = this.ring;
    if (this.held === this.window) this.sum -= ring[this.at];
    else this.held++;
    ring[this.at] = value;
    this.sum += value;
    this.at++;
    if (this.at === this.window) {
      this.at = 0;
      // Once per lap, replace the running sum by an exact one so add/subtract rounding cannot
      // accumulate over a long run.
      let s = 0;
      for (let i = 0; i < this.held; i++) s += ring[i];
      this.sum = s;
    }
    return this.sum / this.held;
  }

  /** Current average (NaN before the first value). */
  get value(): number {
    return this.held === 0 ? Number.NaN : this.sum / this.held;
  }

  /** Values currently averaged. */
  get count(): number {
    return this.held;
  }

  reset(): void {
    this.at = 0;
    this.held = 0;
    this.sum = 0;
  }
}

// ---------------------------------------------------------------------------------------------

interface EwmaOptions {
  /** Weight of each new value, in (0, 1]. */
  alpha?: number;
  /**
   * Half-life in ms: a value's weight halves every `halfLifeMs` of elapsed time, whatever the
   * spacing of the points. Needs a time with every update.
   */
  halfLifeMs?: number;
}

/**
 * Exponentially weighted moving average, by a fixed weight per point (`alpha`) or by elapsed
 * time (`halfLifeMs`). Starts at the first value.
 */
export class Ewma {
  readonly alpha: number;
  readonly halfLifeMs: number;
  private current = Number.NaN;
  private lastTime = Number.NaN;

  constructor(options: EwmaOptions) {
    const { alpha, halfLifeMs } = options ?? {};
    if ((alpha === undefined) === (halfLifeMs === undefined)) {
      throw new TypeError('options must give exactly one of alpha or halfLifeMs');
    }
    if (alpha !== undefined && !(typeof alpha === 'number' && alpha > 0 && alpha <= 1)) {
      throw new RangeError(`alpha must be in (0, 1], got ${String(alpha)}`);
    }
    if (halfLifeMs !== undefined) checkPositive('halfLifeMs', halfLifeMs);
    this.alpha = alpha ?? Number.NaN;
    this.halfLifeMs = halfLifeMs ?? Number.NaN;
  }

  /** Adds a value (at `timeMs`, required with a half-life) and returns the new average. */
  update(value: number, timeMs?: number): number {
    checkFinite('value', value);
    let a = this.alpha;
    if (!Number.isNaN(this.halfLifeMs)) {
      checkFinite('timeMs', timeMs);
      const dt = Number.isNaN(this.lastTime) ? 0 : timeMs - this.lastTime;
      if (dt < 0) throw new RangeError(`timeMs must not go backwards (${timeMs} < ${this.lastTime})`);
      a = 1 - 2 ** (-dt / this.halfLifeMs);
      this.lastTime = timeMs;
    }
    this.current = Number.isNaN(this.current) ? value : this.current + a * (value - this.current);
    return this.current;
  }

  /** Current average (NaN before the first value). */
  get value(): number {
    return this.current;
  }

  reset(): void {
    this.current = Number.NaN;
    this.lastTime = Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------

interface MeterOptions {
  /** Time between ticks in ms. Default 5000 (as Dropwizard's meters; the monitor uses its tick). */
  tickIntervalMs?: number;
}

/** The three rates of a meter, in events per second. */
interface MeterRatesSnapshot {
  m1: number;
  m5: number;
  m15: number;
}

/**
 * The 1-, 5- and 15-minute rates of a count, as in Unix load averages and Dropwizard meters: at
 * every tick the events counted since the previous tick give an instantaneous rate, which feeds
 * three EWMAs with weights 1 − exp(−tick / (1, 5, 15 min)). The first tick sets them directly
 * rather than rising from zero.
 */
export class Meter {
  readonly tickIntervalMs: number;
  private readonly alphas: Float64Array;
  private readonly ewmas = new Float64Array(3);
  private pending = 0;
  private total = 0;
  private ticked = false;
  private nextTick = Number.NaN;

  constructor(options: MeterOptions = {}) {
    const tickIntervalMs = options.tickIntervalMs ?? 5000;
    checkPositive('tickIntervalMs', tickIntervalMs);
    this.tickIntervalMs = tickIntervalMs;
    this.alphas = new Float64Array([1, 5, 15].map((m) => 1 - Math.exp(-tickIntervalMs / (m * 60_000))));
  }

  /** Counts `n` events (default 1) into the current interval. */
  mark(n = 1): void {
    checkFinite('n', n);
    if (n < 0) throw new RangeError(`n must be ≥ 0, got ${n}`);
    this.pending += n;
    this.total += n;
  }

  /** Counts `n` more events (default 0), then closes the current interval. */
  tick(n = 0): void {
    if (n !== 0) this.mark(n);
    const instant = (this.pending * 1000) / this.tickIntervalMs;
    this.pending = 0;
    for (let i = 0; i < 3; i++) {
      this.ewmas[i] = this.ticked ? this.ewmas[i] + this.alphas[i] * (instant - this.ewmas[i]) : instant;
    }
    this.ticked = true;
  }

  /**
   * Ticks once for every whole interval elapsed up to `nowMs` (the first call only sets the
   * start), for a caller on an irregular timer.
   */
  advance(nowMs: number): void {
    checkFinite('nowMs', nowMs);
    if (Number.isNaN(this.nextTick)) {
      this.nextTick = nowMs + this.tickIntervalMs;
      return;
    }
    let due = Math.floor((nowMs - this.nextTick) / this.tickIntervalMs) + 1;
    if (due <= 0) return;
    this.nextTick += due * this.tickIntervalMs;
    this.tick();
    due--;
    // Further intervals had no events: they only decay the rates, done in closed form.
    if (due > 0) for (let i = 0; i < 3; i++) this.ewmas[i] *= (1 - this.alphas[i]) ** due;
  }

  /** Events per second, exponentially weighted over about one minute. */
  get oneMinuteRate(): number {
    return this.ewmas[0];
  }
  /** Events per second over about five minutes. */
  get fiveMinuteRate(): number {
    return this.ewmas[1];
  }
  /** Events per second over about fifteen minutes. */
  get fifteenMinuteRate(): number {
    return this.ewmas[2];
  }
  /** The three rates as a new object (for reports). */
  rates(): MeterRatesSnapshot {
    return { m1: this.ewmas[0], m5: this.ewmas[1], m15: this.ewmas[2] };
  }
  /** Events counted since construction (or reset). */
  get count(): number {
    return this.total;
  }

  reset(): void {
    this.ewmas.fill(0);
    this.pending = 0;
    this.total = 0;
    this.ticked = false;
    this.nextTick = Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Least-squares line through the last `window` points (t, y), O(1) per point. Sums are kept
 * about a reference point (re-centred, and recomputed exactly, once per lap), so epoch-millisecond
 * times and large values do not cancel catastrophically.
 */
export class LinearTrend {
  readonly window: number;
  private readonly ts: Float64Array;
  private readonly ys: Float64Array;
  private at = 0;
  private held = 0;
  private t0 = 0; // reference time
  private y0 = 0; // reference value
  private st = 0; // Σ(t − t0)
  private sy = 0; // Σ(y − y0)
  private stt = 0; // Σ(t − t0)²
  private sty = 0; // Σ(t − t0)(y − y0)
  private syy = 0; // Σ(y − y0)²
  private lastTime = Number.NaN;

  constructor(window: number) {
    checkPositiveInteger('window', window);
    if (window < 2) throw new RangeError(`window must be ≥ 2 to fit a line, got ${window}`);
    this.window = window;
    this.ts = new Float64Array(window);
    this.ys = new Float64Array(window);
  }

  /** Adds the point (timeMs, value). */
  push(timeMs: number, value: number): void {
    checkFinite('timeMs', timeMs);
    checkFinite('value', value);
    if (this.held === 0) {
      this.t0 = timeMs;
      this.y0 = value;
    }
    if (this.held === this.window) this.accumulate(this.ts[this.at], this.ys[this.at], -1);
    else this.held++;
    this.ts[this.at] = timeMs;
    this.ys[this.at] = value;
    this.accumulate(timeMs, value, 1);
    this.lastTime = timeMs;
    this.at++;
    if (this.at === this.window) {
      this.at = 0;
      this.recentre();
    }
  }

  /** Points in the window. */
  get count(): number {
    return this.held;
  }

  /** Slope in value units per millisecond (NaN with fewer than 2 distinct times). */
  get slope(): number {
    return this.slopePerMs();
  }

  /** Fitted value at `timeMs` (by default the latest time). */
  valueAt(timeMs: number = this.lastTime): number {
    const n = this.held;
    const b = this.slopePerMs();
    if (Number.isNaN(b)) return n > 0 ? this.y0 + this.sy / n : Number.NaN;
    return this.y0 + this.sy / n + b * (timeMs - (this.t0 + this.st / n));
  }

  /** Fitted value `horizonMs` after the latest point. */
  forecast(horizonMs: number): number {
    return this.valueAt(this.lastTime + horizonMs);
  }

  /** Coefficient of determination r² of the fit, in [0, 1] (NaN if undefined). */
  get rSquared(): number {
    const n = this.held;
    const vt = this.stt - (this.st * this.st) / n;
    const vy = this.syy - (this.sy * this.sy) / n;
    const c = this.sty - (this.st * this.sy) / n;
    if (!(vt > 0) || !(vy > 0)) return Number.NaN;
    return Math.min(1, (c * c) / (vt * vy));
  }

  /**
   * Milliseconds from the latest point until the fitted line reaches `level`: 0 if already
   * there, Infinity if the line is flat or moving away, NaN without a line.
   */
  timeToReach(level: number): number {
    checkFinite('level', level);
    return timeUntil(level - this.valueAt(), this.slopePerMs());
  }

  reset(): void {
    this.at = 0;
    this.held = 0;
    this.st = this.sy = this.stt = this.sty = this.syy = 0;
    this.lastTime = Number.NaN;
  }

  private slopePerMs(): number {
    const n = this.held;
    if (n < 2) return Number.NaN;
    const vt = this.stt - (this.st * this.st) / n;
    // Times all equal (to rounding): no slope.
    if (!(vt > 1e-12 * (this.stt + 1e-300))) return Number.NaN;
    return (this.sty - (this.st * this.sy) / n) / vt;
  }

  private accumulate(t: number, y: number, sign: 1 | -1): void {
    const dt = t - this.t0;
    const dy = y - this.y0;
    this.st += sign * dt;
    this.sy += sign * dy;
    this.stt += sign * dt * dt;
    this.sty += sign * dt * dy;
    this.syy += sign * dy * dy;
  }

  /** Moves the reference to the window's means and recomputes the sums exactly. */
  private recentre(): void {
    const n = this.held;
    this.t0 += this.st / n;
    this.y0 += this.sy / n;
    this.st = this.sy = this.stt = this.sty = this.syy = 0;
    for (let i = 0; i < n; i++) this.accumulate(this.ts[i], this.ys[i], 1);
  }
}

// ---------------------------------------------------------------------------------------------

interface HoltOptions {
  /** Level smoothing per point, in (0, 1]. Give with `beta`, instead of the half-lives. */
  alpha?: number;
  /** Trend smoothing per point, in (0, 1]. */
  beta?: number;
  /** Half-life of the level's memory in ms (used when alpha/beta are not given). Default 60 000. */
  levelHalfLifeMs?: number;
  /** Half-life of the trend's memory in ms. Default 300 000. */
  trendHalfLifeMs?: number;
}

/**
 * Holt's linear (double exponential) smoothing: a level and a trend, each exponentially smoothed.
 * The trend is per millisecond of the actual time between points, so forecasts are in time, not
 * in points. Smoothing is by half-lives in time (default: level 1 min, trend 5 min, whatever the
 * tick), or by fixed weights per point (`alpha`, `beta`).
 */
export class HoltForecaster {
  readonly alpha: number;
  readonly beta: number;
  readonly levelHalfLifeMs: number;
  readonly trendHalfLifeMs: number;
  private level = Number.NaN;
  private trend = Number.NaN; // per ms
  private lastTime = Number.NaN;
  private seen = 0;

  constructor(options: HoltOptions = {}) {
    const { alpha, beta } = options;
    const perPoint = alpha !== undefined || beta !== undefined;
    if (perPoint) {
      if (!(typeof alpha === 'number' && alpha > 0 && alpha <= 1)) {
        throw new RangeError(`alpha must be in (0, 1], got ${String(alpha)}`);
      }
      if (!(typeof beta === 'number' && beta > 0 && beta <= 1)) {
        throw new RangeError(`beta must be in (0, 1], got ${String(beta)}`);
      }
      if (options.levelHalfLifeMs !== undefined || options.trendHalfLifeMs !== undefined) {
        throw new TypeError('give either alpha and beta, or levelHalfLifeMs/trendHalfLifeMs, not both');
      }
    }
    const levelHalfLifeMs = options.levelHalfLifeMs ?? 60_000;
    const trendHalfLifeMs = options.trendHalfLifeMs ?? 300_000;
    checkPositive('levelHalfLifeMs', levelHalfLifeMs);
    checkPositive('trendHalfLifeMs', trendHalfLifeMs);
    this.alpha = perPoint ? (alpha as number) : Number.NaN;
    this.beta = perPoint ? (beta as number) : Number.NaN;
    this.levelHalfLifeMs = perPoint ? Number.NaN : levelHalfLifeMs;
    this.trendHalfLifeMs = perPoint ? Number.NaN : trendHalfLifeMs;
  }

  /** Adds the value observed at `timeMs` (times must increase). */
  update(value: number, timeMs: number): void {
    checkFinite('timeMs', timeMs);
    checkFinite('value', value);
    if (this.seen === 0) {
      this.level = value;
      this.trend = 0;
    } else {
      const dt = timeMs - this.lastTime;
      if (!(dt > 0)) throw new RangeError(`timeMs must increase (${timeMs} after ${this.lastTime})`);
      if (this.seen === 1) {
        // Second point: start from the line through the first two.
        this.trend = (value - this.level) / dt;
        this.level = value;
      } else {
        const perPoint = !Number.isNaN(this.alpha);
        const a = perPoint ? this.alpha : 1 - 2 ** (-dt / this.levelHalfLifeMs);
        const b = perPoint ? this.beta : 1 - 2 ** (-dt / this.trendHalfLifeMs);
        const previous = this.level;
        this.level = a * value + (1 - a) * (previous + this.trend * dt);
        this.trend = b * ((this.level - previous) / dt) + (1 - b) * this.trend;
      }
    }
    this.lastTime = timeMs;
    this.seen++;
  }

  /** Smoothed level at the latest point (NaN before any). */
  get value(): number {
    return this.level;
  }

  /** Trend in value units per millisecond (NaN before two points). */
  get slope(): number {
    return this.seen < 2 ? Number.NaN : this.trend;
  }

  /** Expected value `horizonMs` after the latest point. */
  forecast(horizonMs: number): number {
    checkFinite('horizonMs', horizonMs);
    if (this.seen === 0) return Number.NaN;
    return this.level + (this.seen < 2 ? 0 : this.trend * horizonMs);
  }

  /**
   * Milliseconds from the latest point until the forecast reaches `level`: 0 if already there,
   * Infinity if the trend is flat or moving away, NaN before two points.
   */
  timeToReach(level: number): number {
    checkFinite('level', level);
    if (this.seen < 2) return Number.NaN;
    return timeUntil(level - this.level, this.trend);
  }

  reset(): void {
    this.level = Number.NaN;
    this.trend = Number.NaN;
    this.lastTime = Number.NaN;
    this.seen = 0;
  }
}

/** Time for a line with slope `perMs` to cover `gap`; 0, Infinity or NaN at the edges. */
function timeUntil(gap: number, perMs: number): number {
  if (Number.isNaN(gap) || Number.isNaN(perMs)) return Number.NaN;
  if (gap === 0) return 0;
  if (perMs === 0 || Math.sign(gap) !== Math.sign(perMs)) return Number.POSITIVE_INFINITY;
  return gap / perMs;
}

// ---------------------------------------------------------------------------------------------

/** What a window of points shows, by the model that explains it best. */
export type TrendKind = 'flat' | 'trend' | 'levelShift';

export interface TrendEstimate {
  /** `flat`: noise about a level; `trend`: a line; `levelShift`: a step to a new level. */
  kind: TrendKind;
  /** The model's value at the latest point (after the step, for a level shift). */
  level: number;
  /** Slope per ms of the model now: 0 when flat, the post-step slope after a level shift. */
  slopePerMs: number;
  /** For a level shift: the time of the first point at the new level, and the size of the step. */
  shiftAt?: number;
  shiftBy?: number;
  /** Points the estimate rests on (those after the step, for a level shift). */
  points: number;
}

/** A line or a step must explain this many times more than the noise (|t| ≥ 4) to count. */
const SIGNIFICANT_T2 = 16;
/** Points after a step needed before their own slope is trusted. */
const MIN_SLOPE_POINTS = 30;

/**
 * Slope, forecast and time-to-limit of one series from one model, chosen per query among three
 * fits of the last `window` points: a constant, a line, and a step (two constants, split at the
 * best point). A line or a step counts only when it explains the points far better than noise
 * about a level does (t statistic ≥ 4; for the step, plus 2·ln n for having searched for its
 * position); when both count, the closer fit wins. After a step only the points after it count:
 * the slope is that of a line through them when that line is itself significant (and rests on
 * at least 30 points), else 0. `forecast` and `timeToReach` extrapolate the same
 * `level + slope · time` that the estimate reports, so the three always agree.
 *
 * State is two rings of `window` doubles and one scratch array; push is O(1), a query O(window)
 * (cached until the next push).
 */
export class TrendModel {
  readonly window: number;
  private readonly ts: Float64Array;
  private readonly ys: Float64Array;
  private readonly prefix: Float64Array; // scratch: Σ of centred values up to each point
  private at = 0;
  private held = 0;
  private cached: TrendEstimate | null = null;

  constructor(window: number) {
    checkPositiveInteger('window', window);
    if (window < 3) throw new RangeError(`window must be ≥ 3 to tell a line from a step, got ${window}`);
    this.window = window;
    this.ts = new Float64Array(window);
    this.ys = new Float64Array(window);
    this.prefix = new Float64Array(window + 1);
  }

  /** Adds the point (timeMs, value); times must increase. */
  push(timeMs: number, value: number): void {
    checkFinite('timeMs', timeMs);
    checkFinite('value', value);
    if (this.held > 0) {
      const last = this.ts[(this.at + this.window - 1) % this.window];
      if (!(timeMs > last)) throw new RangeError(`timeMs must increase (${timeMs} after ${last})`);
    }
    this.ts[this.at] = timeMs;
    this.ys[this.at] = value;
    this.at = (this.at + 1) % this.window;
    if (this.held < this.window) this.held++;
    this.cached = null;
  }

  /** Points in the window. */
  get count(): number {
    return this.held;
  }

  /** The current estimate (null with fewer than 3 points). Reused until the next push. */
  estimate(): TrendEstimate | null {
    if (this.cached === null && this.held >= 3) this.cached = this.fit();
    return this.cached;
  }

  /** Slope per ms (NaN with fewer than 3 points). */
  get slope(): number {
    return this.estimate()?.slopePerMs ?? Number.NaN;
  }

  /** The model's value `horizonMs` after the latest point (NaN with fewer than 3 points). */
  forecast(horizonMs: number): number {
    checkFinite('horizonMs', horizonMs);
    const e = this.estimate();
    return e === null ? Number.NaN : e.level + e.slopePerMs * horizonMs;
  }

  /**
   * Milliseconds from the latest point until the model reaches `level`: 0 if already there,
   * Infinity if flat or moving away, NaN with fewer than 3 points.
   */
  timeToReach(level: number): number {
    checkFinite('level', level);
    const e = this.estimate();
    return e === null ? Number.NaN : timeUntil(level - e.level, e.slopePerMs);
  }

  reset(): void {
    this.at = 0;
    this.held = 0;
    this.cached = null;
  }

  /** Time and value of the i-th oldest point in the window. */
  private t(i: number): number {
    return this.ts[(this.at - this.held + i + this.window) % this.window];
  }
  private y(i: number): number {
    return this.ys[(this.at - this.held + i + this.window) % this.window];
  }

  private fit(): TrendEstimate {
    const n = this.held;
    const yRef = this.y(n - 1);
    const tEnd = this.t(n - 1);
    // Noise-free data still need a scale to compare against: a relative rounding floor.
    const tiny = n * (1e-12 * Math.abs(yRef) + 1e-300) ** 2;
    /** Whether cutting the residual sum of squares from `from` to `to` (with `params` fitted) is significant. */
    const significant = (from: number, to: number, points: number, params: number, extra: number) =>
      points > params && from - to > ((SIGNIFICANT_T2 + extra) * (to + tiny)) / (points - params);

    const whole = this.line(0, n, yRef);
    const isLine = Number.isFinite(whole.slope) && significant(whole.rssFlat, whole.rssLine, n, 2, 0);

    // Best single split into two constants (at least 2 points after it, so that one stray last
    // point is not taken for a new level).
    const p = this.prefix;
    p[0] = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const d = this.y(i) - yRef;
      p[i + 1] = p[i] + d;
      sq += d * d;
    }
    let split = -1;
    let rssStep = Number.POSITIVE_INFINITY;
    for (let k = 1; k <= n - 2; k++) {
      const a = p[k];
      const b = p[n] - a;
      const rss = Math.max(0, sq - (a * a) / k - (b * b) / (n - k));
      if (rss < rssStep) {
        rssStep = rss;
        split = k;
      }
    }
    const isStep =
      split > 0 && significant(whole.rssFlat, rssStep, n, 2, 2 * Math.log(n)) && (!isLine || rssStep < whole.rssLine);

    if (isStep) {
      const before = p[split] / split;
      const after = this.line(split, n, yRef);
      const m = n - split;
      const sloped =
        m >= MIN_SLOPE_POINTS && Number.isFinite(after.slope) && significant(after.rssFlat, after.rssLine, m, 2, 0);
      return {
        kind: 'levelShift',
        level: yRef + (sloped ? after.valueAt(tEnd) : after.mean),
        slopePerMs: sloped ? after.slope : 0,
        shiftAt: this.t(split),
        shiftBy: after.mean - before,
        points: m,
      };
    }
    if (isLine) return { kind: 'trend', level: yRef + whole.valueAt(tEnd), slopePerMs: whole.slope, points: n };
    return { kind: 'flat', level: yRef + whole.mean, slopePerMs: 0, points: n };
  }

  /** Least-squares constant and line through points [from, to), values relative to `yRef`. */
  private line(from: number, to: number, yRef: number) {
    const m = to - from;
    const tRef = this.t(to - 1);
    let st = 0;
    let sy = 0;
    for (let i = from; i < to; i++) {
      st += this.t(i) - tRef;
      sy += this.y(i) - yRef;
    }
    const tm = st / m;
    const ym = sy / m;
    let vt = 0;
    let c = 0;
    let vy = 0;
    for (let i = from; i < to; i++) {
      const dt = this.t(i) - tRef - tm;
      const dy = this.y(i) - yRef - ym;
      vt += dt * dt;
      c += dt * dy;
      vy += dy * dy;
    }
    const slope = vt > 0 ? c / vt : Number.NaN;
    return {
      mean: ym,
      slope,
      rssFlat: vy,
      rssLine: vt > 0 ? Math.max(0, vy - (c * c) / vt) : vy,
      /** Fitted value (relative to yRef) at time t. */
      valueAt: (t: number) => ym + (vt > 0 ? slope * (t - tRef - tm) : 0),
    };
  }
}
