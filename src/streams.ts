// Node streams: messages and bytes through a Readable/Writable/Duplex/Transform, backpressure
// (a write() that returns false, and the wait until 'drain'), errors by code, and the stream as a
// session. The stream behaves exactly as before: only instance methods are wrapped (`push`,
// `write`, `end`) and only listeners that change nothing are added ('drain', 'end', 'finish',
// 'close', and `errorMonitor`, which leaves an unhandled 'error' as fatal as it was). No 'data'
// listener is ever added, so a paused stream stays paused.
import { errorMonitor } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Labels, Recorder, Session } from './types.js';

/** What the integrations need from a monitor (StreamPerformanceMonitor satisfies it). */
export interface MonitorLike {
  series(labels: Labels): Recorder;
  openSession(connectionId: string, labels?: Labels): Session;
}

export interface InstrumentStreamOptions {
  /** Names the stream's series: `{ stream: name }` unless `labels` is given. */
  name: string;
  /** The series' labels (default `{ stream: name }`). */
  labels?: Labels;
  /** Track the stream as a session (open now, closed on close/finish/end/error). Default true. */
  session?: boolean;
}

/** The minimal stream surface used here; every node:stream class has it. */
export interface AnyStream {
  push?: (chunk: unknown, encoding?: BufferEncoding) => boolean;
  write?: (...args: unknown[]) => boolean;
  end?: (...args: unknown[]) => unknown;
  on(event: string | symbol, listener: (...args: any[]) => void): unknown;
  readableObjectMode?: boolean;
  writableObjectMode?: boolean;
  writableNeedDrain?: boolean;
  destroyed?: boolean;
  readable?: boolean;
  writable?: boolean;
}

const INSTRUMENTED = Symbol.for('streamgauge.instrumented');
let nextStreamId = 0;

/** Bytes of a chunk: Buffer/typed array length, string byte length, 0 for other objects. */
export function chunkBytes(chunk: unknown, encoding?: string): number {
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, (encoding as BufferEncoding) || 'utf8');
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  return 0;
}

/**
 * Watches a writable's `write()` for backpressure: the first `false` of an episode starts a
 * timer, the next 'drain' records one event with the wait. One clock read per episode, none per
 * write. Returns a function that records a still-open episode (without a wait) and stops.
 */
export function watchBackpressure(stream: AnyStream, recorder: Recorder, onWrite?: (chunk: unknown, encoding: unknown) => void): () => void {
  const write = stream.write;
  if (typeof write !== 'function') throw new TypeError('watchBackpressure needs a writable stream');
  let blockedAt = -1;
  let stopped = false;
  const onDrain = () => {
    if (blockedAt >= 0) {
      const wait = performance.now() - blockedAt;
      blockedAt = -1;
      recorder.recordBackpressureEvent(wait);
    }
  };
  stream.write = function instrumentedWrite(this: AnyStream, chunk: unknown, encoding?: unknown) {
    if (onWrite !== undefined && !stopped) onWrite(chunk, encoding);
    // biome-ignore lint/complexity/noArguments: forward the caller's exact arguments
    const ok = write.apply(this, arguments as unknown as unknown[]);
    // writableNeedDrain tells a full buffer apart from a write after end/destroy.
    if (!ok && blockedAt < 0 && !stopped && this.writableNeedDrain !== false && this.destroyed !== true) {
      blockedAt = performance.now();
    }
    return ok;
  };
  stream.on('drain', onDrain);
  return () => {
    if (stopped) return;
    stopped = true;
    if (blockedAt >= 0) {
      blockedAt = -1;
      recorder.recordBackpressureEvent();
    }
  };
}

class StreamState {
  private session: Session | undefined;
  private done = false;

  constructor(
    readonly recorder: Recorder,
    session: Session | undefined,
  ) {
    this.session = session;
  }

  /** A chunk written into the stream (direction 'in'). */
  written(chunk: unknown, encoding: unknown, objectMode: boolean): void {
    if (chunk === null || chunk === undefined) return;
    const bytes = chunkBytes(chunk, typeof encoding === 'string' ? encoding : undefined);
    if (!objectMode && bytes === 0) return;
    const s = this.session;
    if (s !== undefined) {
      try {
        s.message(bytes);
        return;
      } catch {
        // The session was evicted as idle (it throws once closed): count on the series from now on.
        this.session = undefined;
      }
    }
    this.recorder.recordMessages(1, bytes, 'in');
  }

  /** A chunk the stream produced for its reader (direction 'out'). */
  pushed(chunk: unknown, encoding: unknown, objectMode: boolean): void {
    const bytes = chunkBytes(chunk, typeof encoding === 'string' ? encoding : undefined);
    if (!objectMode && bytes === 0) return;
    this.recorder.recordMessages(1, bytes, 'out');
  }

