// Concurrent recording: latencies recorded per second by one thread and by as many threads as the
// machine has cores, all into the same series of one monitor (through attach(monitor.handle())),
// against a reference that shares nothing: each thread its own perf_hooks histogram. A case scales
// when T threads record T times as much as one; the reference shows how much the machine gives.
//
//   lanes             each thread records into its own lane of the series' histogram (the usual path)
//   lanesAfterChurn   the same after GENERATIONS workers have come, recorded and been terminated
//                     (a piscina pool growing and shrinking): the new ones take over their lanes
//   atomics           no lane left: every thread adds to the shared histogram with atomics
//   perfHooks         the reference, nothing shared
//
//   node bench/threads.js            full run, a table
//   node bench/threads.js --quick    short run (checks that it works, figures are rough)
//   node bench/threads.js --json     one JSON object of named figures on stdout
//
// Wall-clock time from the go to the last thread's end: threads that wait for a core count. Each
// case runs in every round, the rounds in rotated order; figures are medians over rounds.
//
// Needs the build (`npm run build`): it imports ../dist as a user would import 'streamgauge'.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { StreamPerformanceMonitor } from '../dist/index.js';
import { H, R } from '../dist/layout.js';
import { machine, median, parseArgs, printBars, printRatios, printTable, workerSaid } from './common.js';

const args = parseArgs();
const THREADS = Math.max(2, os.cpus().length);
const COUNT = args.quick ? 2_000_000 : 20_000_000;
const WARMUP = args.quick ? 200_000 : 2_000_000;
const ROUNDS = args.quick ? 1 : 5;
const GENERATIONS = 20;
const LIB = new URL('../dist/index.js', import.meta.url).href;

