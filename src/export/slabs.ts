// Encoded text and fields kept between renders (a label set's, for as long as it lives) are cut
// from shared slabs: a Uint8Array of its own each would carry an ArrayBuffer's bookkeeping for a
// few dozen bytes.
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

/** n bytes to keep, zeroed: from a slab, or alone when large. */
export function keptBytes(n: number): Uint8Array {
  if (n > SLAB_BYTES >>> 4) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return out;
}
