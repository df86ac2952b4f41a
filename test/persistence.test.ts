// Persistence of the history (historyFile): a round trip through a restart, periodic saves, the
// atomic write surviving a crash at any point of a save, and every kind of unusable file —
// reported as an error event, kept aside untouched, and the monitor starting with empty history.
import { createHook } from 'node:async_hooks';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Resolution, StreamPerformanceMonitor } from '../src/index.js';
import {
  FILE_MAGIC,
  HEADER_BYTES,
  type HistoryFileError,
  historyFingerprint,
  persistenceHooks,
} from '../src/time/persistence.js';
import { exactQuantile, near } from './fixtures/quantiles.js';
import { seededRandom } from './fixtures/random.js';
import { until, within } from './fixtures/wait.js';
import { handClock, testMonitor } from './fixtures/monitor.js';
import { internalsOf } from '../src/analysis/monitor-reader.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(ROOT, 'test/fixtures/persist-crash-child.ts');
const T0 = Date.UTC(2025, 0, 1);
const RESOLUTIONS: Resolution[] = ['tick', 'minute', 'hour', 'day'];
/** A configuration with a 1-hour tick ring: files of a few MB, runs of a few seconds. */
const BASE = { autoStart: false, logger: false, historyRetention: 3_600_000 };

type Options = ConstructorParameters<typeof StreamPerformanceMonitor>[0] & {
  historyFile?: string;
  historySaveInterval?: number;
};

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'streamgauge-persist-'));
  dirs.push(d);
  return d;
}

interface Opened {
  m: StreamPerformanceMonitor;
  clock: { t: number; now(): number };
  errors: HistoryFileError[];
}

/** A monitor on `file`, with an 'error' listener attached as a user would, right after construction. */
function open(file: string, t = T0, extra: Record<string, unknown> = {}): Opened {
  const clock = handClock(t);
  const m = new StreamPerformanceMonitor({ ...BASE, ...extra, clock, historyFile: file } as Options);
  const errors: HistoryFileError[] = [];
  m.on('error', (e: HistoryFileError) => errors.push(e));
  return { m, clock, errors };
}

/** Lets the monitor's deferred reports (process.nextTick) arrive. */
const settle = () => new Promise((r) => setImmediate(r));

/** Ticks `n` seconds, recording a seeded spread of latencies (and an error now and then); returns the values. */
function run(o: Opened, n: number, rand = seededRandom(1)): number[] {
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const count = 20 + Math.floor(rand() * 30);
    for (let j = 0; j < count; j++) {
      const v = Math.fround(0.2 + rand() * rand() * 400);
      values.push(v);
      o.m.recordLatency(v);
    }
    if (rand() < 0.1) o.m.recordError('timeout');
    o.clock.t += 1000;
    o.m.tick();
  }
  return values;
}

/** Everything the history shows: every ring, and every closed rollup period's quantiles from its histogram. */
function snapshot(m: StreamPerformanceMonitor) {
  const out: Record<string, unknown> = {};
  for (const resolution of RESOLUTIONS) {
    const h = m.getHistory({ resolution });
    out[resolution] = h;
    if (resolution !== 'tick') {
      out[`${resolution}Quantiles`] = h.t.map((end) =>
        [0.5, 0.9, 0.99, 0.999].map((q) => m.rollupQuantile(resolution, end, q)),
      );
    }
  }
  return out;
}

function isEmpty(m: StreamPerformanceMonitor): boolean {
  return RESOLUTIONS.every((resolution) => m.getHistory({ resolution }).t.length === 0);
}

/** A valid history file (a few minutes of history), and the monitor state it holds. */
function validFile(dir: string, extra: Record<string, unknown> = {}) {
  const file = join(dir, 'history.sg');
  const o = open(file, T0, extra);
  run(o, 200);
  const before = snapshot(o.m);
  const end = o.clock.t;
  o.m.close();
  assert.is(o.errors.length, 0);
  return { file, before, end, bytes: readFileSync(file) };
}

function asideFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.includes('.corrupt-'))
    .map((n) => join(dir, n));
}

// ---- round trip ----------------------------------------------------------------------------

