// node:cluster: each worker keeps its own monitor and answers the primary's requests for its
// snapshot over the cluster's IPC channel; the primary merges them (mergeSnapshots: counters
// summed, histograms bucket by bucket) and serves one exposition for all workers.
import cluster, { type Worker } from 'node:cluster';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { COUNTERS, exposedLabels } from './families.js';
import { type Rendered, type RenderOptions, render } from './exposition.js';
import { bucketList, type Metric, type MetricFamily } from './metric-families.js';
import type { StreamPerformanceMonitor } from './monitor.js';
import { seriesKey } from './recorder.js';
import { decodeSnapshot, encodeSnapshot, mergeSnapshots, type Snapshot, takeSnapshot } from './snapshot.js';
import { COUNTER_FIELDS, type CounterField, type Totals } from './totals.js';
import type { Labels } from './types.js';

const REQUEST = 'streamgauge:snapshot-request';
const REPORT = 'streamgauge:snapshot';
const SERVICE_KIND = 'streamgauge:service';

/** A series' gauges as a worker reports them (JSON over IPC: NaN, "not reported", travels as null). */
type GaugeRow = [labels: Labels, activeConnections: number | null, queueDepth: number | null, workerUtilization: number | null, memoryBytes: number | null];

interface ReportMessage {
  type: typeof REPORT;
  /** The request answered, or 0 for a report the worker sent on its own (periodic, final). */
  id: number;
  /** encodeSnapshot() bytes, base64 (the channel's default serialisation is JSON). */
  snapshot: string;
  gauges: GaugeRow[];
}

export interface ReportToPrimaryOptions {
  /**
   * Also send a snapshot every `intervalMs` without being asked (0: only on request). What a
   * worker recorded after its last report is lost if it is killed; this bounds how much.
   */
  intervalMs?: number;
}

/**
 * In a cluster worker: answers the primary's `clusterMetrics()` with this monitor's snapshot. Sends
 * a last report when the monitor closes. Returns a function that stops reporting.
 */
export function reportToPrimary(monitor: StreamPerformanceMonitor, options: ReportToPrimaryOptions = {}): () => void {
  if (monitor === null || typeof monitor !== 'object' || typeof monitor.snapshot !== 'function') throw new TypeError('monitor must be a StreamPerformanceMonitor');
  if (typeof process.send !== 'function') throw new Error('reportToPrimary() needs an IPC channel to the primary: call it in a node:cluster worker');
  const intervalMs = options.intervalMs ?? 0;
  if (typeof intervalMs !== 'number' || !(intervalMs >= 0) || !Number.isFinite(intervalMs)) throw new RangeError(`options.intervalMs must be a finite number >= 0 (got ${String(intervalMs)})`);
  const send = (id: number, final = false) => {
    if ((monitor.isClosed && !final) || !process.connected) return;
    const gauges: GaugeRow[] = [];
    for (const s of monitor.seriesList()) {
      if (s.kind !== undefined) continue;
      const t = monitor.totals(s.index);
      gauges.push([s.labels, t.activeConnections, t.queueDepth, t.workerUtilization, t.memoryBytes]);
    }
    const message: ReportMessage = { type: REPORT, id, snapshot: Buffer.from(encodeSnapshot(withService(monitor))).toString('base64'), gauges };
    // A channel closing under the send (the primary going away) is not this worker's error.
    process.send?.(message, undefined, undefined, () => {});
  };
  const onMessage = (msg: unknown) => {
    const m = msg as { type?: unknown; id?: unknown } | null;
    if (m !== null && typeof m === 'object' && m.type === REQUEST && typeof m.id === 'number') send(m.id);
  };
  process.on('message', onMessage);
  // A first report at once: the primary asks only workers it has heard from, so a worker still
  // starting (or one that never reports) does not hold up a scrape.
  send(0);
  const timer = intervalMs > 0 ? setInterval(() => send(0), intervalMs) : undefined;
  timer?.unref();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    process.off('message', onMessage);
    monitor.off('close', onClose);
  };
  // The monitor is still readable when 'close' is emitted: its final counts go to the primary.
  const onClose = () => {
    send(0, true);
    stop();
  };
  monitor.on('close', onClose);
  return stop;
}

/**
 * The monitor's snapshot plus its service totals (each request once, whatever its family: what the
 * alert rules read) as one more series, so that they merge, and outlive a worker, like the rest.
 */
