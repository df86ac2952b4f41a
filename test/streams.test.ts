// Node streams instrumented in place: a slow consumer (backpressure counted, data unchanged byte
// for byte, pipeline() works), paused streams stay paused, object mode, errors, sessions.
import { Duplex, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chunkBytes, instrumentStream } from '../src/integrations/streams.js';
import { handClock, seriesIndex, withMonitor } from './fixtures/monitor.js';
import { within } from './fixtures/wait.js';

/** Deterministic chunks of varying sizes (1..2000 bytes). */
function chunks(n: number): Buffer[] {
  let x = 12345;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const b = Buffer.alloc(1 + (x % 2000));
    for (let j = 0; j < b.length; j++) b[j] = (x >>> (j % 24)) & 0xff;
    out.push(b);
  }
  return out;
}

test('slow consumer through pipeline(): backpressure counted per drain episode, bytes unchanged, messages and bytes both ways', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    const input = chunks(300);
    const total = input.reduce((n, b) => n + b.length, 0);
    const received: Buffer[] = [];
    let i = 0;
    const source = new Readable({
      read() {
        this.push(i < input.length ? input[i++] : null);
      },
    });
    const upper = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        cb(null, chunk);
      },
    });
    // A slow sink: 4 KiB high-water mark, each write completes on a later macrotask.
    const sink = new Writable({
      highWaterMark: 4096,
      write(chunk: Buffer, _enc, cb) {
        received.push(Buffer.from(chunk));
        setImmediate(cb);
      },
    });
    let refusedEpisodes = 0;
    let inEpisode = false;
    const rawWrite = sink.write;
    // The truth, counted below the instrumentation: a refused write opens an episode, 'drain' ends it.
    sink.write = function (this: Writable, ...args: unknown[]) {
      const ok = (rawWrite as (...a: unknown[]) => boolean).apply(this, args);
      if (!ok && !inEpisode) {
        inEpisode = true;
        refusedEpisodes++;
      }
      return ok;
    } as typeof sink.write;
    sink.on('drain', () => {
      inEpisode = false;
    });

    assert.is(instrumentStream(monitor, source, { name: 'source' }), source, 'returns the stream itself');
    instrumentStream(monitor, upper, { name: 'transform' });
    instrumentStream(monitor, sink, { name: 'sink' });
    assert.is(monitor.sessionStats().active, 3, 'three open sessions');
    await within(pipeline(source, upper, sink), 20_000, 'pipeline');

    assert.ok(Buffer.concat(received).equals(Buffer.concat(input)), 'data unchanged byte for byte');
    const src = monitor.totals(seriesIndex(monitor, { stream: 'source' }));
    const tr = monitor.totals(seriesIndex(monitor, { stream: 'transform' }));
    const sk = monitor.totals(seriesIndex(monitor, { stream: 'sink' }));
    // Directions as the holder of each stream sees them: the source's chunks are received (in),
    // the sink's are sent (out); the transform takes in what is written and sends out what it pushes.
    assert.is(src.messagesIn, 300, 'source: chunks produced');
    assert.is(src.bytesIn, total);
    assert.is(src.messagesOut, 0);
    assert.is(tr.messagesIn, 300, 'transform: chunks written into it');
    assert.is(tr.bytesIn, total);
    assert.is(tr.messagesOut, 300, 'transform: chunks it produced');
    assert.is(tr.bytesOut, total);
    assert.is(sk.messagesOut, 300, 'sink: chunks written');
    assert.is(sk.bytesOut, total);
    assert.is(sk.messagesIn, 0);
    assert.ok(refusedEpisodes > 0, 'the slow sink refused writes');
    assert.is(sk.backpressure, refusedEpisodes, 'one event per refused-write episode');
    assert.ok(sk.backpressureWaitSumMs > 0, 'drain waits recorded');
    assert.ok(tr.backpressure > 0, 'the transform upstream of the slow sink was backpressured too');
    assert.is(monitor.sessionStats().active, 0, 'sessions closed');
    assert.is(sk.sessions, 1);
    assert.is(src.sessionBytes, total, 'the source session carried every byte');
    assert.is(tr.sessionMessages, 600, 'the transform session counted its chunks both ways');
    assert.equal(monitor.errorsByType(), {});
  });
});

test('a paused readable stays paused: no data listener, nothing consumed, counted when pushed', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    const r = new Readable({ read() {} });
    instrumentStream(monitor, r, { name: 'paused' });
    r.push(Buffer.from('hello'));
    r.push('wörld');
    assert.is(r.readableFlowing, null, 'still not flowing');
    assert.is(r.listenerCount('data'), 0);
    assert.is(r.readableLength, 5 + Buffer.byteLength('wörld'), 'data buffered, not consumed');
    const t = monitor.totals(seriesIndex(monitor, { stream: 'paused' }));
    assert.is(t.messagesIn, 2);
    assert.is(t.bytesIn, 5 + Buffer.byteLength('wörld'));
    assert.is((r.read() as Buffer).toString(), 'hellowörld', 'the reader gets the data unchanged');

    // An explicitly paused flowing stream: pause state kept.
    const r2 = new Readable({ read() {} });
    r2.pause();
    instrumentStream(monitor, r2, { name: 'paused2' });
    r2.push(Buffer.from('x'));
    assert.is(r2.readableFlowing, false);
    r.destroy();
    r2.destroy();
    await new Promise((res) => setImmediate(res));
    assert.is(monitor.sessionStats().active, 0);
  });
});

