// A fixed table of strings in shared memory (series label keys, error types), so that every
// thread maps the same string to the same slot. Entries are claimed in order with a
// compare-and-swap; a thread that finds an entry being written waits for it, so one string never
// gets two slots. The last entry is reserved for "everything past the bound".
import type { TableSpec } from './layout.js';

const EMPTY = 0;
const WRITING = 1;
const READY = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const scratch = new Uint8Array(4096);

export class StringTable {
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  /** Keys read so far, by slot (decoded once). */
  private readonly keys: string[] = [];

  /**
   * @param onClaim called with a slot this thread has just claimed, before any other thread can
   *   find it: what a new entry needs laid out (a series' histogram headers) is written there.
   */
  constructor(
    buffer: ArrayBufferLike,
    private readonly spec: TableSpec,
    private readonly onClaim?: (slot: number) => void,
  ) {
    this.i32 = new Int32Array(buffer);
    this.u8 = new Uint8Array(buffer);
  }

  /** Slots that lookups may claim; the one after them is the overflow slot. */
  get capacity(): number {
    return this.spec.entries - 1;
  }

  get overflowSlot(): number {
    return this.spec.entries - 1;
  }

  /** The slot of `key`, claiming a free one if it is new; the overflow slot when the table is full. */
  lookup(key: string, argument: string, flags = 0): number {
    const { bytes, length } = this.encode(key, argument);
    const hash = fnv1a(bytes, length);
    for (let slot = 0; slot < this.capacity; slot++) {
      const at = this.stateIndex(slot);
      let state = Atomics.load(this.i32, at);
      if (state === EMPTY) {
        state = Atomics.compareExchange(this.i32, at, EMPTY, WRITING);
        if (state === EMPTY) {
          this.onClaim?.(slot);
          this.write(slot, hash, bytes, length, flags);
          return slot;
        }
      }
      if (state === WRITING) this.waitReady(at);
      if (this.matches(slot, hash, bytes, length)) return slot;
    }
    return this.overflowSlot;
  }

  /** Sets a slot's key directly (at creation: the default and the overflow entries). */
  reserve(slot: number, key: string, flags = 0): void {
    const { bytes, length } = this.encode(key, 'key');
    Atomics.store(this.i32, this.stateIndex(slot), WRITING);
    this.onClaim?.(slot);
    this.write(slot, fnv1a(bytes, length), bytes, length, flags);
  }

  /** The flags the slot was claimed with (set once, by whoever claimed it first). */
  flags(slot: number): number {
    if (Atomics.load(this.i32, this.stateIndex(slot)) !== READY) return 0;
    return this.i32[this.stateIndex(slot) + 3];
  }

  /** The key in a slot, or undefined while it is empty. */
  key(slot: number): string | undefined {
    let key = this.keys[slot];
    if (key !== undefined) return key;
    if (Atomics.load(this.i32, this.stateIndex(slot)) !== READY) return undefined;
    const base = this.spec.ptr + slot * this.spec.stride;
    const length = this.i32[(base >> 2) + 2];
    key = decoder.decode(this.u8.slice(base + 16, base + 16 + length));
    this.keys[slot] = key; // a slot keeps its key for good
    return key;
  }

  /** Number of claimed slots (they are claimed in order), not counting the overflow slot. */
  used(): number {
    // Slots are claimed in order and never given back: look on from the last count.
    let n = this.usedSeen;
    while (n < this.capacity && Atomics.load(this.i32, this.stateIndex(n)) !== EMPTY) n++;
    this.usedSeen = n;
    return n;
  }

  private usedSeen = 0;

  private stateIndex(slot: number): number {
    return (this.spec.ptr + slot * this.spec.stride) >> 2;
  }

  private encode(key: string, argument: string): { bytes: Uint8Array; length: number } {
    const max = this.spec.keyBytes;
    const { read, written } = encoder.encodeInto(key, scratch);
    if (read !== key.length || written > max) {
      // encodeInto stops at the scratch's end: the whole length is counted again for the message.
      throw new RangeError(
        `${argument} is too long: at most ${max} bytes of UTF-8 (got ${Buffer.byteLength(key, 'utf8')} bytes)`,
      );
    }
    return { bytes: scratch, length: written };
  }

  private write(slot: number, hash: number, bytes: Uint8Array, length: number, flags = 0): void {
    const base = this.spec.ptr + slot * this.spec.stride;
    this.i32[(base >> 2) + 1] = hash;
    this.i32[(base >> 2) + 2] = length;
    this.i32[(base >> 2) + 3] = flags;
    this.u8.set(bytes.subarray(0, length), base + 16);
    Atomics.store(this.i32, base >> 2, READY);
  }

  private matches(slot: number, hash: number, bytes: Uint8Array, length: number): boolean {
    const base = this.spec.ptr + slot * this.spec.stride;
    if (this.i32[(base >> 2) + 1] !== hash || this.i32[(base >> 2) + 2] !== length) return false;
    for (let i = 0; i < length; i++) if (this.u8[base + 16 + i] !== bytes[i]) return false;
    return true;
  }

  private waitReady(at: number): void {
    // A writer holds an entry only for the few stores in write(); spin rather than Atomics.wait,
    // which the main thread may not call.
    for (let spins = 0; spins < 100_000_000; spins++) {
      if (Atomics.load(this.i32, at) === READY) return;
    }
    throw new Error('string table entry stayed half-written: a thread died while claiming it');
  }
}

function fnv1a(bytes: Uint8Array, length: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h | 0;
}
