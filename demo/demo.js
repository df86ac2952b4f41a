#!/usr/bin/env node
// `npm start`: a bidi-streaming gRPC echo service on 127.0.0.1, instrumented by the server
// interceptor; a load generator on piscina worker threads recording client-side latency into the
// same monitor through attach(); /metrics and the dashboard served; a live status line, periodic
// reports, and the final summary compared with the targets on Ctrl-C (or after --duration).
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import { Piscina } from 'piscina';
import { pino } from 'pino';
import { grpcServerInterceptor, StreamPerformanceMonitor, trackPool } from '../dist/index.js';
import { echoService } from './echo-service.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    port: { type: 'string', default: '9464' },
    threads: { type: 'string', default: '2' },
    incident: { type: 'string', default: '45' },
    'fail-every': { type: 'string', default: '300' },
  },
});
const durationS = args.duration === undefined ? Infinity : Number(args.duration);
const port = Number(args.port);
const threads = Number(args.threads);
const incidentAtS = Number(args.incident);
const failEvery = Number(args['fail-every']);
for (const [name, v] of /** @type {[string, number][]} */ ([
  ['--duration', durationS],
  ['--port', port],
  ['--threads', threads],
  ['--incident', incidentAtS],
  ['--fail-every', failEvery],
])) {
  if (Number.isNaN(v) || v < 0) {
    console.error(`${name} must be a number ≥ 0`);
    process.exit(2);
  }
}

const logFile = join(tmpdir(), `streamgauge-demo-${process.pid}.log`);
// The first seconds of load (JIT warm-up, connections opening) look nothing like the rest and
// would teach the detectors that anything goes: the load warms up unrecorded, and the ticks (so
// the history and the detectors' learning) start when recording does.
const warmUpMs = 2000;
// A detector judges a point against at least 100 earlier ones, so the incident must find about
// 150 ticks of normal load behind it: quick ticks (250 ms, or quicker for an early incident).
const normalMs = incidentAtS > 0 ? incidentAtS * 1000 - warmUpMs : Infinity;
const collectionInterval = Math.round(Math.min(250, Math.max(50, normalMs / 150)));
// Alarms from 60 % of that time on (at most the default 150 ticks).
const learningMs = Math.min(150 * collectionInterval, Math.max(20 * collectionInterval, 0.6 * normalMs));
const monitor = new StreamPerformanceMonitor({
  collectionInterval,
  historyRetention: 3_600_000, // an hour of quick ticks
  throughputWindow: 5000,
  anomalyLearningPeriod: learningMs,
  autoStart: false,
  reportInterval: 20_000,
  logger: pino({ name: 'streamgauge-demo' }, pino.destination({ dest: logFile, sync: false })),
});

// ---- the service ------------------------------------------------------------------------------
const startedAt = Date.now();
const INCIDENT_S = 8;
let incident = false;
const inIncident = () => incident;
// The headline figures are the clients' per-message round trips (recorded in the load workers);
// the server's per-call figures stay per method, out of the monitor-wide totals.
const interceptor = grpcServerInterceptor(monitor, { inTotals: false });
const server = new grpc.Server({ interceptors: [interceptor] });
const cache = new Set();
let streamsServed = 0;
server.addService(echoService, {
  Chat(call) {
    interceptor.instrumentCall(call);
    // One stream in failEvery fails part-way, so errors show up by status.
    const failAfter = failEvery > 0 && ++streamsServed % failEvery === 0 ? 50 : -1;
    let n = 0;
    let failed = false;
    let clientDone = false;
    let delayed = 0;
    call.on('data', (msg) => {
      if (failed) return;
      // A little real work: a digest looked up in a small cache (about 90 % hits).
      const key = createHash('sha1')
        .update(msg)
        .update(String(Math.floor(Math.random() * 400)))
        .digest('hex')
        .slice(0, 6);
      if (cache.has(key)) monitor.recordCacheHit();
      else {
        monitor.recordCacheMiss();
        if (cache.size >= 360) cache.delete(cache.values().next().value);
        cache.add(key);
      }
      if (++n === failAfter) {
        failed = true;
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'simulated failure' });
        return;
      }
      if (inIncident()) {
        delayed++;
        setTimeout(
          () => {
            delayed--;
            if (!failed) call.write(msg);
            if (clientDone && delayed === 0) call.end();
          },
          40 + Math.random() * 20,
        );
      } else call.write(msg);
    });
    // End only once every delayed reply is out, or the client would wait for them forever.
    call.on('end', () => {
      clientDone = true;
      if (!failed && delayed === 0) call.end();
    });
    call.on('error', () => {
      failed = true;
    });
  },
});
const grpcPort = await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
    err ? reject(err) : resolve(p),
  ),
);
const address = `127.0.0.1:${grpcPort}`;