// Each worker records WARMUP values (so that its lane is claimed and its code optimised), says
// ready, waits for the go, records COUNT values, stamps its end, says done and waits to be ended.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHistogram, performance } = require('node:perf_hooks');
const { mode, handle, lib, count, warmup, gate, ends, index } = workerData;
const N = 1 << 14, values = new Float64Array(N);
let s = 0x2545f491 + index;
for (let i = 0; i < N; i++) {
  s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
  values[i] = Math.exp(Math.log(2) + 1.2 * (((s >>> 0) / 2 ** 32) * 2 - 1)); // 0.6 .. 6.6 ms
}
const nanos = values.map((v) => Math.round(v * 1e6));
function recordInto(rec, n) { for (let i = 0; i < n; i++) rec.recordLatency(values[i & (N - 1)]); }
function recordPerf(h, n) { for (let i = 0; i < n; i++) h.record(nanos[i & (N - 1)]); }
(async () => {
  let run;
  if (mode === 'perfHooks') {
    const h = createHistogram();
    run = (n) => recordPerf(h, n);
  } else {
    const { attach } = await import(lib);
    const rec = attach(handle);
    run = (n) => recordInto(rec, n);
  }
  run(warmup);
  parentPort.postMessage('ready');
  Atomics.wait(new Int32Array(gate), 0, 0);
  run(count);
  new Float64Array(ends)[index] = performance.timeOrigin + performance.now();
  parentPort.postMessage('done');
})();`;

function rootLanes(monitor) {
  const { memory, layout } = monitor.handle();
  return Atomics.load(new Int32Array(memory.buffer, layout.seriesPtr + layout.histOffset.latency + H.LANES, 1), 0);
}

/** Workers that record a little into the monitor and are terminated, one after another. */
async function churn(monitor) {
  for (let g = 0; g < GENERATIONS; g++) {
    const w = new Worker(WORKER, {
      eval: true,
      workerData: {
        mode: 'lanes',
        handle: monitor.handle(),
        lib: LIB,
        count: 0,
        warmup: 1000,
        gate: new SharedArrayBuffer(4),
        ends: new SharedArrayBuffer(8),
        index: 0,
      },
    });
    await workerSaid(w, 'ready');
    await w.terminate();
  }
}

/** Records/s of `threads` workers recording COUNT values each at once, with the monitor's figures. */
async function measure(mode, threads) {
  const monitor = mode === 'perfHooks' ? null : new StreamPerformanceMonitor({ autoStart: false, logger: false });
  if (mode === 'atomics') {
    const { memory, layout } = monitor.handle();
    new Int32Array(memory.buffer, layout.runtimePtr, 64)[R.LANES_CLAIMED] = layout.lanePool.count;
  }
  if (mode === 'lanesAfterChurn') await churn(monitor);
  const gate = new SharedArrayBuffer(4);
  const ends = new SharedArrayBuffer(8 * threads);
  const workers = Array.from(
    { length: threads },
    (_, index) =>
      new Worker(WORKER, {
        eval: true,
        workerData: { mode, handle: monitor?.handle(), lib: LIB, count: COUNT, warmup: WARMUP, gate, ends, index },
      }),
  );
  await Promise.all(workers.map((w) => workerSaid(w, 'ready')));
  const done = workers.map((w) => workerSaid(w, 'done'));
  const t0 = performance.timeOrigin + performance.now();
  Atomics.store(new Int32Array(gate), 0, 1);
  Atomics.notify(new Int32Array(gate), 0);
  await Promise.all(done);
  const seconds = (Math.max(...new Float64Array(ends)) - t0) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  let lanes = null;
  if (monitor !== null) {
    // Every record must be there: a lost one would make any speed meaningless.
    const expected = (mode === 'lanesAfterChurn' ? GENERATIONS * 1000 : 0) + threads * (WARMUP + COUNT);
    const got = monitor.totals().latencyCount;
    if (got !== expected) throw new Error(`${mode}, ${threads} threads: ${got} records counted, ${expected} made`);
    lanes = rootLanes(monitor);
    monitor.close();
  }
  return { perSecond: (threads * COUNT) / seconds, lanes };
}

const MODES = ['lanes', 'lanesAfterChurn', 'atomics', 'perfHooks'];
const runs = Object.fromEntries(MODES.map((m) => [m, { one: [], all: [], scaling: [], lanes: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < MODES.length; i++) {
    const mode = MODES[(i + round) % MODES.length];
    const one = await measure(mode, 1);
    const all = await measure(mode, THREADS);
    runs[mode].one.push(one.perSecond);
    runs[mode].all.push(all.perSecond);
    runs[mode].scaling.push(all.perSecond / one.perSecond);
    runs[mode].lanes.push(all.lanes);
  }
  if (!args.json) process.stderr.write(`  round ${round + 1}/${ROUNDS}\n`);
}

const results = Object.fromEntries(
  MODES.map((m) => [
    m,
    {
      oneThreadPerSecond: median(runs[m].one),
      allThreadsPerSecond: median(runs[m].all),
      scaling: median(runs[m].scaling),
      scalingByRound: runs[m].scaling.map((x) => Math.round(x * 100) / 100),
      rootLanes: runs[m].lanes[0],
    },
  ]),
);
// Against the reference in the same round: how much of what the machine gave each case kept.
const ofReference = (m) => median(runs[m].scaling.map((x, i) => x / runs.perfHooks.scaling[i]));
const ratios = {
  lanesScalingOfReference: ofReference('lanes'),
  lanesAfterChurnScalingOfReference: ofReference('lanesAfterChurn'),
  atomicsScalingOfReference: ofReference('atomics'),
};
const bars = {
  lanesScaleWithThreads: ratios.lanesScalingOfReference >= 0.9,
  lanesAfterChurnScaleWithThreads: ratios.lanesAfterChurnScalingOfReference >= 0.9,
};

const out = {
  suite: 'threads',
  quick: Boolean(args.quick),
  threads: THREADS,
  count: COUNT,
  rounds: ROUNDS,
  machine: { ...machine(), loadAverage: os.loadavg() },
  results,
  ratios,
  bars,
};
if (args.json) {
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  const labels = {
    lanes: 'streamgauge, a lane per thread',
    lanesAfterChurn: `streamgauge, after ${GENERATIONS} workers came and went`,
    atomics: 'streamgauge, no lane left (atomics)',
    perfHooks: 'perf_hooks, a histogram per thread (reference)',
  };
  const m = (x) => (x / 1e6).toFixed(1);
  printTable(
    ['what', '1 thread M/s', `${THREADS} threads M/s`, 'scaling', 'by round', 'lanes'],
    MODES.map((k) => {
      const r = results[k];
      return [
        labels[k],
        m(r.oneThreadPerSecond),
        m(r.allThreadsPerSecond),
        `${r.scaling.toFixed(2)}×`,
        r.scalingByRound.join(' / '),
        String(r.rootLanes ?? '-'),
      ];
    }),
  );
  console.log("\nlanes: lanes the series' histogram had at the end of the first round's run\n");
  printRatios(ratios);
  console.log('');
  printBars(bars);
  console.log(
    `\n${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, ${out.machine.date}, load ${out.machine.loadAverage.map((l) => l.toFixed(1)).join(' ')}; ` +
      `wall-clock time, ${COUNT.toLocaleString('en')} records per thread${args.quick ? ' (quick run: rough figures)' : ''}`,
  );
}
