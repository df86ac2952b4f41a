// The live dashboard: a page, its assets, a JSON API and a Server-Sent Events stream, served from
// whatever implements DashboardSource (the monitor). Everything here is read-only and bounded:
// a slow browser drops frames instead of growing a buffer, and every timer is unref()ed.

import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { distUrl } from '../core/module-url.js';
import type { Labels, PerformanceSummary, PerformanceTargets, TargetComparison } from '../core/types.js';

/** The granularity of a history: one point per tick, or a rollup per minute, hour or day. */
export type Resolution = 'tick' | 'minute' | 'hour' | 'day';

export const RESOLUTIONS: readonly Resolution[] = ['tick', 'minute', 'hour', 'day'];

/**
 * The figures charted on the dashboard. Units, at every resolution:
 * `rps` requests per second; `p50`/`p95`/`p99` latency in ms; `errorRate` failed/total (0..1);
 * `activeConnections` open connections/streams; `memoryBytes` bytes; `eventLoopDelayMs` ms;
 * `workerUtilization` 0..1; `queueDepth` items; `cacheHitRatio` 0..1; `backpressure` events per
 * second (a rate, so a rollup and a tick are comparable).
 */
export const DASHBOARD_FIELDS = [
  'rps',
  'p50',
  'p95',
  'p99',
  'errorRate',
  'activeConnections',
  'memoryBytes',
  'eventLoopDelayMs',
  'workerUtilization',
  'queueDepth',
  'cacheHitRatio',
  'backpressure',
] as const;

export type DashboardField = (typeof DASHBOARD_FIELDS)[number];

/** History as columns: `t` in ms since the epoch, ascending; a NaN value means no data. */
export interface HistoryColumns {
  resolution: Resolution;
  t: number[];
  fields: Record<DashboardField, number[]>;
  /** Optional: anomalies that overlap this span, when the source keeps them. */
  anomalies?: AnomalyMark[];
  /** How many consecutive points each value stands for (1: none reduced), and how many the range held. */
  pointsPerValue?: number;
  pointsInRange?: number;
}

/** Points /api/history answers with unless `maxPoints` says otherwise: what a chart can show. */
const DEFAULT_MAX_POINTS = 2000;
/** The most `maxPoints` may ask for: the cost of one request stays bounded whatever the history holds. */
const MAX_POINTS = 10_000;

/** What /api/history asks of the source besides the resolution. */
export interface HistoryQuery {
  sinceMs?: number;
  untilMs?: number;
  /** At most this many points: past it, runs of consecutive points are reduced to one value each. */
  maxPoints: number;
}

/**
 * A detected anomaly. `series` names what it was found in — a DashboardField (e.g. `'p99'`) is
 * drawn on that chart; any other name is only listed. `start`/`end` in ms; no `end` = ongoing.
 */
export interface AnomalyMark {
  series: string;
  /** The most extreme value of the incident (so far, while it lasts). */
  value: number;
  expectedLow: number;
  expectedHigh: number;
  /** Distance from the expectation, in standard deviations. */
  score: number;
  direction: 'up' | 'down';
  start: number;
  end?: number;
}

/** One series (label set) over the current window. Units as in DASHBOARD_FIELDS. */
export interface SeriesRow {
  labels: Labels;
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errorRate: number;
}

/**
 * Everything the page shows at one tick. `anomalies` are the recent ones (active or recently
 * ended). The page reads achievements, success rate, utilisation and cache efficiency as ratios
 * (1 = 100 %), and memory as MB of 2^20 bytes.
 */
export interface DashboardFrame {
  t: number;
  point: Record<DashboardField, number>;
  summary: PerformanceSummary;
  comparison: TargetComparison;
  targets: PerformanceTargets;
  series: SeriesRow[];
  anomalies: AnomalyMark[];
  errorsByType: Record<string, number>;
}

/** What the monitor implements for the dashboard. */
export interface DashboardSource {
  current(): DashboardFrame;
  history(resolution: Resolution, sinceMs?: number, query?: HistoryQuery): HistoryColumns;
  /** Calls `listener` after every tick; returns the unsubscribe function. */
  onTick(listener: (frame: DashboardFrame) => void): () => void;
}

export interface DashboardOptions {
  /** Mount point, e.g. `'/dashboard'`; the page is then at `/dashboard/`. Default `''` (the root). */
  basePath?: string;
  /** Milliseconds between SSE comment heartbeats (keeps proxies from closing idle streams). Default 15 000. */
  heartbeatMs?: number;
  /** Reconnection delay suggested to browsers, ms. Default 2000. */
  retryMs?: number;
  /** Concurrent SSE clients allowed; more get 503. Default 32. */
  maxClients?: number;
}

const PAGE_DIR = fileURLToPath(new URL('../../dashboard/', distUrl));
const requireFromHere = createRequire(distUrl);

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