test('round trip: the history after a restart equals the history before, and open periods continue', () => {
  const dir = tempDir();
  const file = join(dir, 'history.sg');
  const a = open(file);
  const rand = seededRandom(11);
  // 2 h: two hours (the second closes at the next tick), 60 minutes, a tick ring that wrapped
  run(a, 7200, rand);
  // then half a minute: the minute 2:00–2:01 is open when the file is saved
  const openMinute: number[] = [];
  /** One second of the open minute: 40 latencies of 50–100 ms, recorded by `o` and kept in openMinute. */
  const recordSecond = (o: Opened) => {
    for (let j = 0; j < 40; j++) {
      const v = Math.fround(50 + rand() * 50);
      openMinute.push(v);
      o.m.recordLatency(v);
    }
  };
  for (let i = 0; i < 30; i++) {
    recordSecond(a);
    a.clock.t += 1000;
    a.m.tick();
  }
  const before = snapshot(a.m);
  const peak = a.m.getCurrentMetrics().peakRps;
  assert.is((before.tick as { t: number[] }).t.length, 3600);
  assert.is((before.hour as { t: number[] }).t.length, 2);
  assert.is((before.minute as { t: number[] }).t.length, 60);
  a.m.close();
  assert.is(a.errors.length, 0);
  assert.ok(existsSync(file));
  assert.equal(readdirSync(dir), ['history.sg'], 'no temporary file left behind');

  const b = open(file, a.clock.t);
  assert.equal(snapshot(b.m), before);
  assert.is(b.m.getCurrentMetrics().peakRps, peak, 'peak rps carries over');
  // The minute that was open at the save continues: 30 more seconds close it, with both halves in it.
  for (let i = 0; i < 31; i++) {
    if (i < 30) recordSecond(b);
    b.clock.t += 1000;
    b.m.tick();
  }
  const mins = b.m.getHistory({ resolution: 'minute' });
  const end = T0 + 7260 * 1000; // the minute ending 2:01:00
  assert.is(mins.t.at(-1), end);
  assert.is(mins.fields.requests.at(-1), openMinute.length, 'both processes’ halves of the minute');
  openMinute.sort((x, y) => x - y);
  near(b.m.rollupQuantile('minute', end, 0.99), exactQuantile(openMinute, 0.99), 'p99 of the minute');
  assert.is(mins.fields.rps.at(-1), Math.fround(openMinute.length / 60));
  b.m.close();
  assert.is(b.errors.length, 0);
});

test("files saved by earlier builds stay readable: the default configuration's history fingerprint is pinned", () => {
  // The fingerprint covers what lays the history out, nothing else in the memory: a change to other
  // parts (lanes, tables) must not make saved history unreadable. If this value changes, files
  // saved before are refused: bump HISTORY_LAYOUT_VERSION only when the history regions change.
  const m = testMonitor();
  assert.is(
    historyFingerprint(internalsOf(m).layout, m.config).hash.toString('hex'),
    '3b91edacf8cc5e6d23264331426c6189',
  );
  m.close();
});

test('no file yet: the monitor starts empty, without an error, and creates the file on close()', async () => {
  const dir = tempDir();
  const file = join(dir, 'fresh.sg');
  const o = open(file);
  await settle();
  assert.is(o.errors.length, 0);
  assert.ok(isEmpty(o.m));
  run(o, 5);
  o.m.close();
  assert.ok(existsSync(file));
  assert.ok(readFileSync(file).subarray(0, 8).equals(FILE_MAGIC));
});

test('periodic saves every historySaveInterval, and not after close()', async () => {
  const dir = tempDir();
  const file = join(dir, 'periodic.sg');
  // The timers the monitor starts (its save timer among them), to see close() clear them: a
  // cleared timer is destroyed, and the destroy hook says so.
  const started = new Set<number>();
  const destroyed = new Set<number>();
  let opening = true;
  const hook = createHook({
    init: (id, type) => {
      if (opening && type === 'Timeout') started.add(id);
    },
    destroy: (id) => {
      destroyed.add(id);
    },
  }).enable();
  const o = open(file, T0, { historySaveInterval: 20 });
  opening = false;
  assert.ok(started.size >= 1, 'the save timer is started');
  run(o, 30);
  // The save timer is unref()ed: the bounded wait also keeps this process alive until it fires.
  const saved = await within(
    new Promise<{ file: string; bytes: number }>((resolve) => o.m.once('historySaved', resolve)),
    10_000,
    'a periodic save',
  );
  assert.is(saved.file, file);
  assert.is(saved.bytes, statSync(file).size);
  const before = snapshot(o.m);
  // a monitor that never closed (a crash after a periodic save) still finds its history
  const other = open(file, o.clock.t);
  assert.equal(snapshot(other.m), before);
  assert.not.ok(
    [...started].every((id) => destroyed.has(id)),
    'the save timer runs until close()',
  );
  o.m.close(); // saves once more, as it returns
  let after = 0;
  o.m.on('historySaved', () => after++);
  try {
    await until(
      "close() to clear the monitor's timers",
      10_000,
      () => [...started].every((id) => destroyed.has(id)),
      5,
    );
  } finally {
    hook.disable();
  }
  assert.is(after, 0, 'no save after close()');
  assert.is(o.errors.length + other.errors.length, 0);
  other.m.close();
});