function withService(monitor: StreamPerformanceMonitor): Snapshot {
  const snapshot = takeSnapshot(monitor);
  const t = monitor.totals();
  const counters = {} as Record<CounterField, number>;
  for (const f of COUNTER_FIELDS) counters[f] = t[f];
  const { dense: _dense, ...h } = monitor.totalLatencyHistogram();
  snapshot.series.push({
    labels: {},
    kind: SERVICE_KIND,
    counters,
    errorsByType: monitor.errorsByType(),
    latency: { ...h, buckets: bucketList(h), minMs: t.latencyMinMs, maxMs: t.latencyMaxMs },
  });
  return snapshot;
}

export interface ClusterMetricsOptions extends Omit<RenderOptions, 'accept'> {
  /**
   * How long a scrape waits for each worker's answer (ms); a late worker counts with its previous
   * report. Keep it below the scrape timeout. Default 500.
   */
  timeoutMs?: number;
}

export interface ClusterServed {
  port: number;
  host: string;
  url: string;
  close(): Promise<void>;
}

export interface ClusterMetrics {
  /** Asks every worker for its snapshot and returns the merge, with the last counts of workers that exited. */
  collect(): Promise<Snapshot>;
  /** The merged metrics in the format an Accept header asks for. */
  metrics(accept?: string | null): Promise<Rendered>;
  /** A `node:http` handler for `/metrics` (or `path`); returns false for other paths. */
  handler(path?: string): (req: IncomingMessage, res: ServerResponse) => boolean;
  /** An HTTP server with `/metrics` and `/snapshot` (the merged snapshot's bytes); 127.0.0.1 unless told otherwise. */
  serve(options?: { port?: number; host?: string }): Promise<ClusterServed>;
  /** Stops listening to the workers. */
  close(): void;
}

interface WorkerState {
  snapshot?: Snapshot;
  gauges: GaugeRow[];
}

/**
 * In the cluster primary: one exposition for all workers that call `reportToPrimary()`.
 *
 * Counters and histograms are the exact sums of every worker's, and a worker that exits keeps its
 * last reported counts in them, so no counter goes backwards when workers are replaced. Gauges of
 * live workers only: connections, queue depth and memory summed, utilisation averaged.
 */
