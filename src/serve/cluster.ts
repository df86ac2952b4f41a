// node:cluster: each worker keeps its own monitor and answers the primary's requests for its
// counts over the cluster's IPC channel; the primary merges them (export/merge.ts, the merge of
// mergeSnapshots too) and serves one exposition for all workers.
import type { Worker } from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { type ClusterSample, ClusterWindow, type ClusterWindowOptions, type WorkerRow } from './cluster-dashboard.js';
import { createDashboardHandler, type DashboardOptions } from './dashboard-handler.js';
import { COUNTERS, exposedLabels } from '../export/collect-families.js';
import { type Rendered, type RenderOptions, render } from '../export/exposition.js';
import type { Metric, MetricFamily, NativeHistogram } from '../core/family-model.js';
import { internalsOf, type MonitorReader } from '../analysis/monitor-reader.js';
import { labelsFromKey, seriesKey } from '../record/recorder.js';
import { encodeSnapshot, type Snapshot, type SnapshotSeries, seriesOfPart } from '../export/snapshot.js';
import { histogramOf, mergeByKey, partOf, type SeriesPart } from '../export/merge.js';
import { COUNTER_FIELDS, type CounterField, type Totals } from '../time/totals.js';
import type { Labels } from '../core/types.js';
import { nodeCluster, nodeHttp } from '../core/builtins.js';

const REQUEST = 'streamgauge:snapshot-request';
const REPORT = 'streamgauge:snapshot';
/** The key of the service totals among a worker's parts (no series key is a bare string). */
const SERVICE_KEY = 'service';

/** A series' gauges as a worker reports them (JSON over IPC: NaN, "not reported", travels as null). */
type GaugeRow = [
  labels: Labels,
  activeConnections: number | null,
  queueDepth: number | null,
  workerUtilization: number | null,
  memoryBytes: number | null,
];

/**
 * One series as a worker reports it (a SeriesPart, what the primary merges) on the channel: the
 * counts as base64 of their bytes, min and max null when nothing was recorded (NaN does not
 * survive JSON).
 */
type WirePart = Omit<SeriesPart, 'counts' | 'minMs' | 'maxMs'> & {
  counts: string;
  minMs: number | null;
  maxMs: number | null;
};

interface ReportMessage {
  type: typeof REPORT;
  /** The request answered, or 0 for a report the worker sent on its own (first, periodic, final). */
  id: number;
  parts: WirePart[];
  gauges: GaugeRow[];
}

export interface ReportToPrimaryOptions {
  /**
   * Also report every `intervalMs` without being asked (0: only on request). What a
   * worker recorded after its last report is lost if it is killed; this bounds how much.
   */
  intervalMs?: number;
}

/**
 * In a cluster worker: answers the primary's `clusterMetrics()` with this monitor's counts. Reports
 * once at once, and a last time when the monitor closes. Returns a function that stops reporting.
 */
