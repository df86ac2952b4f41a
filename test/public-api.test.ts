// The public API, as the built package gives it: the names an ESM import, a CommonJS require and
// the type declarations export, compared with the lists below. An export that appears or
// disappears fails here: change the list on purpose, with the README, or not at all.
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

for (const entry of ['index.d.ts', 'cjs/index.d.ts']) {
  test(`the declarations (${entry}) export exactly the listed values and types`, () => {
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
    const names = checker.getExportsOfModule(module).map((s) => s.name);
    assert.equal(sorted(names), sorted([...VALUES, ...TYPES]));
  });
}

test.run();
