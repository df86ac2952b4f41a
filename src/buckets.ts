// The bucket math, in one place.
//
// Base-2 exponential buckets, as in Prometheus native histograms and OpenTelemetry's exponential
// histogram: at scale s the bucket ratio is 2^(2^-s), and bucket index i covers
// (2^((i-1)/2^s), 2^(i/2^s)] (Prometheus' convention; OpenTelemetry's index is i - 1).
// A value reported at its bucket's log-midpoint is within a relative error of
// 2^(2^-(s+1)) - 1 of every value in that bucket: 0.27 % at scale 7, 1.09 % at 5, 4.4 % at 3.
//
// The wasm core finds a bucket from the float's exponent and its top s+1 fraction bits (a table
// cell, narrower than any bucket) plus one comparison against the exact boundary. This file
// builds those tables and the same index function in plain JS for layout and tests.

/** Worst relative error of a value reported at its bucket's log-midpoint, at a given scale. */
export function relativeErrorBound(scale: number): number {
  return 2 ** (2 ** -(scale + 1)) - 1;
}

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);
const FRACTION_MASK = (1n << 52n) - 1n;

/** The 52-bit fractions of the boundaries 2^(j/2^s), j = 0..2^s (the last one is 2^52: the next octave). */
export function boundaryFractions(scale: number): BigUint64Array {
  const n = 1 << scale;
  const out = new BigUint64Array(n + 1);
  for (let j = 0; j < n; j++) {
    F64[0] = 2 ** (j / n);
    out[j] = U64[0] & FRACTION_MASK;
  }
  out[n] = 1n << 52n;
  return out;
}

/** For each of the 2^(s+1) cells of the fraction, the first boundary j ≥ 1 at or above the cell's start. */
export function cellTable(scale: number, bounds: BigUint64Array): Int32Array {
  const cells = 1 << (scale + 1);
  const shift = BigInt(51 - scale);
  const out = new Int32Array(cells);
  let j = 1;
  for (let c = 0; c < cells; c++) {
    const start = BigInt(c) << shift;
    while (bounds[j] < start) j++;
    out[c] = j;
  }
  return out;
}

/** Bytes of the tables for one scale: bounds (u64 × 2^s+1) then cells (i32 × 2^(s+1)). */
export function tableBytes(scale: number): number {
  return ((1 << scale) + 1) * 8 + (1 << (scale + 1)) * 4;
}

/** Writes the tables for `scale` at byte offset `ptr` of `buffer`. */
export function writeTables(buffer: ArrayBufferLike, ptr: number, scale: number): void {
  const bounds = boundaryFractions(scale);
  new BigUint64Array(buffer, ptr, bounds.length).set(bounds);
  new Int32Array(buffer, ptr + bounds.length * 8, 1 << (scale + 1)).set(cellTable(scale, bounds));
}

/** The bucket index of x > 0 at `scale` (same result as the wasm core). */
export function bucketIndex(x: number, scale: number): number {
  F64[0] = x;
  const bits = U64[0];
  const exponent = Number(bits >> 52n) - 1023;
  const fraction = bits & FRACTION_MASK;
  if (fraction === 0n) return exponent * (1 << scale);
  const bounds = boundaryFractions(scale);
  let j = 1;
  while (bounds[j] < fraction) j++;
  return exponent * (1 << scale) + j;
}

/** Upper bound of bucket `index` at `scale`. */
export function upperBound(index: number, scale: number): number {
  const n = 1 << scale;
  const e = Math.floor(index / n);
  const j = index - e * n;
  return 2 ** e * 2 ** (j / n);
}

/** The log-midpoint of bucket `index`: where a quantile falling in it is reported. */
export function midpoint(index: number, scale: number): number {
  return Math.sqrt(upperBound(index, scale) * upperBound(index - 1, scale));
}
