// The process and runtime as metric families, under the names and meanings of prom-client's
// default metrics (process_*, nodejs_*), which the usual Node dashboards and alerts read. CPU is
// counters; event-loop delay and GC pauses are histograms (native and classic) of everything
// since start, so nothing between two scrapes is lost. `runtimePrefix` puts them apart.
import { getHeapSpaceStatistics } from 'node:v8';
import type { Metric, MetricFamily } from '../core/family-model.js';
import { internalsOf, type MonitorReader } from '../analysis/monitor-reader.js';
import { countBy, GC_KINDS, maxFds, openFds, PROCESS_START_SECONDS, procStatus } from '../time/system.js';

type Type = MetricFamily['type'];

/** prom-client's classic buckets for GC durations (seconds). */
const GC_CLASSIC_BOUNDARIES: readonly number[] = Object.freeze([0.001, 0.01, 0.1, 1, 2, 5]);

const LAG_GAUGES = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const;

/** Every family runtimeFamilies can produce, with its type. */
export const RUNTIME_FAMILY_NAMES: readonly [string, Type][] = [
  ['process_cpu_user_seconds', 'counter'],
  ['process_cpu_system_seconds', 'counter'],
  ['process_cpu_seconds', 'counter'],
  ['process_start_time_seconds', 'gauge'],
  ['process_resident_memory_bytes', 'gauge'],
  ['process_virtual_memory_bytes', 'gauge'],
  ['process_heap_bytes', 'gauge'],
  ['process_open_fds', 'gauge'],
  ['process_max_fds', 'gauge'],
  ['nodejs_heap_size_total_bytes', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
  ['nodejs_external_memory_bytes', 'gauge'],
  ['nodejs_heap_space_size_total_bytes', 'gauge'],
  ['nodejs_heap_space_size_used_bytes', 'gauge'],
  ['nodejs_heap_space_size_available_bytes', 'gauge'],
  ['nodejs_active_handles', 'gauge'],
  ['nodejs_active_handles_total', 'gauge'],
  ['nodejs_active_requests', 'gauge'],
  ['nodejs_active_requests_total', 'gauge'],
  ['nodejs_active_resources', 'gauge'],
  ['nodejs_active_resources_total', 'gauge'],
  ['nodejs_version_info', 'gauge'],
  ['nodejs_eventloop_lag_seconds', 'gauge'],
  ...LAG_GAUGES.map((g): [string, Type] => [`nodejs_eventloop_lag_${g}_seconds`, 'gauge']),
  ['nodejs_eventloop_delay_seconds', 'histogram'],
  ['nodejs_gc_duration_seconds', 'histogram'],
];

export const RUNTIME_FAMILIES: ReadonlySet<string> = new Set(RUNTIME_FAMILY_NAMES.map(([name]) => name));

const VERSION_LABELS = (() => {
  const [major, minor, patch] = process.version.slice(1).split('.');
  return Object.freeze({ version: process.version, major, minor, patch });
})();

const NO_LABELS = Object.freeze({});
const spaceLabels = new Map<string, Readonly<{ space: string }>>();
const typeLabels = new Map<string, Readonly<{ type: string }>>();
const gcLabels = GC_KINDS.map((kind) => Object.freeze({ kind }));

function labelled<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, (v = make()));
  return v;
}

