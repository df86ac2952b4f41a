// Streaming anomaly detection for one scalar series.
//
// The detector is an ensemble of four tests against a sliding reference window, each giving a
// tail probability ("how often would normal behaviour look at least this unusual"):
//
//  - spike: the tails beyond the window's 98th / 2nd percentiles are fitted with generalised
//    Pareto distributions (peaks over threshold, method of moments), so one extreme point is
//    judged against how heavy the series' own tails are;
//  - value novelty: how many recent values lie within a noise-sized kernel of this one (a
//    density estimate); the surprise, averaged over 10 points, is compared with its own history
//    as in Numenta's anomaly likelihood — catches moves to rarely visited levels;
//  - level novelty: the same for 3-point moving averages, which see shifts too small for any
//    single noisy point to stand out;
//  - context: for a series that repeats itself within the window (a daily cycle), a model
//    value ≈ today's level × the same point of the last three cycles (on a log scale for counts
//    and rates, whose spread grows with their level); its residual, as a median over 10 points,
//    against the tails of its own history — a usual value at an unusual time (a missing peak, a
//    flat day). On such a series a point usual for its phase at today's level does not alarm
//    however new its value is to the window (a busy day's peak).
//
// The smallest probability p gives the score, -log10(p) / 10 (0.5 is p = 1e-5, the alarm level).
// A run of unusual points (p ≤ 1e-3, until 30 calm points) is one episode, and it alarms once: at
// its first point with p ≤ 1e-5, provided one of its points so far lay outside the region
// holding the central erf(threshold/√2) of recent behaviour (mean ± threshold·σ for normal data;
// for skewed or multimodal data, the highest-density region). So the statistics decide whether
// a move is unusual for this series and `threshold` how large it must be to matter. Other
// points of the episode score at most 0.3 ("still unusual"); `AnomalyTracker` turns results into
// one start and one recovered transition per incident.
//
// The density tests' probabilities assume that neighbouring points are nearly independent. A
// series that remembers (a random walk, AR(1) with φ near 1) strays into rarely visited levels
// and comes back, so a novelty that did not begin with a jump must stay improbable for about as
// many points as the series remembers, (σ / step noise)², before it may alarm.
//
// State is O(window); work per point is O(log window): seven order-statistic treaps and a few
// fixed-size rings, nothing allocated after construction; plus, once per window length, a search
// for the cycle's length (O(window²/4) then, O(window / 4) per point amortised).

/** Score at and above which a point is an alarm (tail probability ≤ 1e-5). */
export const ALARM_SCORE = 0.5;
/**
 * Scores from here to ALARM_SCORE are unusual (tail probability ≤ 1e-3) but not alarms; points of
 * an episode that already alarmed, or that is too small to matter, score exactly this.
 */
export const UNUSUAL_SCORE = 0.3;

const ALARM_P = 1e-5;
const UNUSUAL_P = 1e-3;

// ---------------------------------------------------------------------------------------------
// Order statistics over a sliding window

// Treap priorities: one deterministic pseudo-random sequence (xorshift32), so results are
// reproducible run to run, shared read-only by every window (each uses a prefix of it).
let sharedPriorities = new Int32Array(0);

function priorities(capacity: number): Int32Array {
  if (sharedPriorities.length < capacity) {
    const p = new Int32Array(capacity);
    let s = 0x9e3779b9;
    for (let i = 0; i < capacity; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      p[i] = s;
    }
    sharedPriorities = p;
  }
  return sharedPriorities.subarray(0, capacity);
}

/**
 * The last `capacity` values with rank queries in O(log capacity): counts in a range, quantiles,
 * sums of the k largest / smallest. A treap (binary search tree kept balanced by random
 * priorities) whose node ids are the ring slots, so nothing is allocated after construction.
 * Updates are iterative: insert at a leaf and rotate up, delete by rotating down to a leaf;
 * subtree sizes and sums are adjusted along the path.
 * Sums are kept relative to an anchor (re-centred on the median once per lap) so that sums of
 * squares stay accurate for series far from zero.
 */
export class OrderStatisticWindow {
  readonly capacity: number;
  private readonly ring: Float64Array; // value per slot
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly parent: Int32Array;
  private readonly size: Int32Array;
  private readonly prio: Int32Array;
  private readonly withSums: boolean;
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  private root = -1;
  private next = 0;
  private filled = 0;
  private anchor = 0; // origin of sum and sumSq

  /** `withSums: false` saves 16 bytes per slot and disables tailExcess(). */
  constructor(capacity: number, withSums = true) {
    if (!Number.isInteger(capacity) || capacity < 2) {
      throw new RangeError(`capacity must be an integer ≥ 2, got ${capacity}`);
    }
    this.capacity = capacity;
    this.withSums = withSums;
    this.ring = new Float64Array(capacity);
    this.left = new Int32Array(capacity);
    this.right = new Int32Array(capacity);
    this.parent = new Int32Array(capacity);
    this.size = new Int32Array(capacity);
    this.prio = priorities(capacity);
    this.sum = new Float64Array(withSums ? capacity : 0);
    this.sumSq = new Float64Array(withSums ? capacity : 0);
  }

  /** Number of values held (≤ capacity). */
  get length(): number {
    return this.filled;
  }

  /** Adds a value, evicting the oldest once full. */
  push(value: number): void {
    if (this.filled === 0) this.anchor = value;
    const id = this.next;
    if (this.filled === this.capacity) this.remove(id);
    else this.filled++;
    this.insert(id, value);
    if (id + 1 === this.capacity) {
      this.next = 0;
      // Sums are kept incrementally; recomputing them once per lap, about the current median,
      // bounds rounding drift and cancellation. O(1) amortised per push.
      if (this.withSums) {
        this.anchor = this.kth(this.filled >> 1);
        this.rebuild(this.root);
      }
    } else {
      this.next = id + 1;
    }
  }

  clear(): void {
    this.root = -1;
    this.next = 0;
    this.filled = 0;
    this.anchor = 0;
  }

