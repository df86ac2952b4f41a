// Serving the outputs over HTTP: /metrics (negotiated format), /debug (every detail as JSON) and
// the dashboard. Binds 127.0.0.1 unless told otherwise.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { createDashboardHandler, type DashboardOptions, toSafeJson } from './dashboard-handler.js';
import { dashboardSource } from './dashboard-source.js';
import { type CollectOptions, CountsArena, collectFamiliesInto } from '../export/collect-families.js';
import { HISTOGRAMS } from '../core/layout.js';
import { nodeHttp } from '../core/builtins.js';
import { bucketList } from '../core/family-model.js';
import { type Rendered, type RenderOptions, render, renderBytes, textLadder } from '../export/exposition.js';
import { internalsOf, type MonitorReader } from '../analysis/monitor-reader.js';

export type MetricsOptions = Omit<RenderOptions, 'accept'> & CollectOptions;

// A scrape renders what it collects at once, so each monitor's scrapes share one arena of counts.
const arenas = new WeakMap<MonitorReader, CountsArena>();

/** The monitor's metrics in the format an Accept header asks for (text 0.0.4 by default). */
export function renderMetrics(monitor: MonitorReader, accept?: string | null, options: MetricsOptions = {}): Rendered {
  return renderWith(render, monitor, accept, options);
}

// The handler sends bytes: a text body is not made a string only to be encoded again.
function renderWith(
  renderer: typeof render,
  monitor: MonitorReader,
  accept: string | null | undefined,
  options: MetricsOptions,
): Rendered {
  let arena = arenas.get(monitor);
  if (arena === undefined) arenas.set(monitor, (arena = new CountsArena()));
  const { rpcNames, runtime, runtimePrefix, ...renderOptions } = options ?? {};
  // A text format prints only classic buckets: the series' histograms are read for those alone.
  const classic = textLadder(accept, renderOptions.classicBoundariesSeconds);
  return renderer(collectFamiliesInto(monitor, arena, { rpcNames, runtime, runtimePrefix }, classic), {
    ...renderOptions,
    accept,
  });
}

/** A `node:http` request handler for `/metrics` (or `path`); returns false for other paths. */
export function metricsHandler(
  monitor: MonitorReader,
  options: MetricsOptions & { path?: string } = {},
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const path = options.path ?? '/metrics';
  return (req, res) => {
    if (pathOf(req) !== path) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    let out: Rendered;
    try {
      out = renderWith(renderBytes, monitor, req.headers.accept, options);
    } catch (err) {
      res
        .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`metrics could not be rendered: ${(err as Error).message}\n`);
      return true;
    }
    let body: Uint8Array = typeof out.body === 'string' ? Buffer.from(out.body, 'utf8') : out.body;
    const headers: Record<string, string | number> = {
      'content-type': out.contentType,
      'cache-control': 'no-store',
      vary: 'accept, accept-encoding',
    };
    // Prometheus asks for gzip; a scrape of many series shrinks several-fold.
    if (body.byteLength > 1024 && acceptsGzip(req.headers['accept-encoding'])) {
      body = gzipSync(body, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = body.byteLength;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

/** Everything the monitor knows, for debugging: layout, every series with every bucket, counters. */
export function debugSnapshot(monitor: MonitorReader): unknown {
  const series = monitor.seriesList().map((s) => {
    const histograms: Record<string, unknown> = {};
    for (const name of HISTOGRAMS) {
      const { dense: _dense, ...h } = monitor.nativeHistogram(s.index, name);
      histograms[name] = { ...h, buckets: bucketList(h) };
    }
    return {
      ...s,
      totals: monitor.totals(s.index),
      window: monitor.windowFigures(s.index),
      errorsByType: monitor.errorsByType(s.index),
      histograms,
    };
  });
  const { clock: _clock, logger, ...config } = monitor.config;
  return {
    config: { ...config, logger: logger === false ? false : logger ? 'pino' : undefined },
    metrics: monitor.getCurrentMetrics(),
    summary: monitor.getPerformanceSummary(),
    comparison: monitor.compareWithTargets(),
    sessions: monitor.sessionStats(20),
    lastTick: internalsOf(monitor).lastTickEvent(),
    memoryFootprint: monitor.memoryFootprint(),
    layout: internalsOf(monitor).layout,
    series,
  };
}

export interface ServeOptions extends MetricsOptions {
  port?: number;
  /** Default 127.0.0.1; pass '0.0.0.0' or '::' only when the endpoint must be reachable from elsewhere. */
  host?: string;
  /** Serve the dashboard at `/`. Default true. */
  dashboard?: boolean | DashboardOptions;
}

export interface Served {
  server: Server;
  port: number;
  host: string;
  url: string;
  close(): Promise<void>;
}

/** Starts an HTTP server with /metrics, /debug, /snapshot (for mergeSnapshots) and the dashboard. */
export async function serve(monitor: MonitorReader, options: ServeOptions = {}): Promise<Served> {
  if (internalsOf(monitor).isClosed()) throw new Error('serve() after monitor.close(): the monitor is closed');
  const { port = 0, host = '127.0.0.1', dashboard = true, ...metricsOptions } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`port must be a whole number from 0 to 65535 (got ${port})`);
  if (typeof host !== 'string' || host === '') throw new TypeError('host must be a non-empty string');
  const metrics = metricsHandler(monitor, metricsOptions);
  const dash = dashboard
    ? createDashboardHandler(dashboardSource(monitor), dashboard === true ? {} : dashboard)
    : undefined;
  const server = nodeHttp().createServer((req, res) => {
    try {
      if (metrics(req, res)) return;
      const path = pathOf(req);
      if ((path === '/debug' || path === '/snapshot') && req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/debug') {
        const json = Buffer.from(toSafeJson(debugSnapshot(monitor)), 'utf8');
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': json.byteLength,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
        });
        res.end(req.method === 'HEAD' ? undefined : json);
        return;
      }
      if (path === '/snapshot') {
        const bytes = monitor.snapshot();
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': bytes.byteLength,
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : bytes);
        return;
      }
      if (dash?.(req, res)) return;
      res
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end('not found: try /metrics, /debug, /snapshot or /\n');
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`internal error: ${(err as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') {
        reject(
          new Error(`port ${port} on ${host} is in use (another server listens there); port: 0 picks a free port`, {
            cause: err,
          }),
        );
      } else reject(err);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const onClose = () => void closeServer();
  monitor.once('close', onClose);
  const closeServer = () =>
    new Promise<void>((resolve) => {
      monitor.off('close', onClose);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { server, port: addr.port, host: addr.address, url: `http://${shownHost}:${addr.port}`, close: closeServer };
}

/** Whether an Accept-Encoding header accepts gzip (listed, or by `*`, with a q above 0). */
function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  let star = false;
  for (const part of value.split(',')) {
    const [coding, ...params] = part.split(';');
    const name = coding.trim().toLowerCase();
    if (name !== 'gzip' && name !== '*') continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k.trim().toLowerCase() === 'q') q = Number(v);
    }
    if (name === 'gzip') return q > 0;
    star = q > 0;
  }
  return star;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
