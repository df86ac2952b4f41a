// A real service's size: 1,000 label sets (and 10,000), against prom-client with the same label
// sets of a 16-bucket classic histogram fed the same values.
//
//   node bench/scale.js            full run, a table and the bars
//   node bench/scale.js --quick    short run (checks that it works, figures are rough)
//   node bench/scale.js --json     one JSON object of named figures on stdout
//
// Memory is the RSS growth of a fresh process (after gc) from before the library is imported to
// after 20 ticks of 20 latencies (0.5–20 ms) per label set (and, where it says so, a scrape in
// both formats): each figure in its own process, the same script for both libraries. Times are
// medians of repeated ticks and scrapes in one process, side by side in the same run; every bar is
// a ratio. "10 of 1,000 active" is the steady state: 1,000 series recorded into once, then only 10,
// for longer than the window, against a monitor that has only those 10.
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { machine, median, parseArgs, printBars, printTable, xorshift } from './common.js';

const args = parseArgs();
// What users import: the package's ESM entry (resolved through its own exports).
const DIST = import.meta.resolve('streamgauge');
const PROTOBUF = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';
const PER_TICK = 20;
const TICKS = 20;

function values() {
  const rand = xorshift(0x2545f491);
  return Float64Array.from({ length: 1 << 14 }, () => 0.5 + rand() * 19.5);
}

const rssMb = () => {
  globalThis.gc();
  return process.memoryUsage().rss / 2 ** 20;
};

// ---- child processes: one memory figure each ---------------------------------------------------