  end(errorType?: string): void {
    if (this.done) return;
    this.done = true;
    const s = this.session;
    this.session = undefined;
    if (s !== undefined) s.close(errorType);
    else if (errorType !== undefined) this.recorder.recordError(errorType);
  }
}

function errorType(err: unknown): string {
  if (err !== null && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown };
    if (typeof e.code === 'string' && e.code.length > 0) return e.code;
    if (typeof e.code === 'number') return String(e.code);
    if (typeof e.name === 'string' && e.name.length > 0) return e.name;
  }
  return 'Error';
}

/**
 * Instruments a Node stream in place and returns it (so it drops into `pipeline()`):
 * - chunks written (`write`/`end(chunk)`) count as messages `in`, chunks the stream produces
 *   (`push`, which every Readable, Duplex and Transform feeds its buffer through) as messages
 *   `out` — the stream's own point of view, the same for all four kinds; object mode counts one
 *   per chunk, bytes come from Buffer/typed-array/string lengths;
 * - a `write()` that returns false is a backpressure event, its wait the time until 'drain';
 * - an error counts by `err.code ?? err.name`, and closes the session as failed;
 * - the stream is a session from now until 'close' (or 'end'/'finish' for streams that never
 *   emit 'close', or the first error).
 */
export function instrumentStream<S extends object>(monitor: MonitorLike, stream: S, options: InstrumentStreamOptions): S {
  const s = stream as unknown as AnyStream;
  if (s === null || typeof s !== 'object' || typeof s.on !== 'function') {
    throw new TypeError('instrumentStream needs a node:stream Readable, Writable, Duplex or Transform');
  }
  if (options === null || typeof options !== 'object' || typeof options.name !== 'string' || options.name.length === 0) {
    throw new TypeError('options.name must be a non-empty string');
  }
  if ((s as unknown as Record<symbol, unknown>)[INSTRUMENTED]) throw new TypeError(`stream ${JSON.stringify(options.name)} is already instrumented`);
  if (s.destroyed === true) throw new RangeError(`stream ${JSON.stringify(options.name)} is already destroyed`);
  const isReadable = typeof s.push === 'function';
  const isWritable = typeof s.write === 'function';
  if (!isReadable && !isWritable) throw new TypeError('instrumentStream needs a stream with push() or write()');

  const labels = options.labels ?? { stream: options.name };
  const recorder = monitor.series(labels);
  const session = options.session === false ? undefined : monitor.openSession(`${options.name}#${++nextStreamId}`, labels);
  const state = new StreamState(recorder, session);
  Object.defineProperty(s, INSTRUMENTED, { value: true });

  let stopBackpressure: (() => void) | undefined;
  const finish = (type?: string) => {
    stopBackpressure?.();
    state.end(type);
  };

  if (isReadable) {
    const push = s.push as (chunk: unknown, encoding?: BufferEncoding) => boolean;
    const objectMode = s.readableObjectMode === true;
    s.push = function instrumentedPush(this: AnyStream, chunk: unknown, encoding?: BufferEncoding) {
      if (chunk !== null && chunk !== undefined) state.pushed(chunk, encoding, objectMode);
      // biome-ignore lint/complexity/noArguments: forward the caller's exact arguments
      return push.apply(this, arguments as unknown as [unknown, BufferEncoding?]);
    };
  }
  if (isWritable) {
    const objectMode = s.writableObjectMode === true;
    stopBackpressure = watchBackpressure(s, recorder, (chunk, encoding) => state.written(chunk, encoding, objectMode));
    const end = s.end;
    if (typeof end === 'function') {
      // end(chunk) writes its chunk through an internal path, not through write().
      s.end = function instrumentedEnd(this: AnyStream, chunk?: unknown, encoding?: unknown) {
        if (chunk !== null && chunk !== undefined && typeof chunk !== 'function') state.written(chunk, encoding, objectMode);
        // biome-ignore lint/complexity/noArguments: forward the caller's exact arguments
        return end.apply(this, arguments as unknown as unknown[]);
      };
    }
  }

  // The end of the stream. 'close' is the rule; 'end'/'finish' cover streams with emitClose: false.
  let ended = !isReadable;
  let finished = !isWritable;
  s.on('end', () => {
    ended = true;
    if (finished) finish();
  });
  s.on('finish', () => {
    finished = true;
    if (ended) finish();
  });
  s.on('close', () => finish());
  s.on(errorMonitor, (err: unknown) => finish(errorType(err)));
  return stream;
}
