// gRPC (@grpc/grpc-js ≥ 1.10): a server interceptor and a client interceptor that record every
// call kind — unary, server streaming, client streaming, bidi — per method, in the shape of
// grpc-ecosystem's go-grpc-prometheus, which gRPC dashboards and alerts expect.
//
// Every series carries `grpc_type` (unary, client_stream, server_stream, bidi_stream),
// `grpc_service` and `grpc_method` (the path `/pkg.Service/Method` split, without the slash). Per
// method the server records into series of its own kinds, which the exposition writes into
// families of their own (a family never mixes calls with their stages or with client calls):
//   grpc_server                  calls started and in flight, messages and bytes in/out, sessions,
//                                backpressure                      -> grpc_server_started_total, _msg_*
//   grpc_server_handled          + grpc_code: calls finished with that status and their durations
//                                (errors by the status' name)      -> grpc_server_handled_total, _handling_seconds
//   grpc_server_first_response   time from the call's arrival to its first response message
//   grpc_server_message          per-message latency: handler timers or echoLatency
// The client records `grpc_client` and `grpc_client_handled` the same way.
//
// Each server call is a session (`monitor.openSession`), opened when the call arrives and closed
// when it ends; the session counts the inbound messages (a Session has no outbound direction).
// Backpressure happens in the handler's call object, which an interceptor never sees: handlers
// that want it call `interceptor.instrumentCall(call)` (see grpcServerInterceptor).
//
// The per-message path reads no clock (unless echoLatency is on: one read per message, or per
// N with echoSampleEvery) and allocates nothing beyond what grpc-js's interceptor layer itself
// allocates. bench/overhead.js measures it.
import type * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { activeSpanIds } from '../core/exemplars.js';
import { labelPairsOf } from '../record/labels.js';
import { distUrl } from '../core/module-url.js';
import { type KindedSeriesOptions, SERIES_KIND } from '../record/recorder.js';
import { type AnyStream, type MonitorLike, watchBackpressure } from './streams.js';
import type { ExemplarIds, Labels, Recorder, Session } from '../core/types.js';

export type { MonitorLike } from './streams.js';

/** Bytes of a message as the interceptor sees it (deserialized): Buffer/typed array lengths, else 0. */
export type MessageSize = (message: unknown) => number;

/** The series kinds the interceptors record into (see the top of this file). */
export const GRPC_KINDS = Object.freeze({
  server: 'grpc_server',
  serverHandled: 'grpc_server_handled',
  firstResponse: 'grpc_server_first_response',
  message: 'grpc_server_message',
  client: 'grpc_client',
  clientHandled: 'grpc_client_handled',
});

function kinded(kind: string, inTotals: boolean): KindedSeriesOptions {
  return Object.freeze({ inTotals, [SERIES_KIND]: kind });
}

// Secondary figures of a call (its first response, its messages) are not requests of their own.
const FIRST_RESPONSE = kinded(GRPC_KINDS.firstResponse, false);
const MESSAGE = kinded(GRPC_KINDS.message, false);

/** A method's call type as grpc-ecosystem names it. */
type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

function grpcType(requestStream: boolean, responseStream: boolean): GrpcType {
  return requestStream
    ? responseStream
      ? 'bidi_stream'
      : 'client_stream'
    : responseStream
      ? 'server_stream'
      : 'unary';
}

/**
 * `/pkg.Service/Method` as `['pkg.Service', 'Method']`; a path without a service part gives
 * `['unknown', 'unknown']`, as go-grpc-prometheus does.
 */
export function splitMethodPath(path: string): [service: string, method: string] {
  const p = path.charCodeAt(0) === 47 ? path.slice(1) : path;
  const slash = p.lastIndexOf('/');
  return slash > 0 && slash < p.length - 1 ? [p.slice(0, slash), p.slice(slash + 1)] : ['unknown', 'unknown'];
}

/** The labels of a method's series: the extra labels, then grpc_type, grpc_service, grpc_method. */
function methodLabels(extra: Labels, path: string, type: GrpcType): Labels {
  const [service, method] = splitMethodPath(path);
  return Object.freeze({ ...extra, grpc_type: type, grpc_service: service, grpc_method: method });
}

/** Per status code, the series of calls that ended with it (made on first use). */
class HandledByCode {
  private readonly byCode: (Recorder | undefined)[] = [];

