// The cost of a full Prometheus scrape — monitor.metrics(accept) — of a monitor with 100 series,
// each holding a realistic latency distribution (several hundred non-empty buckets), in text 0.0.4,
// OpenMetrics and protobuf (native histograms); side by side with prom-client's registry.metrics()
// over 100 prom-client Histograms of the same values (the anchor). Bar: ≤ 5 ms per scrape. Each
// scrape is timed to bytes, `Buffer.from(body)` for text, what an HTTP response sends (a string
// body may still be a rope of pieces whose joining its reader pays).
//
//   node bench/scrape.js            full run, a table
//   node bench/scrape.js --quick    short run (checks that it works, figures are rough)
//   node bench/scrape.js --json     one JSON object of named figures on stdout
//
// Needs the build (`npm run build`): it imports ../dist/index.js as a user would import 'streamgauge'
// (and, for the breakdown, two internal modules of the same build).
import { gzipSync } from 'node:zlib';
import Benchmark from 'benchmark';
import promClient from 'prom-client';
import { render } from '../dist/export/exposition.js';
import { collectFamilies } from '../dist/export/collect-families.js';
import { StreamPerformanceMonitor } from '../dist/index.js';
import { DEFAULT_CLASSIC_BOUNDARIES_SECONDS } from '../dist/core/family-model.js';
import { registerWithPromClient } from '../dist/export/prom-client-bridge.js';
import { machine, median, parseArgs, printBars, printRatios, printTable, xorshift } from './common.js';

const args = parseArgs();
const options = args.quick ? { maxTime: 0.5, minSamples: 5 } : { maxTime: 1.5, minSamples: 15 };
// The machine is shared and its speed changes from one minute to the next, so every case runs in
// each of several rounds, in a rotated order; its figures come from the samples of all rounds, and
// a ratio is the median over rounds of that round's ratio (cases listed next to each other run
// seconds apart).
const rounds = args.quick ? 1 : 3;

const SERIES = 100;
const PER_SERIES = 5000;
const ACCEPT = {
  text: 'text/plain;version=0.0.4',
  openmetrics: 'application/openmetrics-text;version=1.0.0',
  // What Prometheus 2.42 sends with --enable-feature=native-histograms.
  protobuf:
    'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
};

// ---- the data: 100 routes, lognormal latencies with different medians and spreads --------------
const rand = xorshift(0x9e3779b9);
const monitor = new StreamPerformanceMonitor({ autoStart: false, logger: false, maxSeries: 128 });
const anchor = new promClient.Registry();
const promHistograms = [];
for (let s = 0; s < SERIES; s++) {
  const route = `Service${s % 7}/Method${s}`;
  const rec = monitor.series({ grpc_method: route });
  const hist = new promClient.Histogram({
    name: `anchor_request_duration_seconds_${s}`,
    help: 'Request latency.',
    labelNames: ['grpc_method'],
    buckets: [...DEFAULT_CLASSIC_BOUNDARIES_SECONDS],
    registers: [anchor],
  });
  promHistograms.push(hist);
  const median = 0.5 + 20 * rand();
  const sigma = 0.6 + 0.8 * rand();
  for (let i = 0; i < PER_SERIES; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const ms = Math.min(Math.max(median * Math.exp(sigma * z), 0.001), 60_000);
    if (i % 50 === 49) rec.recordError(i % 100 === 99 ? 'timeout' : 'unavailable', ms);
    else rec.recordLatency(ms);
    hist.observe({ grpc_method: route }, ms / 1000);
  }
  rec.recordMessages(PER_SERIES, PER_SERIES * 512, 'in');
}
monitor.tick(); // a window and the process figures, as a running monitor has them
const bridged = new promClient.Registry();
registerWithPromClient(monitor, bridged);

const series = monitor.seriesList().filter((s) => monitor.totals(s.index).requests > 0);
const nonEmpty = series.map((s) => monitor.nativeHistogram(s.index).buckets.length);
const nonEmptyBuckets = {
  min: Math.min(...nonEmpty),
  mean: nonEmpty.reduce((a, b) => a + b, 0) / nonEmpty.length,
  max: Math.max(...nonEmpty),
};

// ---- the cases ----------------------------------------------------------------------------------
const state = { sink: 0 };
const families = collectFamilies(monitor);
const textBody = Buffer.from(monitor.metrics(ACCEPT.text).body);
const cases = {
  scrapeText: () => {
    state.sink ^= Buffer.from(monitor.metrics(ACCEPT.text).body).length;
  },
  promClientText: {
    defer: true,
    fn: (deferred) => {
      anchor.metrics().then((t) => {
        state.sink ^= Buffer.from(t).length;
        deferred.resolve();
      });
    },
  },
  scrapeProtobuf: () => {
    state.sink ^= monitor.metrics(ACCEPT.protobuf).body.length;
  },
  scrapeOpenMetrics: () => {
    state.sink ^= Buffer.from(monitor.metrics(ACCEPT.openmetrics).body).length;
  },
  bridgeText: {
    defer: true,
    fn: (deferred) => {
      bridged.metrics().then((t) => {
        state.sink ^= Buffer.from(t).length;
        deferred.resolve();
      });
    },
  },
  collect: () => {
    state.sink ^= collectFamilies(monitor).length;
  },
  renderText: () => {
    state.sink ^= render(families, { accept: ACCEPT.text }).body.length;
  },
  renderOpenMetrics: () => {
    state.sink ^= render(families, { accept: ACCEPT.openmetrics }).body.length;
  },
  renderProtobuf: () => {
    state.sink ^= render(families, { accept: ACCEPT.protobuf }).body.length;
  },
  gzipText: () => {
    state.sink ^= gzipSync(textBody, { level: 1 }).length;
  },
};
const labels = {
  scrapeText: 'streamgauge monitor.metrics(): text 0.0.4',
  scrapeOpenMetrics: 'streamgauge monitor.metrics(): OpenMetrics',
  scrapeProtobuf: 'streamgauge monitor.metrics(): protobuf (native)',
  promClientText: 'prom-client registry.metrics(), 100 Histograms (anchor)',
  bridgeText: 'streamgauge through registerWithPromClient',
  collect: '  of which: collect the families',
  renderText: '  of which: render text 0.0.4',
  renderOpenMetrics: '  of which: render OpenMetrics',
  renderProtobuf: '  of which: render protobuf',
  gzipText: 'gzip (level 1) of the text body, when asked',
};