test('settings: historySaveInterval needs historyFile; bad values are refused with the setting named', () => {
  const make = (extra: Record<string, unknown>) => () => new StreamPerformanceMonitor({ ...BASE, ...extra } as Options);
  assert.throws(make({ historySaveInterval: 1000 }), /historySaveInterval needs config\.historyFile/);
  assert.throws(make({ historyFile: 42 }), /config\.historyFile must be a file path/);
  assert.throws(make({ historyFile: '' }), /config\.historyFile/);
  assert.throws(make({ historyFile: join(tempDir(), 'x.sg'), historySaveInterval: 1 }), /config\.historySaveInterval/);
  assert.throws(
    make({ historyFile: join(tempDir(), 'x.sg'), historySaveInterval: Number.NaN }),
    /config\.historySaveInterval/,
  );
});

test('settings: monitor.config shows where the history is saved and how often', () => {
  const dir = tempDir();
  const file = join(relativeTo(dir), 'h.sg');
  const m = new StreamPerformanceMonitor({ ...BASE, historyFile: file } as Options);
  assert.is(m.config.historyFile, join(dir, 'h.sg'), 'the file, made absolute');
  assert.is(m.config.historySaveInterval, 60_000, 'the default interval');
  m.close();
  const n = new StreamPerformanceMonitor({
    ...BASE,
    historyFile: join(dir, 'h.sg'),
    historySaveInterval: 5000,
  } as Options);
  assert.is(n.config.historySaveInterval, 5000);
  n.close();
  const none = new StreamPerformanceMonitor({ ...BASE } as Options);
  assert.is(none.config.historyFile, undefined);
  assert.is(none.config.historySaveInterval, undefined);
  none.close();
});

/** `dir` relative to the working directory. */
function relativeTo(dir: string): string {
  return relative(process.cwd(), dir);
}

// ---- unusable files ------------------------------------------------------------------------

/** Opens a monitor on a bad file and checks the whole contract; returns the error. */
async function expectRejected(
  file: string,
  problem: string,
  message: RegExp,
  original: Buffer | 'directory',
): Promise<HistoryFileError> {
  const o = open(file);
  // empty at once, before the report arrives
  assert.ok(isEmpty(o.m), 'starts with empty history');
  await settle();
  assert.is(o.errors.length, 1, 'one error event');
  const err = o.errors[0];
  assert.instance(err, Error);
  assert.is(err.code, 'ERR_STREAMGAUGE_HISTORY_FILE');
  assert.is(err.problem, problem);
  assert.match(err.message, message);
  assert.ok(err.message.includes(file), 'the message names the file');
  assert.ok(err.keptAs?.startsWith(`${file}.corrupt-`), `kept aside as ${err.keptAs}`);
  assert.match(err.message, /kept it as .*started with empty history/);
  assert.not.ok(existsSync(file), 'moved away from its name');
  const check = () => {
    if (original === 'directory') assert.ok(statSync(err.keptAs!).isDirectory());
    else assert.ok(readFileSync(err.keptAs!).equals(original), 'kept byte for byte');
  };
  check();
  // the monitor works, and its next save does not touch the kept file
  run(o, 3);
  assert.is(o.m.getHistory().t.length, 3);
  o.m.close();
  assert.is(o.errors.length, 1);
  check();
  const reopened = open(file, o.clock.t);
  assert.is(reopened.m.getHistory().t.length, 3, 'a new file was saved at the name');
  reopened.m.close();
  return err;
}