  constructor(
    private readonly monitor: MonitorLike,
    private readonly labels: Labels,
    private readonly options: KindedSeriesOptions,
  ) {}

  /**
   * Records a finished call: OK as a latency, any other status as an error of its name (with the
   * duration); linked to the trace `ids` when given (an exemplar).
   */
  finish(code: number, durationMs: number, ids?: ExemplarIds): void {
    let r = this.byCode[code];
    if (r === undefined) {
      r = this.monitor.series({ ...this.labels, grpc_code: statusName(code) }, this.options);
      if (code >= 0 && code < 64) this.byCode[code] = r;
    }
    if (ids !== undefined) {
      if (code === OK) r.recordLatencyWithExemplar(durationMs, ids);
      else r.recordErrorWithExemplar(statusName(code), durationMs, ids);
    } else if (code === OK) r.recordLatency(durationMs);
    else r.recordError(statusName(code), durationMs);
  }
}

export interface GrpcServerInterceptorOptions {
  /**
   * Per-message latency for in-order echo-style streams: request i's arrival is matched with
   * response i's send. `true` for every method, or a list of paths, or a predicate on the path.
   */
  echoLatency?: boolean | readonly string[] | ((path: string) => boolean);
  /** Most requests awaiting their response per call for echoLatency; past it the call stops matching. Default 1024. */
  echoWindow?: number;
  /**
   * Time one message in every N for echoLatency (request k·N with response k·N): the clock is read
   * only for those, so the cost falls N-fold while the latency histogram stays an unbiased sample.
   * Default 1 (every message).
   */
  echoSampleEvery?: number;
  /** Record time to first response message (`grpc_server_first_response_seconds`). Default true. */
  firstResponse?: boolean;
  /** Track each call as a session (`monitor.openSession`). Default true. */
  sessions?: boolean;
  /**
   * Size of a message in bytes. The interceptor sees messages deserialized, so the default counts
   * Buffers and typed arrays (services with Buffer serializers) and 0 bytes for anything else.
   */
  messageBytes?: MessageSize;
  /** Extra labels on every series. */
  labels?: Labels;
  /** Whether calls add into the monitor-wide totals (requests, latency, errors). Default true. */
  inTotals?: boolean;
  /**
   * Link each call's duration to the OpenTelemetry span active when its status is sent (an
   * exemplar), when `@opentelemetry/api` is installed and that span is sampled. Default true.
   */
  exemplars?: boolean;
}

export interface GrpcClientInterceptorOptions {
  messageBytes?: MessageSize;
  /** Extra labels on every series. */
  labels?: Labels;
  /** Whether outgoing calls add into the monitor-wide totals. Default false: they are the service's dependencies, not its own requests. */
  inTotals?: boolean;
  /** Link each call's duration to the OpenTelemetry span active when it started (as for the server). Default true. */
  exemplars?: boolean;
}

/** What a handler gets from `instrumentCall(call)`. */
export interface ServerCallInstruments {
  /** A per-message timer (`grpc_server_msg_latency_seconds`): call the result when the response is out. */
  startTimer(): () => number;
}

// grpc-js's interceptor types, written out so that this package's declarations compile where
// @grpc/grpc-js (an optional peer dependency) is not installed. Each is assignable to grpc-js's:
// the parameters ask only for what grpc-js passes, and the results are grpc-js's own call objects,
// which cannot be named without importing it.
/** A grpc-js `ServerInterceptor`. */
type GrpcServerInterceptorFunction = (
  methodDescriptor: { readonly path: string },
  call: object,
  // biome-ignore lint/suspicious/noExplicitAny: a grpc-js ServerInterceptingCall
) => any;
/** A grpc-js client `Interceptor`. */
type GrpcClientInterceptor = (
  options: { readonly method_definition: { readonly path: string } },
  nextCall: (...args: never[]) => unknown,
  // biome-ignore lint/suspicious/noExplicitAny: a grpc-js InterceptingCall
) => any;

/** A grpc-js server interceptor, plus the handler-side helper for what interceptors cannot see. */
export interface GrpcServerInterceptor extends GrpcServerInterceptorFunction {
  /**
   * For a handler's call object (any of the four kinds): counts `call.write()` returning false as
   * backpressure with the wait until 'drain', and gives per-message timers. Idempotent per call.
   */
  instrumentCall(call: { getPath(): string }): ServerCallInstruments;
  /** Counters of the interceptor itself (echo matching given up on, calls seen). */
  stats(): { calls: number; echoOverflows: number };
}

