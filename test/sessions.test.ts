// Sessions: tracked stream sessions (open, message, close), their statistics, the idle timeout and
// the maxSessions bound (both counted), recordStreamSession, and active connections in the summary.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { handClock, quietMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const T0 = Date.UTC(2025, 0, 1);

function setup(extra: Record<string, unknown> = {}) {
  const clock = handClock(T0);
  const m = quietMonitor(clock, extra);
  /** Advances the clock and runs a tick (the tick refreshes the sessions' coarse time and evicts). */
  const tickTo = (t: number) => {
    clock.t = t;
    m.tick();
  };
  return { m, clock, tickTo };
}

test('openSession / message / close: per-session figures go to the session histograms and the totals', () => {
  const { m, clock } = setup();
  const a = m.openSession('conn-a');
  const b = m.openSession('conn-b');
  assert.is(a.connectionId, 'conn-a');
  assert.is(m.getCurrentMetrics().activeConnections, 2);
  for (let i = 0; i < 10; i++) a.message(100);
  b.message();
  b.message(7);
  clock.t += 2500;
  a.close();
  let t = m.totals();
  assert.is(t.sessions, 1);
  assert.is(t.sessionMessages, 10);
  assert.is(t.sessionBytes, 1000);
  assert.is(t.sessionDurationSumMs, 2500);
  assert.is(t.messagesIn, 12, 'messages are counted as they come');
  assert.is(t.bytesIn, 1007);
  assert.is(t.activeConnections, 1);
  clock.t += 500;
  b.close('stream-reset');
  t = m.totals();
  assert.is(t.sessions, 2);
  assert.is(t.sessionDurationSumMs, 2500 + 3000);
  assert.is(t.sessionMessages, 12);
  assert.is(t.activeConnections, 0);
  assert.is(t.connectionsOpened, 2);
  // a failed session counts as a failed request of its error type
  assert.equal(m.errorsByType(), { 'stream-reset': 1 });
  const s = m.sessionStats();
  assert.equal(
    { ...s, longestLived: s.longestLived.length },
    { active: 0, opened: 2, closed: 2, failed: 1, evictedIdle: 0, droppedOverBound: 0, longestLived: 0 },
  );
  // closing twice is harmless; a message after close() is the caller's mistake
  a.close();
  assert.is(m.sessionStats().closed, 2);
  assert.throws(() => a.message(1), /closed/);
  assert.is(m.totals().messagesIn, 12);
  m.close();
});

test('bad input to a session is rejected and leaves it as it was', () => {
  const { m, clock } = setup();
  const s = m.openSession('conn');
  assert.throws(() => m.openSession(''), TypeError);
  assert.throws(() => m.openSession(42 as unknown as string), TypeError);
  s.message(10);
  assert.throws(() => s.message(-1), RangeError);
  assert.throws(() => s.message(Number.NaN), RangeError);
  assert.throws(() => s.message(1.5), RangeError);
  assert.throws(() => s.close(42 as unknown as string), TypeError);
  assert.throws(() => s.close(''), TypeError);
  clock.t += 10;
  s.close();
  const t = m.totals();
  assert.is(t.sessionBytes, 10, 'the rejected sizes did not reach the session');
  assert.is(t.sessionMessages, 1);
  assert.is(t.messagesIn, 1);
  m.close();

  // opting in to counting: skipped and counted as invalid, the session unharmed
  const c = setup({ invalidValues: 'count' });
  const s2 = c.m.openSession('conn');
  s2.message(5);
  s2.message(-3);
  s2.message(Number.NaN);
  s2.close();
  const t2 = c.m.totals();
  assert.is(t2.invalid, 2);
  assert.is(t2.sessionBytes, 5);
  assert.is(t2.sessionMessages, 1);
  c.m.close();
});

test('sessions idle longer than sessionIdleTimeout are evicted at a tick, and counted', () => {
  const { m, tickTo } = setup({ sessionIdleTimeout: 5000 });
  const quiet = m.openSession('quiet');
  const busy = m.openSession('busy');
  for (let s = 1; s <= 12; s++) {
    busy.message(1); // activity is stamped with the tick's time
    tickTo(T0 + s * 1000);
    if (s === 5) assert.is(m.sessionStats().active, 2, 'not idle beyond the timeout yet');
  }
  const stats = m.sessionStats();
  assert.is(stats.evictedIdle, 1);
  assert.is(stats.active, 1);
  assert.is(stats.closed, 1);
  assert.is(stats.longestLived[0].connectionId, 'busy');
  assert.is(m.getCurrentMetrics().activeConnections, 1);
  const t = m.totals();
  assert.is(t.sessions, 1);
  assert.is(t.sessionDurationSumMs, 6000, 'evicted at the first tick past the timeout');
  // the evicted session's late traffic is still counted, but it is not tracked again
  quiet.message(3);
  assert.is(m.totals().messagesIn, 13);
  assert.is(m.sessionStats().active, 1);
  quiet.close();
  assert.is(m.sessionStats().closed, 1);
  // the busy one is never evicted while it talks
  for (let s = 13; s <= 30; s++) {
    busy.message(1);
    tickTo(T0 + s * 1000);
  }
  assert.is(m.sessionStats().evictedIdle, 1);
  assert.is(m.sessionStats().active, 1);
  m.close();
});

