// Who owns each recording lane (layout.ts laneOwners), so that a thread can take over the lanes of
// a thread that has ended instead of taking fresh ones. Without it, workers that come and go (a
// piscina pool growing and shrinking) would use up the pool and each histogram's MAX_LANES, and
// every later thread would record through atomics. Claims are rare (a thread's first record into a
// series), so this may read /proc; the record path never comes here.
//
// An owner is one 64-bit word, the thread's tid in its low half and its start time in its high
// half, so a takeover is a single compare-and-swap from the ended owner to this thread: there is
// no moment at which a lane is half taken, and a thread ended at any point leaves a whole owner.
import { performance } from 'node:perf_hooks';
import type { Layout } from './layout.js';
import { currentThread, isRunning, type ThreadIdentity } from './thread-identity.js';

/** How long a thread seen running is taken to be still running, so a burst of claims reads /proc once per owner. */
const SEEN_RUNNING_MS = 1000;

/** A thread's owner word; 0 for none. */
export function ownerWord(thread: ThreadIdentity | null): bigint {
  return thread === null ? 0n : (BigInt(thread.start >>> 0) << 32n) | BigInt(thread.tid);
}

/** The thread an owner word names. */
export function ownerOf(word: bigint): ThreadIdentity {
  return { tid: Number(word & 0xffffffffn), start: Number(word >> 32n) | 0 };
}

export class LaneOwners {
  private readonly words: BigUint64Array;
  private readonly self = ownerWord(currentThread());
  private readonly seenRunning = new Map<number, { start: number; at: number }>();

  constructor(buffer: ArrayBufferLike, layout: Layout) {
    this.words = new BigUint64Array(buffer, layout.laneOwners.ptr, layout.laneOwners.count);
  }

  /** Records this thread as the owner of `lane` (an owner-table index), just handed out to it. */
  own(lane: number): void {
    Atomics.store(this.words, lane, this.self);
  }

  /**
   * Makes `lane` this thread's if its owner has ended; false while the owner runs, when another
   * thread took it first, or when either thread cannot be named. The lane keeps its contents: what
   * the ended thread recorded stays counted, and this thread adds to it.
   */
  takeOver(lane: number): boolean {
    if (this.self === 0n) return false;
    const word = Atomics.load(this.words, lane);
    if (word === 0n || this.running(ownerOf(word))) return false;
    // Whoever swaps first has the lane; a thread that read the same ended owner fails here.
    return Atomics.compareExchange(this.words, lane, word, this.self) === word;
  }

  private running(owner: ThreadIdentity): boolean {
    const now = performance.now();
    const seen = this.seenRunning.get(owner.tid);
    if (seen !== undefined && seen.start === owner.start && now - seen.at < SEEN_RUNNING_MS) return true;
    const running = isRunning(owner);
    if (running) this.seenRunning.set(owner.tid, { start: owner.start, at: now });
    return running;
  }
}