// ---- outputs ----------------------------------------------------------------------------------
const served = await monitor.serve({ port, host: '127.0.0.1' });
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
console.log(bold('streamgauge demo'));
console.log(`  gRPC bidi echo service   ${address}  (interceptor: per-method series, sessions, backpressure)`);
console.log(`  load                     ${threads} piscina worker threads, client latency recorded via attach()`);
console.log(`  dashboard                ${served.url}/`);
console.log(`  Prometheus metrics       ${served.url}/metrics`);
console.log(`  debug detail             ${served.url}/debug`);
console.log(`  structured logs          ${logFile}`);
if (incidentAtS > 0)
  console.log(`  a latency incident is injected at ${incidentAtS} s for ${INCIDENT_S} s: watch for the anomaly`);
console.log(durationS === Infinity ? '  Ctrl-C stops and prints the summary.\n' : `  running for ${durationS} s.\n`);

monitor.on('anomaly', (a) =>
  clearLine(
    `⚠ anomaly: ${a.series} ${fmt(a.value)} ${a.unit} (expected ${fmt(a.expectedLow)}..${fmt(a.expectedHigh)})`,
  ),
);
monitor.on('recovered', (a) => clearLine(`✓ ${a.series} recovered after ${((a.end - a.start) / 1000).toFixed(1)} s`));
monitor.on('report', (r) => {
  clearLine(
    `report ${((r.to - r.from) / 1000).toFixed(0)} s: ${fmtInt(r.period.requests)} requests, ${fmt(r.period.rps)} rps, ` +
      `${(r.period.errorRate * 100).toFixed(2)} % errors, score ${r.comparison.overallScore.toFixed(2)}` +
      (r.trends.find((t) => t.series === 'memoryBytes')
        ? `, memory ${fmtSigned(r.trends.find((t) => t.series === 'memoryBytes').slopePerMinute / 2 ** 20)} MB/min`
        : ''),
  );
});

// ---- the load -----------------------------------------------------------------------------------
const pool = new Piscina({
  filename: new URL('./load-worker.js', import.meta.url).href,
  minThreads: threads,
  maxThreads: threads,
});
const poolTracker = trackPool(monitor, pool, { name: 'load' });
const handle = monitor.handle();
let stopping = false;
const running = new Set();
// Set when the warm-up ends: shared with the load workers, so streams in flight start recording too.
const recording = new Int32Array(new SharedArrayBuffer(4));
const launch = () => {
  while (!stopping && running.size < threads * 3) {
    const task = pool
      .run({ handle, address, messages: 400, inFlight: 8, payloadBytes: 256, recording })
      .catch(() => {})
      .finally(() => {
        running.delete(task);
        launch();
      });
    running.add(task);
  }
};
launch();
const warmUp = setTimeout(() => {
  Atomics.store(recording, 0, 1);
  monitor.tick(); // the warm-up's point: nothing recorded in it
  monitor.start();
}, warmUpMs);
// The incident: every reply delayed by 40–60 ms for INCIDENT_S seconds.
const incidentTimers =
  incidentAtS > 0
    ? [
        setTimeout(() => {
          incident = true;
          clearLine(`incident: replies delayed by 40–60 ms for ${INCIDENT_S} s`);
        }, incidentAtS * 1000),
        setTimeout(
          () => {
            incident = false;
            clearLine('incident over');
          },
          (incidentAtS + INCIDENT_S) * 1000,
        ),
      ]
    : [];