  /** Number of values v with v < x (strict) or v ≤ x (`inclusive`). */
  rank(x: number, inclusive = false): number {
    const { ring, left, right, size } = this;
    let t = this.root;
    let n = 0;
    while (t >= 0) {
      const k = ring[t];
      if (k < x || (inclusive && k === x)) {
        const l = left[t];
        n += l >= 0 ? size[l] + 1 : 1;
        t = right[t];
      } else {
        t = left[t];
      }
    }
    return n;
  }

  /** Number of values in [lo, hi]. */
  countBetween(lo: number, hi: number): number {
    return this.rank(hi, true) - this.rank(lo, false);
  }

  /** The k-th smallest value, k in [0, length). */
  kth(k: number): number {
    const t = this.kthNode(k);
    return t < 0 ? Number.NaN : this.ring[t];
  }

  /** Quantile q in [0, 1], linear between order statistics (NaN when empty). */
  quantile(q: number): number {
    const n = this.filled;
    if (n === 0) return Number.NaN;
    const r = q * (n - 1);
    const a = Math.floor(r);
    const t = this.kthNode(a);
    const lo = this.ring[t];
    if (a + 1 >= n || r === a) return lo;
    return lo + (this.ring[this.successor(t)] - lo) * (r - a);
  }

  /**
   * Quantiles `qs[i]` into `out[i]`, as quantile() does; several at once, without allocating.
   */
  quantiles(qs: Float64Array, out: Float64Array): void {
    for (let i = 0; i < qs.length; i++) out[i] = this.quantile(qs[i]);
  }

  /**
   * Mean and variance of the excesses of the k largest values over `threshold` (when `upper`),
   * or of `threshold` over the k smallest. Written into `out` as [mean, variance].
   */
  tailExcess(k: number, threshold: number, upper: boolean, out: Float64Array): void {
    if (!this.withSums) throw new TypeError('tailExcess needs a window created with withSums');
    // Sum and sum of squares of the k extreme values, relative to the anchor.
    let s = 0;
    let sq = 0;
    let t = this.root;
    let need = k;
    while (t >= 0 && need > 0) {
      const near = upper ? this.right[t] : this.left[t];
      const far = upper ? this.left[t] : this.right[t];
      const ns = this.sizeOf(near);
      if (need <= ns) {
        t = near;
        continue;
      }
      if (near >= 0) {
        s += this.sum[near];
        sq += this.sumSq[near];
      }
      const d = this.ring[t] - this.anchor;
      s += d;
      sq += d * d;
      need -= ns + 1;
      t = far;
    }
    const u = threshold - this.anchor;
    // Σ(v-u) and Σ(v-u)² from the anchored sums; the sign flips for the lower tail.
    const e1 = upper ? s - k * u : k * u - s;
    const e2 = sq - 2 * u * s + k * u * u;
    const mean = e1 / k;
    out[0] = mean;
    out[1] = Math.max(0, e2 / k - mean * mean);
  }

  /** Node holding the k-th smallest value, or -1. */
  private kthNode(k: number): number {
    const { left, right, size } = this;
    let t = this.root;
    let i = k;
    while (t >= 0) {
      const l = left[t];
      const ls = l >= 0 ? size[l] : 0;
      if (i < ls) t = l;
      else if (i === ls) return t;
      else {
        i -= ls + 1;
        t = right[t];
      }
    }
    return -1;
  }

  /** In-order successor of node t (t must not be the largest): O(1) on average. */
  private successor(t: number): number {
    const { left, right, parent } = this;
    let u = right[t];
    if (u >= 0) {
      while (left[u] >= 0) u = left[u];
      return u;
    }
    u = t;
    let p = parent[u];
    while (p >= 0 && right[p] === u) {
      u = p;
      p = parent[u];
    }
    return p;
  }

  private sizeOf(t: number): number {
    return t < 0 ? 0 : this.size[t];
  }

  /** Recomputes the size (and sums) of t from its children. */
  private pull(t: number): void {
    const l = this.left[t];
    const r = this.right[t];
    let n = 1;
    if (l >= 0) n += this.size[l];
    if (r >= 0) n += this.size[r];
    this.size[t] = n;
    if (!this.withSums) return;
    const v = this.ring[t] - this.anchor;
    let s = v;
    let q = v * v;
    if (l >= 0) {
      s += this.sum[l];
      q += this.sumSq[l];
    }
    if (r >= 0) {
      s += this.sum[r];
      q += this.sumSq[r];
    }
    this.sum[t] = s;
    this.sumSq[t] = q;
  }

  /** Recomputes sizes and sums of the subtree at t bottom-up (exact; undoes rounding drift). */
  private rebuild(t: number): void {
    if (t < 0) return;
    this.rebuild(this.left[t]);
    this.rebuild(this.right[t]);
    this.pull(t);
  }

  /** Rotates x above its parent, keeping the in-order sequence. */
  private rotateUp(x: number): void {
    const { left, right, parent } = this;
    const p = parent[x];
    const g = parent[p];
    if (left[p] === x) {
      const b = right[x];
      left[p] = b;
      if (b >= 0) parent[b] = p;
      right[x] = p;
    } else {
      const b = left[x];
      right[p] = b;
      if (b >= 0) parent[b] = p;
      left[x] = p;
    }
    parent[p] = x;
    parent[x] = g;
    if (g < 0) this.root = x;
    else if (left[g] === p) left[g] = x;
    else right[g] = x;
    this.pull(p);
    this.pull(x);
  }

  private insert(id: number, v: number): void {
    this.ring[id] = v;
    this.left[id] = -1;
    this.right[id] = -1;
    this.size[id] = 1;
    const d = v - this.anchor; // what the sums hold
    const d2 = d * d;
    if (this.withSums) {
      this.sum[id] = d;
      this.sumSq[id] = d2;
    }
    if (this.root < 0) {
      this.parent[id] = -1;
      this.root = id;
      return;
    }
    // Descend to a leaf position, counting the new value into every subtree on the way; ties in
    // value go right (any strict order would do).
    const { ring, left, right, size, sum, sumSq, parent, prio } = this;
    const sums = this.withSums;
    let t = this.root;
    for (;;) {
      size[t]++;
      if (sums) {
        sum[t] += d;
        sumSq[t] += d2;
      }
      if (v < ring[t]) {
        if (left[t] < 0) {
          left[t] = id;
          break;
        }
        t = left[t];
      } else {
        if (right[t] < 0) {
          right[t] = id;
          break;
        }
        t = right[t];
      }
    }
    parent[id] = t;
    while (parent[id] >= 0 && prio[id] > prio[parent[id]]) this.rotateUp(id);
  }