export function clusterMetrics(options: ClusterMetricsOptions = {}): ClusterMetrics {
  if (!cluster.isPrimary) throw new Error('clusterMetrics() runs in the cluster primary; workers call reportToPrimary(monitor)');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const timeoutMs = options.timeoutMs ?? 500;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`options.timeoutMs must be a finite number > 0 (got ${String(timeoutMs)})`);
  const renderOptions = { prefix: options.prefix, classicBoundariesSeconds: options.classicBoundariesSeconds };
  const workers = new Map<number, WorkerState>();
  /** Everything the workers that exited had reported last. */
  let retired: Snapshot | undefined;
  let exited = 0;
  let nextId = 1;
  const waiting = new Map<number, Map<number, () => void>>(); // worker id -> request id -> resolve
  let closed = false;
  // A report that arrives after its worker's exit was handled is dropped: its counts are retired.
  const gone = new Set<number>();

  const onMessage = (worker: Worker, msg: unknown) => {
    const m = msg as Partial<ReportMessage> | null;
    if (m === null || typeof m !== 'object' || m.type !== REPORT || typeof m.snapshot !== 'string' || !Array.isArray(m.gauges)) return;
    if (gone.has(worker.id)) return;
    let snapshot: Snapshot;
    try {
      snapshot = decodeSnapshot(Buffer.from(m.snapshot, 'base64'));
    } catch {
      return; // not ours after all, or corrupt: the worker's previous report stands
    }
    workers.set(worker.id, { snapshot, gauges: m.gauges });
    const resolve = waiting.get(worker.id)?.get(m.id as number);
    resolve?.();
  };
  const onExit = (worker: Worker) => {
    const state = workers.get(worker.id);
    workers.delete(worker.id);
    gone.add(worker.id);
    if (state?.snapshot) {
      retired = retired ? mergeSnapshots([retired, state.snapshot]) : state.snapshot;
      exited++;
    }
    for (const resolve of waiting.get(worker.id)?.values() ?? []) resolve();
    waiting.delete(worker.id);
  };
  cluster.on('message', onMessage);
  cluster.on('exit', onExit);

  const ask = (worker: Worker): Promise<void> =>
    new Promise((resolve) => {
      const id = nextId++;
      let pending = waiting.get(worker.id);
      if (pending === undefined) waiting.set(worker.id, (pending = new Map()));
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      function done() {
        clearTimeout(timer);
        pending?.delete(id);
        resolve();
      }
      pending.set(id, done);
      try {
        worker.send({ type: REQUEST, id }, undefined, () => {});
      } catch {
        done(); // its channel has closed: it is exiting, and its last report will be kept
      }
    });

  const collect = async (): Promise<Snapshot> => {
    if (closed) throw new Error('collect() after close()');
    const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && workers.has(w.id) && w.isConnected());
    await Promise.all(live.map(ask));
    const parts: Snapshot[] = [];
    if (retired) parts.push(retired);
    for (const s of workers.values()) if (s.snapshot) parts.push(s.snapshot);
    if (parts.length === 0) return { takenAt: Date.now(), sources: 0, series: [] };
    return mergeSnapshots(parts);
  };

  const metrics = async (accept?: string | null): Promise<Rendered> => {
    const merged = await collect();
    const gauges = [...workers.values()].map((s) => s.gauges);
    return render(clusterFamilies(merged, gauges, exited), { ...renderOptions, accept });
  };

  const handler =
    (path = '/metrics') =>
    (req: IncomingMessage, res: ServerResponse): boolean => {
      const at = pathOf(req);
      if (at !== path && at !== '/snapshot') return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return true;
      }
      const answer = async () => {
        let body: Uint8Array;
        const headers: Record<string, string | number> = { 'cache-control': 'no-store' };
        if (at === '/snapshot') {
          body = encodeSnapshot(await collect());
          headers['content-type'] = 'application/octet-stream';
        } else {
          const out = await metrics(req.headers.accept);
          body = typeof out.body === 'string' ? Buffer.from(out.body, 'utf8') : out.body;
          headers['content-type'] = out.contentType;
          headers.vary = 'accept, accept-encoding';
          if (body.byteLength > 1024 && /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''))) {
            body = gzipSync(body, { level: 1 });
            headers['content-encoding'] = 'gzip';
          }
        }
        headers['content-length'] = body.byteLength;
        res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
      };
      answer().catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics could not be rendered: ${err.message}\n`);
      });
      return true;
    };

  const servers = new Set<() => Promise<void>>();
  const serve = async ({ port = 0, host = '127.0.0.1' }: { port?: number; host?: string } = {}): Promise<ClusterServed> => {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be a whole number from 0 to 65535 (got ${port})`);
    if (typeof host !== 'string' || host === '') throw new TypeError('host must be a non-empty string');
    const handle = handler();
    const server = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /snapshot\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const close = () =>
      new Promise<void>((resolve) => {
        servers.delete(close);
        server.closeAllConnections();
        server.close(() => resolve());
      });
    servers.add(close);
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return { port: addr.port, host: addr.address, url: `http://${shownHost}:${addr.port}`, close };
  };

  return {
    collect,
    metrics,
    handler,
    serve,
    close() {
      if (closed) return;
      closed = true;
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
      for (const close of servers) void close();
      for (const pending of waiting.values()) for (const resolve of pending.values()) resolve();
    },
  };
}

/** Anything counted in this series (the unlabelled one is always shown, as a monitor shows it). */
function counted(s: Snapshot['series'][number]): boolean {
  if (Object.keys(s.labels).length === 0) return true;
  for (const v of Object.values(s.counters)) if (v > 0) return true;
  return false;
}

/**
 * The merged snapshot as metric families, under the names a single monitor uses. What a snapshot
 * does not carry (windowed figures, the other histograms, the runtime) is left out.
 */