/** A cancel this close to the call's deadline (ms) counts as DEADLINE_EXCEEDED (see ServerCall.cancelled). */
const DEADLINE_SLACK_MS = 25;

// @grpc/grpc-js, loaded when the first interceptor is made: a program that never uses gRPC does not
// pay for loading it (most of this package's load time).
const requireHere = createRequire(distUrl);
let grpcModule: typeof grpc | undefined;
function grpcJs(): typeof grpc {
  if (grpcModule === undefined) {
    try {
      grpcModule = requireHere('@grpc/grpc-js') as typeof grpc;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      throw new Error(
        'the gRPC interceptors need @grpc/grpc-js (an optional peer dependency): npm install @grpc/grpc-js',
        { cause: err },
      );
    }
  }
  return grpcModule;
}

// The status codes gRPC defines (grpc/doc/statuscodes.md), by number.
const STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];
const OK = 0;
const CANCELLED = 1;
const DEADLINE_EXCEEDED = 4;

/** The name of a gRPC status code (`'UNAVAILABLE'`), `'STATUS_<n>'` for codes outside the enum. */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `STATUS_${code}`;
}

/**
 * Buffers and typed arrays: their size. Read through BYTES_PER_ELEMENT and length rather than
 * `instanceof Uint8Array` and byteLength, which cost ~25 ns more a message here.
 */
function defaultMessageBytes(message: unknown): number {
  if (typeof message === 'object' && message !== null) {
    const perElement = (message as { BYTES_PER_ELEMENT?: unknown }).BYTES_PER_ELEMENT;
    if (typeof perElement === 'number') return (message as Uint8Array).length * perElement;
  }
  return 0;
}

function checkLabels(labels: Labels | undefined): Labels {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object')
    throw new TypeError('options.labels must be an object of label names to string values');
  for (const reserved of ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code']) {
    if (reserved in labels)
      throw new RangeError(`options.labels must not set ${JSON.stringify(reserved)}: the interceptor sets it`);
  }
  // Checked now, as series() will check them: a bad label set is a mistake to see at setup, not on every call.
  labelPairsOf(labels);
  return labels;
}

function checkFlag(value: boolean | undefined, name: string): boolean {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`options.${name} must be a boolean`);
  return value ?? true;
}

function echoPredicate(opt: GrpcServerInterceptorOptions['echoLatency']): (path: string) => boolean {
  if (opt === undefined || opt === false) return () => false;
  if (opt === true) return () => true;
  if (typeof opt === 'function') return opt;
  if (Array.isArray(opt)) {
    const set = new Set(opt);
    return (path) => set.has(path);
  }
  throw new TypeError('options.echoLatency must be a boolean, a list of method paths or a predicate');
}

let callSeq = 0;

/** The series of one method, resolved once. */
class ServerMethod {
  readonly calls: Recorder;
  readonly labels: Labels;
  readonly callsOptions: KindedSeriesOptions;
  readonly handled: HandledByCode;
  private first: Recorder | undefined;
  private message: Recorder | undefined;

  constructor(
    private readonly monitor: MonitorLike,
    readonly path: string,
    type: GrpcType,
    extra: Labels,
    readonly echo: boolean,
    inTotals: boolean,
  ) {
    this.labels = methodLabels(extra, path, type);
    this.callsOptions = kinded(GRPC_KINDS.server, inTotals);
    this.calls = monitor.series(this.labels, this.callsOptions);
    this.handled = new HandledByCode(monitor, this.labels, kinded(GRPC_KINDS.serverHandled, inTotals));
  }

  firstResponse(): Recorder {
    this.first ??= this.monitor.series(this.labels, FIRST_RESPONSE);
    return this.first;
  }

  messages(): Recorder {
    this.message ??= this.monitor.series(this.labels, MESSAGE);
    return this.message;
  }
}

