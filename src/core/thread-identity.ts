// Which OS thread this is, and whether a thread named so is still running: what lets a thread take
// over the recording lanes of a thread that has ended. A worker that is terminated (piscina ends
// idle workers with terminate()) runs no code on its way out, so it cannot hand its lanes back; the
// next thread must be able to tell, for certain, that the owner is gone.
//
// On Linux a thread is named by its tid and its start time (from /proc): a tid alone may be reused
// once the kernel's pid counter wraps, the pair never is. Elsewhere there is no identity, and lanes
// are never taken over (threads past the pool record through atomics, as before).
import { readFileSync } from 'node:fs';

export interface ThreadIdentity {
  /** The kernel's thread id (never 0). */
  tid: number;
  /** Start time in clock ticks since boot, kept to its low 32 bits (as the owner table stores it). */
  start: number;
}

/** The calling thread's identity, or null where the system does not give one. */
export function currentThread(): ThreadIdentity | null {
  try {
    return parseStat(readFileSync('/proc/thread-self/stat', 'latin1'));
  } catch {
    return null;
  }
}

/**
 * Whether the thread is still running. Only a definite answer says no (no such task, or the tid now
 * names a thread started at another time): anything unclear counts as alive, since taking over a
 * live thread's lane would let two threads write it without atomics.
 */
export function isRunning(thread: ThreadIdentity): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/self/task/${thread.tid}/stat`, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' && code !== 'ESRCH';
  }
  const now = parseStat(text);
  return now === null || (now.tid === thread.tid && now.start === thread.start);
}

// "tid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted from the
// last ')'; the start time is field 22, the 20th after it.
function parseStat(text: string): ThreadIdentity | null {
  const tid = Number.parseInt(text, 10);
  const start = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  if (!(tid > 0) || !Number.isSafeInteger(start)) return null;
  return { tid, start: start | 0 };
}