test('a truncated file (in the payload, and in the header)', async () => {
  const dir = tempDir();
  const { file, bytes } = validFile(dir);
  const cut = bytes.subarray(0, Math.floor(bytes.length / 2));
  writeFileSync(file, cut);
  await expectRejected(file, 'truncated', /is truncated \(\d+ of \d+ bytes\)/, cut);
  const head = bytes.subarray(0, 30);
  writeFileSync(file, head);
  await expectRejected(file, 'truncated', /truncated/, head);
  assert.is(asideFiles(dir).length, 2);
});

test('a flipped byte: in the history, in the state record, in the header', async () => {
  const dir = tempDir();
  const { file, bytes } = validFile(dir);
  for (const at of [HEADER_BYTES + Math.floor(bytes.length / 3), bytes.length - 5, 33]) {
    const bad = Buffer.from(bytes);
    bad[at] ^= 0x10;
    writeFileSync(file, bad);
    const err = await expectRejected(file, 'corrupt', /damaged|checksum/, bad);
    assert.match(err.message, at === 33 ? /header/ : /checksum mismatch/);
  }
  assert.is(asideFiles(dir).length, 3, 'three bad files, three names: none overwritten');
});

test('a foreign file: another magic, or text', async () => {
  const dir = tempDir();
  const file = join(dir, 'history.sg');
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  writeFileSync(file, png);
  await expectRejected(file, 'foreign', /not a streamgauge history file/, png);
  const text = Buffer.from('{"history": []}\n');
  writeFileSync(file, text);
  await expectRejected(file, 'foreign', /not a streamgauge history file/, text);
  const short = Buffer.from('SG');
  writeFileSync(file, short); // a prefix of the magic, then nothing: cut short
  await expectRejected(file, 'truncated', /truncated/, short);
});

test('a file saved under another configuration: the message names what differs', async () => {
  const dir = tempDir();
  const { file, bytes } = validFile(dir, { historyRetention: 1_800_000 });
  const err = await expectRejected(
    file,
    'config',
    /another configuration \(historyRetention 1800000 there, 3600000 here\)/,
    bytes,
  );
  assert.ok(err.keptAs);
  const other = validFile(tempDir(), { scale: 6 });
  await expectRejected(other.file, 'config', /scale 6 there, 7 here/, other.bytes);
  const rollups = validFile(tempDir(), { rollups: { minutes: 120 } });
  await expectRejected(rollups.file, 'config', /rollups\.minutes 120 there, 60 here/, rollups.bytes);
});

test('a file of another format version', async () => {
  const dir = tempDir();
  const { file, bytes } = validFile(dir);
  const bad = Buffer.from(bytes);
  bad.writeUInt32LE(99, 8);
  const zlib = await import('node:zlib');
  bad.writeUInt32LE(zlib.crc32(bad.subarray(0, 60)) >>> 0, 60); // a consistent header, just newer
  writeFileSync(file, bad);
  await expectRejected(file, 'version', /format version 99/, bad);
});

test('an empty file, and a directory in its place', async () => {
  const dir = tempDir();
  const file = join(dir, 'history.sg');
  writeFileSync(file, '');
  await expectRejected(file, 'empty', /is empty/, Buffer.alloc(0));
  rmSync(file); // the good file saved since
  mkdirSync(file);
  writeFileSync(join(file, 'inside.txt'), 'keep me');
  const err = await expectRejected(file, 'not-a-file', /is a directory/, 'directory');
  assert.is(readFileSync(join(err.keptAs!, 'inside.txt'), 'utf8'), 'keep me');
});

test('a file that cannot be read (no permission): the message says so, the file stays, and is not saved over', async () => {
  const dir = tempDir();
  chmodSync(dir, 0o777);
  const file = join(dir, 'history.sg');
  const { bytes } = validFile(tempDir());
  writeFileSync(file, bytes);
  chmodSync(file, 0o000);
  // root reads any file: the monitor then runs as an unprivileged user.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/unreadable-child.ts'), file], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    ...asNobody,
  });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.problem, 'unreadable');
  assert.match(
    out.message,
    /cannot be read \(permission denied, EACCES\); left it in place, started with empty history and will not save over it/,
  );
  assert.is(out.keptAs, null);
  assert.ok(out.stillThere);
  chmodSync(file, 0o600);
  assert.ok(readFileSync(file).equals(bytes), 'the file is as it was');
  assert.equal(readdirSync(dir), ['history.sg']);
});

