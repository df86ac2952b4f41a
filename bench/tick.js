// The tick and the reads: cost of one aggregation step and of getPerformanceSummary() with 1, 10
// and 100 series, the delay from a record in a worker thread to the main thread seeing it, and
// what the tick's analysis costs per watched figure: one anomaly detector update and one trend
// model push per point, early in a long series and late in it (the cost must not grow with the
// series), with the state each holds.
//
//   node bench/tick.js              full run, a table
//   node bench/tick.js --quick      short run (checks that it works, figures are rough)
//   node bench/tick.js --json       one JSON object of named figures on stdout
//   node --import tsx bench/tick.js --src   measure ../src instead of the build
//
// Imports ../dist/index.js (after `npm run build`, as a user would import 'streamgauge'). With
// --src, or when there is no build, it imports ../src/index.ts, which needs `node --import tsx`;
// the output says which it measured ("source").
//
// Ticks are driven by hand on a simulated clock (one simulated second per tick), so each timed
// tick does the full work of a real one: interval figures from the window ring, a history point,
// rollups, system metrics, analysis.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { machine, parseArgs, printBars, printTable, workerSaid, xorshift } from './common.js';

const args = { ...parseArgs(), src: process.argv.includes('--src') };
const DIST = new URL('../dist/index.js', import.meta.url);
const SRC = new URL('../src/index.ts', import.meta.url);
const source = !args.src && existsSync(fileURLToPath(DIST)) ? 'dist' : 'src';
const { AnomalyDetector, StreamPerformanceMonitor, TrendModel } = await import(
  source === 'dist' ? DIST.href : SRC.href
);

const SERIES_COUNTS = [1, 10, 100];
const TICKS = args.quick ? 300 : 3000;
const WARMUP_TICKS = args.quick ? 60 : 300;
const SUMMARIES = args.quick ? 300 : 3000;
const TRIALS = args.quick ? 1000 : 5000;
const PER_SERIES_PER_TICK = 20;

// Lognormal latencies around 5 ms, pre-generated.
const N = 1 << 14;
const latencies = new Float64Array(N);
const rand = xorshift(0x9e3779b9);
for (let i = 0; i < N; i++) {
  const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  latencies[i] = Math.min(Math.max(5 * Math.exp(0.9 * z), 0.001), 60_000);
}

function stats(samplesMs) {
  const s = Float64Array.from(samplesMs).sort();
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return {
    medianUs: q(0.5) * 1000,
    p90Us: q(0.9) * 1000,
    p99Us: q(0.99) * 1000,
    meanUs: mean * 1000,
    samples: s.length,
  };
}

// ---- tick and summary cost by series count ---------------------------------------------------

function measureSeries(count) {
  const clock = { t: Date.UTC(2025, 0, 1), now: () => clock.t };
  const monitor = new StreamPerformanceMonitor({ clock, autoStart: false, logger: false, maxSeries: 128 });
  const recorders = [monitor];
  for (let i = 1; i < count; i++) recorders.push(monitor.series({ stream: `s${i}` }));
  let k = 0;
  const record = () => {
    for (const r of recorders) for (let j = 0; j < PER_SERIES_PER_TICK; j++) r.recordLatency(latencies[k++ & (N - 1)]);
  };
  const tickMs = [];
  for (let i = 0; i < WARMUP_TICKS + TICKS; i++) {
    record();
    clock.t += 1000;
    const t0 = performance.now();
    monitor.tick();
    const dt = performance.now() - t0;
    if (i >= WARMUP_TICKS) tickMs.push(dt);
  }
  // Reads between ticks: half a second after the last one, with a full window behind them.
  clock.t += 500;
  let sink = 0;
  const summaryMs = [];
  for (let i = 0; i < SUMMARIES; i++) {
    const t0 = performance.now();
    const s = monitor.getPerformanceSummary();
    summaryMs.push(performance.now() - t0);
    sink += s.p99LatencyMs;
  }
  const active = monitor.seriesList().filter((s) => !s.overflow).length;
  const requests = monitor.totals().requests;
  monitor.close();
  if (active !== count) throw new Error(`expected ${count} series, found ${active}`);
  if (!(requests > 0) || !(sink > 0)) throw new Error('nothing was recorded: the benchmark is broken');
  return { series: count, tick: stats(tickMs), summary: stats(summaryMs) };
}