export function clusterFamilies(merged: Snapshot, gaugeReports: ReadonlyArray<ReadonlyArray<GaugeRow>>, exitedWorkers: number): MetricFamily[] {
  const series = merged.series.filter((s) => s.kind === undefined && counted(s));
  const labels = series.map((s) => exposedLabels(s.labels));
  const fams: MetricFamily[] = [];
  for (const [name, help, get] of COUNTERS) {
    // The snapshot's counters are Totals' counter fields under the same names.
    fams.push({ name, help, type: 'counter', metrics: series.map((s, i) => ({ labels: labels[i], value: get(s.counters as unknown as Totals) })) });
  }
  const msgs: Metric[] = [];
  const bytes: Metric[] = [];
  const errors: Metric[] = [];
  const hists: Metric[] = [];
  const cacheRatios: Metric[] = [];
  series.forEach((s, i) => {
    const c = s.counters;
    msgs.push({ labels: { ...labels[i], direction: 'in' }, value: c.messagesIn }, { labels: { ...labels[i], direction: 'out' }, value: c.messagesOut });
    bytes.push({ labels: { ...labels[i], direction: 'in' }, value: c.bytesIn }, { labels: { ...labels[i], direction: 'out' }, value: c.bytesOut });
    for (const [type, n] of Object.entries(s.errorsByType)) errors.push({ labels: { ...labels[i], error_type: type }, value: n });
    const { minMs: _min, maxMs: _max, ...histogram } = s.latency;
    hists.push({ labels: labels[i], histogram });
    // A ratio of the whole, from the summed parts: never an average of the workers' ratios.
    const looked = c.cacheHits + c.cacheMisses;
    if (looked > 0) cacheRatios.push({ labels: labels[i], value: c.cacheHits / looked });
  });
  fams.push({ name: 'messages', help: 'Stream messages, by direction.', type: 'counter', metrics: msgs });
  fams.push({ name: 'message_bytes', help: 'Bytes of stream messages, by direction.', type: 'counter', unit: 'bytes', metrics: bytes });
  fams.push({ name: 'errors', help: 'Failed requests by error type.', type: 'counter', metrics: errors });
  fams.push({ name: 'request_duration_seconds', help: 'Request (message) latency.', type: 'histogram', unit: 'seconds', metrics: hists });
  if (cacheRatios.length) fams.push({ name: 'cache_hit_ratio', help: 'Cache hits / (hits + misses) since start, all workers together.', type: 'gauge', unit: 'ratio', metrics: cacheRatios });

  // Gauges describe the present, so only live workers' count: sums of the additive ones, the mean
  // of utilisation (each worker weighs the same).
  const sums = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const util = new Map<string, { sum: number; n: number }>();
  const labelsOf = new Map<string, Labels>();
  for (const rows of gaugeReports) {
    for (const [l, active, queue, utilization, memory] of rows) {
      const key = seriesKey(l);
      labelsOf.set(key, l);
      [active, queue, memory].forEach((v, k) => {
        if (v !== null && Number.isFinite(v)) sums[k].set(key, (sums[k].get(key) ?? 0) + v);
      });
      if (utilization !== null && Number.isFinite(utilization)) {
        const u = util.get(key) ?? { sum: 0, n: 0 };
        u.sum += utilization;
        u.n++;
        util.set(key, u);
      }
    }
  }
  const gauge = (name: string, help: string, values: Map<string, number>, unit?: string) => {
    const metrics: Metric[] = [];
    for (const [key, value] of values) metrics.push({ labels: exposedLabels(labelsOf.get(key) as Labels), value });
    if (metrics.length) fams.push({ name, help, type: 'gauge', unit, metrics });
  };
  // The unlabelled series always reports active connections (0 when none): keep only non-zero others.
  gauge('active_connections', 'Connections (streams, sessions) open now, summed over live workers.', sums[0]);
  gauge('queue_depth', 'Reported queue depth, summed over live workers.', sums[1]);
  gauge('reported_memory_bytes', 'Memory use reported by the application, summed over live workers.', sums[2], 'bytes');
  gauge('worker_utilization_ratio', 'Reported worker utilisation, 0..1, the mean of live workers.', new Map([...util].map(([k, u]) => [k, u.sum / u.n])), 'ratio');

  const single = (name: string, help: string, value: number, type: 'gauge' | 'counter' = 'gauge') => fams.push({ name, help, type, metrics: [{ labels: {}, value }] });
  const service = merged.series.find((s) => s.kind === SERVICE_KIND);
  if (service) {
    single('service_requests', 'Requests the summary counts (each once: the series in the totals, whatever their family), all workers together.', service.counters.requests, 'counter');
    single('service_failed_requests', 'Failed requests the summary counts, all workers together.', service.counters.errors, 'counter');
    const { minMs: _min, maxMs: _max, ...histogram } = service.latency;
    fams.push({ name: 'service_request_duration_seconds', help: 'Latency of the requests the summary counts, all series and workers merged.', type: 'histogram', unit: 'seconds', metrics: [{ labels: {}, histogram }] });
  }
  single('cluster_workers', 'Workers whose report is in this exposition now.', gaugeReports.length);
  single('cluster_exited_workers', 'Workers that exited; their last reported counts stay in the counters and histograms.', exitedWorkers, 'counter');
  single('series', 'Label sets in use, all workers together.', series.length);
  return fams;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
