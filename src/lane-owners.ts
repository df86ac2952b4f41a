// Who owns each recording lane (layout.ts OWNER), so that a thread can take over the lanes of a
// thread that has ended instead of taking fresh ones. Without it, workers that come and go (a
// piscina pool growing and shrinking) would use up the pool and each histogram's MAX_LANES, and
// every later thread would record through atomics. Claims are rare (a thread's first record into a
// series), so this may read /proc; the record path never comes here.
import { performance } from 'node:perf_hooks';
import { type Layout, OWNER, OWNER_SLOTS } from './layout.js';
import { currentThread, isRunning } from './thread-identity.js';

/** How long a thread seen running is taken to be still running, so a burst of claims reads /proc once per owner. */
const SEEN_RUNNING_MS = 1000;

export class LaneOwners {
  private readonly slots: Int32Array;
  private readonly self = currentThread();
  private readonly seenRunning = new Map<number, { start: number; at: number }>();

  constructor(buffer: ArrayBufferLike, layout: Layout) {
    this.slots = new Int32Array(buffer, layout.laneOwners.ptr, layout.laneOwners.count * OWNER_SLOTS);
  }

  /** Records this thread as the owner of `lane` (an owner-table index), just handed out to it. */
  own(lane: number, gen = 2): void {
    const o = lane * OWNER_SLOTS;
    Atomics.store(this.slots, o + OWNER.TID, this.self?.tid ?? 0);
    Atomics.store(this.slots, o + OWNER.START, this.self?.start ?? 0);
    Atomics.store(this.slots, o + OWNER.GEN, gen);
  }

  /**
   * Makes `lane` this thread's if its owner has ended; false while the owner runs, while another
   * thread is taking it over, or when either thread cannot be named. The lane keeps its contents:
   * what the ended thread recorded stays counted, and this thread adds to it.
   */
  takeOver(lane: number): boolean {
    if (this.self === null) return false;
    const o = lane * OWNER_SLOTS;
    const gen = Atomics.load(this.slots, o + OWNER.GEN);
    if (gen === 0 || (gen & 1) !== 0) return false;
    const tid = Atomics.load(this.slots, o + OWNER.TID);
    if (tid === 0 || this.running(tid, Atomics.load(this.slots, o + OWNER.START))) return false;
    // Whoever moves GEN first has the lane; a thread that read an older owner fails here.
    if (Atomics.compareExchange(this.slots, o + OWNER.GEN, gen, gen + 1) !== gen) return false;
    this.own(lane, gen + 2);
    return true;
  }

  private running(tid: number, start: number): boolean {
    const now = performance.now();
    const seen = this.seenRunning.get(tid);
    if (seen !== undefined && seen.start === start && now - seen.at < SEEN_RUNNING_MS) return true;
    const running = isRunning({ tid, start });
    if (running) this.seenRunning.set(tid, { start, at: now });
    return running;
  }
}