async function childMemory(lib, n, threads, scrape) {
  const before = rssMb();
  const vals = values();
  let k = 0;
  if (lib === 'prom') {
    const prom = (await import('prom-client')).default;
    const registry = new prom.Registry();
    const h = new prom.Histogram({
      name: 'latency_seconds',
      help: 'h',
      labelNames: ['method'],
      buckets: prom.exponentialBuckets(0.0005, 2, 16),
      registers: [registry],
    });
    const children = Array.from({ length: n }, (_, i) => h.labels({ method: `m${i}` }));
    for (let t = 0; t < TICKS; t++)
      for (const c of children) for (let j = 0; j < PER_TICK; j++) c.observe(vals[k++ & 16383] / 1000);
    if (scrape) await registry.metrics();
  } else {
    const { StreamPerformanceMonitor } = await import(DIST);
    const clock = { t: Date.UTC(2025, 0, 1), now: () => clock.t };
    const m = new StreamPerformanceMonitor({ clock, autoStart: false, logger: false, maxSeries: Math.max(n, 1000) });
    const recorders = Array.from({ length: n }, (_, i) => m.series({ method: `m${i}` }));
    let workers = [];
    if (threads > 1) {
      // The other thread records into every label set as well, through attach().
      const code = `
        const { workerData, parentPort } = require('node:worker_threads');
        import(workerData.dist).then(({ attach }) => {
          const root = attach(workerData.handle);
          const recs = Array.from({ length: workerData.n }, (_, i) => root.series({ method: 'm' + i }));
          parentPort.on('message', (round) => {
            for (const r of recs) for (let j = 0; j < workerData.perTick; j++) r.recordLatency(0.5 + ((j * 7 + round) % 39) / 2);
            parentPort.postMessage('done');
          });
          parentPort.postMessage('ready');
        });`;
      workers = Array.from(
        { length: threads - 1 },
        () => new Worker(code, { eval: true, workerData: { dist: DIST, handle: m.handle(), n, perTick: PER_TICK } }),
      );
      await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
    }
    for (let t = 0; t < TICKS; t++) {
      const done = workers.map((w) => new Promise((r) => w.once('message', r)));
      for (const w of workers) w.postMessage(t);
      for (const r of recorders) for (let j = 0; j < PER_TICK; j++) r.recordLatency(vals[k++ & 16383]);
      await Promise.all(done);
      clock.t += 1000;
      m.tick();
    }
    if (scrape) {
      m.metrics(PROTOBUF);
      m.metrics('text/plain');
    }
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return rssMb() - before;
}

function memory(lib, n, threads = 1, scrape = false) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), '--child', lib, String(n), String(threads), scrape ? 'scrape' : ''],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`child ${lib} ${n}: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').at(-1));
}

// ---- times, in this process ---------------------------------------------------------------------

async function times(rounds) {
  const vals = values();
  let k = 0;
  const { StreamPerformanceMonitor } = await import(DIST);
  const prom = (await import('prom-client')).default;
  const clock = { t: Date.UTC(2025, 0, 1), now: () => clock.t };
  const feed = (recs) => {
    for (const r of recs) for (let j = 0; j < PER_TICK; j++) r.recordLatency(vals[k++ & 16383]);
  };
  const make = (n) => {
    const m = new StreamPerformanceMonitor({ clock, autoStart: false, logger: false, maxSeries: 1000 });
    return { m, recs: Array.from({ length: n }, (_, i) => m.series({ method: `m${i}` })) };
  };
  const big = make(1000);
  const few = make(10);
  // 1,000 series recorded into once, then only the first 10, past the window: the steady state.
  const mostlyQuiet = make(1000);
  feed(mostlyQuiet.recs);
  for (let t = 0; t < 30; t++) {
    feed(mostlyQuiet.recs.slice(0, 10));
    clock.t += 1000;
    mostlyQuiet.m.tick();
  }
  const registry = new prom.Registry();
  const ph = new prom.Histogram({
    name: 'latency_seconds',
    help: 'h',
    labelNames: ['method'],
    buckets: prom.exponentialBuckets(0.0005, 2, 16),
    registers: [registry],
  });
  const children = Array.from({ length: 1000 }, (_, i) => ph.labels({ method: `m${i}` }));
  const timed = (f) => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  const out = { tick1000: [], tick10of1000: [], tick10: [], scrapeText: [], scrapeProtobuf: [], promScrape: [] };
  for (let round = 0; round < rounds; round++) {
    // Interleaved, so a slow stretch of the host weighs on every figure alike.
    feed(big.recs);
    for (const c of children) for (let j = 0; j < PER_TICK; j++) c.observe(vals[k++ & 16383] / 1000);
    clock.t += 1000;
    out.tick1000.push(timed(() => big.m.tick()));
    feed(mostlyQuiet.recs.slice(0, 10));
    out.tick10of1000.push(timed(() => mostlyQuiet.m.tick()));
    feed(few.recs);
    out.tick10.push(timed(() => few.m.tick()));
    // A scrape ends in bytes (what an HTTP response sends): the text of both libraries is encoded,
    // so that a string left as a rope, whose flattening the caller pays, is not counted as free.
    out.scrapeText.push(timed(() => Buffer.from(big.m.metrics('text/plain').body)));
    out.scrapeProtobuf.push(timed(() => big.m.metrics(PROTOBUF)));
    const t0 = performance.now();
    Buffer.from(await registry.metrics());
    out.promScrape.push(performance.now() - t0);
  }
  big.m.close();
  few.m.close();
  mostlyQuiet.m.close();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, median(v.slice(Math.floor(v.length / 5)))]));
}

// ---- main -----------------------------------------------------------------------------------------

if (process.argv[2] === '--child') {
  const mb = await childMemory(
    process.argv[3],
    Number(process.argv[4]),
    Number(process.argv[5]),
    process.argv[6] === 'scrape',
  );
  console.log(String(mb));
  process.exit(0);
}

const reps = args.quick ? 1 : 3;
const mem = { sg1000: [], prom1000: [], sg1000Scraped: [], prom1000Scraped: [], sg10000: [] };
for (let i = 0; i < reps; i++) {
  mem.sg1000.push(memory('sg', 1000));
  mem.prom1000.push(memory('prom', 1000));
  mem.sg1000Scraped.push(memory('sg', 1000, 1, true));
  mem.prom1000Scraped.push(memory('prom', 1000, 1, true));
  mem.sg10000.push(memory('sg', 10_000, 2, true));
}
const m = Object.fromEntries(Object.entries(mem).map(([k, v]) => [k, median(v)]));
const t = await times(args.quick ? 10 : 60);
const out = {
  machine: machine(),
  memoryMb: m,
  timesMs: t,
  ratios: {
    memory1000: m.sg1000 / m.prom1000,
    memory1000Scraped: m.sg1000Scraped / m.prom1000Scraped,
    memory10000vsProm1000: m.sg10000 / m.prom1000Scraped,
    tick1000VsPromScrape: t.tick1000 / t.promScrape,
    tick10of1000VsTick10: t.tick10of1000 / t.tick10,
    scrapeTextVsProm: t.scrapeText / t.promScrape,
    scrapeProtobufVsProm: t.scrapeProtobuf / t.promScrape,
  },
};
const r = out.ratios;
const bars = {
  '1,000 label sets: RSS growth ≤ 1.0× prom-client': r.memory1000 <= 1,
  '10,000 label sets, two threads, scraped: RSS growth ≤ 10× prom-client at 1,000 (scraped)':
    r.memory10000vsProm1000 <= 10,
  'tick, 1,000 active series ≤ 0.2× prom-client scrape': r.tick1000VsPromScrape <= 0.2,
  'tick, 10 of 1,000 active ≤ 2× tick of 10 series': r.tick10of1000VsTick10 <= 2,
  'scrape, text ≤ 1.0× prom-client': r.scrapeTextVsProm <= 1,
  'scrape, protobuf ≤ 1.0× prom-client': r.scrapeProtobufVsProm <= 1,
};
if (args.json) console.log(JSON.stringify({ ...out, bars }));
else {
  printTable(
    ['figure', 'streamgauge', 'prom-client', 'ratio'],
    [
      ['RSS growth, 1,000 label sets (MB)', m.sg1000.toFixed(1), m.prom1000.toFixed(1), r.memory1000.toFixed(2)],
      [
        'RSS growth, 1,000 label sets, scraped (MB)',
        m.sg1000Scraped.toFixed(1),
        m.prom1000Scraped.toFixed(1),
        r.memory1000Scraped.toFixed(2),
      ],
      [
        'RSS growth, 10,000 label sets, 2 threads, scraped (MB)',
        m.sg10000.toFixed(1),
        `${m.prom1000Scraped.toFixed(1)} (1,000)`,
        r.memory10000vsProm1000.toFixed(2),
      ],
      [
        'tick, 1,000 active (ms) / prom-client scrape',
        t.tick1000.toFixed(2),
        t.promScrape.toFixed(2),
        r.tick1000VsPromScrape.toFixed(2),
      ],
      [
        'tick, 10 of 1,000 active / tick of 10 (ms)',
        t.tick10of1000.toFixed(3),
        t.tick10.toFixed(3),
        r.tick10of1000VsTick10.toFixed(2),
      ],
      [
        'scrape text, 1,000 series (ms)',
        t.scrapeText.toFixed(2),
        t.promScrape.toFixed(2),
        r.scrapeTextVsProm.toFixed(2),
      ],
      [
        'scrape protobuf, 1,000 series (ms)',
        t.scrapeProtobuf.toFixed(2),
        t.promScrape.toFixed(2),
        r.scrapeProtobufVsProm.toFixed(2),
      ],
    ],
  );
  console.log('');
  printBars(bars);
  console.log(
    `\n${out.machine.cpu}, ${out.machine.cores} cores, node ${out.machine.node}, ${out.machine.date}${args.quick ? ' (quick run: rough figures)' : ''}`,
  );
}
