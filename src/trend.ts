// Moving averages, meters and trends over a derived series: O(1) per point, nothing allocated
// after construction.

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number ≥ 1 (got ${v})`);
  return v;
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number > 0 (got ${v})`);
  return v;
}

/** Mean of the last `size` values (a ring buffer and a running sum, re-summed now and then against drift). */
export class SimpleMovingAverage {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;
  private sum = 0;
  private pushes = 0;

  constructor(readonly size: number) {
    positiveInt('size', size);
    this.ring = new Float64Array(size);
  }

  push(v: number): void {
    if (!Number.isFinite(v)) return;
    if (this.filled === this.size) this.sum -= this.ring[this.next];
    else this.filled++;
    this.ring[this.next] = v;
    this.sum += v;
    this.next = (this.next + 1) % this.size;
    if (++this.pushes % (this.size * 64) === 0) this.sum = this.ring.subarray(0, this.filled).reduce((a, b) => a + b, 0);
  }

  get count(): number {
    return this.filled;
  }

  /** NaN before the first value. */
  get value(): number {
    return this.filled ? this.sum / this.filled : Number.NaN;
  }
}

/**
 * Exponentially weighted moving average. With `alpha` each point weighs alone; with `halfLifeMs`
 * the weight follows the time between points, so irregular ticks are handled.
 */
export class Ewma {
  private v = Number.NaN;
  private lastT = Number.NaN;
  private readonly alpha?: number;
  private readonly halfLifeMs?: number;

  constructor(options: { alpha: number } | { halfLifeMs: number }) {
    if ('alpha' in options) {
      if (!(options.alpha > 0 && options.alpha <= 1)) throw new RangeError(`alpha must be in (0, 1] (got ${options.alpha})`);
      this.alpha = options.alpha;
    } else this.halfLifeMs = positive('halfLifeMs', options.halfLifeMs);
  }

  update(x: number, t?: number): number {
    if (!Number.isFinite(x)) return this.v;
    if (Number.isNaN(this.v)) {
      this.v = x;
    } else {
      let a = this.alpha ?? 0;
      if (this.halfLifeMs !== undefined) {
        const dt = t === undefined || Number.isNaN(this.lastT) ? 0 : Math.max(0, t - this.lastT);
        a = 1 - 2 ** (-dt / this.halfLifeMs);
      }
      this.v += a * (x - this.v);
    }
    if (t !== undefined) this.lastT = t;
    return this.v;
  }

  get value(): number {
    return this.v;
  }
}

/**
 * The classic meter: 1-, 5- and 15-minute exponentially weighted rates of events per second,
 * fed with the count of each tick (the load-average decay, exp(-interval / window)).
 */
export class Meter {
  private readonly decay: [number, number, number];
  private readonly rate: [number, number, number] = [Number.NaN, Number.NaN, Number.NaN];
  private readonly intervalS: number;

  constructor(options: { tickIntervalMs: number }) {
    this.intervalS = positive('tickIntervalMs', options.tickIntervalMs) / 1000;
    this.decay = [60, 300, 900].map((w) => Math.exp(-this.intervalS / w)) as [number, number, number];
  }

  tick(count: number): void {
    if (!Number.isFinite(count)) return;
    const instant = count / this.intervalS;
    for (let i = 0; i < 3; i++) {
      this.rate[i] = Number.isNaN(this.rate[i]) ? instant : instant + this.decay[i] * (this.rate[i] - instant);
    }
  }

  rates(): { m1: number; m5: number; m15: number } {
    return { m1: this.rate[0], m5: this.rate[1], m15: this.rate[2] };
  }
}

/**
 * Least-squares line through the last `size` (t, value) points, from running sums. Times are
 * taken relative to the first point so the sums keep their precision.
 */