// ---- analysis per figure: cost per point over a long series, and state ---------------------------

const ANALYSIS_POINTS = args.quick ? 40_000 : 200_000;
const ANALYSIS_SLICE = 10_000;

function measureAnalysis() {
  // A noisy daily cycle with a spike now and then, one point a second; the monitor's defaults:
  // the detector's 1500-point window, a 300-point trend window (5 minutes of 1 s ticks).
  const rand = xorshift(7);
  const value = (i) => 100 + 30 * Math.sin((2 * Math.PI * i) / 86_400) + 5 * (rand() - 0.5) + (i % 9973 === 0 ? 60 : 0);
  const before = process.memoryUsage().arrayBuffers;
  const detector = new AnomalyDetector();
  const trend = new TrendModel(300);
  const stateBytes = process.memoryUsage().arrayBuffers - before;
  const slices = [];
  let sink = 0;
  for (let start = 0; start < ANALYSIS_POINTS; start += ANALYSIS_SLICE) {
    const t0 = performance.now();
    for (let i = start; i < start + ANALYSIS_SLICE; i++) {
      sink += detector.update(value(i)).score;
      trend.push(i * 1000, value(i));
    }
    slices.push(((performance.now() - t0) * 1e6) / ANALYSIS_SLICE);
  }
  // A trend query (what a report or the dashboard reads), after the last point.
  const q0 = performance.now();
  const queries = 200;
  for (let i = 0; i < queries; i++) {
    trend.push((ANALYSIS_POINTS + i) * 1000, value(ANALYSIS_POINTS + i));
    sink += trend.forecast(600_000);
  }
  const queryUs = ((performance.now() - q0) * 1000) / queries;
  if (!Number.isFinite(sink)) throw new Error('no scores: the benchmark is broken');
  // The first slice is the learning period and warm-up: compare the second with the last.
  return {
    points: ANALYSIS_POINTS,
    earlyNsPerPoint: slices[1],
    lateNsPerPoint: slices[slices.length - 1],
    trendQueryUs: queryUs,
    stateBytes,
  };
}

// ---- record → visible across threads -----------------------------------------------------------

// The worker waits for a go, stamps the time (performance.timeOrigin + now(): comparable across
// threads), records one latency, and waits again. The main thread spins reading totals until the
// record shows, then takes the time: delay = seen − stamp.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const load = workerData.tsx
  ? import(workerData.tsx).then(({ register }) => { register(); return import(workerData.lib); })
  : import(workerData.lib);