  private remove(id: number): void {
    const { ring, left, right, size, sum, sumSq, parent, prio } = this;
    // Rotate the node down (its higher-priority child up) until it has at most one child.
    for (;;) {
      const l = left[id];
      const r = right[id];
      if (l < 0 || r < 0) break;
      this.rotateUp(prio[l] > prio[r] ? l : r);
    }
    const child = left[id] >= 0 ? left[id] : right[id];
    const p = parent[id];
    if (child >= 0) parent[child] = p;
    if (p < 0) {
      this.root = child;
      return;
    }
    if (left[p] === id) left[p] = child;
    else right[p] = child;
    const d = ring[id] - this.anchor;
    const d2 = d * d;
    const sums = this.withSums;
    for (let u = p; u >= 0; u = parent[u]) {
      size[u]--;
      if (sums) {
        sum[u] -= d;
        sumSq[u] -= d2;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Building blocks of the detector

// Highest degree first (after 0.17087277); the constant term is −1.26551223.
const ERFC_COEFFICIENTS = [
  -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223,
];

/** Upper tail of the standard normal, Q(z) = P(Z > z) (erfc approximation, |error| < 1.2e-7). */
export function normalTail(z: number): number {
  // Numerical Recipes' erfc (Chebyshev fit), with erfc(x) = t·exp(−x² + poly(t)).
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  let poly = 0.17087277;
  for (let i = 0; i < ERFC_COEFFICIENTS.length; i++) poly = ERFC_COEFFICIENTS[i] + t * poly;
  const r = t * Math.exp(-x * x + poly);
  return z >= 0 ? 0.5 * r : 1 - 0.5 * r;
}

/**
 * Numenta-style anomaly likelihood of a raw surprise stream in [0, 1]: the mean of the last
 * `average` raw values is compared with a normal fitted to its own history (exponentially
 * weighted, time constant `history` points). Returns the upper tail probability. O(1).
 */
class SurpriseLikelihood {
  private readonly recent: Float64Array;
  private at = 0;
  private held = 0;
  private recentSum = 0;
  private mean = 0;
  private variance = 0;
  private seen = 0;

  constructor(
    average: number,
    private readonly history: number,
    private readonly minSd: number,
  ) {
    this.recent = new Float64Array(average);
  }

  update(raw: number, ready: boolean): number {
    const w = this.recent.length;
    if (this.held === w) this.recentSum -= this.recent[this.at];
    else this.held++;
    this.recent[this.at] = raw;
    this.recentSum += raw;
    this.at = this.at + 1 === w ? 0 : this.at + 1;
    const m = this.recentSum / this.held;
    let p = 1;
    if (ready) {
      // Floors, as in Numenta's likelihood, so a steady history cannot make small moves certain:
      // to alarm, the smoothed surprise must rise by at least ~4.3 × 0.06 ≈ 0.25 (in [0, 1]).
      const mu = Math.max(0.03, this.mean);
      const sd = Math.max(this.minSd, Math.sqrt(this.variance));
      p = normalTail((m - mu) / sd);
    }
    this.seen++;
    const a = Math.max(1 / this.seen, 1 / this.history);
    const d = m - this.mean;
    this.mean += a * d;
    this.variance = (1 - a) * (this.variance + a * d * d);
    return p;
  }

  clear(): void {
    this.at = 0;
    this.held = 0;
    this.recentSum = 0;
    this.mean = 0;
    this.variance = 0;
    this.seen = 0;
  }
}

/** Mean of the last `n` values, O(1) per point. */
class RollingMean {
  private readonly ring: Float64Array;
  private at = 0;
  private held = 0;
  private total = 0;
  constructor(n: number) {
    this.ring = new Float64Array(n);
  }
  update(x: number): number {
    const n = this.ring.length;
    if (this.held === n) this.total -= this.ring[this.at];
    else this.held++;
    this.ring[this.at] = x;
    this.total += x;
    this.at = this.at + 1 === n ? 0 : this.at + 1;
    return this.total / this.held;
  }
  clear(): void {
    this.at = 0;
    this.held = 0;
    this.total = 0;
  }
}

/** Median of the last `n` values (n small): O(n) per point, nothing allocated. */
class RollingMedian {
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private at = 0;
  private held = 0;
  constructor(n: number) {
    this.ring = new Float64Array(n);
    this.sorted = new Float64Array(n);
  }
  update(x: number): number {
    const n = this.ring.length;
    const old = this.ring[this.at];
    this.ring[this.at] = x;
    this.at = this.at + 1 === n ? 0 : this.at + 1;
    const s = this.sorted;
    // Remove the evicted value from the sorted prefix, then insert x in order.
    let m = this.held;
    if (m === n) {
      let i = 0;
      while (s[i] !== old) i++;
      for (; i + 1 < m; i++) s[i] = s[i + 1];
      m--;
    } else {
      this.held++;
    }
    let j = m;
    while (j > 0 && s[j - 1] > x) {
      s[j] = s[j - 1];
      j--;
    }
    s[j] = x;
    m++;
    return m & 1 ? s[m >> 1] : 0.5 * (s[(m >> 1) - 1] + s[m >> 1]);
  }
  clear(): void {
    this.at = 0;
    this.held = 0;
  }
}

/**
 * Novelty of a stream against its own recent past. The surprise of x is -log of the share of the
 * window within ±h of it (a kernel density estimate, scaled to [0, 1]); it feeds a likelihood,
 * and its rank among recent surprises says whether x lies outside the window's highest-density
 * region (the generalisation of "beyond k standard deviations" to skewed or multimodal data).
 */
class NoveltyTest {
  readonly window: OrderStatisticWindow;
  private readonly surprises: OrderStatisticWindow;
  private readonly likelihood: SurpriseLikelihood;
  /** Set by update(): x is outside the highest-density region of the given coverage. */
  rare = false;

  constructor(capacity: number, withSums: boolean, minSd: number) {
    this.likelihood = new SurpriseLikelihood(LIKELIHOOD_AVERAGE, LIKELIHOOD_HISTORY, minSd);
    this.window = new OrderStatisticWindow(capacity, withSums);
    this.surprises = new OrderStatisticWindow(capacity, false);
  }

  /**
   * Tail probability of the recent surprise level; then learns x. `h` is the kernel half-width,
   * `outsideShare` the probability mass outside the high-density region.
   */
  update(x: number, h: number, ready: boolean, outsideShare: number): number {
    const w = this.window;
    const n = w.length;
    let p = 1;
    this.rare = false;
    if (n >= MIN_POINTS_FOR_DENSITY) {
      const c = w.countBetween(x - h, x + h);
      const surprise = Math.min(1, -Math.log((c + 1) / (n + 1)) / Math.log(n + 1));
      p = this.likelihood.update(surprise, ready);
      // For ranking, values with no neighbour at all are told apart by how isolated they are.
      let ranked = surprise;
      if (c === 0) {
        const r = w.rank(x);
        const below = r > 0 ? x - w.kth(r - 1) : Number.POSITIVE_INFINITY;
        const above = r < n ? w.kth(r) - x : Number.POSITIVE_INFINITY;
        ranked = 1 + Math.log(Math.min(below, above) / h);
      }
      const s = this.surprises;
      const m = s.length;
      // Conformal p-value: share of recent points at least as surprising as this one. Below the
      // window's resolution, "more surprising than every recent point" is the best it can say.
      const share = Math.max(outsideShare, 1 / (m + 1));
      this.rare = m >= MIN_POINTS_FOR_DENSITY && (m - s.rank(ranked) + 1) / (m + 1) <= share;
      s.push(ranked);
    }
    w.push(x);
    return p;
  }

  clear(): void {
    this.window.clear();
    this.surprises.clear();
    this.likelihood.clear();
    this.rare = false;
  }
}

/**
 * Contextual test for series that repeat themselves (a daily cycle at the window's scale): a
 * value usual for the series but not for this point of its cycle — a missing peak, daytime
 * demand at night, a weekday that looks like a holiday. The period is the lag whose mean
 * absolute difference is smallest and at most half the largest at shorter lags (re-estimated
 * once per window length over the full window; none for series that do not repeat).
 *
 * The model: value ≈ level × profile(phase). The profile at a point is the median of the same
 * point in the last three cycles (so one anomalous cycle does not echo); the level is today's
 * ratio to the profile, the median of the last LEVEL_POINTS ratios, so that the wander of a rate
 * from day to day (±20 % for web traffic) is not taken for a break, and a break is judged against
 * today's level. A series that is never negative (counts, rates) is modelled on a log scale,
 * log(x + a tenth of its mean), where the spread of a count grows with its mean and a ratio is a
 * difference (the offset keeps zeros and small, Poisson-like counts finite); any other series
 * on its own scale, with differences for ratios. The residual, value against level × profile,
 * is judged two ways, each against its own recent history:
 *  - smoothed by a median of LIKELIHOOD_AVERAGE points (one heavy-tailed outlier does not move
 *    it), its tails fitted as the spike test's are: the probability of a break of the pattern;
 *  - the point's own residual, ranked among recent ones (`usualForPhase`): a point of a repeating
 *    series that is usual for its phase and today's level is no anomaly of the window's tests
 *    (a busy day's peak is not a new level).
 * O(log window) per point, plus the period search amortised.
 */
class SeasonalTest {
  private readonly ring: Float64Array; // values, for the period search
  private readonly scaled: Float64Array; // the same on the model's scale
  private at = 0;
  private held = 0;
  private period = 0;
  private sinceCheck = 0;
  private logScale = false;
  private offset = 0;
  private level = 0; // today's log-ratio (or difference) to the profile
  private readonly ratios = new RollingMedian(LEVEL_POINTS);
  private readonly residuals: OrderStatisticWindow; // smoothed
  private readonly pointResiduals: OrderStatisticWindow; // this point's own, for ranks
  private readonly recent = new RollingMedian(LIKELIHOOD_AVERAGE);
  private readonly tail = new Float64Array(2);
  private readonly band = new Float64Array(4);
  private readonly levels = new Float64Array(4);
  private readonly lagRatios: Float64Array; // D(lag) / max D(shorter lags), by lag
  /** Set by update(): the smoothed residual is outside the central share of recent ones. */
  rare = false;
  /** Set by update(): the point's own residual is inside the central share of recent ones. */
  usualForPhase = false;

  constructor(
    capacity: number,
    private readonly tailFraction: number,
  ) {
    this.ring = new Float64Array(capacity);
    this.scaled = new Float64Array(capacity);
    this.residuals = new OrderStatisticWindow(capacity, true);
    this.pointResiduals = new OrderStatisticWindow(capacity, false);
    this.lagRatios = new Float64Array(Math.floor(capacity / 4) + 1); // three cycles back, and some to compare
  }

  /** Two-sided tail probability of x's smoothed residual; then learns x. */
  update(x: number, ready: boolean, outsideShare: number): number {
    let p = 1;
    this.rare = false;
    this.usualForPhase = false;
    // A series taken for never negative that falls to the log's offset or below: its own scale
    // from here (a log there would be NaN or -Infinity).
    if (this.logScale && !(x + this.offset > 0)) this.restart(false);
    const tx = this.logScale ? Math.log(x + this.offset) : x;
    const period = this.period;
    if (period > 0) {
      const a = this.back(period);
      const b = this.back(2 * period);
      const c = this.back(3 * period);
      const ratio = tx - Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
      const own = ratio - this.level;
      this.level = this.ratios.update(ratio);
      const pr = this.pointResiduals;
      const m = pr.length;
      if (m >= MIN_POINTS_FOR_TAIL && ready) {
        const q = Math.max(outsideShare / 2, 1 / (m + 1));
        this.usualForPhase = pr.rank(own, true) / m > q && (m - pr.rank(own)) / m > q;
      }
      pr.push(own);
      const r = this.recent.update(own);
      const w = this.residuals;
      const n = w.length;
      // Smoothed residuals are autocorrelated: their tails mean something once they span a cycle.
      if (n >= Math.max(MIN_POINTS_FOR_TAIL, period) && ready) {
        const lv = this.levels;
        lv[0] = 0.25;
        lv[1] = 0.75;
        lv[2] = outsideShare / 2;
        lv[3] = 1 - outsideShare / 2;
        w.quantiles(lv, this.band);
        this.rare = r < this.band[2] || r > this.band[3];
        const k = Math.max(MIN_TAIL_POINTS, Math.round(this.tailFraction * n));
        const hi = w.kth(n - 1 - k);
        const lo = w.kth(k);
        if (r > hi || r < lo) {
          const sigma = (this.band[1] - this.band[0]) * IQR_TO_SIGMA;
          const floor = Math.max(0.1 * sigma, 1e-9 * Math.abs(tx), 1e-12);
          const upper = r > hi;
          w.tailExcess(k, upper ? hi : lo, upper, this.tail);
          // Never a bounded tail: a median of neighbours' residuals looks light-tailed by chance.
          p = Math.min(
            1,
            2 * (k / n) * paretoTail(upper ? r - hi : lo - r, k, this.tail[0], this.tail[1], floor, false),
          );
        }
      }
      w.push(r);
    }
    const cap = this.ring.length;
    this.ring[this.at] = x;
    this.scaled[this.at] = tx;
    this.at = this.at + 1 === cap ? 0 : this.at + 1;
    if (this.held < cap) this.held++;
    if (++this.sinceCheck >= cap && this.held === cap) {
      this.sinceCheck = 0;
      const found = this.findPeriod();
      if (found !== this.period) {
        this.period = found;
        this.restart();
      }
    }
    return p;
  }

  clear(): void {
    this.at = 0;
    this.held = 0;
    this.period = 0;
    this.sinceCheck = 0;
    this.logScale = false;
    this.offset = 0;
    this.restart();
  }

  /**
   * A new period (or a value the log scale cannot take, `logScale: false`): the model's scale
   * fitted afresh, its histories forgotten. O(window).
   */
  private restart(logScale = true): void {
    const ring = this.ring;
    const n = this.held;
    let min = Number.POSITIVE_INFINITY;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      min = Math.min(min, ring[i]);
      sum += ring[i];
    }
    this.logScale = logScale && n > 0 && min >= 0;
    this.offset = Math.max(LOG_OFFSET * (sum / Math.max(1, n)), 1e-12);
    for (let i = 0; i < n; i++) this.scaled[i] = this.logScale ? Math.log(ring[i] + this.offset) : ring[i];
    this.level = 0;
    this.ratios.clear();
    this.residuals.clear();
    this.pointResiduals.clear();
    this.recent.clear();
    this.rare = false;
    this.usualForPhase = false;
  }

  /** The model-scale value k points back (k = 1: the latest learnt). */
  private back(k: number): number {
    const i = this.at - k;
    return this.scaled[i < 0 ? i + this.scaled.length : i];
  }

  /**
   * The repeating period of the window, or 0: the lag at which the series comes back closest to
   * itself after having moved away, D(lag) / max D(shorter lags) ≤ SEASON_RATIO, with D the mean
   * absolute difference at that lag. The current period is kept while it is nearly as good, so
   * that noise in the estimate does not restart the residuals' history.
   */
  private findPeriod(): number {
    const ring = this.ring;
    const cap = ring.length;
    const ratios = this.lagRatios;
    const maxLag = ratios.length - 1;
    let hump = 0;
    let best = 0;
    for (let lag = MIN_PERIOD; lag <= maxLag; lag++) {
      // Mean |x_t − x_{t−lag}| over the window, in time order from the oldest slot.
      let sum = 0;
      let i = this.at + lag;
      if (i >= cap) i -= cap;
      let j = this.at;
      for (let t = lag; t < cap; t++) {
        sum += Math.abs(ring[i] - ring[j]);
        if (++i === cap) i = 0;
        if (++j === cap) j = 0;
      }
      const d = sum / (cap - lag);
      if (d > hump) hump = d;
      ratios[lag] = hump > 0 ? d / hump : 1;
      if (best === 0 || ratios[lag] < ratios[best]) best = lag;
    }
    if (ratios[best] > SEASON_RATIO) return 0;
    const current = this.period;
    return current > 0 && ratios[current] <= Math.min(SEASON_RATIO, 1.1 * ratios[best]) ? current : best;
  }
}

const MIN_PERIOD = 12;
const SEASON_RATIO = 0.5;
const LEVEL_POINTS = 24; // ratios whose median is today's level (two hours at a 5-minute step)
const LOG_OFFSET = 0.1; // share of the mean added before the log of a series never negative

// ---------------------------------------------------------------------------------------------
// The detector

interface AnomalyDetectorOptions {
  /**
   * How far out a point must lie to alarm, in standard deviations: it must fall outside the
   * region holding the central erf(threshold/√2) of recent values (95.45 % for 2), which for
   * normal data is mean ± threshold·σ. Default 2.0 (`anomalyDetectionThreshold`).
   */
  threshold?: number;
  /**
   * Points in the reference window. Default 1500. State is about 219 bytes per point (≈ 320 KB
   * at the default).
   */
  window?: number;
  /** Points seen before any alarm (learning period). Default 150. */
  learningPoints?: number;
}

export interface AnomalyResult {
  /** In [0, 1]: -log10 of the smallest tail probability of the ensemble, divided by 10. */
  score: number;
  /** `score >= ALARM_SCORE`: the onset of unusual behaviour. */
  alarm: boolean;
  /**
   * Central range of the reference window (before this point) holding all but the outer
   * 2·Q(threshold) of values: ≈ mean ± threshold·σ for normal data. NaN while learning.
   */
  expectedLow: number;
  expectedHigh: number;
  /** Whether the point lies above or below the window's median. */
  direction: 'up' | 'down';
}

const DEFAULTS = { threshold: 2.0, window: 1500, learningPoints: 150 } as const;

// Fixed design constants (not options: they define the detector that was measured).
const SHORT_MEAN = 3; // points in the short average seen by the level-novelty test
const LIKELIHOOD_AVERAGE = 10; // points averaged by the likelihood, as in NAB
const LIKELIHOOD_HISTORY = 2000; // time constant of the likelihood's own history

/**
 * The detector's design constants that were chosen by leave-one-out on the open benchmark
 * subset (bench/nab.js --loo); exposed only so that the benchmark can sweep them.
 * @internal
 */
export interface DetectorTuning {
  /** Floor on the spread of smoothed surprise, in [0, 1] units. */
  minSurpriseSd: number;
  /** Share of the window, at each end, that forms the fitted tails. */
  spikeTailFraction: number;
  /** Consecutive improbable points of the novelty tests needed before they may alarm. */
  noveltyPersistence: number;
  /**
   * 0: the level test averages raw points. c ≥ 1: each point is first limited to the window's
   * 5–95 % range widened by (c − 1) times its width.
   */
  levelClip: number;
  /** 0: off (the detector before the context test). 1: the context test for repeating series. */
  seasonal: number;
}

/** @internal */
export const TUNING: Readonly<DetectorTuning> = {
  minSurpriseSd: 0.06,
  spikeTailFraction: 0.02,
  noveltyPersistence: 2,
  levelClip: 0,
  seasonal: 1,
};
const MIN_TAIL_POINTS = 10;
const RECOVER_POINTS = 30; // calm points that end an episode (as AnomalyTracker's default)
const MIN_POINTS_FOR_TAIL = 100;
const MIN_POINTS_FOR_DENSITY = 20;
const SPREAD_DIVISOR = 20;
const MAD_TO_SIGMA_DIFF = 1 / (0.6744897501960817 * Math.SQRT2); // median |Δx| → σ of x
const IQR_TO_SIGMA = 1 / 1.3489795003921634;
const MEAN_LEVELS = new Float64Array([0.25, 0.75, 0.05, 0.95]);
const STEP_LEVELS = new Float64Array([0.5]);

/**
 * Streaming anomaly detector for one scalar series; see the module comment for the method.
 * `update()` returns a result object that is reused by the next call (copy what you keep).
 */
export class AnomalyDetector {
  readonly threshold: number;
  readonly window: number;
  readonly learningPoints: number;
  /** The fixed alarm threshold on `score`. */
  readonly alarmScore = ALARM_SCORE;

  private readonly outsideShare: number; // 2·Q(threshold)
  private readonly beyondResolution: boolean; // outsideShare < 1 / window
  private readonly valueTest: NoveltyTest;
  private readonly meanTest: NoveltyTest; // on 3-point moving averages
  private readonly steps: OrderStatisticWindow; // |x_t − x_{t−1}|, for the noise scale
  private readonly seasonal: SeasonalTest | null;
  private readonly shortMean = new RollingMean(SHORT_MEAN);
  private readonly clippedMean = new RollingMean(SHORT_MEAN);
  private readonly tail = new Float64Array(2);
  // Quantile levels read each point, and where they land (typed arrays: no boxed numbers).
  private readonly valueLevels: Float64Array; // median, expected band, quartiles, 5 % / 95 %
  private readonly valueQuantiles = new Float64Array(7);
  private readonly meanQuantiles = new Float64Array(4);
  private readonly stepQuantile = new Float64Array(1);
  private readonly result: AnomalyResult = {
    score: 0,
    alarm: false,
    expectedLow: Number.NaN,
    expectedHigh: Number.NaN,
    direction: 'up',
  };
  private previous = Number.NaN;
  private seen = 0;
  private reported = false; // the current episode has alarmed
  private large = false; // the current episode has had a point outside the usual region
  private calm = RECOVER_POINTS; // consecutive points since the last unusual one
  private improbableRun = 0; // consecutive points whose novelty reached the alarm level
  private sinceJump = LIKELIHOOD_AVERAGE; // points since the last jump, up to LIKELIHOOD_AVERAGE

  /** @internal */
  readonly tuning: Readonly<DetectorTuning>;

  constructor(options: AnomalyDetectorOptions = {}, tuning?: Partial<DetectorTuning>) {
    const threshold = options.threshold ?? DEFAULTS.threshold;
    const window = options.window ?? DEFAULTS.window;
    const learningPoints = options.learningPoints ?? DEFAULTS.learningPoints;
    if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0) {
      throw new RangeError(`threshold must be a finite number ≥ 0 (standard deviations), got ${threshold}`);
    }
    if (!Number.isInteger(window) || window < MIN_POINTS_FOR_TAIL) {
      throw new RangeError(`window must be an integer ≥ ${MIN_POINTS_FOR_TAIL} (points), got ${window}`);
    }
    if (!Number.isInteger(learningPoints) || learningPoints < 0) {
      throw new RangeError(`learningPoints must be an integer ≥ 0, got ${learningPoints}`);
    }
    this.threshold = threshold;
    this.window = window;
    this.learningPoints = learningPoints;
    this.outsideShare = 2 * normalTail(threshold);
    this.beyondResolution = this.outsideShare * window < 1;
    const a = this.outsideShare / 2;
    this.valueLevels = new Float64Array([0.5, a, 1 - a, 0.25, 0.75, 0.05, 0.95]);
    this.tuning = { ...TUNING, ...tuning };
    this.valueTest = new NoveltyTest(window, true, this.tuning.minSurpriseSd); // its sums serve the spike test
    this.meanTest = new NoveltyTest(window, false, this.tuning.minSurpriseSd);
    this.steps = new OrderStatisticWindow(window, false);
    this.seasonal = this.tuning.seasonal > 0 ? new SeasonalTest(window, this.tuning.spikeTailFraction) : null;
  }

  /** Points seen so far. */
  get count(): number {
    return this.seen;
  }

  /** Scores one point (in series order) and then learns it. */
  update(value: number): AnomalyResult {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError(`value must be a finite number, got ${value}`);
    }
    const out = this.result;
    const values = this.valueTest.window;
    const means = this.meanTest.window;
    const n = values.length;
    let mean = this.shortMean.update(value);
    const ready = this.seen >= this.learningPoints;

    let median = value;
    let iqrSigma = 0;
    let valueKernel = 0;
    let meanKernel = 0;
    let noise = 0;
    out.expectedLow = Number.NaN;
    out.expectedHigh = Number.NaN;
    const clip = this.tuning.levelClip;
    if (n < MIN_POINTS_FOR_DENSITY && clip > 0) mean = this.clippedMean.update(value);
    if (n >= MIN_POINTS_FOR_DENSITY) {
      const vq = this.valueQuantiles;
      const mq = this.meanQuantiles;
      values.quantiles(this.valueLevels, vq);
      means.quantiles(MEAN_LEVELS, mq);
      median = vq[0];
      out.expectedLow = vq[1];
      out.expectedHigh = vq[2];
      iqrSigma = (vq[4] - vq[3]) * IQR_TO_SIGMA;
      // Kernels are at least 1/20 of the 5–95 % spread, and never zero.
      const tiny = Math.max(1e-9 * Math.abs(median), 1e-12);
      // Value kernel: the point-to-point noise (robust to level shifts and multimodality).
      this.steps.quantiles(STEP_LEVELS, this.stepQuantile);
      noise = this.stepQuantile[0] * MAD_TO_SIGMA_DIFF;
      valueKernel = Math.max(noise, (vq[6] - vq[5]) / SPREAD_DIVISOR, tiny);
      if (clip > 0) {
        // Each point limited to the 5–95 % range widened by (clip − 1) times its width, so that
        // one extreme point of a heavy-tailed series cannot drag three averages with it.
        const c = (clip - 1) * (vq[6] - vq[5]);
        mean = this.clippedMean.update(Math.min(Math.max(value, vq[5] - c), vq[6] + c));
      }
      // Mean kernel: the spread of the averages themselves (averaging already removed noise).
      const meanSigma = (mq[1] - mq[0]) * IQR_TO_SIGMA;
      meanKernel = Math.max(meanSigma, (mq[3] - mq[2]) / SPREAD_DIVISOR, tiny);
    }
    // The spike test reads the window before the tests below add this point to it.
    const spike = n >= MIN_POINTS_FOR_TAIL && ready ? this.spikeProbability(value, median, iqrSigma) : 1;
    const novelty = Math.min(
      this.valueTest.update(value, valueKernel, ready, this.outsideShare),
      this.meanTest.update(mean, meanKernel, ready, this.outsideShare),
    );
    let p = Math.min(spike, novelty);
    // Novelty must persist: an autocorrelated series wanders briefly into rarely visited levels,
    // and comes back; a new level or a drift stays. A lone spike needs no persistence. How long
    // depends on how the move began. After a jump away from the median (a step outside the
    // central erf(threshold/√2) of recent steps, within the points the likelihood averages) the
    // tuning's few points. A gradual move is how an autocorrelated series or a random walk
    // wanders: it must stay improbable for as long as the series remembers, (σ / step noise)²
    // points (1 for independent noise, about 1/(1 − φ) for AR(1)), at most RECOVER_POINTS.
    this.improbableRun = novelty <= ALARM_P ? this.improbableRun + 1 : 0;
    const step = value - this.previous;
    if (this.seen > 0 && step * (value - median) > 0 && this.isJump(Math.abs(step))) this.sinceJump = 0;
    else if (this.sinceJump < LIKELIHOOD_AVERAGE) this.sinceJump++;
    let persistence = this.tuning.noveltyPersistence;
    if (this.sinceJump >= LIKELIHOOD_AVERAGE) {
      const memory = noise > 0 ? (iqrSigma / noise) ** 2 : RECOVER_POINTS;
      persistence = Math.max(persistence, Math.min(RECOVER_POINTS, memory));
    }
    if (spike > ALARM_P && p <= ALARM_P && this.improbableRun < persistence) p = UNUSUAL_P;
    const contextual = this.seasonal ? this.seasonal.update(value, ready, this.outsideShare) : 1;
    // A repeating series: a value new to the window but usual for its phase at today's level is
    // the cycle's, not an anomaly (a busy day's peak, the first weekday after a weekend).
    if (this.seasonal?.usualForPhase && p < UNUSUAL_P) p = UNUSUAL_P;
    p = Math.min(p, contextual);

    // An episode is a run of unusual points, ended by RECOVER_POINTS calm ones. It alarms once:
    // at its first improbable point, provided one of its points so far lay outside the usual
    // region (the statistics often become conclusive a few points after the largest move).
    // Its other points report "unusual".
    let outside = this.valueTest.rare || this.meanTest.rare || (this.seasonal?.rare ?? false);
    if (this.beyondResolution && outside) {
      // The window cannot resolve so small a share: fall back to median ± threshold·σ.
      const limit = this.threshold * iqrSigma;
      outside = Math.abs(value - median) >= limit || Math.abs(mean - median) >= limit;
    }
    if (!ready || p > UNUSUAL_P) {
      if (this.calm < RECOVER_POINTS) this.calm++;
      if (this.calm >= RECOVER_POINTS) {
        this.reported = false;
        this.large = false;
      }
    } else {
      this.calm = 0;
      if (outside) this.large = true;
      if (p <= ALARM_P) {
        if (this.reported || !this.large)
          p = UNUSUAL_P; // already raised / too small to matter
        else this.reported = true;
      }
    }

    out.score = Math.max(0, Math.min(1, -Math.log10(Math.max(p, 1e-10)) / 10)); // never -0
    out.alarm = out.score >= ALARM_SCORE;
    out.direction = value >= median ? 'up' : 'down';

    if (this.seen > 0) this.steps.push(Math.abs(value - this.previous));
    this.previous = value;
    this.seen++;
    return out;
  }

  /** Forgets everything learnt. */
  reset(): void {
    this.valueTest.clear();
    this.meanTest.clear();
    this.steps.clear();
    this.seasonal?.clear();
    this.shortMean.clear();
    this.clippedMean.clear();
    this.previous = Number.NaN;
    this.seen = 0;
    this.reported = false;
    this.large = false;
    this.calm = RECOVER_POINTS;
    this.improbableRun = 0;
    this.sinceJump = LIKELIHOOD_AVERAGE;
  }

  /**
   * Whether a step lies outside the central erf(threshold/√2) of the recent steps (conformal
   * p-value; below the window's resolution, a step larger than every recent one).
   */
  private isJump(step: number): boolean {
    const s = this.steps;
    const m = s.length;
    return m >= MIN_POINTS_FOR_DENSITY && (m - s.rank(step) + 1) / (m + 1) <= Math.max(this.outsideShare, 1 / (m + 1));
  }

  /** Two-sided tail probability of `x` under generalised Pareto fits of the window's tails. */
  private spikeProbability(x: number, median: number, iqrSigma: number): number {
    const w = this.valueTest.window;
    const n = w.length;
    const k = Math.max(MIN_TAIL_POINTS, Math.round(this.tuning.spikeTailFraction * n));
    const hi = w.kth(n - 1 - k);
    const lo = w.kth(k);
    let p = 1;
    if (x > hi || x < lo) {
      // Keeps a flat window from making every tiny move infinitely unlikely.
      const scaleFloor = Math.max(0.1 * iqrSigma, 1e-9 * Math.abs(median), 1e-12);
      const upper = x > hi;
      w.tailExcess(k, upper ? hi : lo, upper, this.tail);
      p = (k / n) * paretoTail(upper ? x - hi : lo - x, k, this.tail[0], this.tail[1], scaleFloor);
    }
    return Math.min(1, 2 * p);
  }
}

/**
 * P(excess > y) for a generalised Pareto distribution fitted by the method of moments to `k`
 * excesses with the given mean and variance. A few dozen points easily make a light tail look
 * bounded (shape < 0), which would make every new extreme seem impossible; so a bounded tail is
 * used only when the upper one-sided 99 % bound on the shape (estimate + 2.326 standard errors,
 * 1/√k at shape 0, Hosking & Wallis 1987) is below zero. Otherwise the shape is the estimate
 * floored at 0: tails at least as heavy as exponential. `bounded: false` never uses a bounded
 * tail (for excesses that are not independent, where the bound 1/√k is too tight).
 */
function paretoTail(y: number, k: number, mean: number, variance: number, scaleFloor: number, bounded = true): number {
  let shape = 0;
  let scale = Math.max(mean, scaleFloor);
  if (variance > 0 && mean > 0) {
    const r = (mean * mean) / variance;
    const estimate = 0.5 * (1 - r);
    const upper = estimate + 2.3263478740408408 / Math.sqrt(k);
    shape = upper < 0 && bounded ? Math.max(-0.5, upper) : Math.min(1, Math.max(0, estimate));
    scale = Math.max(0.5 * mean * (1 + r), scaleFloor);
  }
  if (Math.abs(shape) < 1e-9) return Math.exp(-y / scale);
  const base = 1 + (shape * y) / scale;
  return base <= 0 ? 0 : base ** (-1 / shape);
}

// ---------------------------------------------------------------------------------------------
// Incidents

type AnomalyTransition = 'start' | 'recovered' | null;

interface AnomalyTrackerOptions {
  /** Consecutive calm points (score below `calmBelow`) that end an incident. Default 30. */
  recoverAfter?: number;
  /** Score under which a point counts as calm. Default UNUSUAL_SCORE (0.3). */
  calmBelow?: number;
}

/**
 * Hysteresis over detector results so one incident gives one `start` and one `recovered`:
 * an incident starts on an alarm and ends after `recoverAfter` consecutive calm points.
 */
export class AnomalyTracker {
  readonly recoverAfter: number;
  readonly calmBelow: number;
  private activeSince = -1;
  private calm = 0;
  private index = 0;