export class LinearTrend {
  private readonly ts: Float64Array;
  private readonly vs: Float64Array;
  private next = 0;
  private filled = 0;
  private t0 = Number.NaN;
  private st = 0;
  private sv = 0;
  private stt = 0;
  private stv = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 2) throw new RangeError(`size must be a whole number ≥ 2 (got ${size})`);
    this.ts = new Float64Array(size);
    this.vs = new Float64Array(size);
  }

  push(t: number, v: number): void {
    if (!Number.isFinite(t) || !Number.isFinite(v)) return;
    if (Number.isNaN(this.t0)) this.t0 = t;
    const x = t - this.t0;
    if (this.filled === this.size) {
      const ox = this.ts[this.next];
      const ov = this.vs[this.next];
      this.st -= ox;
      this.sv -= ov;
      this.stt -= ox * ox;
      this.stv -= ox * ov;
    } else this.filled++;
    this.ts[this.next] = x;
    this.vs[this.next] = v;
    this.st += x;
    this.sv += v;
    this.stt += x * x;
    this.stv += x * v;
    this.next = (this.next + 1) % this.size;
  }

  get count(): number {
    return this.filled;
  }

  /** Units of value per ms; NaN with fewer than two distinct times. */
  get slope(): number {
    const n = this.filled;
    const d = n * this.stt - this.st * this.st;
    if (n < 2 || !(Math.abs(d) > 1e-12 * Math.max(1, n * this.stt))) return Number.NaN;
    return (n * this.stv - this.st * this.sv) / d;
  }

  /** The fitted line's value at time t. */
  at(t: number): number {
    const n = this.filled;
    const b = this.slope;
    if (Number.isNaN(b)) return n ? this.sv / n : Number.NaN;
    const a = (this.sv - b * this.st) / n;
    return a + b * (t - this.t0);
  }
}

/**
 * Holt's linear (double exponential) smoothing: a level and a trend per ms, for short forecasts
 * and "reaches X in ~N min". Smoothing constants by half-life in time, so tick spacing does not
 * change the meaning.
 */
export class HoltForecaster {
  private levelV = Number.NaN;
  private trendV = 0;
  private lastT = Number.NaN;
  private readonly levelHalfLifeMs: number;
  private readonly trendHalfLifeMs: number;

  constructor(options: { levelHalfLifeMs?: number; trendHalfLifeMs?: number } = {}) {
    this.levelHalfLifeMs = positive('levelHalfLifeMs', options.levelHalfLifeMs ?? 30_000);
    this.trendHalfLifeMs = positive('trendHalfLifeMs', options.trendHalfLifeMs ?? 120_000);
  }

  update(x: number, t: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(t)) return;
    if (Number.isNaN(this.levelV)) {
      this.levelV = x;
      this.lastT = t;
      return;
    }
    const dt = t - this.lastT;
    if (!(dt > 0)) {
      this.levelV = x;
      return;
    }
    const a = 1 - 2 ** (-dt / this.levelHalfLifeMs);
    const b = 1 - 2 ** (-dt / this.trendHalfLifeMs);
    const predicted = this.levelV + this.trendV * dt;
    const level = predicted + a * (x - predicted);
    this.trendV += b * ((level - this.levelV) / dt - this.trendV);
    this.levelV = level;
    this.lastT = t;
  }

  get level(): number {
    return this.levelV;
  }

  /** Units per ms. */
  get trend(): number {
    return this.trendV;
  }

  forecast(horizonMs: number): number {
    return this.levelV + this.trendV * horizonMs;
  }

  /** ms from the last point until the forecast reaches `target`; Infinity if it is not heading there. */
  timeToReach(target: number): number {
    if (Number.isNaN(this.levelV)) return Number.POSITIVE_INFINITY;
    const gap = target - this.levelV;
    if (gap === 0) return 0;
    if (this.trendV === 0 || Math.sign(gap) !== Math.sign(this.trendV)) return Number.POSITIVE_INFINITY;
    return gap / this.trendV;
  }
}
