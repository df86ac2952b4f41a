// Node streams: messages and bytes through a Readable/Writable/Duplex/Transform, backpressure
// (a write() that returns false, and the wait until 'drain'), errors by code, and the stream as a
// session. The stream behaves exactly as before: only instance methods are wrapped (`push`,
// `write`, `end`) and only listeners that change nothing are added ('drain', 'end', 'finish',
// 'close', and `errorMonitor`, which leaves an unhandled 'error' as fatal as it was). No 'data'
// listener is ever added, so a paused stream stays paused.
import { errorMonitor } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Labels, Recorder, SeriesOptions, Session } from '../core/types.js';

/** What the integrations need from a monitor (StreamPerformanceMonitor satisfies it). */
export interface MonitorLike {
  series(labels: Labels, options?: SeriesOptions): Recorder;
  openSession(connectionId: string, labels?: Labels, options?: SeriesOptions): Session;
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
  on(event: string | symbol, listener: (...args: unknown[]) => void): unknown;
  readableObjectMode?: boolean;
  writableObjectMode?: boolean;
  writableNeedDrain?: boolean;
  writableEnded?: boolean;
  destroyed?: boolean;
}

const INSTRUMENTED = Symbol.for('streamgauge.instrumented');
let nextStreamId = 0;

/** Bytes of a chunk: Buffer/typed array length, string byte length, 0 for other objects. */
export function chunkBytes(chunk: unknown, encoding?: string): number {
  if (typeof chunk === 'object' && chunk !== null) {
    // Typed arrays (Buffer among them) without `instanceof`, which walks the prototype chain.
    const perElement = (chunk as { BYTES_PER_ELEMENT?: unknown }).BYTES_PER_ELEMENT;
    if (typeof perElement === 'number') return (chunk as Uint8Array).length * perElement;
    return ArrayBuffer.isView(chunk) ? chunk.byteLength : 0;
  }
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, (encoding as BufferEncoding) || 'utf8');
  return 0;
}

/**
 * Watches a writable's `write()` for backpressure: the first `false` of an episode starts a
 * timer, the next 'drain' records one event with the wait. One clock read per episode, none per
 * write. Returns a function that records a still-open episode (without a wait) and stops.
 */
export function watchBackpressure(
  stream: AnyStream,
  recorder: Recorder,
  onWrite?: (chunk: unknown, encoding: unknown) => void,
): () => void {
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
    // A write after end() or destroy() is refused with an error: not a message.
    if (onWrite !== undefined && !stopped && this.writableEnded !== true && this.destroyed !== true)
      onWrite(chunk, encoding);
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

  /**
   * One chunk in `direction`. Inbound chunks go through the session (which counts them on the
   * series as `in` and keeps the session from looking idle); a Session has no outbound messages,
   * so outbound chunks are counted on the series directly.
   */
  chunk(direction: 'in' | 'out', chunk: unknown, encoding: unknown, objectMode: boolean): void {
    const bytes = chunkBytes(chunk, typeof encoding === 'string' ? encoding : undefined);
    if (!objectMode && bytes === 0) return;
    const s = this.session;
    if (s !== undefined) s.message(bytes, direction);
    else this.recorder.recordMessages(1, bytes, direction);
  }

  /**
   * The error is counted on the series here rather than through `session.close(errorType)`: a
   * session the tracker already ended (idle past `sessionIdleTimeout`) ignores close() and would
   * lose it.
   */
  end(errorType?: string): void {
    if (this.done) return;
    this.done = true;
    const s = this.session;
    this.session = undefined;
    if (errorType !== undefined) this.recorder.recordError(errorType);
    if (s !== undefined) s.close();
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
 * - messages and bytes: chunks the stream produces (`push`, which every Readable, Duplex and
 *   Transform feeds its buffer through) and chunks written to it (`write`, `end(chunk)`). The
 *   direction is that of the code holding the stream: what a Readable or a Duplex (a socket)
 *   produces is received, `in`, and what is written to a Writable or a Duplex is sent, `out`; a
 *   Transform is the code itself: what is written to it comes `in`, what it pushes goes `out`.
 *   Object mode counts one message per chunk; bytes come from Buffer/typed-array/string lengths;
 * - a `write()` that returns false is a backpressure event, its wait the time until 'drain';
 * - an error counts by `err.code ?? err.name`;
 * - the stream is a session from now until 'close' (or 'end'/'finish' for streams that never
 *   emit 'close', or the first error). The session counts the inbound chunks.
 */
export function instrumentStream<S extends object>(
  monitor: MonitorLike,
  stream: S,
  options: InstrumentStreamOptions,
): S {
  const s = stream as unknown as AnyStream;
  if (s === null || typeof s !== 'object' || typeof s.on !== 'function') {
    throw new TypeError('instrumentStream needs a node:stream Readable, Writable, Duplex or Transform');
  }
  if (
    options === null ||
    typeof options !== 'object' ||
    typeof options.name !== 'string' ||
    options.name.length === 0
  ) {
    throw new TypeError('options.name must be a non-empty string');
  }
  if ((s as unknown as Record<symbol, unknown>)[INSTRUMENTED])
    throw new TypeError(`stream ${JSON.stringify(options.name)} is already instrumented`);
  if (s.destroyed === true) throw new RangeError(`stream ${JSON.stringify(options.name)} is already destroyed`);
  const isReadable = typeof s.push === 'function';
  const isWritable = typeof s.write === 'function';
  if (!isReadable && !isWritable) throw new TypeError('instrumentStream needs a stream with push() or write()');

  const labels = options.labels ?? { stream: options.name };
  const recorder = monitor.series(labels);
  const session =
    options.session === false ? undefined : monitor.openSession(`${options.name}#${++nextStreamId}`, labels);
  const state = new StreamState(recorder, session);
  Object.defineProperty(s, INSTRUMENTED, { value: true });

  let stopBackpressure: (() => void) | undefined;
  const finish = (type?: string) => {
    stopBackpressure?.();
    state.end(type);
  };

  const isTransform = typeof (s as { _transform?: unknown })._transform === 'function';
  const pushDirection = isTransform ? 'out' : 'in';
  const writeDirection = isTransform ? 'in' : 'out';

  if (isReadable) {
    const push = s.push as (chunk: unknown, encoding?: BufferEncoding) => boolean;
    const objectMode = s.readableObjectMode === true;
    s.push = function instrumentedPush(this: AnyStream, chunk: unknown, encoding?: BufferEncoding) {
      if (chunk !== null && chunk !== undefined) state.chunk(pushDirection, chunk, encoding, objectMode);
      // biome-ignore lint/complexity/noArguments: forward the caller's exact arguments
      return push.apply(this, arguments as unknown as [unknown, BufferEncoding?]);
    };
  }
  if (isWritable) {
    const objectMode = s.writableObjectMode === true;
    stopBackpressure = watchBackpressure(s, recorder, (chunk, encoding) => {
      if (chunk !== null && chunk !== undefined) state.chunk(writeDirection, chunk, encoding, objectMode);
    });
    const end = s.end;
    if (typeof end === 'function') {
      // end(chunk) writes its chunk through an internal path, not through write().
      s.end = function instrumentedEnd(this: AnyStream, chunk?: unknown, encoding?: unknown) {
        if (
          chunk !== null &&
          chunk !== undefined &&
          typeof chunk !== 'function' &&
          this.writableEnded !== true &&
          this.destroyed !== true
        ) {
          state.chunk(writeDirection, chunk, encoding, objectMode);
        }
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
