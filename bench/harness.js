// What benchmark.js adds to the record bench's figure (a tool, not a suite: bench/run.js skips it).
// One record, `monitor.recordLatency`, timed four ways in interleaved rounds, each as a ratio to
// the same loop in a function compiled once (normally optimised code):
//
//   osrLoop        benchmark.js's own template, compiled with a new source for every sample as
//                  benchmark.js does (so V8 runs it as code optimised on stack replacement)
//   benchmarkJs    benchmark.js with its calibration (samples under minTime are run again)
//   fixedCount     benchmark.js with the count fixed (no sample is run again)
//
//   node bench/harness.js [--quick]
//
// Needs the build (`npm run build`).
import Benchmark from 'benchmark';
import { StreamPerformanceMonitor } from '../dist/index.js';
import { median, parseArgs, printRatios } from './common.js';

const args = parseArgs();
const ROUNDS = args.quick ? 4 : 24;
const COUNT = 4_000_000;

const monitor = new StreamPerformanceMonitor({ autoStart: false, logger: false });
monitor.recordLatency(1);
const ms = new Float64Array(1 << 14).map((_, i) => 0.5 + (i % 97) / 10);
globalThis.__harness = { monitor, ms, sink: 0 };
const setup = 'var c = globalThis.__harness, monitor = c.monitor, ms = c.ms, k = 0, sink = 0;';
const body = 'monitor.recordLatency(ms[k++ & 16383]);';
const teardown = 'c.sink += sink + k;';

// benchmark.js's compiled test (Benchmark.prototype's clock(), non-deferred, timer process.hrtime);
// `id` ends up in the source, as benchmark.js's uid does.
const template = (id) => `var global = window, clearTimeout = global.clearTimeout, setTimeout = global.setTimeout;
var r$,s$,m$=this,f$=m$.fn,i$=m$.count,n$=t$.ns;${setup}
s$=n$();while(i$--){${body}
}r$=n$(s$);r$=r$[0]+(r$[1]/1e9);${teardown}
return{elapsed:r$,uid:"uid${id}"}`;
let uid = 1;
const nsPerRecord = (id) => {
  const fn = new Function('window', 't$', template(id));
  return (fn.call({ count: COUNT }, globalThis, { ns: process.hrtime }).elapsed / COUNT) * 1e9;
};
const optimised = () => nsPerRecord(0); // the same source every time: V8 hands back the optimised function
const osr = () => nsPerRecord(uid++);
const bench = (options) => {
  const b = new Benchmark('record', body, { setup, teardown, maxTime: 0.15, minSamples: 3, ...options });
  b.run({ async: false });
  return median(b.stats.sample) * 1e9;
};

for (let i = 0; i < 20; i++) optimised();
const ratios = { osrLoop: [], benchmarkJs: [], fixedCount: [] };
for (let r = 0; r < ROUNDS; r++) {
  const plain = [optimised(), optimised(), optimised()];
  const o = median([osr(), osr(), osr()]);
  const calibrated = bench({ initCount: 1000 });
  const fixed = bench({ initCount: COUNT, minTime: 1e-6 });
  plain.push(optimised(), optimised(), optimised());
  const base = median(plain);
  ratios.osrLoop.push(o / base);
  ratios.benchmarkJs.push(calibrated / base);
  ratios.fixedCount.push(fixed / base);
}
if (globalThis.__harness.sink === 42) console.log('');
console.log(`median over ${ROUNDS} rounds, as a ratio to the loop in normally optimised code:`);
printRatios(Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, median(v)])));
monitor.close();