/** One server call's state; the interceptor's closures call into it. */
class ServerCall {
  private readonly start: number;
  // Copied from the method and the options: one property load each on the per-message path.
  private readonly calls: Recorder;
  private readonly size: MessageSize;
  /** The call's session until the call ends (none with `sessions: false`). */
  private session: Session | undefined;
  /** The session to close at the end (closing one the tracker already ended does nothing). */
  private readonly opened: Session | undefined;
  private finished = false;
  private firstSent = false;
  // echoLatency: a ring of arrival times of requests still awaiting their response.
  private stamps: Float64Array | undefined;
  private head = 0;
  private pending = 0;
  private echo: boolean;
  private readonly every: number;
  private rxCount = 0;
  private txCount = 0;

  constructor(
    private readonly m: ServerMethod,
    private readonly owner: ServerInterceptorState,
  ) {
    this.start = performance.now();
    this.calls = m.calls;
    this.size = owner.size;
    this.echo = m.echo;
    this.every = owner.echoSampleEvery;
    // Unique per process: a session id already open would end that session.
    if (owner.sessions) {
      this.opened = owner.monitor.openSession(`${m.path}#${++callSeq}`, m.labels, m.callsOptions);
      this.session = this.opened;
    } else {
      m.calls.connectionOpened();
    }
  }

  received(message: unknown): void {
    const bytes = this.size(message);
    // Through the session (it counts the message on the series as `in`, and keeps the session
    // from looking idle); a session the tracker has ended still counts it.
    const s = this.session;
    if (s !== undefined) s.message(bytes);
    else this.calls.recordMessages(1, bytes, 'in');
    if (this.echo && this.rxCount++ % this.every === 0) this.stamp();
  }

  private stamp(): void {
    let ring = this.stamps;
    if (ring === undefined) {
      ring = new Float64Array(Math.min(64, this.owner.echoWindow));
      this.stamps = ring;
    } else if (this.pending === ring.length) {
      if (ring.length >= this.owner.echoWindow) {
        // More requests in flight than the window: matching would be guesswork from here on.
        this.echo = false;
        this.stamps = undefined;
        this.owner.echoOverflows++;
        return;
      }
      const grown = new Float64Array(Math.min(ring.length * 2, this.owner.echoWindow));
      for (let i = 0; i < this.pending; i++) grown[i] = ring[(this.head + i) % ring.length];
      this.head = 0;
      ring = grown;
      this.stamps = ring;
    }
    ring[(this.head + this.pending) % ring.length] = performance.now();
    this.pending++;
  }

  sent(message: unknown): void {
    const bytes = this.size(message);
    // Through the session when there is one, so a server-streaming call stays alive while it sends.
    if (this.session !== undefined) this.session.message(bytes, 'out');
    else this.calls.recordMessages(1, bytes, 'out');
    if (this.echo && this.txCount++ % this.every === 0 && this.pending > 0) {
      const ring = this.stamps as Float64Array;
      const now = performance.now();
      this.m.messages().recordLatency(now - ring[this.head]);
      this.head = (this.head + 1) % ring.length;
      this.pending--;
      if (!this.firstSent) this.first(now);
    } else if (!this.firstSent) {
      this.first(performance.now());
    }
  }

  private first(now: number): void {
    this.firstSent = true;
    if (this.owner.firstResponse) this.m.firstResponse().recordLatency(now - this.start);
  }

  finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.m.handled.finish(code, performance.now() - this.start, this.owner.exemplars ? activeSpanIds() : undefined);
    this.session = undefined;
    if (this.opened !== undefined) this.opened.close();
    else this.calls.connectionClosed();
    this.stamps = undefined;
  }

  /**
   * grpc-js calls onCancel after every call, also after a status went out; only a call that ended
   * without one was cancelled. Statuses grpc-js produces below the interceptors (deadline, a
   * message too large or undecodable) never pass through sendStatus. A call that ends this way at
   * (or within DEADLINE_SLACK_MS before) its deadline counts as DEADLINE_EXCEEDED: the client
   * resets the stream at its own deadline, which reaches the server just before the server's copy
   * of the deadline (computed when the headers were read) passes. Anything else is CANCELLED.
   */
  cancelled(call: grpc.ServerInterceptingCallInterface): void {
    if (this.finished) return;
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    const exceeded = Number.isFinite(ms) && Date.now() >= ms - DEADLINE_SLACK_MS;
    this.finish(exceeded ? DEADLINE_EXCEEDED : CANCELLED);
  }
}

