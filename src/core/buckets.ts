// The bucket math, in one place.
//
// Base-2 exponential buckets, as in Prometheus native histograms and OpenTelemetry's exponential
// histogram: at scale s the bucket ratio is 2^(2^-s), and bucket index i covers
// (2^((i-1)/2^s), 2^(i/2^s)] (Prometheus' convention; OpenTelemetry's index is i - 1).
// A value reported at its bucket's log-midpoint is within a relative error of
// 2^(2^-(s+1)) - 1 of every value in that bucket: 0.27 % at scale 7, 1.09 % at 5, 4.4 % at 3.
//
// This file holds the index function (bucketIndex) and builds the wasm core's tables from it: the
// boundaries its quantiles report, and per histogram shape a lookup table over the whole range in
// the API unit (rangeCells), so that recording a value takes one table read and one comparison.
//
// The boundaries 2^(j/2^s) (0 < j < 2^s) are irrational, so no float equals one. Each is stored
// rounded *down*, computed exactly with integers (a libm pow is not correctly rounded, and some
// other implementations' tables are off by an ulp here and there). Then for every float v,
// v <= stored bound exactly when v <= the true bound: every float lands in its mathematically
// right bucket, upper bounds inclusive. Upper bounds reported anywhere (`upperBound`, the wasm
// core's quantiles) are these stored values, so no value is above its bucket's reported bound.

/** Worst relative error of a value reported at its bucket's log-midpoint, at a given scale. */
export function relativeErrorBound(scale: number): number {
  return 2 ** (2 ** -(scale + 1)) - 1;
}

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);
const FRACTION_MASK = (1n << 52n) - 1n;

/**
 * The 52-bit fractions of 2^(j/256), j = 1..255, each the largest float at or below the true
 * value: floor(2^(52 + j/256)) - 2^52, found exactly with integer arithmetic (m^256 < 2^(52·256 + j)
 * < (m+1)^256; test/accuracy.test.ts checks every entry). Every scale's boundaries are among
 * them: 2^(j/2^s) = 2^(j·2^(8-s)/256).
 */
