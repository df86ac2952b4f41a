// A monitor's own timer must never take down the service it monitors: a fault in a timed tick (a
// trap in the core over damaged memory, a listener that throws) is reported as an 'error' event or
// a process warning, once, and the monitor keeps ticking; close() still closes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamPerformanceMonitor } from '../src/index.js';
import { H } from '../src/core/layout.js';
import { handClock, testMonitor } from './fixtures/monitor.js';
import { until } from './fixtures/wait.js';

function uncaught(): { errors: unknown[]; stop: () => void } {
  const errors: unknown[] = [];
  const onError = (e: unknown) => errors.push(e);
  process.on('uncaughtException', onError);
  return { errors, stop: () => process.off('uncaughtException', onError) };
}

test('a trap in the core during a timed tick is an error event, reported once; ticking goes on and close() closes', async () => {
  const watch = uncaught();
  const clock = handClock(1_000_000);
  const monitor = new StreamPerformanceMonitor({
    clock,
    logger: false,
    collectionInterval: 10,
    historyRetention: 60_000,
  });
  const errors: Error[] = [];
  monitor.on('error', (e: Error) => errors.push(e));
  let ticks = 0;
  monitor.on('tick', () => ticks++);
  try {
    monitor.recordLatency(3);
    await until('a first timed tick', 10_000, () => ticks > 0, 5);
    // Damage the open minute's histogram as a bad history file could: lanes that point nowhere.
    const { memory, layout } = monitor.handle();
    const i32 = new Int32Array(memory.buffer);
    const open = layout.rollups.minute.openPtr;
    // (A rollup's histogram has no lane table: this one is said to be at the start of its page table.)
    i32[(open + H.LANES) >> 2] = 3;
    i32[(open + H.LANEAT) >> 2] = H.PAGES;
    for (let j = 0; j < 3; j++) i32[((open + H.PAGES) >> 2) + j] = 0x7ffffff1;
    clock.t += 120_000; // the minute closes on the next tick: its merge follows the lanes
    await until('the error event', 10_000, () => errors.length > 0, 5);
    const failed = ticks;
    const err = errors[0] as Error & { code?: string };
    assert.is(err.code, 'ERR_STREAMGAUGE_TICK');
    assert.match(err.message, /tick failed \(RuntimeError: /);
    assert.instance(err.cause, WebAssembly.RuntimeError);
    // The timer keeps running (each tick fails the same way, reported only once).
    const before = errors.length;
    const calls: number[] = [];
    const spy = monitor.tick.bind(monitor);
    monitor.tick = () => {
      calls.push(1);
      return spy();
    };
    await until('three more timed ticks', 10_000, () => calls.length >= 3, 5);
    assert.is(errors.length, before, 'the same fault is reported once');
    assert.is(ticks, failed, 'no tick event from a failed tick');
    monitor.close();
    assert.throws(() => monitor.tick(), /after monitor.close/, 'closed');
    assert.equal(watch.errors, []);
  } finally {
    monitor.close();
    watch.stop();
  }
});

test("without an 'error' listener: a 'tick' listener that throws is a process warning, and the next tick runs", async () => {
  const watch = uncaught();
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const monitor = new StreamPerformanceMonitor({ logger: false, collectionInterval: 10, historyRetention: 60_000 });
  let calls = 0;
  monitor.on('tick', () => {
    calls++;
    if (calls === 1) throw new TypeError('listener bug');
  });
  try {
    await until('a tick after the failing one', 10_000, () => calls >= 3, 5);
    await until(
      'the warning',
      10_000,
      () => warnings.some((w) => /tick failed \(TypeError: listener bug\)/.test(w.message)),
      5,
    );
    assert.equal(watch.errors, []);
  } finally {
    monitor.close();
    process.off('warning', onWarning);
    watch.stop();
  }
});

test('counts are exact up to 2^53 - 1; a total past it is reported once and counted in inexact_counters', () => {
  const monitor = testMonitor();
  const errors: Error[] = [];
  monitor.on('error', (e: Error) => errors.push(e));
  try {
    const MAX = Number.MAX_SAFE_INTEGER;
    monitor.recordMessages(MAX - 1);
    monitor.recordMessages(1);
    monitor.tick();
    assert.is(monitor.totals().messagesIn, MAX, 'exact at the bound');
    assert.equal(monitor.inexactCounters(), []);
    assert.match(monitor.metrics().body as string, /\nstreamgauge_inexact_counters 0\n/);
    monitor.recordMessages(MAX);
    monitor.recordMessages(MAX);
    monitor.recordMessages(1);
    monitor.tick();
    monitor.tick();
    assert.equal(monitor.inexactCounters(), ['messagesIn']);
    assert.is(errors.length, 1, 'reported once');
    assert.match(errors[0].message, /the total of messagesIn passed 2\^53 - 1 \(9007199254740991\)/);
    assert.match(monitor.metrics().body as string, /\nstreamgauge_inexact_counters 1\n/);
  } finally {
    monitor.close();
  }
});

test.run();