test('with no error listener, the problem is a process warning and the monitor carries on', async () => {
  const dir = tempDir();
  const file = join(dir, 'history.sg');
  writeFileSync(file, 'not a history file at all');
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const clock = handClock(T0);
    const m = new StreamPerformanceMonitor({ ...BASE, clock, historyFile: file } as Options);
    await settle();
    await settle();
    const ours = warnings.filter((w) => (w as HistoryFileError).code === 'ERR_STREAMGAUGE_HISTORY_FILE');
    assert.is(ours.length, 1);
    assert.match(ours[0].message, /not a streamgauge history file/);
    assert.ok(isEmpty(m));
    m.recordLatency(1);
    clock.t += 1000;
    m.tick();
    m.close();
    assert.is(asideFiles(dir).length, 1);
  } finally {
    process.off('warning', onWarning);
  }
});

test('a save that fails is reported, not thrown; the monitor carries on', async () => {
  const dir = tempDir();
  const file = join(dir, 'no-such-dir', 'history.sg');
  const o = open(file);
  await settle();
  assert.is(o.errors.length, 0, 'no file yet is not an error');
  run(o, 3);
  o.m.close();
  assert.is(o.errors.length, 1);
  assert.is(o.errors[0].code, 'ERR_STREAMGAUGE_HISTORY_SAVE');
  assert.match(o.errors[0].message, /could not be saved .*ENOENT/);
});

// ---- crashes -------------------------------------------------------------------------------

test('a failure between write and rename leaves the previous file intact and no temporary file', async () => {
  const dir = tempDir();
  const { file, before, end, bytes } = validFile(dir);
  const o = open(file, end);
  assert.equal(snapshot(o.m), before);
  run(o, 60, seededRandom(3));
  persistenceHooks.beforeRename = () => {
    throw new Error('simulated failure before rename');
  };
  try {
    o.m.close();
  } finally {
    persistenceHooks.beforeRename = undefined;
  }
  assert.is(o.errors.length, 1);
  assert.match(o.errors[0].message, /simulated failure before rename/);
  assert.ok(readFileSync(file).equals(bytes), 'the previous file, byte for byte');
  assert.equal(readdirSync(dir), ['history.sg']);
  const again = open(file, end);
  assert.equal(snapshot(again.m), before);
  again.m.close();
});

/** Runs the crash child: it restores `file`, ticks, and is killed (SIGKILL) inside its save at `hook`. */
function crashChild(file: string, hook: 'midWrite' | 'beforeRename', start: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, hook, String(start), JSON.stringify(BASE)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let tmp = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^ready (.+)$/m.exec(out);
      if (m && !tmp) {
        tmp = m[1];
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' && tmp) resolve(tmp);
      else reject(new Error(`crash child ended with ${code ?? signal} before the hook: ${err}`));
    });
  });
}

for (const hook of ['midWrite', 'beforeRename'] as const) {
  test(`a process killed (SIGKILL) ${hook === 'midWrite' ? 'half-way through writing' : 'after writing, before the rename'}: the previous file is intact and loads`, async () => {
    const dir = tempDir();
    const { file, before, end, bytes } = validFile(dir);
    const tmp = await crashChild(file, hook, end);
    assert.ok(readFileSync(file).equals(bytes), 'the previous file, byte for byte');
    // the dead process's temporary file is there, beside it
    assert.ok(existsSync(tmp), 'the interrupted temporary file is left');
    assert.is(dirname(tmp), dir, 'written in the same directory');
    const partial = statSync(tmp).size;
    if (hook === 'midWrite')
      assert.ok(
        partial > 0 && partial < bytes.length - 100_000,
        `a partial temporary file (${partial} of ~${bytes.length} bytes)`,
      );
    else assert.ok(partial > bytes.length - 10_000, `a complete temporary file (${partial} bytes)`);
    const o = open(file, end);
    assert.equal(snapshot(o.m), before, 'the previous history loads');
    await settle();
    assert.is(o.errors.length, 0);
    assert.not.ok(existsSync(tmp), 'a dead process’s temporary file is cleaned up at the next start');
    assert.is(asideFiles(dir).length, 0);
    o.m.close();
  });
}

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