const SCALE8_FRACTIONS: readonly bigint[] = [
  0n,
  0x00b1afa5abcben,
  0x0163da9fb3335n,
  0x02168143b0280n,
  0x02c9a3e778060n,
  0x037d42e11bbccn,
  0x04315e86e7f84n,
  0x04e5f72f654b1n,
  0x059b0d3158574n,
  0x0650a0e3c1f88n,
  0x0706b29ddf6ddn,
  0x07bd42b72a836n,
  0x0874518759bc8n,
  0x092bdf66607dfn,
  0x09e3ecac6f383n,
  0x0a9c79b1f3919n,
  0x0b5586cf9890fn,
  0x0c0f145e46c85n,
  0x0cc922b7247f7n,
  0x0d83b23395debn,
  0x0e3ec32d3d1a2n,
  0x0efa55fdfa9c4n,
  0x0fb66affed31an,
  0x1073028d7233en,
  0x11301d0125b50n,
  0x11edbab5e2ab5n,
  0x12abdc06c31cbn,
  0x136a814f204aan,
  0x1429aaea92ddfn,
  0x14e95934f312dn,
  0x15a98c8a58e51n,
  0x166a45471c3c2n,
  0x172b83c7d517an,
  0x17ed48695bbc0n,
  0x18af9388c8de9n,
  0x1972658375d2fn,
  0x1a35beb6fcb75n,
  0x1af99f8138a1cn,
  0x1bbe084045cd3n,
  0x1c82f95281c6bn,
  0x1d4873168b9aan,
  0x1e0e75eb44026n,
  0x1ed5022fcd91cn,
  0x1f9c18438ce4cn,
  0x2063b88628cd6n,
  0x212be3578a819n,
  0x21f49917ddc96n,
  0x22bdda27912d1n,
  0x2387a6e756238n,
  0x2451ffb82140an,
  0x251ce4fb2a63fn,
  0x25e85711ece75n,
  0x26b4565e27cddn,
  0x2780e341ddf29n,
  0x284dfe1f56380n,
  0x291ba7591bb6fn,
  0x29e9df51fdee1n,
  0x2ab8a66d10f12n,
  0x2b87fd0dad98fn,
  0x2c57e39771b2en,
  0x2d285a6e4030bn,
  0x2df961f641589n,
  0x2ecafa93e2f56n,
  0x2f9d24abd886an,
  0x306fe0a31b715n,
  0x31432edeeb2fdn,
  0x32170fc4cd831n,
  0x32eb83ba8ea31n,
  0x33c08b26416ffn,
  0x3496266e3fa2cn,
  0x356c55f929ff0n,
  0x36431a2de883an,
  0x371a7373aa9can,
  0x37f26231e7549n,
  0x38cae6d05d865n,
  0x39a401b7140een,
  0x3a7db34e59ff6n,
  0x3b57fbfec6cf4n,
  0x3c32dc313a8e4n,
  0x3d0e544ede173n,
  0x3dea64c123422n,
  0x3ec70df1c5174n,
  0x3fa4504ac801bn,
  0x40822c367a024n,
  0x4160a21f72e29n,
  0x423fb27094689n,
  0x431f5d950a896n,
  0x43ffa3f84b9d4n,
  0x44e086061892dn,
  0x45c2042a7d231n,
  0x46a41ed1d0057n,
  0x4786d668b3236n,
  0x486a2b5c13cd0n,
  0x494e1e192aed1n,
  0x4a32af0d7d3den,
  0x4b17dea6db7d6n,
  0x4bfdad5362a27n,
  0x4ce41b817c114n,
  0x4dcb299fddd0dn,
  0x4eb2d81d8abfen,
  0x4f9b2769d2ca6n,
  0x508417f4531een,
  0x516daa2cf6641n,
  0x5257de83f4eeen,
  0x5342b569d4f81n,
  0x542e2f4f6ad27n,
  0x551a4ca5d920en,
  0x56070dde910d1n,
  0x56f4736b527dan,
  0x57e27dbe2c4cen,
  0x58d12d497c7fdn,
  0x59c0827ff07cbn,
  0x5ab07dd485429n,
  0x5ba11fba87a02n,
  0x5c9268a5946b7n,
  0x5d84590998b92n,
  0x5e76f15ad2148n,
  0x5f6a320dceb70n,
  0x605e1b976dc08n,
  0x6152ae6cdf6f4n,
  0x6247eb03a5584n,
  0x633dd1d1929fdn,
  0x6434634ccc31fn,
  0x652b9febc8fb6n,
  0x6623882552224n,
  0x671c1c70833f5n,
  0x68155d44ca973n,
  0x690f4b19e9538n,
  0x6a09e667f3bccn,
  0x6b052fa75173en,
  0x6c012750bdaben,
  0x6cfdcddd47645n,
  0x6dfb23c651a2en,
  0x6ef9298593ae4n,
  0x6ff7df9519483n,
  0x70f7466f42e87n,
  0x71f75e8ec5f73n,
  0x72f8286ead089n,
  0x73f9a48a58173n,
  0x74fbd35d7cbfdn,
  0x75feb564267c8n,
  0x77024b1ab6e09n,
  0x780694fde5d3fn,
  0x790b938ac1cf6n,
  0x7a11473eb0186n,
  0x7b17b0976cfdan,
  0x7c1ed0130c132n,
  0x7d26a62ff86f0n,
  0x7e2f336cf4e62n,
  0x7f3878491c490n,
  0x80427543e1a11n,
  0x814d2add106d9n,
  0x82589994cce12n,
  0x8364c1eb941f7n,
  0x8471a4623c7acn,
  0x857f4179f5b20n,
  0x868d99b4492ecn,
  0x879cad931a436n,
  0x88ac7d98a6699n,
  0x89bd0a478580fn,
  0x8ace5422aa0dbn,
  0x8be05bad61778n,
  0x8cf3216b5448bn,
  0x8e06a5e0866d8n,
  0x8f1ae99157736n,
  0x902fed0282c8an,
  0x9145b0b91ffc5n,
  0x925c353aa2fe1n,
  0x93737b0cdc5e4n,
  0x948b82b5f98e4n,
  0x95a44cbc8520en,
  0x96bdd9a7670b2n,
  0x97d829fde4e4fn,
  0x98f33e47a22a2n,
  0x9a0f170ca07b9n,
  0x9b2bb4d53fe0cn,
  0x9c49182a3f090n,
  0x9d674194bb8d4n,
  0x9e86319e32323n,
  0x9fa5e8d07f29dn,
  0xa0c667b5de564n,
  0xa1e7aed8eb8bbn,
  0xa309bec4a2d33n,
  0xa42c980460ad7n,
  0xa5503b23e255cn,
  0xa674a8af46052n,
  0xa799e1330b358n,
  0xa8bfe53c12e58n,
  0xa9e6b5579fdbfn,
  0xab0e521356eban,
  0xac36bbfd3f379n,
  0xad5ff3a3c2774n,
  0xae89f995ad3adn,
  0xafb4ce622f2fen,
  0xb0e07298db665n,
  0xb20ce6c9a8952n,
  0xb33a2b84f15fan,
  0xb468415b749b0n,
  0xb59728de55939n,
  0xb6c6e29f1c52an,
  0xb7f76f2fb5e46n,
  0xb928cf22749e3n,
  0xba5b030a10649n,
  0xbb8e0b79a6f1en,
  0xbcc1e904bc1d2n,
  0xbdf69c3f3a206n,
  0xbf2c25bd71e08n,
  0xc06286141b33cn,
  0xc199bdd85529cn,
  0xc2d1cd9fa652bn,
  0xc40ab5fffd07an,
  0xc544778fafb22n,
  0xc67f12e57d14bn,
  0xc7ba88988c932n,
  0xc8f6d9406e7b5n,
  0xca3405751c4dan,
  0xcb720dcef9069n,
  0xccb0f2e6d1674n,
  0xcdf0b555dc3f9n,
  0xcf3155b5bab73n,
  0xd072d4a07897bn,
  0xd1b532b08c968n,
  0xd2f87080d89f1n,
  0xd43c8eacaa1d6n,
  0xd5818dcfba487n,
  0xd6c76e862e6d3n,
  0xd80e316c98397n,
  0xd955d71ff6075n,
  0xda9e603db3285n,
  0xdbe7cd63a8314n,
  0xdd321f301b460n,
  0xde7d5641c0657n,
  0xdfc97337b9b5en,
  0xe11676b197d16n,
  0xe264614f5a128n,
  0xe3b333b16ee11n,
  0xe502ee78b3ff6n,
  0xe653924676d75n,
  0xe7a51fbc74c83n,
  0xe8f7977cdb73fn,
  0xea4afa2a490d9n,
  0xeb9f4867cca6en,
  0xecf482d8e67f0n,
  0xee4aaa2188510n,
  0xefa1bee615a27n,
  0xf0f9c1cb64129n,
  0xf252b376bba97n,
  0xf3ac948dd7273n,
  0xf50765b6e4540n,
  0xf6632798844f8n,
  0xf7bfdad9cbe13n,
  0xf91d802243c88n,
  0xfa7c1819e90d8n,
  0xfbdba3692d513n,
  0xfd3c22b8f71f1n,
  0xfe9d96b2a23d9n,
];