test('object mode counts one message per chunk; bytes from Buffers and strings only; end(chunk) counts', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    const seen: unknown[] = [];
    const w = new Writable({
      objectMode: true,
      write(chunk, _enc, cb) {
        seen.push(chunk);
        cb();
      },
    });
    instrumentStream(monitor, w, { name: 'objects', labels: { queue: 'jobs' } });
    w.write({ a: 1 });
    w.write(Buffer.alloc(10));
    w.write('abc');
    await within(new Promise<void>((res) => w.end({ b: 2 }, () => res())), 5000, 'end');
    assert.is(seen.length, 4);
    const t = monitor.totals(seriesIndex(monitor, { queue: 'jobs' }));
    assert.is(t.messagesOut, 4, 'written to a Writable: sent');
    assert.is(t.bytesOut, 13);
    w.on('error', () => {});
    assert.is(w.write({ late: true }), false, 'a write after end is refused');
    await new Promise((res) => setImmediate(res));
    assert.is(monitor.totals(seriesIndex(monitor, { queue: 'jobs' })).messagesOut, 4, '... and not counted');
    assert.is(
      monitor.totals(seriesIndex(monitor, { queue: 'jobs' })).backpressure,
      0,
      '... nor taken for backpressure',
    );
    assert.is(t.sessions, 1, 'closed at finish/close');
    assert.is(chunkBytes(new Uint16Array(4)), 8);
    assert.is(chunkBytes('68656c6c6f', 'hex'), 5);
    assert.is(chunkBytes({}), 0);
  });
});

test('errors count by code (or name), end the session, and stay as fatal as before', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    const a = new Writable({ write: (_c, _e, cb) => cb() });
    instrumentStream(monitor, a, { name: 'a' });
    assert.is(a.listenerCount('error'), 0, 'no error listener added: an unhandled error still throws');
    const errA = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    const caught = new Promise<unknown>((res) => a.once('error', res));
    a.destroy(errA);
    assert.is(await within(caught, 5000, 'error a'), errA, 'the application still gets the error');

    const b = new Readable({ read() {} });
    instrumentStream(monitor, b, { name: 'b' });
    b.on('error', () => {});
    b.destroy(new TypeError('bad'));
    await new Promise((res) => setImmediate(res));

    assert.equal(monitor.errorsByType(seriesIndex(monitor, { stream: 'a' })), { ECONNRESET: 1 });
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { stream: 'b' })), { TypeError: 1 });
    assert.is(monitor.sessionStats().active, 0);

    // Without any error listener the error is still uncaught (checked in a child-free way:
    // emit() throws synchronously when nobody listens).
    const c = new Writable({ write: (_c, _e, cb) => cb() });
    instrumentStream(monitor, c, { name: 'c', session: false });
    assert.throws(() => c.emit('error', new Error('boom')), /boom/);
    assert.equal(monitor.errorsByType(seriesIndex(monitor, { stream: 'c' })), { Error: 1 });
  });
});

test('a Duplex (socket-like) receives what it pushes and sends what is written; an error after idle eviction still counts', async () => {
  const clock = handClock(1_000_000);
  await withMonitor({ autoStart: false, sessionIdleTimeout: 1000, clock }, async (monitor) => {
    const d = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    instrumentStream(monitor, d, { name: 'socket' });
    d.push(Buffer.alloc(7));
    d.write(Buffer.alloc(3));
    const t = monitor.totals(seriesIndex(monitor, { stream: 'socket' }));
    assert.is(t.messagesIn, 1);
    assert.is(t.bytesIn, 7);
    assert.is(t.messagesOut, 1);
    assert.is(t.bytesOut, 3);

    // Idle past the timeout: the tracker ends the session; the stream lives on and then fails.
    clock.t += 5000;
    monitor.tick();
    assert.is(monitor.sessionStats().evictedIdle, 1);
    d.push(Buffer.alloc(2)); // still counted
    d.on('error', () => {});
    d.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    await new Promise((res) => setImmediate(res));
    const s = seriesIndex(monitor, { stream: 'socket' });
    assert.equal(monitor.errorsByType(s), { ECONNRESET: 1 }, 'the error is not lost with the session');
    assert.is(monitor.totals(s).messagesIn, 2);
    assert.is(monitor.totals(s).activeConnections, 0);
  });
});

test('arguments are checked; a stream is instrumented once', async () => {
  await withMonitor({ autoStart: false }, async (monitor) => {
    const w = new Writable({ write: (_c, _e, cb) => cb() });
    instrumentStream(monitor, w, { name: 'once', session: false });
    assert.throws(() => instrumentStream(monitor, w, { name: 'once' }), /already instrumented/);
    assert.throws(() => instrumentStream(monitor, new Writable(), { name: '' }), /name/);
    assert.throws(() => instrumentStream(monitor, {} as Writable, { name: 'x' }), /Readable, Writable/);
    const d = new Writable();
    d.destroy();
    assert.throws(() => instrumentStream(monitor, d, { name: 'gone' }), /destroyed/);
  });
});

test.run();
