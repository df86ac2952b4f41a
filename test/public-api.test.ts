// The public API, as the built package gives it: the names an ESM import, a CommonJS require and
// the type declarations export, and the public members of the monitor's class, compared with the
// lists below. A name that appears or disappears fails here: change the list on purpose, with the
// README, or not at all.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/** Values: what `import { … } from 'streamgauge'` and `require('streamgauge')` give at run time. */
const VALUES = [
  'AnomalyDetector',
  'AnomalyTracker',
  'DEFAULT_TARGETS',
  'HISTORY_FIELDS',
  'HistoryFileError',
  'SnapshotError',
  'StreamPerformanceMonitor',
  'TrendModel',
  'attach',
  'clusterMetrics',
  'compareWithTargets',
  'createDashboardHandler',
  'dashboardSource',
  'decodeSnapshot',
  'grpcClientInterceptor',
  'grpcServerInterceptor',
  'instrumentHttpServer',
  'instrumentServerCall',
  'instrumentStream',
  'mergeSnapshots',
  'metricsHandler',
  'openTelemetryProducer',
  'prometheusRules',
  'registerWithPromClient',
  'relativeErrorBound',
  'reportToPrimary',
  'serve',
  'setHttpRoute',
  'snapshotQuantile',
  'statusName',
  'trackPool',
];

/** Types only: in the declarations, not at run time. */
const TYPES = [
  'AnomalyEvent',
  'Clock',
  'ClusterDashboardFrame',
  'ClusterMetrics',
  'ClusterMetricsOptions',
  'ClusterServed',
  'ClusterWindowOptions',
  'DashboardOptions',
  'DashboardSource',
  'Exemplar',
  'ExemplarIds',
  'GrpcClientInterceptorOptions',
  'GrpcServerInterceptor',
  'GrpcServerInterceptorOptions',
  'HistogramRange',
  'HistoryColumns',
  'HistoryField',
  'HistoryPoint',
  'HttpInstrument',
  'HttpServerOptions',
  'InstrumentStreamOptions',
  'IntervalFigures',
  'Labels',
  'MemoryFootprint',
  'MessageSize',
  'MetricFamily',
  'MetricsOptions',
  'MonitorHandle',
  'MonitorLike',
  'MonitoringConfig',
  'MovingAverages',
  'NativeHistogram',
  'OpenTelemetryProducer',
  'OpenTelemetryProducerOptions',
  'PerformanceMetrics',
  'PerformanceSummary',
  'PerformanceTargets',
  'PersistenceOptions',
  'PoolLike',
  'PoolSample',
  'PoolTracker',
  'PromClientBridgeOptions',
  'PrometheusRulesOptions',
  'Recorder',
  'Rendered',
  'Report',
  'ReportToPrimaryOptions',
  'Resolution',
  'SeriesInfo',
  'SeriesLoad',
  'SeriesOptions',
  'ServeOptions',
  'Served',
  'ServerCallInstruments',
  'Session',
  'SessionInfo',
  'SessionStats',
  'Snapshot',
  'SystemSample',
  'TargetComparison',
  'TickEvent',
  'Totals',
  'TrackPoolOptions',
  'TrendEstimate',
  'TrendKind',
  'TrendReport',
  'UserConfig',
  'WorkerRow',
];

/**
 * The public members of a StreamPerformanceMonitor (besides those of EventEmitter): the README's
 * API, each named there. Internals that outputs and tests need are reached through internalsOf().
 */
