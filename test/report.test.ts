import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock } from 'node:test';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamPerformanceMonitor } from '../src/index.js';
import { handClock } from './fixtures/monitor.js';
import { seededRandom } from './fixtures/random.js';

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger whose lines land in an array, parsed. */
function capture(level = 'info') {
  const lines: Line[] = [];
  const logger = pino({ level }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

function simulated(extra: Record<string, unknown> = {}) {
  const clock = handClock(1_700_000_000_000);
  const { logger, lines } = capture((extra.level as string) ?? 'info');
  delete extra.level;
  const monitor = new StreamPerformanceMonitor({ clock, autoStart: false, logger, ...extra });
  const advance = (ms: number) => {
    clock.t += ms;
    return monitor.tick();
  };
  return { monitor, clock, lines, advance };
}

/** Runs of one-second ticks of 200 requests each, latencies uniform within ±20 % of `base` (seeded). */
function steadyLoad(monitor: StreamPerformanceMonitor, advance: (ms: number) => unknown, seed: number) {
  const random = seededRandom(seed);
  return (ticks: number, base: number) => {
    for (let t = 0; t < ticks; t++) {
      for (let i = 0; i < 200; i++) monitor.recordLatency(base * (0.8 + 0.4 * random()));
      advance(1000);
    }
  };
}

test('a report covers the period since the previous one: requests, errors by type, top series', () => {
  const { monitor, advance } = simulated({ reportInterval: 3_600_000 });
  const chat = monitor.series({ grpc_method: 'Chat' });
  const get = monitor.series({ grpc_method: 'Get' });
  for (let i = 0; i < 300; i++) chat.recordLatency(2);
  for (let i = 0; i < 100; i++) get.recordLatency(40);
  get.recordError('timeout', 100);
  advance(10_000);
  const first = monitor.report();
  assert.is(first.period.requests, 401);
  assert.is(first.period.errors, 1);
  assert.equal(first.period.errorsByType, { timeout: 1 });
  assert.equal(
    first.topSeriesByLoad.map((s) => s.labels.grpc_method),
    ['Chat', 'Get'],
  );
  assert.equal(first.topSeriesByLatency[0].labels, { grpc_method: 'Get' });
  assert.ok(Math.abs(first.period.rps - 40.1) < 1e-9);

  for (let i = 0; i < 50; i++) chat.recordLatency(2);
  chat.recordError('reset');
  chat.recordError('reset');
  advance(5_000);
  const second = monitor.report();
  assert.is(second.period.requests, 52, 'only what came after the first report');
  assert.equal(second.period.errorsByType, { reset: 2 });
  assert.is(second.from, first.to);
  assert.equal(
    second.topSeriesByLoad.map((s) => s.labels.grpc_method),
    ['Chat'],
  );
  assert.ok(second.comparison.overallScore >= 0);
  monitor.close();
});

test('reports come every reportInterval as events and log lines; noisy events give one line per logInterval', () => {
  const { monitor, lines, advance } = simulated({ reportInterval: 10_000, logInterval: 5_000 });
  const reports: unknown[] = [];
  monitor.on('report', (r) => reports.push(r));
  for (let tick = 0; tick < 25; tick++) {
    for (let i = 0; i < 1000; i++) monitor.recordError('overload', 1);
    monitor.recordBackpressureEvent();
    advance(1000);
  }
  assert.is(reports.length, 2);
  assert.is(lines.filter((l) => l.msg === 'performance report').length, 2);
  const noise = lines.filter((l) => l.msg === 'errors and backpressure');
  assert.is(noise.length, 5, 'one aggregated line per 5 s, not one per error');
  assert.equal(noise[0].errors, { overload: 5000 });
  assert.is(noise[0].backpressureEvents, 5);
  monitor.close();
});

test('detailed logging adds a debug line per tick; default logging does not', () => {
  const quiet = simulated();
  quiet.advance(1000);
  assert.is(quiet.lines.filter((l) => l.msg === 'tick').length, 0);
  quiet.monitor.close();
  const loud = simulated({ enableDetailedLogging: true, level: 'debug' });
  loud.advance(1000);
  loud.advance(1000);
  const ticks = loud.lines.filter((l) => l.msg === 'tick');
  assert.is(ticks.length, 2);
  assert.ok((ticks[0].point as Record<string, number>).rps !== undefined);
  loud.monitor.close();
});

test('the report file gets one JSON line per report and is rotated by size, keeping reportFileKeep files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-report-'));
  try {
    const file = join(dir, 'reports.jsonl');
    const { monitor, advance } = simulated({
      reportInterval: 1000,
      reportFile: file,
      reportFileMaxBytes: 4096,
      reportFileKeep: 2,
    });
    for (let i = 0; i < 40; i++) {
      monitor.recordLatency(1 + i);
      advance(1000);
    }
    monitor.close();
    assert.ok(existsSync(file) && existsSync(`${file}.1`) && existsSync(`${file}.2`));
    assert.not.ok(existsSync(`${file}.3`), 'only reportFileKeep rotated files');
    const last = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(last.length >= 1);
    assert.is(typeof last.at(-1).period.requests, 'number');
    assert.ok('summary' in last.at(-1) && 'comparison' in last.at(-1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a latency step gives one anomaly event and one recovery, logged, with hysteresis', () => {
  const { monitor, lines, advance } = simulated();
  const events: { kind: string; series: string; direction: string }[] = [];
  monitor.on('anomaly', (a) => events.push({ kind: 'anomaly', series: a.series, direction: a.direction }));
  monitor.on('recovered', (a) => events.push({ kind: 'recovered', series: a.series, direction: a.direction }));
  const phase = steadyLoad(monitor, advance, 7);
  phase(400, 10);
  assert.equal(events, [], 'no anomaly in steady load');
  phase(30, 50);
  phase(200, 10);
  const p99 = events.filter((e) => e.series === 'p99');
  assert.equal(p99, [
    { kind: 'anomaly', series: 'p99', direction: 'up' },
    { kind: 'recovered', series: 'p99', direction: 'up' },
  ]);
  assert.ok(lines.some((l) => l.msg.startsWith('anomaly in p99')));
  assert.ok(lines.some((l) => l.msg.startsWith('p99 recovered')));
  const recent = monitor.recentAnomalies().filter((a) => a.series === 'p99');
  assert.is(recent.length, 1);
  assert.ok(recent[0].end! > recent[0].start);
  assert.ok(recent[0].peak > recent[0].expectedHigh);
  assert.is(recent[0].newLevel, false, 'it came back');
  monitor.close();
});

test('a lasting level shift stays one open anomaly until the new level has been normal for 10 minutes', () => {
  const { monitor, advance } = simulated({ anomalyLearningPeriod: 100_000 });
  const events: string[] = [];
  monitor.on('anomaly', (a) => a.series === 'p99' && events.push(`anomaly@${a.start}`));
  monitor.on('recovered', (a) => a.series === 'p99' && events.push(`recovered@${a.end}`));
  const phase = steadyLoad(monitor, advance, 11);
  phase(300, 10);
  phase(120, 40);
  assert.is(events.length, 1, `one open incident during the shift: ${events}`);
  assert.ok(
    monitor.recentAnomalies().find((a) => a.series === 'p99' && a.end === undefined),
    'still open two minutes into the shift',
  );
  phase(600, 40);
  assert.is(events.length, 2, `accepted as the new level: ${events}`);
  assert.is(monitor.recentAnomalies().find((a) => a.series === 'p99')!.newLevel, true);
  monitor.close();
});

test('trends: a memory leak of 2 MB/min is measured, and the time to the memory target forecast', () => {
  const { monitor, advance } = simulated({ targets: { targetMemoryMb: 200 } });
  const mb = 2 ** 20;
  for (let s = 0; s <= 600; s++) {
    monitor.updateMemoryUsage(Math.round(100 * mb + (2 * mb * s) / 60));
    monitor.recordLatency(5);
    advance(1000);
  }
  const memory = monitor.trends().find((t) => t.series === 'memoryBytes')!;
  assert.ok(Math.abs(memory.slopePerMinute / mb - 2) < 0.01, `slope ${memory.slopePerMinute / mb} MB/min`);
  // 120 MB now, growing 2 MB/min: the 200 MB target in about 40 minutes.
  assert.ok(Math.abs(memory.msToLimit! / 60_000 - 40) < 1, `${memory.msToLimit! / 60_000} min`);
  assert.ok(Math.abs(memory.forecast / mb - (memory.current / mb + 2 * memory.horizonMinutes)) < 0.5);
  monitor.close();
});

test('trends: a step in load is a level shift, forecast at the new level, not a trend', () => {
  const { monitor, advance } = simulated();
  const load = (seconds: number, rps: number) => {
    for (let s = 0; s < seconds; s++) {
      for (let i = 0; i < rps; i++) monitor.recordLatency(5);
      advance(1000);
    }
  };
  load(300, 100);
  load(120, 400);
  let rps = monitor.trends().find((t) => t.series === 'rps')!;
  assert.is(rps.change, 'levelShift');
  assert.ok(Math.abs(rps.shiftBy! - 300) < 1, `shift ${rps.shiftBy}`);
  assert.is(rps.slopePerMinute, 0);
  assert.ok(Math.abs(rps.forecast - 400) < 1, `forecast ${rps.forecast}`);
  load(300, 400); // five flat minutes later
  rps = monitor.trends().find((t) => t.series === 'rps')!;
  assert.equal([rps.change, rps.slopePerMinute], ['flat', 0]);
  assert.ok(Math.abs(rps.forecast - 400) < 1, `forecast ${rps.forecast}`);
  monitor.close();
});

test('moving averages and the 1/5/15-minute meter follow the request rate', () => {
  const { monitor, advance } = simulated({ throughputWindow: 10_000 });
  for (let s = 0; s < 20; s++) {
    for (let i = 0; i < 100; i++) monitor.recordLatency(2);
    advance(1000);
  }
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 300; i++) monitor.recordLatency(4);
    advance(1000);
  }
  const ma = monitor.movingAverages();
  assert.ok(Math.abs(ma.rps.sma - 300) < 1e-6, `sma ${ma.rps.sma}`);
  assert.ok(ma.rps.ewma > 100 && ma.rps.ewma < 300);
  assert.ok(Math.abs(ma.latencyMs.sma - 4) < 1e-9);
  assert.ok(
    ma.requestRate.m1 > ma.requestRate.m5 && ma.requestRate.m5 > ma.requestRate.m15,
    'the short rate reacts first',
  );
  assert.ok(ma.requestRate.m1 > 100 && ma.requestRate.m1 < 300);
  monitor.close();
});

test('after close() no more reports or log lines come, and the timer is gone', () => {
  // The monitor's own timer, on mocked timers and a hand clock moved together: what "later" means
  // is exact, and nothing waits on the machine's speed.
  mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
  try {
    const clock = handClock(1_700_000_000_000);
    const { logger, lines } = capture();
    const monitor = new StreamPerformanceMonitor({
      clock,
      collectionInterval: 10,
      historyRetention: 60_000,
      reportInterval: 20,
      logger,
    });
    const later = (ms: number) => {
      for (let i = 0; i < ms / 10; i++) {
        clock.t += 10;
        mock.timers.tick(10);
      }
    };
    monitor.recordLatency(1);
    later(100);
    const reports = lines.filter((l) => l.msg === 'performance report').length;
    assert.ok(reports >= 2, `reports came from the timer while open (${reports})`);
    monitor.close();
    const count = lines.length;
    later(1000); // a tick of a timer left running would log that the closed monitor failed to tick
    assert.is(lines.length, count);
    assert.throws(() => monitor.tick(), /closed/);
  } finally {
    mock.timers.reset();
  }
});

test.run();