// ---- the status line ----------------------------------------------------------------------------
/** The last tick's process figures (event-loop utilisation), as each 'tick' event brings them. */
let sys;
monitor.on('tick', (tick) => {
  sys = tick.system;
});
const status = setInterval(() => {
  const m = monitor.getCurrentMetrics();
  const line =
    `${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)} s  ` +
    `rps ${fmtInt(m.currentRps).padStart(7)}  p50 ${fmt(m.latencyP50Ms)} ms  p95 ${fmt(m.latencyP95Ms)} ms  p99 ${fmt(m.latencyP99Ms)} ms  ` +
    `err ${((m.failedRequests / Math.max(1, m.totalRequests)) * 100).toFixed(2)} %  streams ${monitor.sessionStats(0).active}  ` +
    `cache ${(m.cacheHitRatio * 100).toFixed(0)} %  rss ${(m.memoryUsageBytes / 2 ** 20).toFixed(0)} MB  elu ${((sys?.eventLoopUtilization ?? 0) * 100).toFixed(0)} %`;
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K${line}`);
  else console.log(line);
}, 1000);

const finish = async () => {
  if (stopping) {
    process.exit(130); // a second Ctrl-C: stop now
  }
  stopping = true;
  clearInterval(status);
  clearTimeout(warmUp);
  for (const t of incidentTimers) clearTimeout(t);
  clearTimeout(endTimer);
  // Let the streams in flight finish (they are short), but never wait on them for long; the
  // timer goes as soon as they have, so that it cannot hold the process open.
  let giveUp;
  await Promise.race([Promise.allSettled([...running]), new Promise((r) => (giveUp = setTimeout(r, 5000)))]);
  clearTimeout(giveUp);
  poolTracker.stop();
  await pool.destroy();
  server.forceShutdown();
  monitor.tick();
  const summary = monitor.getPerformanceSummary();
  const m = monitor.getCurrentMetrics();
  const c = monitor.compareWithTargets(summary);
  const t = monitor.config.targets;
  clearLine('');
  console.log(bold('summary'));
  /** @type {[string, string, string, number][]} */
  const rows = [
    ['throughput', `${fmt(summary.throughputRps)} rps`, `target ${t.targetRps} rps`, c.throughputAchievement],
    ['p95 latency', `${fmt(summary.p95LatencyMs)} ms`, `target ${t.targetP95LatencyMs} ms`, c.latencyAchievement],
    ['memory', `${fmt(summary.memoryUsageMb)} MB`, `target ${t.targetMemoryMb} MB`, c.memoryEfficiency],
    [
      'success rate',
      `${(summary.successRate * 100).toFixed(3)} %`,
      `target ${(t.targetSuccessRate * 100).toFixed(1)} %`,
      c.successRate,
    ],
  ];
  for (const [name, value, target, score] of rows)
    console.log(`  ${name.padEnd(14)}${value.padStart(14)}   ${target.padEnd(18)} ${score.toFixed(2)}×`);
  console.log(
    `  p50 / p99 / p99.9  ${fmt(summary.p50LatencyMs)} / ${fmt(summary.p99LatencyMs)} / ${fmt(summary.p999LatencyMs)} ms    uptime ${summary.uptimeSeconds.toFixed(0)} s`,
  );
  const errors = Object.entries(monitor.errorsByType()).map(([type, n]) => `${type} ${fmtInt(n)}`);
  console.log(
    `  requests ${fmtInt(m.totalRequests)}, failed ${fmtInt(m.failedRequests)}${errors.length ? ` (${errors.join(', ')})` : ''}`,
  );
  console.log(
    `  overall score ${c.overallScore.toFixed(2)} — ${c.meetsTargets ? 'meets every target' : 'misses a target'}`,
  );
  const anomalies = monitor.recentAnomalies();
  console.log(
    `  anomalies: ${anomalies.length ? anomalies.map((a) => `${a.series} ${a.direction} at ${new Date(a.start).toISOString().slice(11, 19)}`).join(', ') : 'none'}`,
  );
  await served.close();
  monitor.close();
  process.exitCode = 0;
};
process.once('SIGINT', finish);
process.once('SIGTERM', finish);
const endTimer = durationS !== Infinity ? setTimeout(finish, durationS * 1000) : undefined;

function clearLine(text) {
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
  if (text) console.log(text);
}
function fmt(v) {
  if (v === undefined || Number.isNaN(v)) return '–';
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2);
}
function fmtInt(v) {
  return Math.round(v).toLocaleString('en-US');
}
function fmtSigned(v) {
  return `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;
}