// Warm-up: every case runs a few times first, so that the first case in the suite is not the one
// that pays for compiling the code all of them share.
for (let i = 0; i < 30; i++) {
  for (const c of Object.values(cases)) {
    if (typeof c === 'function') c();
    else await new Promise((resolve) => c.fn({ resolve }));
  }
}

const names = Object.keys(cases);
const samples = Object.fromEntries(names.map((n) => [n, []]));
const roundMedians = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < rounds; round++) {
  const suite = new Benchmark.Suite(`scrape ${round + 1}`);
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + round * 3) % names.length];
    const c = cases[name];
    if (typeof c === 'function') suite.add(name, c, options);
    else suite.add(name, { ...options, ...c });
  }
  suite.on('cycle', (event) => {
    const b = event.target;
    if (b.error) throw b.error;
    samples[b.name].push(...b.stats.sample);
    roundMedians[b.name].push(Math.round(median(b.stats.sample) * 1e6) / 1e3);
  });
  await new Promise((resolve, reject) => {
    suite.on('complete', resolve);
    suite.on('error', (e) => reject(e.target.error));
    suite.run({ async: true });
  });
  if (!args.json) process.stderr.write(`  round ${round + 1}/${rounds}\n`);
}
const results = {};
for (const name of names) {
  const xs = samples[name];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(xs.length - 1, 1));
  results[name] = {
    medianMs: median(xs) * 1e3,
    meanMs: mean * 1e3,
    // relative margin of error of the mean at 95 % (normal approximation), as benchmark.js reports it
    rmePercent: ((1.96 * sd) / Math.sqrt(xs.length) / mean) * 100,
    roundMediansMs: roundMedians[name],
    samples: xs.length,
  };
}

// Every scrape must have produced the whole exposition (a broken one would be fast).
const sizes = {
  textBytes: Buffer.byteLength(monitor.metrics(ACCEPT.text).body),
  openMetricsBytes: Buffer.byteLength(monitor.metrics(ACCEPT.openmetrics).body),
  protobufBytes: /** @type {Uint8Array} */ (monitor.metrics(ACCEPT.protobuf).body).byteLength,
  textGzipBytes: gzipSync(textBody, { level: 1 }).length,
  promClientBytes: Buffer.byteLength(await anchor.metrics()),
};
const text = /** @type {string} */ (monitor.metrics(ACCEPT.text).body);
for (const s of series.slice(0, 3)) {
  if (!text.includes(`grpc_method="${s.labels.grpc_method}"`))
    throw new Error(`series ${s.labels.grpc_method} missing: the benchmark is broken`);
}
monitor.close();

const r = (name) => results[name].medianMs;
const ratio = (a, b) => median(results[a].roundMediansMs.map((x, i) => x / results[b].roundMediansMs[i]));
const ratios = {
  textOverPromClient: ratio('scrapeText', 'promClientText'),
  openMetricsOverPromClient: ratio('scrapeOpenMetrics', 'promClientText'),
  protobufOverPromClient: ratio('scrapeProtobuf', 'promClientText'),
  bridgeOverPromClient: ratio('bridgeText', 'promClientText'),
};
const bars = {
  textAtMost5ms: r('scrapeText') <= 5,
  openMetricsAtMost5ms: r('scrapeOpenMetrics') <= 5,
  protobufAtMost5ms: r('scrapeProtobuf') <= 5,
};

const out = {
  suite: 'scrape',
  quick: Boolean(args.quick),
  machine: machine(),
  series: SERIES,
  valuesPerSeries: PER_SERIES,
  nonEmptyBuckets,
  results,
  sizes,
  ratios,
  bars,
};
if (args.json) {
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  printTable(
    ['what (one scrape of 100 series)', 'median ms', 'mean ms', '± %', 'samples'],
    Object.entries(results).map(([name, x]) => [
      labels[name],
      x.medianMs.toFixed(2),
      x.meanMs.toFixed(2),
      x.rmePercent.toFixed(1),
      String(x.samples),
    ]),
  );
  console.log('');
  console.log(
    `non-empty native buckets per series: ${nonEmptyBuckets.min}..${nonEmptyBuckets.max} (mean ${nonEmptyBuckets.mean.toFixed(0)})`,
  );
  for (const [name, v] of Object.entries(sizes)) console.log(`${name.padEnd(34)} ${v}`);
  console.log('');
  printRatios(ratios);
  console.log('');
  printBars(bars);
  const rm = (name) => results[name].roundMediansMs.map((x) => x.toFixed(2)).join(' / ');
  console.log(
    `\nmedian of each round, ms: protobuf ${rm('scrapeProtobuf')}; text ${rm('scrapeText')}; prom-client ${rm('promClientText')}`,
  );
  console.log(
    `\n${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, ${out.machine.date}${args.quick ? ' (quick run: rough figures)' : ''}`,
  );
}
