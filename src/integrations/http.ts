// node:http servers (and what runs on them: Express, Fastify, plain handlers): request duration by
// method, route and status code, requests in flight, body bytes in and out, and for streaming
// responses (chunked, Server-Sent Events) the time to first byte, write() backpressure with the
// wait until 'drain', and requests the client aborted.
//
// The route is never the raw URL (unbounded cardinality): `options.route(req, res)` names it, else
// `setHttpRoute(req, route)` (from a framework's hook), else Express's matched route
// (`req.baseUrl + req.route.path`), else `unmatchedRoute`. It is read when
// the response ends, after routing; what is recorded before (in flight) is by method only.
//
// The request and response behave as before: only instance methods are wrapped (`req.push`,
// `res.write`, `res.end`) and only listeners that change nothing are added ('finish', 'close',
// 'drain'); no 'data' listener, so a request body nobody reads stays unread.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { activeSpanIds } from '../core/exemplars.js';
import { type KindedSeriesOptions, SERIES_KIND } from '../record/recorder.js';
import type { MonitorLike } from './streams.js';
import type { ExemplarIds, Labels, Recorder } from '../core/types.js';

/** The series kinds of the HTTP instrument (see integration-families.ts for their families). */
export const HTTP_KINDS = Object.freeze({
  active: 'http_server_active',
  requests: 'http_server',
  handled: 'http_server_handled',
  firstByte: 'http_server_first_byte',
  aborted: 'http_server_aborted',
});

export interface HttpServerOptions {
  /**
   * The route of a request (`'/users/:id'`), read when its response ends. Must not be the raw URL.
   * Default: the route given to setHttpRoute(req, route), else Express's matched route, else
   * `unmatchedRoute`.
   */
  route?: (req: IncomingMessage, res: ServerResponse) => string | undefined;
  /** The route label of requests no route matched. Default `'unmatched'`. */
  unmatchedRoute?: string;
  /** Extra labels on every series. */
  labels?: Labels;
  /** Whether requests add into the monitor-wide totals (requests, latency, 5xx as errors). Default true. */
  inTotals?: boolean;
  /**
   * Link each request's duration to its OpenTelemetry span (an exemplar), when `@opentelemetry/api`
   * is installed: the sampled span active when the response is ended, else when the request
   * arrived (where OpenTelemetry's HTTP instrumentation makes it). Default true.
   */
  exemplars?: boolean;
}

export interface HttpInstrument {
  /** Stops instrumenting new requests (requests under way finish their records). */
  stop(): void;
}

// Methods as OpenTelemetry lists them; anything else is `_OTHER` (a method is client-chosen text).
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const RESERVED = ['http_request_method', 'http_route', 'http_response_status_code'];

function kinded(kind: string, inTotals: boolean): KindedSeriesOptions {
  return Object.freeze({ inTotals, [SERIES_KIND]: kind });
}

const routes = new WeakMap<IncomingMessage, string>();

/**
 * Names the route of a request for the instrument, from a framework's router: e.g. Fastify's
 * `app.addHook('onRequest', async (request) => setHttpRoute(request.raw, request.routeOptions.url))`.
 */
export function setHttpRoute(req: IncomingMessage, route: string): void {
  if (typeof route !== 'string') throw new TypeError('route must be a string');
  routes.set(req, route);
}

/** The route set with setHttpRoute, else Express's matched route. */
function knownRoute(req: IncomingMessage): string | undefined {
  const set = routes.get(req);
  if (set !== undefined) return set;
  const r = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };
  const path = r.route?.path;
  if (typeof path !== 'string') return undefined;
  return (typeof r.baseUrl === 'string' ? r.baseUrl : '') + path;
}

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string')
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/** The series of one method and route, made on first use. */
class Route {
  readonly requests: Recorder;
  readonly firstByte: Recorder;
  private readonly handled = new Map<number, Recorder>();
  private abortedSeries: Recorder | undefined;

  constructor(
    private readonly monitor: MonitorLike,
    private readonly labels: Labels,
    private readonly inTotals: boolean,
  ) {
    this.requests = monitor.series(labels, kinded(HTTP_KINDS.requests, inTotals));
    this.firstByte = monitor.series(labels, kinded(HTTP_KINDS.firstByte, false));
  }

  /** A finished response: 5xx counts as a failed request (of its status), anything else as a success; linked to `ids` when given. */
  finish(status: number, durationMs: number, ids: ExemplarIds | undefined): void {
    let r = this.handled.get(status);
    if (r === undefined) {
      r = this.monitor.series(
        { ...this.labels, http_response_status_code: String(status) },
        kinded(HTTP_KINDS.handled, this.inTotals),
      );
      this.handled.set(status, r);
    }
    if (ids !== undefined) {
      if (status >= 500) r.recordErrorWithExemplar(String(status), durationMs, ids);
      else r.recordLatencyWithExemplar(durationMs, ids);
    } else if (status >= 500) r.recordError(String(status), durationMs);
    else r.recordLatency(durationMs);
  }

  aborted(durationMs: number): void {
    // Not the server's failure, and never completed: counted apart, out of the totals.
    this.abortedSeries ??= this.monitor.series(this.labels, kinded(HTTP_KINDS.aborted, false));
    this.abortedSeries.recordError('aborted', durationMs);
  }
}

class State {
  readonly extra: Labels;
  readonly inTotals: boolean;
  readonly exemplars: boolean;
  readonly unmatched: string;
  readonly route: (req: IncomingMessage, res: ServerResponse) => string | undefined;
  private readonly routes = new Map<string, Route>();
  private readonly active = new Map<string, Recorder>();