// The page builds its DOM with textContent only; this policy is the second line of defence.
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

const VENDOR: Record<string, string> = {
  'uplot.js': 'uplot/dist/uPlot.iife.min.js',
  'uplot.css': 'uplot/dist/uPlot.min.css',
};

interface Asset {
  path: string;
  /** A name the client made up (404 when absent), rather than a file the install must have (500). */
  guessable: boolean;
}

/** Page assets by URL name: own files from dashboard/, uPlot from node_modules. */
function findAsset(name: string): Asset | undefined {
  const vendor = VENDOR[name];
  if (vendor) {
    try {
      return { path: requireFromHere.resolve(vendor), guessable: false };
    } catch {
      // Not installed: name where it would be, so the 500 that follows says what is missing.
      return { path: `${PAGE_DIR}../node_modules/${vendor}`, guessable: false };
    }
  }
  // A plain name, no slashes or dots beyond the extension: nothing outside dashboard/ is reachable.
  if (/^[a-z0-9-]+\.(js|css)$/.test(name)) return { path: PAGE_DIR + name, guessable: true };
  return undefined;
}

/**
 * Escapes what could end a `<script>` or be sniffed as HTML. Only JSON strings can contain these
 * characters, and `\u003c` is the same string to a JSON parser.
 */
export function toSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

class BadRequest extends Error {}

function parseQuery(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of url.searchParams) {
    if (!allowed.includes(key)) {
      const hint = allowed.length ? `allowed: ${allowed.join(', ')}` : 'this endpoint takes none';
      throw new BadRequest(`unknown query parameter "${key}" (${hint})`);
    }
    if (out.has(key)) throw new BadRequest(`query parameter "${key}" given more than once`);
    out.set(key, value);
  }
  return out;
}

function parseHistoryQuery(url: URL): { resolution: Resolution; query: HistoryQuery } {
  const params = parseQuery(url, ['resolution', 'since', 'until', 'maxPoints']);
  const resolution = params.get('resolution') ?? 'tick';
  if (!(RESOLUTIONS as readonly string[]).includes(resolution)) {
    throw new BadRequest(`resolution must be one of ${RESOLUTIONS.join(', ')}; got "${resolution}"`);
  }
  const time = (name: string): number | undefined => {
    const text = params.get(name);
    if (text === undefined || text === '') return undefined;
    const v = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(v)) {
      throw new BadRequest(`${name} must be a time in ms since the epoch (a non-negative number); got "${text}"`);
    }
    return v;
  };
  const maxText = params.get('maxPoints');
  let maxPoints = DEFAULT_MAX_POINTS;
  if (maxText !== undefined && maxText !== '') {
    maxPoints = Number(maxText);
    if (!/^\d+$/.test(maxText) || maxPoints < 1 || maxPoints > MAX_POINTS) {
      throw new BadRequest(`maxPoints must be a whole number from 1 to ${MAX_POINTS}; got "${maxText}"`);
    }
  }
  return { resolution: resolution as Resolution, query: { sinceMs: time('since'), untilMs: time('until'), maxPoints } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = toSafeJson(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(text);
}

/** Reads each asset once; a missing one is retried on the next request rather than cached as an error. */
class AssetCache {
  private readonly files = new Map<string, Promise<Buffer>>();

  get(path: string): Promise<Buffer> {
    let file = this.files.get(path);
    if (!file) {
      file = readFile(path);
      file.catch(() => this.files.delete(path));
      this.files.set(path, file);
    }
    return file;
  }
}

async function sendAsset(
  cache: AssetCache,
  res: ServerResponse,
  asset: Asset,
  head: boolean,
  csp: boolean,
): Promise<void> {
  const { path } = asset;
  let body: Buffer;
  try {
    body = await cache.get(path);
  } catch (error) {
    // An unknown name is the client's mistake; a missing page or vendor file is the install's.
    if (asset.guessable && (error as NodeJS.ErrnoException).code === 'ENOENT')
      sendText(res, 404, 'no such dashboard asset');
    else sendText(res, 500, `dashboard asset missing: ${path} (${(error as Error).message})`);
    return;
  }
  const ext = path.slice(path.lastIndexOf('.') + 1);
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    ...(csp ? { 'content-security-policy': PAGE_CSP } : {}),
    'content-type': TYPES[ext] ?? 'application/octet-stream',
    'content-length': body.length,
    // Served from the monitor itself: revalidating costs nothing and avoids stale pages after an upgrade.
    'cache-control': 'no-cache',
  });
  res.end(head ? undefined : body);
}

/**
 * Fans the source's ticks out to every connected browser: one subscription and one serialisation
 * per tick whatever the number of clients; subscribed only while someone listens.
 */