class ServerInterceptorState {
  readonly methods = new Map<string, ServerMethod>();
  readonly extra: Labels;
  readonly sessions: boolean;
  readonly inTotals: boolean;
  readonly firstResponse: boolean;
  readonly exemplars: boolean;
  readonly echoWindow: number;
  readonly echoSampleEvery: number;
  readonly echoFor: (path: string) => boolean;
  readonly size: MessageSize;
  readonly instrumented = new WeakMap<object, ServerCallInstruments>();
  calls = 0;
  echoOverflows = 0;

  constructor(
    readonly monitor: MonitorLike,
    options: GrpcServerInterceptorOptions,
  ) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    this.extra = checkLabels(options.labels);
    this.sessions = options.sessions ?? true;
    this.inTotals = options.inTotals ?? true;
    this.firstResponse = options.firstResponse ?? true;
    this.exemplars = checkFlag(options.exemplars, 'exemplars');
    this.echoFor = echoPredicate(options.echoLatency);
    this.echoWindow = options.echoWindow ?? 1024;
    if (!Number.isInteger(this.echoWindow) || this.echoWindow < 1 || this.echoWindow > 1 << 20) {
      throw new RangeError(
        `options.echoWindow must be a whole number from 1 to ${1 << 20} (got ${String(options.echoWindow)})`,
      );
    }
    this.echoSampleEvery = options.echoSampleEvery ?? 1;
    if (!Number.isInteger(this.echoSampleEvery) || this.echoSampleEvery < 1 || this.echoSampleEvery > 1_000_000) {
      throw new RangeError(
        `options.echoSampleEvery must be a whole number from 1 to 1000000 (got ${String(options.echoSampleEvery)})`,
      );
    }
    const size = options.messageBytes ?? defaultMessageBytes;
    if (typeof size !== 'function') throw new TypeError('options.messageBytes must be a function (message) => bytes');
    this.size = size;
  }

  method(path: string, type: GrpcType): ServerMethod {
    let m = this.methods.get(path);
    if (m === undefined) {
      m = new ServerMethod(this.monitor, path, type, this.extra, this.echoFor(path), this.inTotals);
      this.methods.set(path, m);
    }
    return m;
  }
}

/**
 * A server interceptor (`new grpc.Server({ interceptors: [grpcServerInterceptor(monitor)] })`)
 * recording every call per method — see the top of this file for the series.
 *
 * Backpressure is not visible to an interceptor: `call.write()` buffers in the handler's stream
 * object (a Writable with a high-water mark of 16 messages) and hands the interceptor one message
 * at a time, so the interceptor never sees the buffer fill up. Handlers that want it call
 * `interceptor.instrumentCall(call)` (or `instrumentServerCall(monitor, call)`) once.
 */
export function grpcServerInterceptor(
  monitor: MonitorLike,
  options: GrpcServerInterceptorOptions = {},
): GrpcServerInterceptor {
  const state = new ServerInterceptorState(monitor, options);
  const g = grpcJs();
  const interceptor = ((
    descriptor: grpc.ServerMethodDefinition<unknown, unknown>,
    call: grpc.ServerInterceptingCallInterface,
  ) => {
    let m = state.methods.get(descriptor.path);
    if (m === undefined)
      m = state.method(descriptor.path, grpcType(descriptor.requestStream, descriptor.responseStream));
    const c = new ServerCall(m, state);
    state.calls++;
    const listener = new g.ServerListenerBuilder()
      .withOnReceiveMessage((message, next) => {
        c.received(message);
        next(message);
      })
      .withOnCancel(() => c.cancelled(call))
      .build();
    const responder = new g.ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendMessage((message, next) => {
        c.sent(message);
        next(message);
      })
      .withSendStatus((status, next) => {
        c.finish(status.code);
        next(status);
      })
      .build();
    return new g.ServerInterceptingCall(call, responder);
  }) as GrpcServerInterceptor;
  interceptor.instrumentCall = (call) => instrumentCallWith(state, call);
  interceptor.stats = () => ({ calls: state.calls, echoOverflows: state.echoOverflows });
  return interceptor;
}

