// startTimer()'s stop function, for every kind of recorder.
import { performance } from 'node:perf_hooks';

/** A stop function that records the time since this call once (later calls return the same time). */
export function timer(record: (ms: number) => void): () => number {
  const start = performance.now();
  let elapsed = -1;
  return () => {
    if (elapsed < 0) {
      elapsed = performance.now() - start;
      record(elapsed);
    }
    return elapsed;
  };
}
