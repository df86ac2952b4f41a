// The node:cluster primary's work per scrape, 4 workers × 100 series: streamgauge's clusterMetrics()
// (parse and decode each worker's report as it arrives over IPC, merge, render) side by side with prom-client's
// AggregatorRegistry (parse each worker's getMetricsAsJSON() as IPC does, aggregate, render) over
// the same recorded values. Bar: ≤ 1.0× AggregatorRegistry. Ours carries each series' native
// histogram (about a thousand buckets at scale 7), prom-client its 16 classic buckets.
// clusterSample is the dashboard's per-interval work on the primary (merge, then each series'
// interval figures from the difference with the previous sample); clusterTextWindowed a scrape
// with the windowed families added.
//
//   node bench/cluster.js            full run
//   node bench/cluster.js --quick    short run
//   node bench/cluster.js --json     one JSON object of named figures on stdout
import promClient from 'prom-client';
import { ClusterWindow } from '../dist/serve/cluster-dashboard.js';
import { clusterFamilies, fromWire, mergeAll, partsOf } from '../dist/serve/cluster.js';
import { render } from '../dist/export/exposition.js';
import { StreamPerformanceMonitor } from '../dist/index.js';
import { DEFAULT_CLASSIC_BOUNDARIES_SECONDS } from '../dist/core/family-model.js';
import { machine, median, parseArgs, printBars, printRatios, printTable, xorshift } from './common.js';

const args = parseArgs();
const WORKERS = 4;
const SERIES = 100;
const PER_SERIES = args.quick ? 500 : 2000;
const rounds = args.quick ? 1 : 3;
const iterations = args.quick ? 3 : 10;
const ACCEPT = {
  text: 'text/plain;version=0.0.4',
  protobuf: 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited',
};

const rand = xorshift(0x2545f491);
const reports = []; // what each worker sends, as JSON text (IPC's default serialisation)
const jsons = []; // prom-client's worker answer, as JSON text
const later = []; // each worker's next report, for the dashboard's sampling
for (let w = 0; w < WORKERS; w++) {
  const monitor = new StreamPerformanceMonitor({ autoStart: false, logger: false, maxSeries: 128 });
  const registry = new promClient.Registry();
  const hist = new promClient.Histogram({
    name: 'request_duration_seconds',
    help: 'Request latency.',
    labelNames: ['route'],
    buckets: [...DEFAULT_CLASSIC_BOUNDARIES_SECONDS],
    registers: [registry],
  });
  const count = new promClient.Counter({
    name: 'requests_total',
    help: 'Requests.',
    labelNames: ['route'],
    registers: [registry],
  });
  for (let s = 0; s < SERIES; s++) {
    const route = `Service${s % 7}/Method${s}`;
    const rec = monitor.series({ route });
    const med = 0.5 + 20 * rand();
    for (let i = 0; i < PER_SERIES; i++) {
      const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      const ms = Math.min(Math.max(med * Math.exp(z), 0.001), 60_000);
      rec.recordLatency(ms);
      hist.observe({ route }, ms / 1000);
      count.inc({ route });
    }
  }
  reports.push(JSON.stringify({ parts: partsOf(monitor) }));
  // A little more, for the dashboard's next sample to differ from the first in every series.
  for (let s = 0; s < SERIES; s++) {
    const rec = monitor.series({ route: `Service${s % 7}/Method${s}` });
    for (let i = 0; i < 10; i++) rec.recordLatency(0.5 + 20 * rand());
  }
  later.push(JSON.stringify({ parts: partsOf(monitor) }));
  jsons.push(JSON.stringify(await registry.getMetricsAsJSON()));
  monitor.close();
}

let sink = 0;
/** The primary's side: each report parsed (as IPC does), decoded and merged with the others. */
const merged = (from = reports) =>
  mergeAll(from.map((r) => new Map(JSON.parse(r).parts.map((w) => [w.key, fromWire(w)]))));
const window = new ClusterWindow(async () => {
  throw new Error('fed by advance()');
});
let samples = 0;
const sample = () => {
  // Alternately the first reports and the later ones: every series differs from the previous sample.
  const series = merged(samples++ % 2 === 0 ? reports : later);
  const service = series.get('service');
  series.delete('service');
  return {
    t: performance.now(),
    series,
    service,
    activeConnections: 0,
    queueDepth: 0,
    memoryBytes: 0,
    workerUtilization: Number.NaN,
    workers: [],
  };
};
window.advance(sample());
const cases = {
  clusterSample: async () => {
    window.advance(sample());
    sink ^= window.current().series.length;
  },
  clusterTextWindowed: async () => {
    sink ^= render([...clusterFamilies(merged(), [], 0), ...window.families()], { accept: ACCEPT.text }).body.length;
  },
  clusterText: async () => {
    sink ^= render(clusterFamilies(merged(), [], 0), { accept: ACCEPT.text }).body.length;
  },
  clusterProtobuf: async () => {
    sink ^= render(clusterFamilies(merged(), [], 0), { accept: ACCEPT.protobuf }).body.length;
  },
  aggregatorRegistry: async () => {
    sink ^= (await promClient.AggregatorRegistry.aggregate(jsons.map((j) => JSON.parse(j))).metrics()).length;
  },
};
const names = Object.keys(cases);
const perRound = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + round) % names.length];
    await cases[name](); // warm
    const samples = [];
    for (let k = 0; k < iterations; k++) {
      const t = performance.now();
      await cases[name]();
      samples.push(performance.now() - t);
    }
    perRound[name].push(median(samples));
  }
  if (!args.json) process.stderr.write(`  round ${round + 1}/${rounds}\n`);
}
const ratio = (a) => median(perRound[a].map((x, i) => x / perRound.aggregatorRegistry[i]));
const figures = {
  machine: machine(),
  workers: WORKERS,
  series: SERIES,
  msPerScrape: Object.fromEntries(names.map((n) => [n, median(perRound[n])])),
  ratios: {
    clusterTextVsAggregatorRegistry: ratio('clusterText'),
    clusterProtobufVsAggregatorRegistry: ratio('clusterProtobuf'),
    clusterSampleVsAggregatorRegistry: ratio('clusterSample'),
    clusterTextWindowedVsAggregatorRegistry: ratio('clusterTextWindowed'),
  },
  reportBytes: reports[0].length,
  promClientBytes: jsons[0].length,
  sink,
};
if (args.json) console.log(JSON.stringify(figures));
else {
  printTable(
    ['case', 'ms per scrape (median of rounds)'],
    names.map((n) => [n, figures.msPerScrape[n].toFixed(2)]),
  );
  printRatios(figures.ratios);
  printBars({ 'primary scrape ≤ 1.0× AggregatorRegistry (text)': figures.ratios.clusterTextVsAggregatorRegistry <= 1 });
}
process.exit(0);