const fractionCache = new Map<number, BigUint64Array>();

/**
 * The 52-bit fractions of the boundaries 2^(j/2^s), j = 0..2^s, rounded down (the last one is
 * 2^52: the next octave). Cached per scale; do not modify the result.
 */
export function boundaryFractions(scale: number): BigUint64Array {
  let out = fractionCache.get(scale);
  if (out === undefined) {
    const n = 1 << scale;
    out = new BigUint64Array(n + 1);
    for (let j = 0; j < n; j++) out[j] = SCALE8_FRACTIONS[j << (8 - scale)];
    out[n] = 1n << 52n;
    fractionCache.set(scale, out);
  }
  return out;
}

/** Bytes of the boundary table for one scale (u64 × 2^s+1, see boundaryFractions). */
export function boundsBytes(scale: number): number {
  return ((1 << scale) + 1) * 8;
}

/** Writes the boundary fractions for `scale` at byte offset `ptr` of `buffer` (the core's quantiles read them). */
export function writeBounds(buffer: ArrayBufferLike, ptr: number, scale: number): void {
  const bounds = boundaryFractions(scale);
  new BigUint64Array(buffer, ptr, bounds.length).set(bounds);
}

/**
 * The record path's lookup table for one histogram shape: which bucket each float v of the API unit
 * falls in, where v's bucket is bucketIndex(v × idxMul) (so a lookup needs no multiply, no exponent
 * arithmetic and no range arithmetic).
 *
 * A cell is the floats that share their top 12 + scale + 1 bits (sign, exponent and the first
 * scale+1 fraction bits): a slice of an octave narrower than any bucket (its width ratio is at most
 * 1 + 2^-(s+1), a bucket's is 2^(2^-s)), so it holds at most one bucket boundary. The table runs
 * from the cell of the zero bucket's last float to the cell of the last bucket's; floats below it
 * are in the zero bucket, above it in the overflow.
 */
interface RangeCells {
  /** A float's cell is (its bits >> shift) - base. */
  shift: number;
  base: number;
  count: number;
  /** Per cell: the bits of the last float in bucket `lower`; all ones when the whole cell is in that bucket. */
  bound: BigUint64Array;
  /** Per cell: the bucket of its first float (idxMin - 1 stands for the zero bucket, idxMax + 1 for the overflow); floats above `bound` are in the next. */
  lower: Int32Array;
}

/** Where a shape's cells start and how many there are (cheap: no table built). */
export function rangeGeometry(
  scale: number,
  idxMul: number,
  idxMin: number,
  idxMax: number,
): { shift: number; base: number; count: number } {
  const shift = 51 - scale;
  const base = cellKey(lastIn(idxMin - 1, scale, idxMul), shift);
  return { shift, base, count: cellKey(lastIn(idxMax, scale, idxMul), shift) - base + 1 };
}