const MONITOR_MEMBERS = [
  'close',
  'compareWithTargets',
  'config',
  'connectionClosed',
  'connectionOpened',
  'errorsByType',
  'getCurrentMetrics',
  'getHistory',
  'getPerformanceSummary',
  'handle',
  'inexactCounters',
  'instrument',
  'memoryFootprint',
  'metrics',
  'movingAverages',
  'nativeHistogram',
  'openSession',
  'prometheusRules',
  'quantileSinceStart',
  'recentAnomalies',
  'recordBackpressureEvent',
  'recordBatchProcessing',
  'recordCacheHit',
  'recordCacheMiss',
  'recordError',
  'recordErrorWithExemplar',
  'recordLatency',
  'recordLatencyWithExemplar',
  'recordMessages',
  'recordStreamSession',
  'report',
  'rollupQuantile',
  'serve',
  'series',
  'seriesList',
  'sessionStats',
  'snapshot',
  'start',
  'startTimer',
  'stop',
  'tick',
  'totals',
  'trackPool',
  'trends',
  'updateCacheHitRatio',
  'updateMemoryUsage',
  'updateQueueDepth',
  'updateWorkerUtilization',
  'windowFigures',
];

const dist = (path: string) => fileURLToPath(new URL(`../dist/${path}`, import.meta.url));
const sorted = (names: Iterable<string>) => [...names].sort();

// The builds as tsc made them, and the entries the package's exports name (each build in one file).
test('the ESM build and its entry export exactly the listed values', async () => {
  const esm = await import(dist('index.js'));
  assert.equal(sorted(Object.keys(esm)), sorted(VALUES));
  const entry = import.meta.resolve('streamgauge');
  assert.is(entry, new URL('../dist/bundle/streamgauge.js', import.meta.url).href);
  assert.equal(sorted(Object.keys(await import(entry))), sorted(VALUES));
});

test('the CommonJS build and its entry export the same values', () => {
  const require = createRequire(import.meta.url);
  const cjs = require(dist('cjs/index.js')) as Record<string, unknown>;
  assert.equal(sorted(Object.keys(cjs)), sorted(VALUES));
  assert.is(require.resolve('streamgauge'), dist('cjs/bundle/streamgauge.js'));
  assert.equal(sorted(Object.keys(require('streamgauge') as Record<string, unknown>)), sorted(VALUES));
});

/** The type checker over one built declaration file, and that file's module symbol. */
function declarations(entry: string): { checker: ts.TypeChecker; module: ts.Symbol } {
  const file = dist(entry);
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  assert.ok(source, `${entry} is built`);
  const module = checker.getSymbolAtLocation(source);
  assert.ok(module, `${entry} is a module`);
  return { checker, module };
}

for (const entry of ['index.d.ts', 'cjs/index.d.ts']) {
  test(`the declarations (${entry}) export exactly the listed values and types`, () => {
    const { checker, module } = declarations(entry);
    const names = checker.getExportsOfModule(module).map((s) => s.name);
    assert.equal(sorted(names), sorted([...VALUES, ...TYPES]));
  });
}

test('a StreamPerformanceMonitor has exactly the listed public members, each in the README', () => {
  const { checker, module } = declarations('index.d.ts');
  const exported = checker.getExportsOfModule(module).find((s) => s.name === 'StreamPerformanceMonitor');
  assert.ok(exported, 'StreamPerformanceMonitor is exported');
  const cls = checker.getDeclaredTypeOfSymbol(checker.getAliasedSymbol(exported));
  const hidden = ts.ModifierFlags.Private | ts.ModifierFlags.Protected;
  const own = checker.getPropertiesOfType(cls).filter((p) => {
    const decls = p.getDeclarations() ?? [];
    // Declared in the package (not inherited from EventEmitter), neither private nor #private.
    return (
      !p.name.startsWith('#') &&
      decls.some((d) => d.getSourceFile().fileName.startsWith(dist(''))) &&
      decls.every((d) => (ts.getCombinedModifierFlags(d) & hidden) === 0)
    );
  });
  assert.equal(sorted(own.map((p) => p.name)), sorted(MONITOR_MEMBERS));
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const missing = MONITOR_MEMBERS.filter((m) => !readme.includes(`${m}(`) && !readme.includes(`monitor.${m}`));
  assert.equal(missing, [], 'every public member is in the README');
});

test.run();