/** The process's handles or requests by constructor name (what prom-client reads, through the same private calls). */
function byConstructor(read: (() => unknown[]) | undefined): Map<string, number> | undefined {
  if (typeof read !== 'function') return undefined;
  return countBy(read().map((o) => (o as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'Object'));
}

export function runtimeFamilies(
  monitor: MonitorReader,
  prefix: string,
  take?: (n: number) => Float64Array,
): MetricFamily[] {
  const internals = internalsOf(monitor);
  const fams: MetricFamily[] = [];
  const one = (name: string, help: string, type: Type, value: number | undefined, unit?: string) => {
    if (value !== undefined && !Number.isNaN(value))
      fams.push({ name, prefix, help, type, unit, metrics: [{ labels: NO_LABELS, value }] });
  };
  // Written even without samples (no request in flight now), as prom-client writes them.
  const many = (name: string, help: string, metrics: Metric[], unit?: string) => {
    fams.push({ name, prefix, help, type: 'gauge', unit, metrics });
  };

  const cpu = process.cpuUsage();
  one('process_cpu_user_seconds', 'Total user CPU time spent in seconds.', 'counter', cpu.user / 1e6, 'seconds');
  one('process_cpu_system_seconds', 'Total system CPU time spent in seconds.', 'counter', cpu.system / 1e6, 'seconds');
  one(
    'process_cpu_seconds',
    'Total user and system CPU time spent in seconds.',
    'counter',
    (cpu.user + cpu.system) / 1e6,
    'seconds',
  );
  one(
    'process_start_time_seconds',
    'Start time of the process since unix epoch in seconds.',
    'gauge',
    PROCESS_START_SECONDS,
    'seconds',
  );
  const status = procStatus();
  const mem = process.memoryUsage();
  one('process_resident_memory_bytes', 'Resident memory size in bytes.', 'gauge', status?.rss ?? mem.rss, 'bytes');
  one('process_virtual_memory_bytes', 'Virtual memory size in bytes.', 'gauge', status?.virtual, 'bytes');
  one('process_heap_bytes', 'Process heap size in bytes.', 'gauge', status?.data, 'bytes');
  one('process_open_fds', 'Number of open file descriptors.', 'gauge', openFds());
  one('process_max_fds', 'Maximum number of open file descriptors.', 'gauge', maxFds());
  one('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', 'gauge', mem.heapTotal, 'bytes');
  one('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', 'gauge', mem.heapUsed, 'bytes');
  one('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', 'gauge', mem.external, 'bytes');

  const spaces = getHeapSpaceStatistics();
  for (const [field, what] of [
    ['space_size', 'total'],
    ['space_used_size', 'used'],
    ['space_available_size', 'available'],
  ] as const) {
    many(
      `nodejs_heap_space_size_${what}_bytes`,
      `Process heap space size ${what} from Node.js in bytes.`,
      spaces.map((s) => {
        // prom-client's label: the space's name without its `_space` suffix (`old`, `new`, `code` …).
        const space = s.space_name.endsWith('_space') ? s.space_name.slice(0, -6) : s.space_name;
        return { labels: labelled(spaceLabels, space, () => Object.freeze({ space })), value: s[field] };
      }),
      'bytes',
    );
  }

  const proc = process as unknown as { _getActiveHandles?: () => unknown[]; _getActiveRequests?: () => unknown[] };
  const byType = (counts: Map<string, number> | undefined): Metric[] =>
    counts === undefined
      ? []
      : [...counts].map(([type, value]) => ({
          labels: labelled(typeLabels, type, () => Object.freeze({ type })),
          value,
        }));
  const handles = byConstructor(proc._getActiveHandles?.bind(process));
  if (handles !== undefined)
    many(
      'nodejs_active_handles',
      'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
      byType(handles),
    );
  if (handles !== undefined)
    one('nodejs_active_handles_total', 'Total number of active handles.', 'gauge', sum(handles));
  const requests = byConstructor(proc._getActiveRequests?.bind(process));
  if (requests !== undefined)
    many(
      'nodejs_active_requests',
      'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
      byType(requests),
    );
  if (requests !== undefined)
    one('nodejs_active_requests_total', 'Total number of active requests.', 'gauge', sum(requests));
  const resources = countBy(process.getActiveResourcesInfo());
  many(
    'nodejs_active_resources',
    'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
    byType(resources),
  );
  one('nodejs_active_resources_total', 'Total number of active resources.', 'gauge', sum(resources));
  many('nodejs_version_info', 'Node.js version info.', [{ labels: VERSION_LABELS, value: 1 }]);

  // Event-loop delay: prom-client's gauges (the delays since the previous collect), then the
  // histogram of every delay since start.
  const resolution = monitor.config.eventLoopResolution;
  const lag = Math.max(internals.lastEventLoopDelayMs() - resolution, 0) / 1000;
  one('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', 'gauge', lag, 'seconds');
  const d = internals.eventLoopDelaysSinceLastCollect();
  if (d !== undefined) {
    const values: Record<(typeof LAG_GAUGES)[number], [number, string]> = {
      min: [d.minMs, 'The minimum recorded event loop delay.'],
      max: [d.maxMs, 'The maximum recorded event loop delay.'],
      mean: [d.meanMs, 'The mean of the recorded event loop delays.'],
      stddev: [d.stddevMs, 'The standard deviation of the recorded event loop delays.'],
      p50: [d.quantileMs(0.5), 'The 50th percentile of the recorded event loop delays.'],
      p90: [d.quantileMs(0.9), 'The 90th percentile of the recorded event loop delays.'],
      p99: [d.quantileMs(0.99), 'The 99th percentile of the recorded event loop delays.'],
    };
    for (const g of LAG_GAUGES)
      one(`nodejs_eventloop_lag_${g}_seconds`, values[g][1], 'gauge', values[g][0] / 1000, 'seconds');
  }
  fams.push({
    name: 'nodejs_eventloop_delay_seconds',
    prefix,
    help: `Event-loop delays since start: the interval between callbacks of a ${resolution} ms timer (about ${resolution / 1000} s when the loop is free).`,
    type: 'histogram',
    unit: 'seconds',
    metrics: [{ labels: NO_LABELS, histogram: internals.runtimeHistogram(0, take) }],
  });
  const gc: Metric[] = [];
  for (let k = 0; k < GC_KINDS.length; k++) {
    const h = internals.runtimeHistogram(k + 1, take);
    if (h.count > 0) gc.push({ labels: gcLabels[k], histogram: h });
  }
  if (gc.length > 0) {
    fams.push({
      name: 'nodejs_gc_duration_seconds',
      prefix,
      help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
      type: 'histogram',
      unit: 'seconds',
      classicBoundaries: GC_CLASSIC_BOUNDARIES,
      metrics: gc,
    });
  }
  return fams;
}

function sum(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}