/** Builds the cells described at RangeCells. Throws if a cell would hold two boundaries (it cannot, see above). */
export function rangeCells(scale: number, idxMul: number, idxMin: number, idxMax: number): RangeCells {
  const { shift, base, count } = rangeGeometry(scale, idxMul, idxMin, idxMax);
  const last = new Float64Array(idxMax - idxMin + 2); // last[i - idxMin + 1]: the last float of bucket i
  for (let i = idxMin - 1; i <= idxMax; i++) last[i - idxMin + 1] = lastIn(i, scale, idxMul);
  const lastOf = (i: number) => (i > idxMax ? Infinity : last[i - idxMin + 1]);
  const bound = new BigUint64Array(count);
  const lower = new Int32Array(count);
  const width = 1n << BigInt(shift);
  let i = idxMin - 1;
  for (let c = 0; c < count; c++) {
    const first = BigInt(base + c) * width;
    while (lastOf(i) < floatOf(first)) i++;
    lower[c] = i;
    const end = floatOf(first + width - 1n);
    if (lastOf(i) < end) {
      if (lastOf(i + 1) < end)
        throw new Error(`bucket boundaries ${i} and ${i + 1} share a table cell at scale ${scale}`);
      bound[c] = bitsOf(lastOf(i));
    } else {
      bound[c] = 0xffffffffffffffffn;
    }
  }
  return { shift, base, count, bound, lower };
}

/** The last float v (API unit) with bucketIndex(v × idxMul) ≤ i: v × idxMul ≤ upperBound(i), correctly rounded as the multiply is. */
function lastIn(i: number, scale: number, idxMul: number): number {
  const top = upperBound(i, scale);
  let v = top / idxMul;
  while (v * idxMul > top) v = nextDown(v);
  while (nextUp(v) * idxMul <= top) v = nextUp(v);
  return v;
}

function cellKey(v: number, shift: number): number {
  return Number(bitsOf(v) >> BigInt(shift));
}

function bitsOf(v: number): bigint {
  F64[0] = v;
  return U64[0];
}

function floatOf(bits: bigint): number {
  U64[0] = bits;
  return F64[0];
}

function nextUp(v: number): number {
  return floatOf(bitsOf(v) + 1n);
}

function nextDown(v: number): number {
  return floatOf(bitsOf(v) - 1n);
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

/**
 * Upper bound of bucket `index` at `scale` (Prometheus' schema): the stored boundary, the float at
 * or below 2^(index/2^s), exactly the boundary the core buckets by (a `2 ** x` can be an ulp off,
 * and a classic `le` must be the same double). Negative scales (coarser schemas, reached by
 * merging) have power-of-two bounds, exact either way.
 */
export function upperBound(index: number, scale: number): number {
  if (scale < 0) return 2 ** (index * 2 ** -scale);
  const n = 1 << scale;
  const e = Math.floor(index / n);
  const j = index - e * n;
  // (2^52 + fraction) is exact in a double, and scaling by a power of two is exact.
  return (2 ** 52 + Number(boundaryFractions(scale)[j])) * 2 ** (e - 52);
}

/** The log-midpoint of bucket `index`: where a quantile falling in it is reported. */
export function midpoint(index: number, scale: number): number {
  return Math.sqrt(upperBound(index, scale) * upperBound(index - 1, scale));
}

/** Histogram counts in buckets of seconds, as a quantile walk reads them (k = 0..n-1, ascending index). */
export interface BucketCounts {
  /** All values: the zero bucket's and the buckets'. */
  total: number;
  zeroCount: number;
  scale: number;
  n: number;
  indexAt(k: number): number;
  countAt(k: number): number;
  /** The recorded extremes (ms): a quantile is clamped to them, and the zero bucket reports minMs. */
  minMs: number;
  maxMs: number;
}

/**
 * Latency quantile q (ms) of counts outside the core: nearest rank, reported at the bucket's
 * log-midpoint and clamped to the recorded min and max, the core's rule (assembly/index.ts), so
 * the TypeScript readers (snapshots, the cluster's intervals) agree with the monitor. NaN for none.
 */
export function quantileOfBuckets(h: BucketCounts, q: number): number {
  if (h.total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * h.total));
  let seen = h.zeroCount;
  if (seen >= rank) return h.minMs;
  for (let k = 0; k < h.n; k++) {
    seen += h.countAt(k);
    // Seconds to ms divided by 1e-3, as the monitor does, so the quantiles agree to the bit.
    if (seen >= rank) return Math.min(h.maxMs, Math.max(h.minMs, midpoint(h.indexAt(k), h.scale) / 1e-3));
  }
  return h.maxMs;
}