  constructor(options: AnomalyTrackerOptions = {}) {
    const recoverAfter = options.recoverAfter ?? RECOVER_POINTS;
    const calmBelow = options.calmBelow ?? UNUSUAL_SCORE;
    if (!Number.isInteger(recoverAfter) || recoverAfter < 1) {
      throw new RangeError(`recoverAfter must be an integer ≥ 1, got ${recoverAfter}`);
    }
    if (typeof calmBelow !== 'number' || !(calmBelow > 0 && calmBelow <= ALARM_SCORE)) {
      throw new RangeError(`calmBelow must be in (0, ${ALARM_SCORE}], got ${calmBelow}`);
    }
    this.recoverAfter = recoverAfter;
    this.calmBelow = calmBelow;
  }

  /** Whether an incident is open. */
  get active(): boolean {
    return this.activeSince >= 0;
  }

  /** Index (count of updates before it) of the point that opened the current incident, or -1. */
  get startedAt(): number {
    return this.activeSince;
  }

  /** Feeds one result; returns the transition it causes, if any. */
  update(result: Pick<AnomalyResult, 'score' | 'alarm'>): AnomalyTransition {
    const i = this.index++;
    if (this.activeSince < 0) {
      if (!result.alarm) return null;
      this.activeSince = i;
      this.calm = 0;
      return 'start';
    }
    if (result.alarm || result.score >= this.calmBelow) {
      this.calm = 0;
      return null;
    }
    if (++this.calm < this.recoverAfter) return null;
    this.activeSince = -1;
    this.calm = 0;
    return 'recovered';
  }

  reset(): void {
    this.activeSince = -1;
    this.calm = 0;
    this.index = 0;
  }
}