  constructor(
    readonly monitor: MonitorLike,
    options: HttpServerOptions,
  ) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const labels = options.labels ?? {};
    if (labels === null || typeof labels !== 'object')
      throw new TypeError('options.labels must be an object of label names to string values');
    for (const name of RESERVED) {
      if (name in labels)
        throw new RangeError(`options.labels must not set ${JSON.stringify(name)}: the instrument sets it`);
    }
    this.extra = labels;
    this.inTotals = options.inTotals ?? true;
    if (options.exemplars !== undefined && typeof options.exemplars !== 'boolean')
      throw new TypeError('options.exemplars must be a boolean');
    this.exemplars = options.exemplars ?? true;
    this.unmatched = options.unmatchedRoute ?? 'unmatched';
    if (typeof this.unmatched !== 'string') throw new TypeError('options.unmatchedRoute must be a string');
    const route = options.route;
    if (route !== undefined && typeof route !== 'function')
      throw new TypeError('options.route must be a function (req, res) => route');
    this.route = route ?? knownRoute;
  }

  activeFor(method: string): Recorder {
    let r = this.active.get(method);
    if (r === undefined) {
      r = this.monitor.series(
        Object.freeze({ ...this.extra, http_request_method: method }),
        kinded(HTTP_KINDS.active, false),
      );
      this.active.set(method, r);
    }
    return r;
  }

  routeFor(method: string, route: string): Route {
    const key = `${method} ${route}`;
    let r = this.routes.get(key);
    if (r === undefined) {
      r = new Route(
        this.monitor,
        Object.freeze({ ...this.extra, http_request_method: method, http_route: route }),
        this.inTotals,
      );
      this.routes.set(key, r);
    }
    return r;
  }
}

/** One request under way. */
class Exchange {
  private readonly start = performance.now();
  private firstByteMs = -1;
  private chunksIn = 0;
  private bytesIn = 0;
  private chunksOut = 0;
  private bytesOut = 0;
  private waits: number[] | undefined;
  private drainFrom = -1;
  private done = false;
  private readonly active: Recorder;
  private readonly method: string;
  /** The trace of the request, for an exemplar (see HttpServerOptions.exemplars). */
  private ids: ExemplarIds | undefined;

  constructor(
    private readonly state: State,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    const m = (req.method ?? '').toUpperCase();
    this.method = METHODS.has(m) ? m : '_OTHER';
    this.active = state.activeFor(this.method);
    this.active.connectionOpened();
    if (state.exemplars) this.ids = activeSpanIds();
    this.wrap();
    res.on('finish', () => this.end(false));
    // 'close' without 'finish': the connection went away before the response was complete.
    res.on('close', () => this.end(!res.writableFinished));
  }

  private wrap(): void {
    const req = this.req as IncomingMessage & { push(chunk: unknown, encoding?: BufferEncoding): boolean };
    const push = req.push;
    req.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (chunk !== null) {
        this.chunksIn++;
        this.bytesIn += chunkBytes(chunk, encoding);
      }
      return push.call(req, chunk, encoding);
    };
    const res = this.res;
    const write = res.write;
    const end = res.end;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      this.out(chunk, rest[0]);
      const ok = (write as (...a: unknown[]) => boolean).call(res, chunk, ...rest);
      if (!ok && this.drainFrom < 0) {
        // Refused: the wait runs until 'drain' (or the end of the response).
        this.drainFrom = performance.now();
        res.once('drain', () => this.drained());
      }
      return ok;
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      if (typeof args[0] !== 'function') this.out(args[0], args[1]);
      else this.out(undefined, undefined);
      if (this.state.exemplars) this.ids = activeSpanIds() ?? this.ids;
      return (end as (...a: unknown[]) => ServerResponse).apply(res, args);
    }) as ServerResponse['end'];
  }

  private out(chunk: unknown, encoding: unknown): void {
    if (this.firstByteMs < 0) this.firstByteMs = performance.now() - this.start;
    const bytes = chunkBytes(chunk, encoding);
    if (bytes > 0) {
      this.chunksOut++;
      this.bytesOut += bytes;
    }
  }

  private drained(): void {
    if (this.drainFrom < 0) return;
    (this.waits ??= []).push(performance.now() - this.drainFrom);
    this.drainFrom = -1;
  }

  private end(aborted: boolean): void {
    if (this.done) return;
    this.done = true;
    const duration = performance.now() - this.start;
    this.active.connectionClosed();
    this.drained();
    const name = this.state.route(this.req, this.res);
    const route = this.state.routeFor(
      this.method,
      typeof name === 'string' && name.length > 0 ? name : this.state.unmatched,
    );
    const r = route.requests;
    if (this.chunksIn > 0) r.recordMessages(this.chunksIn, this.bytesIn, 'in');
    if (this.chunksOut > 0) r.recordMessages(this.chunksOut, this.bytesOut, 'out');
    if (this.waits !== undefined) for (const w of this.waits) r.recordBackpressureEvent(w);
    if (this.firstByteMs >= 0) route.firstByte.recordLatency(this.firstByteMs);
    if (aborted) route.aborted(duration);
    else route.finish(this.res.statusCode, duration, this.ids);
  }
}

/**
 * Instruments a `node:http` (or `node:https`) server: every request from now on is recorded (see
 * the top of this file). Works under Express, Fastify and plain handlers, whatever answers the
 * request: the instrument listens first on the server's 'request' event.
 */
export function instrumentHttpServer(
  monitor: MonitorLike,
  server: Server,
  options: HttpServerOptions = {},
): HttpInstrument {
  if (server === null || typeof server !== 'object' || typeof (server as Server).prependListener !== 'function') {
    throw new TypeError('server must be a node:http Server');
  }
  const state = new State(monitor, options);
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    new Exchange(state, req, res);
  };
  // First, so the clock starts before the application's own handler runs.
  server.prependListener('request', onRequest);
  return { stop: () => server.off('request', onRequest) };
}
