// Overhead of the gRPC server interceptor on a real @grpc/grpc-js bidi echo server over loopback.
//
//   node bench/overhead.js [--json] [--quick] [--src]
//
// (a) the server's CPU time per echoed message without the monitor: process.cpuUsage() of this
//     process (the server) over a fixed message count; the client runs in a child process so its
//     CPU is not counted;
// (b) the CPU time per message that the interceptor and its recording add, measured in this
//     process over the real code path: the interceptor's ServerInterceptingCall is driven directly
//     (a request in through its listener, the echo out through its responder) many times, against
//     the same driver without the interceptor; the difference is the cost. grpc-js's own
//     interceptor layer (which any interceptor pays) is measured apart as a null interceptor;
// (c) the overhead figure: (b) / (a);
// (d) corroboration: alternating A/B runs of the real server without/with the interceptor
//     (throughput and server CPU per message), medians and spread.
//
// Loads the library from ../dist when it is built (npx tsc -p tsconfig.json) and not older than
// ../src, else (or with --src) from ../src through tsx's loader.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const argv = process.argv.slice(2);
const SELF = fileURLToPath(import.meta.url);

// ---- the service (no codegen: Buffer messages) -----------------------------------------------

const identity = (b) => b;
const PATH = '/streamgauge.bench.Echo/Bidi';
const service = {
  Bidi: {
    path: PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

// ---- the client (child process) ---------------------------------------------------------------

if (argv[0] === '--client') {
  const [port, total, streams, window, size] = argv.slice(1).map(Number);
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const payload = Buffer.alloc(size, 7);
  const perStream = Math.ceil(total / streams);
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: streams },
      () =>
        new Promise((resolve, reject) => {
          const call = client.Bidi();
          let sent = 0;
          let got = 0;
          call.on('data', () => {
            got++;
            if (sent < perStream) {
              call.write(payload);
              sent++;
            } else if (got === perStream) call.end();
          });
          call.on('error', reject);
          call.on('end', resolve);
          for (; sent < Math.min(window, perStream); sent++) call.write(payload);
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ wallMs: performance.now() - t0, messages: perStream * streams })}\n`);
  client.close();
  process.exit(0);
}

// ---- the orchestrator ------------------------------------------------------------------------

const JSON_OUT = argv.includes('--json');
const QUICK = argv.includes('--quick');
const CFG = QUICK
  ? {
      warmup: 3_000,
      messages: 20_000,
      pairs: 5,
      streams: 4,
      window: 8,
      size: 64,
      iterations: 300_000,
      reps: 5,
      calls: 20_000,
    }
  : {
      warmup: 10_000,
      messages: 100_000,
      pairs: 6,
      streams: 4,
      window: 8,
      size: 64,
      iterations: 2_000_000,
      reps: 9,
      calls: 100_000,
    };

/** dist/ when it is built and not older than src/ (a stale build would measure old code), else src/ through tsx. */
async function load() {
  const here = (p) => fileURLToPath(new URL(p, import.meta.url));
  const fresh = readdirSync(here('../src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('cjs'))
    .every((f) => {
      try {
        return statSync(here(`../dist/${f.replace(/\.ts$/, '.js')}`)).mtimeMs >= statSync(here(`../src/${f}`)).mtimeMs;
      } catch {
        return false;
      }
    });
  if (fresh && !argv.includes('--src')) {
    try {
      const [g, m] = await Promise.all([import('../dist/integrations/grpc.js'), import('../dist/monitor.js')]);
      return { ...g, ...m, from: 'dist' };
    } catch {
      // a half-built dist/: use the sources
    }
  }
  const { register } = await import('tsx/esm/api');
  register();
  const [g, m] = await Promise.all([import('../src/integrations/grpc.ts'), import('../src/monitor.ts')]);
  return { ...g, ...m, from: 'src (through tsx: dist/ missing or older than src/)' };
}
const lib = await load();
const { StreamPerformanceMonitor, grpcServerInterceptor } = lib;

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const spread = (xs) => ({ min: Math.min(...xs), max: Math.max(...xs), median: median(xs) });

// ---- (b) in-process: the interceptor's real code path, driven directly ------------------------

/** A stand-in for grpc-js's BaseServerInterceptingCall: no transport, callbacks at once. */
function fakeBaseCall() {
  return {
    listener: null,
    start(listener) {
      this.listener = listener;
      listener.onReceiveMetadata(new grpc.Metadata());
    },
    sendMetadata() {},
    sendMessage(_message, callback) {
      callback();
    },
    sendStatus() {
      // grpc-js notifies onCancel after every status.
      const l = this.listener;
      if (l) l.onCancel();
    },
    startRead() {},
    getPeer: () => '127.0.0.1:1',
    getDeadline: () => Number.POSITIVE_INFINITY,
    getHost: () => 'bench',
    getAuthContext: () => ({}),
    getConnectionInfo: () => ({}),
    getMetricsRecorder: () => null,
  };
}
const descriptor = {
  path: PATH,
  requestStream: true,
  responseStream: true,
  requestDeserialize: identity,
  responseSerialize: identity,
};
const appListener = { onReceiveMetadata() {}, onReceiveMessage() {}, onReceiveHalfClose() {}, onCancel() {} };
const noop = () => {};

function nullInterceptor() {
  return (_d, call) =>
    new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder().withStart((next) => next(new grpc.ServerListenerBuilder().build())).build(),
    );
}

/** A monitor whose recorders do nothing: what is left is the interceptor's own glue. */
function stubMonitor() {
  const rec = {
    recordLatency: noop,
    recordError: noop,
    recordMessages: noop,
    recordBackpressureEvent: noop,
    connectionOpened: noop,
    connectionClosed: noop,
    startTimer: () => noop,
  };
  return { series: () => rec, openSession: (connectionId) => ({ connectionId, message: noop, close: noop }) };
}

const variants = {
  bare: () => null,
  'grpc-js null interceptor': () => nullInterceptor(),
  'streamgauge, recording stubbed': () =>
    grpcServerInterceptor(
      /** @type {import('../src/monitor.ts').StreamPerformanceMonitor} */ (/** @type {unknown} */ (stubMonitor())),
      {},
    ),
  'streamgauge (defaults)': () => grpcServerInterceptor(new StreamPerformanceMonitor({ autoStart: false }), {}),
  'streamgauge (echoLatency)': () =>
    grpcServerInterceptor(new StreamPerformanceMonitor({ autoStart: false }), { echoLatency: true }),
  'streamgauge (echo, 1 in 8)': () =>
    grpcServerInterceptor(new StreamPerformanceMonitor({ autoStart: false }), {
      echoLatency: true,
      echoSampleEvery: 8,
    }),
};

/** The core's record calls the default path makes per echoed message, alone: session.message + recordMessages(out). */
function coreCalls(iterations) {
  const monitor = new StreamPerformanceMonitor({ autoStart: false });
  const series = monitor.series({ grpc_method: PATH });
  const session = monitor.openSession('bench', { grpc_method: PATH });
  const t0 = cpuNs();
  for (let i = 0; i < iterations; i++) {
    session.message(CFG.size);
    series.recordMessages(1, CFG.size, 'out');
  }
  const ns = (cpuNs() - t0) / iterations;
  monitor.close();
  return ns;
}

/** ns per echoed message (one request in, one response out) on a long-lived stream. */
function perMessage(makeInterceptor, iterations) {
  const interceptor = makeInterceptor();
  const base = fakeBaseCall();
  const call = interceptor ? interceptor(descriptor, base) : base;
  call.start(appListener);
  const listener = base.listener;
  const msg = Buffer.alloc(CFG.size);
  const t0 = cpuNs();
  for (let i = 0; i < iterations; i++) {
    listener.onReceiveMessage(msg);
    call.sendMessage(msg, noop);
  }
  return (cpuNs() - t0) / iterations;
}

/** ns per unary-shaped call: arrival, one request, one response, status, the final onCancel. */
function perCall(makeInterceptor, calls) {
  const interceptor = makeInterceptor();
  const msg = Buffer.alloc(CFG.size);
  const status = { code: grpc.status.OK, details: 'OK', metadata: null };
  const t0 = cpuNs();
  for (let i = 0; i < calls; i++) {
    const base = fakeBaseCall();
    const call = interceptor ? interceptor(descriptor, base) : base;
    call.start(appListener);
    base.listener.onReceiveMessage(msg);
    call.sendMessage(msg, noop);
    call.sendStatus(status);
  }
  return (cpuNs() - t0) / calls;
}

function inProcess() {
  const names = Object.keys(variants);
  const msgRuns = Object.fromEntries(names.map((n) => [n, []]));
  const callRuns = Object.fromEntries(names.map((n) => [n, []]));
  // Warm every path up first, then interleave the variants rep by rep.
  for (const n of names) {
    perMessage(variants[n], CFG.iterations / 10);
    perCall(variants[n], CFG.calls / 10);
  }
  const core = [];
  coreCalls(CFG.iterations / 10);
  for (let r = 0; r < CFG.reps; r++) {
    for (const n of names) msgRuns[n].push(perMessage(variants[n], CFG.iterations));
    for (const n of names) callRuns[n].push(perCall(variants[n], CFG.calls));
    core.push(coreCalls(CFG.iterations));
  }
  const bare = median(msgRuns.bare);
  const bareCall = median(callRuns.bare);
  const out = {};
  for (const n of names) {
    // Paired differences (rep by rep) against the bare path: their median and spread.
    const d = msgRuns[n].map((x, i) => x - msgRuns.bare[i]);
    const dc = callRuns[n].map((x, i) => x - callRuns.bare[i]);
    out[n] = {
      nsPerMessage: median(msgRuns[n]),
      addedNsPerMessage: median(d),
      addedNsPerMessageSpread: spread(d),
      nsPerCall: median(callRuns[n]),
      addedNsPerCall: median(dc),
    };
  }
  out.bare.nsPerMessage = bare;
  out.bare.nsPerCall = bareCall;
  return { variants: out, coreRecordCallsNsPerMessage: median(core) };
}

/** The monitor's own periodic work (the tick), amortised: ns of CPU per tick. */
function tickCost() {
  // A clock that advances one collection interval per tick, as the timer would.
  let now = Date.now();
  const monitor = new StreamPerformanceMonitor({ autoStart: false, clock: { now: () => now } });
  const interceptor = grpcServerInterceptor(monitor);
  const base = fakeBaseCall();
  const call = interceptor(descriptor, base);
  call.start(appListener);
  for (let i = 0; i < 1000; i++) {
    base.listener.onReceiveMessage(Buffer.alloc(8));
    call.sendMessage(Buffer.alloc(8), noop);
  }
  const runs = [];
  for (let r = 0; r < 50; r++) {
    now += 1000;
    const t0 = cpuNs();
    monitor.tick();
    runs.push(cpuNs() - t0);
  }
  monitor.close();
  return median(runs.slice(10));
}

// ---- (a) and (d): the real server, client in a child process -----------------------------------

async function serverRun(withInterceptor) {
  const monitor = withInterceptor ? new StreamPerformanceMonitor() : null; // autoStart: the real 1 s tick runs
  const server = new grpc.Server(withInterceptor ? { interceptors: [grpcServerInterceptor(monitor)] } : {});
  const total = CFG.warmup + CFG.messages;
  let count = 0;
  let cpu0 = 0;
  let cpu1 = 0;
  let t0 = 0;
  let t1 = 0;
  server.addService(service, {
    Bidi(call) {
      call.on('data', (m) => {
        count++;
        if (count === CFG.warmup) {
          t0 = performance.now();
          cpu0 = cpuNs();
        } else if (count === total) {
          cpu1 = cpuNs();
          t1 = performance.now();
        }
        call.write(m);
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  try {
    const child = spawn(process.execPath, [SELF, '--client', port, total, CFG.streams, CFG.window, CFG.size], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill(), 120_000);
    const code = await new Promise((res) => child.on('exit', res));
    clearTimeout(timer);
    if (code !== 0 || cpu1 === 0) throw new Error(`client failed (exit ${code}, ${count}/${total} messages)`);
    const client = JSON.parse(out.trim().split('\n').pop());
    const seconds = (t1 - t0) / 1000;
    return {
      withInterceptor,
      messages: CFG.messages,
      serverCpuNsPerMessage: (cpu1 - cpu0) / CFG.messages,
      messagesPerSecond: CFG.messages / seconds,
      clientWallMs: client.wallMs,
      recorded: monitor ? monitor.totals().messagesIn : undefined,
    };
  } finally {
    server.forceShutdown();
    monitor?.close();
  }
}

async function abPairs() {
  const pairs = [];
  await serverRun(false); // warm-up run, discarded
  for (let p = 0; p < CFG.pairs; p++) {
    // Alternate the order so slow drift of the machine does not favour one side.
    const order = p % 2 === 0 ? [false, true] : [true, false];
    const r = {};
    for (const w of order) r[w ? 'with' : 'without'] = await serverRun(w);
    pairs.push(r);
  }
  return pairs;
}

// ---- run --------------------------------------------------------------------------------------

const { variants: inproc, coreRecordCallsNsPerMessage } = inProcess();
const tickNs = tickCost();
const pairs = await abPairs();

const without = pairs.map((p) => p.without);
const withI = pairs.map((p) => p.with);
const cpuWithout = spread(without.map((r) => r.serverCpuNsPerMessage));
const cpuWith = spread(withI.map((r) => r.serverCpuNsPerMessage));
const tputWithout = spread(without.map((r) => r.messagesPerSecond));
const tputWith = spread(withI.map((r) => r.messagesPerSecond));
const tputRatio = spread(pairs.map((p) => p.with.messagesPerSecond / p.without.messagesPerSecond));
const cpuRatio = spread(pairs.map((p) => p.with.serverCpuNsPerMessage / p.without.serverCpuNsPerMessage));

const a = cpuWithout.median;
const sg = inproc['streamgauge (defaults)'];
const sgEcho = inproc['streamgauge (echoLatency)'];
const tickPerMessage = tickNs / tputWith.median; // one tick per second
const overhead = (sg.addedNsPerMessage + tickPerMessage) / a;
const overheadEcho = (sgEcho.addedNsPerMessage + tickPerMessage) / a;
const overheadEcho8 = (inproc['streamgauge (echo, 1 in 8)'].addedNsPerMessage + tickPerMessage) / a;
const recordedOk = withI.every((r) => r.recorded >= CFG.warmup + CFG.messages);

const result = {
  loadedFrom: lib.from,
  node: process.version,
  quick: QUICK,
  config: CFG,
  a_serverCpuNsPerMessage: cpuWithout,
  b_inProcess: inproc,
  b_coreRecordCallsNsPerMessage: coreRecordCallsNsPerMessage,
  b_tickNsPerTick: tickNs,
  b_tickNsPerMessage: tickPerMessage,
  c_overhead: {
    defaults: overhead,
    echoLatency: overheadEcho,
    echoLatencySampled8: overheadEcho8,
    grpcLayerOnly: inproc['grpc-js null interceptor'].addedNsPerMessage / a,
    bar: 0.01,
    specBar: 0.02,
  },
  d_pairs: {
    pairs,
    throughputWithout: tputWithout,
    throughputWith: tputWith,
    throughputRatioWithOverWithout: tputRatio,
    serverCpuNsPerMessageWith: cpuWith,
    cpuRatioWithOverWithout: cpuRatio,
    everyMessageRecorded: recordedOk,
  },
};

const f = (x, d = 0) => x.toFixed(d);
const pct = (x) => `${(x * 100).toFixed(2)} %`;
const lines = [
  `streamgauge gRPC interceptor overhead (${QUICK ? 'quick' : 'full'}; library from ${lib.from}; node ${process.version})`,
  '',
  `(a) server CPU per echoed message, unmonitored: median ${f(a)} ns (min ${f(cpuWithout.min)}, max ${f(cpuWithout.max)}; ${CFG.pairs} runs of ${CFG.messages} messages, client in a child process)`,
  '(b) in process, per echoed message (one in, one out), median of paired differences against the bare path:',
  ...Object.entries(inproc).map(
    ([n, v]) =>
      `      ${n.padEnd(32)} ${f(v.nsPerMessage, 1).padStart(7)} ns/msg  +${f(v.addedNsPerMessage, 1).padStart(6)} ns/msg  (+${f(v.addedNsPerMessageSpread.min, 1)}..+${f(v.addedNsPerMessageSpread.max, 1)})   per unary-shaped call +${f(v.addedNsPerCall)} ns`,
  ),
  `      of which the core's two record calls (session.message + recordMessages out), alone: ${f(coreRecordCallsNsPerMessage, 1)} ns/msg`,
  `      the tick: ${f(tickNs / 1000, 1)} µs per tick, once a second = ${f(tickPerMessage, 2)} ns per message at ${f(tputWith.median)} msg/s`,
  `(c) overhead = (b + tick) / (a): defaults ${pct(overhead)}, with echoLatency ${pct(overheadEcho)}, echoLatency 1 in 8 ${pct(overheadEcho8)} (bar 1 %, spec 2 %); grpc-js's own interceptor layer alone ${pct(result.c_overhead.grpcLayerOnly)}`,
  `(d) ${CFG.pairs} alternating A/B pairs on the real server (${CFG.messages} messages each):`,
  `      throughput without: median ${f(tputWithout.median)} msg/s (${f(tputWithout.min)}..${f(tputWithout.max)})`,
  `      throughput with:    median ${f(tputWith.median)} msg/s (${f(tputWith.min)}..${f(tputWith.max)})`,
  `      paired ratio with/without: median ${f(tputRatio.median, 3)} (${f(tputRatio.min, 3)}..${f(tputRatio.max, 3)})`,
  `      server CPU/msg without ${f(cpuWithout.median)} ns, with ${f(cpuWith.median)} ns; paired ratio median ${f(cpuRatio.median, 3)} (${f(cpuRatio.min, 3)}..${f(cpuRatio.max, 3)})`,
  `      every message recorded by the monitor: ${recordedOk ? 'yes' : 'NO'}`,
];
if (JSON_OUT) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else process.stdout.write(`${lines.join('\n')}\n\n${JSON.stringify(result)}\n`);
