// The monitor's controls and reads as the README's API table gives them: the tick timer started,
// paused and resumed; a latency quantile since start, all series or one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { relativeErrorBound } from '../src/index.js';
import { handClock, quietMonitor, withMonitor } from './fixtures/monitor.js';
import { until } from './fixtures/wait.js';

test('start() runs the tick timer, stop() pauses it, start() resumes it', async () => {
  const intervalMs = 20;
  await withMonitor({ logger: false, autoStart: false, collectionInterval: intervalMs }, async (monitor) => {
    let ticks = 0;
    monitor.on('tick', () => ticks++);
    monitor.start();
    monitor.start(); // a second start() keeps the one timer
    await until('two timed ticks', 10_000, () => ticks >= 2, 5);

    monitor.stop();
    const atStop = ticks;
    // Several periods of a timer with the same interval pass: the monitor's timer would have fired.
    let periods = 0;
    const probe = setInterval(() => periods++, intervalMs);
    try {
      await until('five periods of the interval', 10_000, () => periods >= 5, 5);
    } finally {
      clearInterval(probe);
    }
    assert.is(ticks, atStop, 'no tick while stopped');

    monitor.start();
    await until('a tick after start() again', 10_000, () => ticks > atStop, 5);
  });
});

test('quantileSinceStart(q, series?): any quantile of every latency since start, all series or one', () => {
  const monitor = quietMonitor(handClock(0));
  const checkout = monitor.series({ route: '/checkout' });
  for (let ms = 1; ms <= 100; ms++) checkout.recordLatency(ms);
  for (let i = 0; i < 100; i++) monitor.recordLatency(1000);

  const bound = relativeErrorBound(monitor.config.scale);
  const near = (got: number, want: number, what: string) =>
    assert.ok(Math.abs(got - want) <= want * bound, `${what}: ${got}, want ${want} ± ${(bound * 100).toFixed(2)} %`);
  near(monitor.quantileSinceStart(0.5, checkout), 50, 'p50 of /checkout');
  near(monitor.quantileSinceStart(0.99, checkout), 99, 'p99 of /checkout');
  near(monitor.quantileSinceStart(0.25), 50, 'p25 of all 200');
  near(monitor.quantileSinceStart(0.999), 1000, 'p99.9 of all 200');
  // The same answer through the series' index from seriesList().
  const index = monitor.seriesList().find((s) => s.labels.route === '/checkout')?.index ?? -1;
  assert.is(monitor.quantileSinceStart(0.5, index), monitor.quantileSinceStart(0.5, checkout));
  monitor.close();
  const empty = quietMonitor(handClock(0));
  assert.ok(Number.isNaN(empty.quantileSinceStart(0.5)), 'no values yet: NaN');
  empty.close();
});

test.run();