load.then(({ attach }) => {
  const recorder = attach(workerData.handle);
  const ctl = new Int32Array(workerData.ctl);
  const stamp = new Float64Array(workerData.stamp);
  parentPort.postMessage('ready');
  for (let trial = 1; ; trial++) {
    while (Atomics.load(ctl, 0) < trial) Atomics.wait(ctl, 0, trial - 1, 1000);
    if (Atomics.load(ctl, 1) === 1) break;
    stamp[0] = performance.timeOrigin + performance.now();
    recorder.recordLatency(1.5);
    Atomics.store(ctl, 2, trial);
  }
  parentPort.postMessage('done');
});`;

async function measureVisibility() {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, logger: false });
  const ctl = new SharedArrayBuffer(16);
  const stamp = new SharedArrayBuffer(8);
  const c = new Int32Array(ctl);
  const st = new Float64Array(stamp);
  const workerData = {
    handle: monitor.handle(),
    ctl,
    stamp,
    lib: source === 'dist' ? DIST.href : SRC.href,
    tsx: source === 'dist' ? undefined : import.meta.resolve('tsx/esm/api'),
  };
  const worker = new Worker(WORKER, { eval: true, workerData });
  const said = (what) => workerSaid(worker, what);
  await said('ready');
  const delaysMs = [];
  let reads = 0;
  for (let trial = 1; trial <= TRIALS; trial++) {
    const before = monitor.totals().requests;
    Atomics.store(c, 0, trial);
    Atomics.notify(c, 0);
    // Spin on what a reader reads: the totals in shared memory.
    let seen;
    for (;;) {
      reads++;
      if (monitor.totals().requests > before) {
        seen = performance.timeOrigin + performance.now();
        break;
      }
    }
    // The stamp is written before the record, so it is there once the record shows.
    delaysMs.push(seen - st[0]);
    while (Atomics.load(c, 2) < trial) {
      // the worker's bookkeeping after the record; not timed
    }
  }
  const done = said('done');
  Atomics.store(c, 1, 1);
  Atomics.store(c, 0, TRIALS + 1);
  Atomics.notify(c, 0);
  await done;
  await worker.terminate();
  const total = monitor.totals().requests;
  monitor.close();
  if (total !== TRIALS) throw new Error(`expected ${TRIALS} records, found ${total}`);
  // A spin read of the totals bounds the resolution: report its cost too.
  const readCost = (() => {
    const m = new StreamPerformanceMonitor({ autoStart: false, logger: false });
    const n = 2000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) m.totals();
    const us = ((performance.now() - t0) / n) * 1000;
    m.close();
    return us;
  })();
  const s = stats(delaysMs);
  return {
    trials: TRIALS,
    medianUs: s.medianUs,
    p99Us: s.p99Us,
    maxUs: Math.max(...delaysMs) * 1000,
    totalsReadUs: readCost,
    readsPerTrial: reads / TRIALS,
  };
}

// ---- run ---------------------------------------------------------------------------------------

const bySeries = [];
for (const count of SERIES_COUNTS) {
  const r = measureSeries(count);
  bySeries.push(r);
  if (!args.json)
    process.stderr.write(
      `  ${count} series: tick ${r.tick.medianUs.toFixed(1)} µs, summary ${r.summary.medianUs.toFixed(1)} µs\n`,
    );
}
const analysis = measureAnalysis();
if (!args.json)
  process.stderr.write(
    `  analysis: ${analysis.earlyNsPerPoint.toFixed(0)} → ${analysis.lateNsPerPoint.toFixed(0)} ns/point\n`,
  );
const visibility = await measureVisibility();
if (!args.json)
  process.stderr.write(
    `  visibility: p50 ${visibility.medianUs.toFixed(1)} µs, p99 ${visibility.p99Us.toFixed(1)} µs\n`,
  );

const results = {
  source,
  perSeriesPerTick: PER_SERIES_PER_TICK,
  series: Object.fromEntries(bySeries.map((r) => [r.series, { tick: r.tick, summary: r.summary }])),
  visibility,
  analysis,
};
const bars = {
  visibilityP99Below1ms: visibility.p99Us < 1000,
  summaryAtMost1ms: results.series[1].summary.medianUs <= 1000,
  summaryWith100SeriesAtMost1ms: results.series[100].summary.medianUs <= 1000,
  // Fixed per-point cost: late in the series no dearer than early, allowing for timer noise.
  analysisCostFlat: analysis.lateNsPerPoint <= 1.5 * analysis.earlyNsPerPoint,
};
const out = { suite: 'tick', quick: Boolean(args.quick), machine: machine(), results, bars };

if (args.json) {
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  printTable(
    ['series', 'tick median µs', 'tick p99 µs', 'summary median µs', 'summary p99 µs'],
    bySeries.map((r) => [
      String(r.series),
      r.tick.medianUs.toFixed(1),
      r.tick.p99Us.toFixed(1),
      r.summary.medianUs.toFixed(1),
      r.summary.p99Us.toFixed(1),
    ]),
  );
  console.log('');
  console.log(
    `record in a worker → visible in the main thread's totals: p50 ${visibility.medianUs.toFixed(1)} µs, p99 ${visibility.p99Us.toFixed(1)} µs, max ${visibility.maxUs.toFixed(1)} µs over ${visibility.trials} trials (one totals read: ${visibility.totalsReadUs.toFixed(1)} µs)`,
  );
  console.log('');
  console.log(
    `analysis per watched figure (anomaly detector + trend model, monitor defaults): ${analysis.earlyNsPerPoint.toFixed(0)} ns/point at points 10k–20k, ${analysis.lateNsPerPoint.toFixed(0)} ns/point at ${((analysis.points - ANALYSIS_SLICE) / 1000).toFixed(0)}k–${(analysis.points / 1000).toFixed(0)}k; trend query ${analysis.trendQueryUs.toFixed(1)} µs; state ${(analysis.stateBytes / 1024).toFixed(0)} KiB, fixed`,
  );
  console.log('');
  printBars(bars);
  console.log(
    `\n${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, ${source}, ${out.machine.date}${args.quick ? ' (quick run: rough figures)' : ''}`,
  );
}