function instrumentCallWith(state: ServerInterceptorState, call: { getPath(): string }): ServerCallInstruments {
  if (call === null || typeof call !== 'object' || typeof call.getPath !== 'function') {
    throw new TypeError('instrumentCall needs the call object a grpc-js handler receives');
  }
  const done = state.instrumented.get(call);
  if (done !== undefined) return done;
  const writable = call as unknown as AnyStream;
  // Known from the interceptor when it saw the call first; else told by the call object's shape
  // (grpc-js hands a Duplex, a Writable, a Readable or a plain emitter to the four kinds).
  const m = state.methods.get(call.getPath()) ?? state.method(call.getPath(), callObjectType(call));
  if (typeof writable.write === 'function' && typeof writable.on === 'function') {
    const stop = watchBackpressure(writable, m.calls);
    writable.on('close', stop);
  }
  const instruments: ServerCallInstruments = { startTimer: () => m.messages().startTimer() };
  state.instrumented.set(call, instruments);
  return instruments;
}

function callObjectType(call: object): GrpcType {
  const c = call as { read?: unknown; write?: unknown };
  return grpcType(typeof c.read === 'function', typeof c.write === 'function');
}

const defaultServerStates = new WeakMap<MonitorLike, ServerInterceptorState>();

/**
 * The handler-side helper without holding the interceptor: backpressure of `call.write()` and
 * per-message timers, in the same series as `grpcServerInterceptor(monitor, options)`.
 */
export function instrumentServerCall(
  monitor: MonitorLike,
  call: { getPath(): string },
  options: Pick<GrpcServerInterceptorOptions, 'labels'> = {},
): ServerCallInstruments {
  let state = options.labels === undefined ? defaultServerStates.get(monitor) : undefined;
  if (state === undefined) {
    state = new ServerInterceptorState(monitor, { labels: options.labels });
    if (options.labels === undefined) defaultServerStates.set(monitor, state);
  }
  return instrumentCallWith(state, call);
}

/**
 * A client interceptor (`new Client(address, credentials, { interceptors: [grpcClientInterceptor(monitor)] })`
 * or per call) recording per method: calls started and in flight, messages and bytes in and out
 * (`grpc_client` series), and per status code the calls finished and their durations
 * (`grpc_client_handled`, with `grpc_code`).
 */
export function grpcClientInterceptor(
  monitor: MonitorLike,
  options: GrpcClientInterceptorOptions = {},
): GrpcClientInterceptor {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const extra = checkLabels(options.labels);
  const size = options.messageBytes ?? defaultMessageBytes;
  if (typeof size !== 'function') throw new TypeError('options.messageBytes must be a function (message) => bytes');
  const inTotals = options.inTotals ?? false;
  const exemplars = checkFlag(options.exemplars, 'exemplars');
  const callsOptions = kinded(GRPC_KINDS.client, inTotals);
  const handledOptions = kinded(GRPC_KINDS.clientHandled, inTotals);
  const methods = new Map<string, { calls: Recorder; handled: HandledByCode }>();
  const g = grpcJs();
  const interceptor: grpc.Interceptor = (opts, nextCall) => {
    const def = opts.method_definition;
    let rec = methods.get(def.path);
    if (rec === undefined) {
      const labels = methodLabels(extra, def.path, grpcType(def.requestStream, def.responseStream));
      rec = {
        calls: monitor.series(labels, callsOptions),
        handled: new HandledByCode(monitor, labels, handledOptions),
      };
      methods.set(def.path, rec);
    }
    const r = rec.calls;
    const handled = rec.handled;
    let start = 0;
    let finished = false;
    let ids: ExemplarIds | undefined;
    const listener = new g.ListenerBuilder()
      .withOnReceiveMessage((message, next) => {
        r.recordMessages(1, size(message), 'in');
        next(message);
      })
      .withOnReceiveStatus((status, next) => {
        if (!finished) {
          finished = true;
          handled.finish(status.code, performance.now() - start, ids);
          r.connectionClosed();
        }
        next(status);
      })
      .build();
    const requester = new g.RequesterBuilder()
      .withStart((metadata, _listener, next) => {
        start = performance.now();
        // The caller's span: the status arrives later, outside it.
        if (exemplars) ids = activeSpanIds();
        r.connectionOpened();
        next(metadata, listener);
      })
      .withSendMessage((message, next) => {
        r.recordMessages(1, size(message), 'out');
        next(message);
      })
      .build();
    return new g.InterceptingCall(nextCall(opts), requester);
  };
  return interceptor as GrpcClientInterceptor;
}