class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private unsubscribe: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: DashboardSource,
    private readonly heartbeatMs: number,
    private readonly retryMs: number,
    private readonly maxClients: number,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  add(res: ServerResponse): void {
    if (this.clients.size >= this.maxClients) {
      sendText(res, 503, `too many dashboard clients (limit ${this.maxClients})`, { 'retry-after': '10' });
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // tells nginx-style proxies not to hold events back
    });
    res.socket?.setNoDelay(true);
    res.write(`retry: ${this.retryMs}\n: streamgauge dashboard\n\n`);
    this.clients.add(res);
    res.on('close', () => this.remove(res));
    if (this.clients.size === 1) this.start();
    // The page gets the current state at once instead of waiting for the next tick.
    try {
      this.write(res, this.encode(this.source.current()));
    } catch {
      // No frame yet (e.g. before the first tick): the next tick will carry one.
    }
  }

  private start(): void {
    this.unsubscribe = this.source.onTick((frame) => this.broadcast(this.encode(frame)));
    this.heartbeat = setInterval(() => this.broadcast(': heartbeat\n\n'), this.heartbeatMs);
    this.heartbeat.unref();
  }

  private remove(res: ServerResponse): void {
    if (!this.clients.delete(res) || this.clients.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private encode(frame: DashboardFrame): string {
    // JSON escapes newlines, so the whole frame fits on one `data:` line.
    return `event: tick\nid: ${frame.t}\ndata: ${toSafeJson(frame)}\n\n`;
  }

  private broadcast(chunk: string): void {
    for (const res of this.clients) this.write(res, chunk);
  }

  private write(res: ServerResponse, chunk: string): void {
    // A client that does not keep up misses frames rather than queueing them in memory.
    if (res.destroyed || res.writableEnded || res.writableNeedDrain) return;
    res.write(chunk);
  }
}

/**
 * Returns a request handler for the dashboard. It answers `GET`/`HEAD` on `/` (the page),
 * `/assets/*`, `/api/history`, `/api/current` and `/events` under `basePath`, and returns false
 * for any other path so the caller can serve it (e.g. `/metrics`).
 */
export function createDashboardHandler(
  source: DashboardSource,
  options: DashboardOptions = {},
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const base = (options.basePath ?? '').replace(/\/+$/, '');
  if (base !== '' && !/^\/[A-Za-z0-9._~\-/]*$/.test(base)) {
    throw new TypeError(`options.basePath must be a URL path like "/dashboard"; got "${options.basePath}"`);
  }
  const heartbeatMs = positive(options.heartbeatMs, 15_000, 'heartbeatMs');
  const retryMs = positive(options.retryMs, 2000, 'retryMs');
  const maxClients = positive(options.maxClients, 32, 'maxClients');
  const hub = new EventHub(source, heartbeatMs, retryMs, maxClients);
  const assets = new AssetCache();

  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // A target no URL parser takes (e.g. '//[', read as a host '['): the client's mistake.
      sendText(res, 400, `bad request target: ${JSON.stringify(req.url)}`);
      return true;
    }
    const path = url.pathname;
    if (base !== '' && path === base) {
      // Without the slash, the page's relative asset URLs would resolve one level too high.
      res.writeHead(308, { ...SECURITY_HEADERS, location: `${base}/${url.search}` });
      res.end();
      return true;
    }
    if (!path.startsWith(`${base}/`)) return false;
    const route = path.slice(base.length);
    const isOurs = route === '/' || route === '/events' || route.startsWith('/api/') || route.startsWith('/assets/');
    if (!isOurs) return false;

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `method ${req.method} not allowed`, { allow: 'GET, HEAD' });
      return true;
    }
    const head = req.method === 'HEAD';
    try {
      if (route === '/') {
        void sendAsset(assets, res, { path: `${PAGE_DIR}index.html`, guessable: false }, head, true);
      } else if (route.startsWith('/assets/')) {
        const asset = findAsset(route.slice('/assets/'.length));
        if (asset) void sendAsset(assets, res, asset, head, false);
        else sendText(res, 404, 'no such dashboard asset');
      } else if (route === '/api/history') {
        const { resolution, query } = parseHistoryQuery(url);
        sendJson(res, 200, source.history(resolution, query.sinceMs, query), head);
      } else if (route === '/api/current') {
        parseQuery(url, []);
        sendJson(res, 200, source.current(), head);
      } else if (route === '/events') {
        parseQuery(url, []);
        if (head) sendText(res, 200, '', { 'content-type': 'text/event-stream; charset=utf-8' });
        else hub.add(res);
      } else {
        sendJson(res, 404, { error: `no such endpoint: ${route}` }, head);
      }
    } catch (error) {
      if (error instanceof BadRequest) sendJson(res, 400, { error: error.message }, head);
      else sendJson(res, 500, { error: `dashboard source failed: ${(error as Error).message}` }, head);
    }
    return true;
  };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`options.${name} must be a positive number; got ${String(value)}`);
  }
  return value;
}