test('past maxSessions the oldest session is dropped, and counted', () => {
  const { m, clock } = setup({ maxSessions: 3 });
  const opened = [];
  for (let i = 0; i < 5; i++) {
    clock.t += 1000;
    opened.push(m.openSession(`c${i}`));
  }
  const s = m.sessionStats();
  assert.is(s.active, 3);
  assert.is(s.opened, 5);
  assert.is(s.droppedOverBound, 2);
  assert.is(s.closed, 2);
  assert.equal(
    s.longestLived.map((x) => x.connectionId),
    ['c2', 'c3', 'c4'],
  );
  assert.is(m.getCurrentMetrics().activeConnections, 3);
  assert.is(m.getPerformanceSummary().activeConnections, 3);
  // the dropped ones still count their traffic and close quietly
  opened[0].message(10);
  opened[0].close();
  assert.is(m.sessionStats().active, 3);
  assert.is(m.totals().bytesIn, 10);
  // reopening a live connection id ends the previous session first
  m.openSession('c3');
  const again = m.sessionStats();
  assert.is(again.active, 3);
  assert.is(again.opened, 6);
  assert.is(again.closed, 3);
  assert.is(again.droppedOverBound, 2);
  m.close();
});

test('sessionStats: longest-lived sessions with their age, messages, bytes and last activity', () => {
  const { m, clock, tickTo } = setup();
  const sessions = ['old', 'mid', 'new'].map((id) => {
    clock.t += 1000;
    return m.openSession(id);
  });
  sessions[0].message(100);
  sessions[0].message(50);
  tickTo(T0 + 10_000);
  sessions[1].message(1);
  const s = m.sessionStats(2);
  assert.is(s.longestLived.length, 2);
  // activity is stamped with the coarse time (the last tick or session start), not a clock read per message
  assert.equal(s.longestLived[0], {
    connectionId: 'old',
    startedAt: T0 + 1000,
    ageMs: 9000,
    messages: 2,
    bytes: 150,
    lastActivity: T0 + 3000,
  });
  assert.equal(s.longestLived[1], {
    connectionId: 'mid',
    startedAt: T0 + 2000,
    ageMs: 8000,
    messages: 1,
    bytes: 1,
    lastActivity: T0 + 10_000,
  });
  assert.is(m.sessionStats().longestLived.length, 3);
  // a session in a series records into that series
  const api = m.openSession('api-1', { route: 'api' });
  api.message(9);
  clock.t += 100;
  api.close();
  const series = m.seriesList().find((x) => x.labels.route === 'api')!;
  assert.is(m.totals(series.index).sessions, 1);
  assert.is(m.totals(series.index).sessionBytes, 9);
  assert.is(m.totals(0).sessions, 0);
  // close() of the monitor ends what is still open
  m.close();
  assert.is(m.sessionStats().active, 0);
  assert.is(m.totals().sessions, 4);
});

test('recordStreamSession records a finished session in one call', () => {
  const { m } = setup();
  m.recordStreamSession('s1', 40, 1200, 4096);
  m.recordStreamSession('s2', 10, 300, 1024);
  const t = m.totals();
  assert.is(t.sessions, 2);
  assert.is(t.sessionMessages, 50);
  assert.is(t.sessionBytes, 5120);
  assert.is(t.sessionDurationSumMs, 1500);
  assert.is(t.messagesIn, 50);
  assert.is(t.bytesIn, 5120);
  // not tracked, not a connection
  assert.is(m.sessionStats().active, 0);
  assert.is(t.activeConnections, 0);
  assert.throws(() => m.recordStreamSession('', 1, 1, 1), TypeError);
  assert.throws(() => m.recordStreamSession('s', -1, 1, 1), RangeError);
  assert.throws(() => m.recordStreamSession('s', 1, Number.POSITIVE_INFINITY, 1), RangeError);
  assert.is(m.totals().sessions, 2);
  m.close();
});

test('active connections in the summary and in history points come from the tracked sessions', () => {
  const { m, tickTo } = setup();
  const s = Array.from({ length: 4 }, (_, i) => m.openSession(`c${i}`));
  tickTo(T0 + 1000);
  assert.is(m.getPerformanceSummary().activeConnections, 4);
  assert.is(internalsOf(m).lastTickEvent()!.point.activeConnections, 4);
  s[0].close();
  s[1].close('cancelled');
  assert.is(m.getPerformanceSummary().activeConnections, 2);
  tickTo(T0 + 2000);
  assert.equal(m.getHistory().fields.activeConnections, [4, 2]);
  m.close();
});

test.run();
