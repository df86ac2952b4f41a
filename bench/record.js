// One latency record, side by side in one run: streamgauge against the histograms a Node service
// would otherwise use. Every competitor records the same pre-generated latencies (in the unit it
// wants, converted beforehand so no conversion is timed).
//
//   node bench/record.js            full run, a table
//   node bench/record.js --quick    short run (checks that it works, figures are rough)
//   node bench/record.js --json     one JSON object of named figures on stdout
//   --clock=wall                    time with the wall clock instead of this process's CPU time
//
// Clock: by default benchmark.js is handed this process's CPU time (user + system, µs resolution)
// as its timer, so that time the process spends preempted by other work on a shared machine does
// not count as cost; nothing timed here runs other threads. --clock=wall uses process.hrtime as
// benchmark.js normally does.
//
// Needs the build (`npm run build`): it imports ../dist/index.js as a user would import 'streamgauge'.
import os from 'node:os';
import { createHistogram, performance } from 'node:perf_hooks';
import { AggregationType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import Benchmark from 'benchmark';
import * as hdr from 'hdr-histogram-js';
import promClient from 'prom-client';
import { StreamPerformanceMonitor } from '../dist/index.js';
import { R } from '../dist/core/layout.js';
import { machine, median, parseArgs, printBars, printRatios, printTable, quantile, xorshift } from './common.js';

const args = { ...parseArgs(), clock: process.argv.includes('--clock=wall') ? 'wall' : 'cpu' };
const options = args.quick
  ? { maxTime: 0.25, minSamples: 5, initCount: 1000 }
  : { maxTime: 0.8, minSamples: 15, initCount: 1000 };
const rounds = args.quick ? 1 : 5;

// Latencies: lognormal around 2 ms (1 µs .. seconds), a power-of-two ring so the index is a mask.
const N = 1 << 14;
const MASK = N - 1;
const ms = new Float64Array(N);
const rand = xorshift(0x2545f491);
for (let i = 0; i < N; i++) {
  const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  ms[i] = Math.min(Math.max(Math.exp(Math.log(2) + 1.2 * z), 0.001), 60_000);
}
const ns = new Float64Array(N).map((_, i) => Math.max(1, Math.round(ms[i] * 1e6)));
const seconds = new Float64Array(N).map((_, i) => ms[i] / 1000);

// ---- the contenders ---------------------------------------------------------------------------
// One monitor, as in an application: each monitor has its own instance of the core, and a second
// one in the same thread would make the record call sites polymorphic (slower for both).
const monitor = new StreamPerformanceMonitor({ autoStart: false, logger: false });
const series = monitor.series({ grpc_method: 'Chat/Stream' });
// A real service's size: the 1,000th label set, with 998 others recorded into before it.
for (let i = 0; i < 998; i++) monitor.series({ grpc_method: `Other/${i}` }).recordLatency(1);
const thousandth = monitor.series({ grpc_method: 'Chat/Thousandth' });
// Each takes its thread's lane of its series now: a series takes one once it is hot on its thread.
for (let i = 0; i < 1000; i++) {
  monitor.recordLatency(1);
  series.recordLatency(1);
  thousandth.recordLatency(1);
}
// The path a thread takes when no private lane is left for it (atomics on the shared block): the
// lane pool is marked used up (an internal slot, see src/layout.ts), then one more series made.
{
  const { memory, layout } = monitor.handle();
  new Int32Array(memory.buffer, layout.runtimePtr, 64)[R.LANES_CLAIMED] = layout.lanePool.count;
}
const sharedSeries = monitor.series({ grpc_method: 'Chat/Unary' });
sharedSeries.recordLatency(1);

const perfHist = createHistogram();

await hdr.initWebAssembly();
const hdrHist = hdr.build({
  useWebAssembly: true,
  lowestDiscernibleValue: 1,
  highestTrackableValue: 3_600_000_000_000,
  numberOfSignificantValueDigits: 3,
});

const promHistogram = new promClient.Histogram({ name: 'bench_latency_seconds', help: 'bench', registers: [] });
const promSummary = new promClient.Summary({ name: 'bench_latency_summary_seconds', help: 'bench', registers: [] });

// A reader is needed for the SDK to keep data at all; this one only collects on demand.
class OnDemandReader extends MetricReader {
  onForceFlush() {
    return Promise.resolve();
  }
  onShutdown() {
    return Promise.resolve();
  }
}
const otelReader = new OnDemandReader();
const meterProvider = new MeterProvider({
  readers: [otelReader],
  views: [{ instrumentName: 'latency_exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
});
const otelHist = meterProvider.getMeter('bench').createHistogram('latency_exp', { unit: 'ms' });

// benchmark.js compiles a test given as a string into its timing loop (`while (n--) { fn }`); a test
// given as a closure is instead called through a property of the benchmark object on every
// iteration, which costs ~25 ns here and would drown the figures. So each test is a string
// working on locals that `setup` takes from one global. Every test reads the next pre-generated
// value the same way.
globalThis.__recordBench = {
  monitor,
  series,
  thousandth,
  sharedSeries,
  perfHist,
  hdrHist,
  promHistogram,
  promSummary,
  otelHist,
  performance,
  ms,
  ns,
  seconds,
  sink: 0,
};
const setup = `var c = globalThis.__recordBench, monitor = c.monitor, series = c.series, thousandth = c.thousandth, sharedSeries = c.sharedSeries, perfHist = c.perfHist, hdrHist = c.hdrHist,
  promHistogram = c.promHistogram, promSummary = c.promSummary, otelHist = c.otelHist, performance = c.performance,
  ms = c.ms, ns = c.ns, seconds = c.seconds, k = 0, sink = 0;`;
const teardown = 'c.sink += sink + k;';
const M = MASK;
// Listed so that the cases compared in the ratios run next to each other in every round.
const cases = {
  baseline: `sink += ms[k++ & ${M}];`,
  streamgauge: `monitor.recordLatency(ms[k++ & ${M}]);`,
  perfHooks: `perfHist.record(ns[k++ & ${M}]);`,
  promHistogram: `promHistogram.observe(seconds[k++ & ${M}]);`,
  promSummary: `promSummary.observe(seconds[k++ & ${M}]);`,
  hdrWasm: `hdrHist.recordValue(ns[k++ & ${M}]);`,
  otelExponential: `otelHist.record(ms[k++ & ${M}]);`,
  streamgaugeSeries: `series.recordLatency(ms[k++ & ${M}]);`,
  streamgaugeThousandth: `thousandth.recordLatency(ms[k++ & ${M}]);`,
  streamgaugeShared: `sharedSeries.recordLatency(ms[k++ & ${M}]);`,
  timedRequest: 'var stop = monitor.startTimer(); sink += stop();',
  twoClockReads: 'sink += performance.now() - performance.now();',
};
const labels = {
  baseline: 'loop + array read (the harness floor, included in all)',
  streamgauge: 'streamgauge monitor.recordLatency',
  streamgaugeSeries: 'streamgauge series(labels).recordLatency',
  streamgaugeThousandth: 'streamgauge recordLatency, the 1,000th label set',
  streamgaugeShared: 'streamgauge series recordLatency, no lane left (atomics)',
  perfHooks: 'perf_hooks createHistogram().record',
  hdrWasm: 'hdr-histogram-js (WebAssembly) recordValue',
  promHistogram: 'prom-client Histogram.observe',
  promSummary: 'prom-client Summary.observe',
  otelExponential: 'OpenTelemetry exponential histogram record',
  timedRequest: 'streamgauge startTimer() + stop()',
  twoClockReads: 'two performance.now() calls',
};

// The machine is shared and its load changes by the second, so every case runs in each of several
// rounds, in a rotated order, and its figures come from the samples of all rounds together (the
// ratios from each round's pair, below).
const names = Object.keys(cases);

// Warm-up: each case runs for a quarter of a second first, so that no round measures the engine
// compiling it (V8 runs a wasm function from its baseline compiler until the function is hot, and
// optimises the JS around it the same way).
for (const name of names) {
  new Function(
    `${setup} var t0 = performance.now(); while (performance.now() - t0 < 250) { for (var j = 0; j < 1000; j++) { ${cases[name]} } } ${teardown}`,
  )();
}
const wallHrtime = process.hrtime;
if (args.clock === 'cpu')
  process.hrtime = /** @type {NodeJS.HRTime} */ (Object.assign(cpuHrtime, { bigint: wallHrtime.bigint }));
const samples = Object.fromEntries(names.map((n) => [n, []]));
// Each round's median too: how far the machine's speed moved during the run.
const roundMedians = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < rounds; round++) {
  const suite = new Benchmark.Suite(`record ${round + 1}`);
  const order = names.map((_, i) => names[(i + round * 3) % names.length]);
  for (const name of order) suite.add(name, cases[name], { ...options, setup, teardown });
  suite.on('cycle', (event) => {
    const b = event.target;
    if (b.error) throw b.error;
    samples[b.name].push(...b.stats.sample);
    roundMedians[b.name].push(Math.round(median(b.stats.sample) * 1e10) / 10);
  });
  suite.run({ async: false });
  process.hrtime = wallHrtime; // benchmark.js picked its timer on the first run
  if (!args.json) process.stderr.write(`  round ${round + 1}/${rounds}\n`);
}
const results = {};
for (const name of names) {
  const xs = samples[name];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  results[name] = {
    medianNs: median(xs) * 1e9,
    meanNs: mean * 1e9,
    // relative margin of error of the mean at 95 % (normal approximation), as benchmark.js reports it
    rmePercent: ((1.96 * sd) / Math.sqrt(xs.length) / mean) * 100,
    p10Ns: quantile(xs, 0.1) * 1e9,
    p90Ns: quantile(xs, 0.9) * 1e9,
    roundMediansNs: roundMedians[name],
    samples: xs.length,
  };
}

// Every contender must really have recorded (a no-op would win every race).
const recorded = {
  streamgauge: monitor.totals(0).latencyCount,
  streamgaugeShared: monitor.totals().latencyCount - monitor.totals(0).latencyCount,
  perfHooks: perfHist.count,
  hdrWasm: hdrHist.totalCount,
  promHistogram:
    (await promHistogram.get()).values.find((v) => v.metricName === 'bench_latency_seconds_count')?.value ?? 0,
  otelExponential:
    /** @type {{ count: number } | undefined} */ (
      (await otelReader.collect()).resourceMetrics.scopeMetrics[0]?.metrics[0]?.dataPoints[0]?.value
    )?.count ?? 0,
};
for (const [name, n] of Object.entries(recorded)) {
  if (!(n > 0)) throw new Error(`${name} recorded nothing: the benchmark is broken`);
}
monitor.close();
hdrHist.destroy();

const r = (name) => results[name].medianNs;
// A ratio is the median over rounds of that round's ratio: the two cases ran seconds apart there,
// so a change in the machine's speed between rounds cancels out.
const ratio = (a, b) => median(results[a].roundMediansNs.map((x, i) => x / results[b].roundMediansNs[i]));
const ratios = {
  streamgaugeOverPerfHooks: ratio('streamgauge', 'perfHooks'),
  streamgauge1000thOverPerfHooks: ratio('streamgaugeThousandth', 'perfHooks'),
  streamgaugeSharedOverPerfHooks: ratio('streamgaugeShared', 'perfHooks'),
  promHistogramOverStreamgauge: ratio('promHistogram', 'streamgauge'),
  promSummaryOverStreamgauge: ratio('promSummary', 'streamgauge'),
  hdrWasmOverStreamgauge: ratio('hdrWasm', 'streamgauge'),
  otelExponentialOverStreamgauge: ratio('otelExponential', 'streamgauge'),
  timedRequestOverTwoClockReads: ratio('timedRequest', 'twoClockReads'),
};
const bars = {
  medianAtMost12ns: r('streamgauge') <= 12,
  atMost0_6xPerfHooks: ratios.streamgaugeOverPerfHooks <= 0.6,
  atMost0_6xPerfHooksOn1000th: ratios.streamgauge1000thOverPerfHooks <= 0.6,
  atLeast15xFasterThanPromHistogram: ratios.promHistogramOverStreamgauge >= 15,
};

const out = {
  suite: 'record',
  quick: Boolean(args.quick),
  clock: args.clock,
  rounds,
  machine: { ...machine(), loadAverage: os.loadavg() },
  results,
  ratios,
  bars,
};
if (args.json) {
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  printTable(
    ['what', 'median ns/op', 'mean ns/op', '± %', 'p10..p90', 'samples'],
    Object.entries(results).map(([name, x]) => [
      labels[name],
      x.medianNs.toFixed(1),
      x.meanNs.toFixed(1),
      x.rmePercent.toFixed(1),
      `${x.p10Ns.toFixed(1)}..${x.p90Ns.toFixed(1)}`,
      String(x.samples),
    ]),
  );
  console.log('');
  printRatios(ratios);
  console.log('');
  printBars(bars);
  const perRound = (name) => results[name].roundMediansNs.map((x) => x.toFixed(1)).join(' / ');
  console.log(
    `\nmedian of each round, ns: streamgauge ${perRound('streamgauge')}; perf_hooks ${perRound('perfHooks')}`,
  );
  console.log(
    `\n${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, ${out.machine.date}, load ${out.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')}; ` +
      `${args.clock === 'cpu' ? 'process CPU time' : 'wall-clock time'}${args.quick ? ' (quick run: rough figures)' : ''}`,
  );
}
if (globalThis.__recordBench.sink === 42) console.log(''); // keeps the baseline's reads alive

// ---- helpers (the shared ones are in bench/common.js) -------------------------------------------

/** process.hrtime's interface ([s, ns], or the difference from an earlier [s, ns]) over this process's CPU time. */
function cpuHrtime(since) {
  const { user, system } = process.cpuUsage();
  const us = user + system;
  const now = [Math.floor(us / 1e6), (us % 1e6) * 1000];
  if (!since) return now;
  let s = now[0] - since[0];
  let ns = now[1] - since[1];
  if (ns < 0) {
    s--;
    ns += 1e9;
  }
  return [s, ns];
}