export function reportToPrimary(monitor: MonitorReader, options: ReportToPrimaryOptions = {}): () => void {
  const internals = internalsOf(monitor); // a TypeError for anything but a monitor
  if (typeof process.send !== 'function')
    throw new Error('reportToPrimary() needs an IPC channel to the primary: call it in a node:cluster worker');
  const intervalMs = options.intervalMs ?? 0;
  if (typeof intervalMs !== 'number' || !(intervalMs >= 0) || !Number.isFinite(intervalMs))
    throw new RangeError(`options.intervalMs must be a finite number >= 0 (got ${String(intervalMs)})`);
  const send = (id: number, final = false) => {
    if ((internals.isClosed() && !final) || !process.connected) return;
    const gauges: GaugeRow[] = [];
    for (const s of monitor.seriesList()) {
      if (s.kind !== undefined) continue;
      const t = monitor.totals(s.index);
      gauges.push([s.labels, t.activeConnections, t.queueDepth, t.workerUtilization, t.memoryBytes]);
    }
    const message: ReportMessage = { type: REPORT, id, parts: partsOf(monitor), gauges };
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
 * The monitor's series, and its service totals (each request once, whatever its family: what the
 * alert rules read) as one more, so that they merge, and outlive a worker, like the rest.
 */
export function partsOf(monitor: MonitorReader): WirePart[] {
  const part = (key: string, t: Totals, errorsByType: Record<string, number>, h: NativeHistogram): WirePart => {
    const p = partOf(
      key,
      COUNTER_FIELDS.map((f) => t[f]),
      errorsByType,
      h,
      t.latencyMinMs,
      t.latencyMaxMs,
    );
    return {
      ...p,
      overflowThreshold: Math.min(p.overflowThreshold, Number.MAX_VALUE), // JSON has no Infinity
      minMs: Number.isNaN(p.minMs) ? null : p.minMs,
      maxMs: Number.isNaN(p.maxMs) ? null : p.maxMs,
      counts: Buffer.from(p.counts.buffer, p.counts.byteOffset, p.counts.byteLength).toString('base64'),
    };
  };
  const out: WirePart[] = [];
  for (const s of monitor.seriesList()) {
    const read = internalsOf(monitor).readSeries(s.index);
    out.push(part(seriesKey(s.labels, s.kind), read.totals, monitor.errorsByType(s.index), read.latency));
  }
  out.push(part(SERVICE_KEY, monitor.totals(), monitor.errorsByType(), internalsOf(monitor).totalLatencyHistogram()));
  return out;
}

export function fromWire(w: WirePart): SeriesPart {
  const bytes = Buffer.from(w.counts, 'base64');
  if (bytes.length % 8 !== 0 || !Array.isArray(w.counters) || w.counters.length !== COUNTER_FIELDS.length)
    throw new RangeError('malformed report');
  return {
    ...w,
    minMs: w.minMs ?? Number.NaN,
    maxMs: w.maxMs ?? Number.NaN,
    // Copied into a buffer of its own: a decoded Buffer may sit at an offset that is no multiple of 8.
    counts: new Float64Array(new Uint8Array(bytes).buffer),
  };
}

/** The parts of many sources (workers, and those that exited) merged by key. */
export function mergeAll(sources: ReadonlyArray<ReadonlyMap<string, SeriesPart>>): Map<string, SeriesPart> {
  return mergeByKey(sources.flatMap((src) => [...src.values()]));
}

/** The merged parts as a Snapshot (for mergeSnapshots, snapshotQuantile, /snapshot). */
function toSnapshot(parts: ReadonlyMap<string, SeriesPart>, sources: number): Snapshot {
  const series: SnapshotSeries[] = [];
  for (const p of parts.values()) if (p.key !== SERVICE_KEY) series.push(seriesOfPart(p));
  return { takenAt: Date.now(), sources, series };
}

export interface ClusterMetricsOptions extends Omit<RenderOptions, 'accept'>, ClusterWindowOptions {
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
  /**
   * An HTTP server with `/metrics`, `/snapshot` (the merged snapshot's bytes) and, unless
   * `dashboard: false`, the dashboard of the whole cluster at `/`; 127.0.0.1 unless told otherwise.
   */
  serve(options?: { port?: number; host?: string; dashboard?: boolean | DashboardOptions }): Promise<ClusterServed>;
  /**
   * A `node:http` handler for the cluster's dashboard (returns false for other paths). Serving it
   * starts the primary's sampling every `intervalMs`, which also adds the windowed figures to `/metrics`.
   */
  dashboardHandler(options?: DashboardOptions): (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Stops listening to the workers. */
  close(): void;
}

interface WorkerState {
  parts: Map<string, SeriesPart>;
  gauges: GaugeRow[];
  /** When its last report arrived (ms since the epoch). */
  at: number;
  pid: number | null;
}

/** Exited workers the dashboard still lists. */
const EXITED_ROWS = 16;

/**
 * In the cluster primary: one exposition for all workers that call `reportToPrimary()`.
 *
 * Counters and histograms are the exact sums of every worker's, and a worker that exits keeps its
 * last reported counts in them, so no counter goes backwards when workers are replaced. Gauges of
 * live workers only: connections, queue depth and memory summed, utilisation averaged.
 */
export function clusterMetrics(options: ClusterMetricsOptions = {}): ClusterMetrics {
  const cluster = nodeCluster();
  if (!cluster.isPrimary)
    throw new Error('clusterMetrics() runs in the cluster primary; workers call reportToPrimary(monitor)');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const timeoutMs = options.timeoutMs ?? 500;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs))
    throw new RangeError(`options.timeoutMs must be a finite number > 0 (got ${String(timeoutMs)})`);
  const renderOptions = { prefix: options.prefix, classicBoundariesSeconds: options.classicBoundariesSeconds };
  const { intervalMs, historyPoints, targets, clock } = options;
  // Checked now, started only when a dashboard is served: until then nothing asks workers unprompted.
  const sampler = new ClusterWindow(() => sample(), { intervalMs, historyPoints, targets, clock });
  const exitedRows: WorkerRow[] = [];
  const workers = new Map<number, WorkerState>();
  /** Everything the workers that exited had reported last. */
  let retired = new Map<string, SeriesPart>();
  let exited = 0;
  let nextId = 1;
  const waiting = new Map<number, Map<number, () => void>>(); // worker id -> request id -> resolve
  let closed = false;
  // A report that arrives after its worker's exit was handled is dropped: its counts are retired.
  const gone = new Set<number>();

  const onMessage = (worker: Worker, msg: unknown) => {
    const m = msg as Partial<ReportMessage> | null;
    if (m === null || typeof m !== 'object' || m.type !== REPORT || !Array.isArray(m.parts) || !Array.isArray(m.gauges))
      return;
    if (gone.has(worker.id)) return;
    let parts: Map<string, SeriesPart>;
    try {
      parts = new Map(m.parts.map((w) => [w.key, fromWire(w)]));
    } catch {
      return; // not ours after all, or corrupt: the worker's previous report stands
    }
    workers.set(worker.id, { parts, gauges: m.gauges, at: Date.now(), pid: worker.process.pid ?? null });
    const resolve = waiting.get(worker.id)?.get(m.id as number);
    resolve?.();
  };
  const onExit = (worker: Worker) => {
    const state = workers.get(worker.id);
    workers.delete(worker.id);
    gone.add(worker.id);
    if (state) {
      retired = mergeAll([retired, state.parts]);
      exited++;
      exitedRows.push({ ...workerRow(worker.id, state), state: 'exited' });
      if (exitedRows.length > EXITED_ROWS) exitedRows.shift();
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

  /** Fresh reports from every live worker, merged with the retired counts. */
  const gather = async (): Promise<Map<string, SeriesPart>> => {
    if (closed) throw new Error('collect() after close()');
    const live = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined && workers.has(w.id) && w.isConnected(),
    );
    await Promise.all(live.map(ask));
    return mergeAll([retired, ...[...workers.values()].map((s) => s.parts)]);
  };

  const collect = async (): Promise<Snapshot> => toSnapshot(await gather(), workers.size + exited);

  /** The merge now, with the workers' gauges and liveness, for the dashboard's sampler. */
  const sample = async (): Promise<ClusterSample> => {
    const asked = Date.now();
    const merged = await gather();
    const series = new Map(merged);
    const service = series.get(SERVICE_KEY);
    series.delete(SERVICE_KEY);
    let activeConnections = 0;
    let queueDepth = 0;
    let memoryBytes = 0;
    let utilization = 0;
    let utilized = 0;
    const rows: WorkerRow[] = [];
    for (const [id, state] of workers) {
      // The unlabelled series' gauges are the worker's own (what a monitor's summary shows).
      const own = state.gauges.find((g) => Object.keys(g[0]).length === 0);
      if (own) {
        activeConnections += own[1] ?? 0;
        queueDepth += own[2] ?? 0;
        memoryBytes += own[4] ?? 0;
        if (own[3] !== null && Number.isFinite(own[3])) {
          utilization += own[3];
          utilized++;
        }
      }
      rows.push({ ...workerRow(id, state), state: state.at >= asked ? 'live' : 'late' });
    }
    return {
      t: sampler.now(),
      series,
      service,
      activeConnections,
      queueDepth,
      memoryBytes,
      workerUtilization: utilized > 0 ? utilization / utilized : Number.NaN,
      workers: [...rows.sort((x, y) => x.id - y.id), ...exitedRows],
    };
  };

  const metrics = async (accept?: string | null): Promise<Rendered> => {
    const merged = await gather();
    const gauges = [...workers.values()].map((s) => s.gauges);
    const fams = clusterFamilies(merged, gauges, exited);
    if (sampler.running) fams.push(...sampler.families());
    return render(fams, { ...renderOptions, accept });
  };

  const dashboardHandler = (dashboardOptions: DashboardOptions = {}) => {
    const handle = createDashboardHandler(sampler, dashboardOptions);
    if (!closed) sampler.start();
    return handle;
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
  const serve = async ({
    port = 0,
    host = '127.0.0.1',
    dashboard = true,
  }: {
    port?: number;
    host?: string;
    dashboard?: boolean | DashboardOptions;
  } = {}): Promise<ClusterServed> => {
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new RangeError(`port must be a whole number from 0 to 65535 (got ${port})`);
    if (typeof host !== 'string' || host === '') throw new TypeError('host must be a non-empty string');
    const handle = handler();
    const dash = dashboard ? dashboardHandler(dashboard === true ? {} : dashboard) : undefined;
    const server = nodeHttp().createServer((req, res) => {
      if (handle(req, res) || dash?.(req, res)) return;
      res
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`not found: try /metrics${dash ? ', /snapshot or /' : ' or /snapshot'}\n`);
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
    dashboardHandler,
    close() {
      if (closed) return;
      closed = true;
      sampler.stop();
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
      for (const close of servers) void close();
      for (const pending of waiting.values()) for (const resolve of pending.values()) resolve();
    },
  };
}

function workerRow(id: number, state: WorkerState): Omit<WorkerRow, 'state'> {
  const service = state.parts.get(SERVICE_KEY);
  const own = state.gauges.find((g) => Object.keys(g[0]).length === 0);
  return {
    id,
    pid: state.pid,
    lastReportAt: state.at,
    requests: service?.counters[COUNTER_FIELDS.indexOf('requests')] ?? 0,
    activeConnections: own?.[1] ?? 0,
  };
}

/** Anything counted in this series (the unlabelled one is always shown, as a monitor shows it). */
function counted(p: SeriesPart, labels: Labels): boolean {
  if (Object.keys(labels).length === 0) return true;
  for (const v of p.counters) if (v > 0) return true;
  return false;
}

// A series' labels parsed once from its key, the same object each scrape (the writers cache the
// rendered text of a label set by identity). Keys are bounded by the workers' maxSeries.
const labelCache = new Map<string, { labels: Labels; kind: string | undefined }>();
function keyLabels(key: string): { labels: Labels; kind: string | undefined } {
  let out = labelCache.get(key);
  if (out === undefined) labelCache.set(key, (out = labelsFromKey(key)));
  return out;
}

/**
 * The merged parts as metric families, under the names a single monitor uses. What a report does
 * not carry (windowed figures, the other histograms, the runtime) is left out.
 */
export function clusterFamilies(
  merged: ReadonlyMap<string, SeriesPart>,
  gaugeReports: ReadonlyArray<ReadonlyArray<GaugeRow>>,
  exitedWorkers: number,
): MetricFamily[] {
  const series: { labels: Labels; c: Totals; part: SeriesPart }[] = [];
  for (const [key, part] of merged) {
    if (key === SERVICE_KEY) continue;
    const { labels, kind } = keyLabels(key);
    if (kind !== undefined || !counted(part, labels)) continue;
    // The counters under Totals' field names, in COUNTER_FIELDS order.
    const c = {} as Record<CounterField, number>;
    COUNTER_FIELDS.forEach((f, i) => {
      c[f] = part.counters[i];
    });
    series.push({ labels: exposedLabels(labels), c: c as Totals, part });
  }
  const fams: MetricFamily[] = [];
  for (const [name, help, get] of COUNTERS)
    fams.push({ name, help, type: 'counter', metrics: series.map((s) => ({ labels: s.labels, value: get(s.c) })) });
  const msgs: Metric[] = [];
  const bytes: Metric[] = [];
  const errors: Metric[] = [];
  const hists: Metric[] = [];
  const cacheRatios: Metric[] = [];
  for (const { labels, c, part } of series) {
    msgs.push(
      { labels: { ...labels, direction: 'in' }, value: c.messagesIn },
      { labels: { ...labels, direction: 'out' }, value: c.messagesOut },
    );
    bytes.push(
      { labels: { ...labels, direction: 'in' }, value: c.bytesIn },
      { labels: { ...labels, direction: 'out' }, value: c.bytesOut },
    );
    for (const [type, n] of Object.entries(part.errorsByType))
      errors.push({ labels: { ...labels, error_type: type }, value: n });
    hists.push({ labels, histogram: histogramOf(part) });
    // A ratio of the whole, from the summed parts: never an average of the workers' ratios.
    const looked = c.cacheHits + c.cacheMisses;
    if (looked > 0) cacheRatios.push({ labels, value: c.cacheHits / looked });
  }
  fams.push({ name: 'messages', help: 'Stream messages, by direction.', type: 'counter', metrics: msgs });
  fams.push({
    name: 'message_bytes',
    help: 'Bytes of stream messages, by direction.',
    type: 'counter',
    unit: 'bytes',
    metrics: bytes,
  });
  fams.push({ name: 'errors', help: 'Failed requests by error type.', type: 'counter', metrics: errors });
  fams.push({
    name: 'request_duration_seconds',
    help: 'Request (message) latency.',
    type: 'histogram',
    unit: 'seconds',
    metrics: hists,
  });
  if (cacheRatios.length)
    fams.push({
      name: 'cache_hit_ratio',
      help: 'Cache hits / (hits + misses) since start, all workers together.',
      type: 'gauge',
      unit: 'ratio',
      metrics: cacheRatios,
    });

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
  gauge(
    'worker_utilization_ratio',
    'Reported worker utilisation, 0..1, the mean of live workers.',
    new Map([...util].map(([k, u]) => [k, u.sum / u.n])),
    'ratio',
  );

  const single = (name: string, help: string, value: number, type: 'gauge' | 'counter' = 'gauge') =>
    fams.push({ name, help, type, metrics: [{ labels: {}, value }] });
  const service = merged.get(SERVICE_KEY);
  if (service) {
    single(
      'service_requests',
      'Requests the summary counts (each once: the series in the totals, whatever their family), all workers together.',
      service.counters[COUNTER_FIELDS.indexOf('requests')],
      'counter',
    );
    single(
      'service_failed_requests',
      'Failed requests the summary counts, all workers together.',
      service.counters[COUNTER_FIELDS.indexOf('errors')],
      'counter',
    );
    fams.push({
      name: 'service_request_duration_seconds',
      help: 'Latency of the requests the summary counts, all series and workers merged.',
      type: 'histogram',
      unit: 'seconds',
      metrics: [{ labels: {}, histogram: histogramOf(service) }],
    });
  }
  single('cluster_workers', 'Workers whose report is in this exposition now.', gaugeReports.length);
  single(
    'cluster_exited_workers',
    'Workers that exited; their last reported counts stay in the counters and histograms.',
    exitedWorkers,
    'counter',
  );
  single('series', 'Label sets in use, all workers together.', series.length);
  return fams;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
