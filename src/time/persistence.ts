// Saving the history to a file and restoring it at start.
//
// What is saved: the raw bytes of the history regions of the shared memory (the tick ring, and
// each rollup ring with its per-period histograms and its open period's histogram: each is one
// contiguous region, see layout.ts), plus a small JSON of the JS-side state (ring positions, the
// rollups' open-period accumulators, peak rps). Nothing of the live window or the cumulative
// counters: those belong to the process that recorded them.
//
// File format (little endian):
//   0  magic "SGHIST\r\n" (8 bytes; the CR LF catches text-mode mangling)
//   8  u32 format version             12 u32 header length (64)
//  16  fingerprint (16 bytes): SHA-256 of the layout-relevant configuration
//  32  u64 binary length              40 u32 JSON length
//  44  u32 CRC-32 of everything after the header
//  48  f64 wall-clock time of the save (ms)
//  56  u32 reserved (0)               60 u32 CRC-32 of bytes 0..59
//  64  the regions, in the order tick, minute, hour, day; then the JSON (UTF-8)
//
// Writes are atomic: a temporary file in the same directory, written, fsynced, renamed over the
// file, then the directory fsynced. A crash at any point leaves either the previous file or the
// new one, never a mix. A file that cannot be used (empty, truncated, damaged, not ours, saved
// under another configuration, a directory) is reported, renamed aside to
// `<file>.corrupt-<time>` (never overwritten, never deleted) and the monitor starts empty.
import type { EventEmitter } from 'node:events';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { fieldBytes, HISTORY_FIELDS } from '../core/fields.js';
import { nodeCrypto } from '../core/builtins.js';
import type { HistoryRing } from './history.js';
import {
  H,
  type HistShape,
  HISTORY_LAYOUT_VERSION,
  initHistogram,
  type Layout,
  PAGE,
  type RingSpec,
  writeHistogramHeader,
} from '../core/layout.js';
import type { RollupState } from './rollup.js';
import type { Aggregator, AggregatorState } from './tick.js';
import type { MonitoringConfig } from '../core/types.js';

/**
 * The persistence settings of the monitor's configuration. What happened since the last save is
 * lost if the process ends without close(): call it on shutdown (SIGTERM, SIGINT).
 */
export interface PersistenceOptions {
  /** File the history is saved to (periodically and on close()) and restored from at start. Default: none. */
  historyFile?: string;
  /** Milliseconds between saves of `historyFile`. Default 60 000. */
  historySaveInterval?: number;
}

const DEFAULT_SAVE_INTERVAL = 60_000;
/** The history file's container format (header, checksums, state record): README, "Version numbers". */
const FORMAT_VERSION = 1;
export const FILE_MAGIC = Buffer.from('SGHIST\r\n', 'latin1');
export const HEADER_BYTES = 64;
const WRITE_CHUNK = 1 << 20;

/** Why a history file was not used. */
type HistoryFileProblem =
  | 'empty'
  | 'truncated'
  | 'corrupt'
  | 'inconsistent'
  | 'foreign'
  | 'version'
  | 'config'
  | 'not-a-file'
  | 'unreadable';

/** A history file that could not be restored (or saved). `keptAs` is where the bad file now is. */
export class HistoryFileError extends Error {
  override readonly name = 'HistoryFileError';
  readonly code: 'ERR_STREAMGAUGE_HISTORY_FILE' | 'ERR_STREAMGAUGE_HISTORY_SAVE';
  keptAs: string | undefined;

  constructor(
    message: string,
    readonly file: string,
    readonly problem: HistoryFileProblem | 'save',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = problem === 'save' ? 'ERR_STREAMGAUGE_HISTORY_SAVE' : 'ERR_STREAMGAUGE_HISTORY_FILE';
  }
}

/** Test hooks: called at points of a save where a crash must leave the previous file intact. */
export const persistenceHooks: {
  /** After about half of the temporary file is written. */
  midWrite?: (tmp: string) => void;
  /** After the temporary file is written and fsynced, before the rename. */
  beforeRename?: (tmp: string) => void;
} = {};

/** What persistence reads and restores: the monitor's memory, layout, configuration and tick. */
interface PersistenceTarget {
  buffer: ArrayBufferLike;
  layout: Layout;
  config: MonitoringConfig;
  aggregator: Aggregator;
}

/** Splits the persistence settings off a user configuration (the rest goes to resolveConfig). */
export function splitPersistenceOptions<T>(config: T): [T, PersistenceOptions] {
  if (config === null || typeof config !== 'object') return [config, {}];
  const { historyFile, historySaveInterval, ...rest } = config as T & PersistenceOptions;
  return [rest as T, { historyFile, historySaveInterval }];
}

/** The persistence settings checked, the file made absolute and the interval defaulted; undefined without a file. */
export function checkPersistenceOptions(o: PersistenceOptions): Required<PersistenceOptions> | undefined {
  if (o.historyFile === undefined) {
    if (o.historySaveInterval !== undefined)
      throw new RangeError('config.historySaveInterval needs config.historyFile (the file to save to)');
    return undefined;
  }
  if (typeof o.historyFile !== 'string' || o.historyFile.length === 0 || o.historyFile.includes('\0')) {
    throw new TypeError(
      `config.historyFile must be a file path (got ${typeof o.historyFile === 'string' ? JSON.stringify(o.historyFile) : typeof o.historyFile})`,
    );
  }
  const interval = o.historySaveInterval ?? DEFAULT_SAVE_INTERVAL;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 10 || interval > 2 ** 31 - 1) {
    throw new RangeError(
      `config.historySaveInterval must be a number of milliseconds from 10 to ${2 ** 31 - 1} (got ${String(interval)})`,
    );
  }
  return { historyFile: resolve(o.historyFile), historySaveInterval: interval };
}

// ---- what is saved -------------------------------------------------------------------------

type RingName = 'tick' | 'minute' | 'hour' | 'day';
const RING_NAMES: readonly RingName[] = ['tick', 'minute', 'hour', 'day'];

interface Region {
  name: RingName;
  start: number;
  bytes: number;
}

function ringEnd(r: RingSpec): number {
  let end = r.columns.t + r.capacity * 8;
  for (const f of HISTORY_FIELDS) end = Math.max(end, r.columns[f] + r.capacity * fieldBytes(f));
  return end;
}

/** The history regions of the shared memory, each contiguous. */
export function historyRegions(layout: Layout): Region[] {
  const out: Region[] = [
    { name: 'tick', start: layout.history.ptr, bytes: ringEnd(layout.history) - layout.history.ptr },
  ];
  for (const name of ['minute', 'hour', 'day'] as const) {
    const r = layout.rollups[name];
    out.push({ name, start: r.ptr, bytes: r.openPtr + layout.shapes.latency.bytes - r.ptr });
  }
  return out;
}

/** The configuration that decides what the saved bytes mean, and its fingerprint. */
export function historyFingerprint(
  layout: Layout,
  config: MonitoringConfig,
): { hash: Buffer; settings: Record<string, unknown> } {
  const settings = {
    scale: config.scale,
    histogramRange: { minMs: config.histogramRange.minMs, maxMs: config.histogramRange.maxMs },
    historyRetention: config.historyRetention,
    collectionInterval: config.collectionInterval,
    rollups: { minutes: config.rollups.minutes, hours: config.rollups.hours, days: config.rollups.days },
  };
  const lat = layout.shapes.latency;
  const rel = (r: RingSpec) => Object.fromEntries(Object.entries(r.columns).map(([k, v]) => [k, v - r.ptr]));
  const shape = {
    format: FORMAT_VERSION,
    layout: HISTORY_LAYOUT_VERSION,
    fields: HISTORY_FIELDS,
    latency: {
      scale: lat.scale,
      idxMin: lat.idxMin,
      nBuckets: lat.nBuckets,
      bytes: lat.bytes,
      idxMul: lat.idxMul,
      sumMul: lat.sumMul,
    },
    tick: rel(layout.history),
    rollups: Object.fromEntries(
      Object.entries(layout.rollups).map(([k, r]) => [
        k,
        { columns: rel(r), hist: r.histPtr - r.ptr, open: r.openPtr - r.ptr, periodMs: r.periodMs },
      ]),
    ),
  };
  const hash = nodeCrypto().createHash('sha256').update(JSON.stringify({ settings, shape })).digest().subarray(0, 16);
  return { hash, settings };
}

interface SavedState {
  rings: Record<RingName, { head: number; length: number }>;
  aggregator: AggregatorState;
  settings: Record<string, unknown>;
  savedAt: number;
}

function ringOf(aggregator: Aggregator, name: RingName): HistoryRing {
  return name === 'tick' ? aggregator.history : aggregator.rollups[name].ring;
}

/** The file's bytes for the history now (synchronous: a consistent copy, taken on the tick's thread). */
function encodeHistory(target: PersistenceTarget, savedAt = Date.now()): Buffer {
  const { layout, config, aggregator } = target;
  const regions = historyRegions(layout);
  const { hash, settings } = historyFingerprint(layout, config);
  const rings = {} as SavedState['rings'];
  for (const name of RING_NAMES) {
    const ring = ringOf(aggregator, name);
    rings[name] = { head: ring.head, length: ring.length };
  }
  const state: SavedState = { rings, aggregator: aggregator.state(), settings, savedAt: config.clock.now() };
  const json = Buffer.from(JSON.stringify(state), 'utf8');
  const binary = regions.reduce((n, r) => n + r.bytes, 0);
  const out = Buffer.allocUnsafe(HEADER_BYTES + binary + json.length);
  let at = HEADER_BYTES;
  for (const r of regions) {
    out.set(new Uint8Array(target.buffer, r.start, r.bytes), at);
    at += r.bytes;
  }
  json.copy(out, at);
  FILE_MAGIC.copy(out, 0);
  out.writeUInt32LE(FORMAT_VERSION, 8);
  out.writeUInt32LE(HEADER_BYTES, 12);
  hash.copy(out, 16);
  out.writeBigUInt64LE(BigInt(binary), 32);
  out.writeUInt32LE(json.length, 40);
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)), 44);
  out.writeDoubleLE(savedAt, 48);
  out.writeUInt32LE(0, 56);
  out.writeUInt32LE(crc32(out.subarray(0, 60)), 60);
  return out;
}

/** Checks a file's bytes against this monitor's configuration; throws HistoryFileError saying what is wrong. */
function decodeHistory(file: string, data: Buffer, target: PersistenceTarget): { binary: Buffer; state: SavedState } {
  const bad = (problem: HistoryFileProblem, what: string) =>
    new HistoryFileError(`history file ${file} ${what}`, file, problem);
  if (data.length === 0) throw bad('empty', 'is empty');
  const magicPart = Math.min(data.length, FILE_MAGIC.length);
  if (!data.subarray(0, magicPart).equals(FILE_MAGIC.subarray(0, magicPart))) {
    throw bad('foreign', 'is not a streamgauge history file (unknown magic)');
  }
  if (data.length < HEADER_BYTES)
    throw bad('truncated', `is truncated (${data.length} bytes, shorter than its ${HEADER_BYTES}-byte header)`);
  if (crc32(data.subarray(0, 60)) !== data.readUInt32LE(60))
    throw bad('corrupt', 'has a damaged header (checksum mismatch)');
  const version = data.readUInt32LE(8);
  if (version !== FORMAT_VERSION)
    throw bad('version', `is format version ${version}; this streamgauge reads version ${FORMAT_VERSION}`);
  const headerBytes = data.readUInt32LE(12);
  const binaryBig = data.readBigUInt64LE(32);
  const jsonBytes = data.readUInt32LE(40);
  if (headerBytes !== HEADER_BYTES || binaryBig > BigInt(Number.MAX_SAFE_INTEGER))
    throw bad('corrupt', 'has a damaged header');
  const binary = Number(binaryBig);
  const expected = headerBytes + binary + jsonBytes;
  if (data.length < expected) throw bad('truncated', `is truncated (${data.length} of ${expected} bytes)`);
  if (data.length > expected) throw bad('corrupt', `has ${data.length - expected} unexpected bytes after its end`);
  if (crc32(data.subarray(HEADER_BYTES)) !== data.readUInt32LE(44))
    throw bad('corrupt', 'is damaged (checksum mismatch)');
  let state: SavedState;
  try {
    state = JSON.parse(data.toString('utf8', HEADER_BYTES + binary)) as SavedState;
  } catch {
    throw bad('corrupt', 'has an unreadable state record');
  }
  const { hash, settings } = historyFingerprint(target.layout, target.config);
  if (!data.subarray(16, 32).equals(hash)) {
    const diffs = describeDifferences(state?.settings, settings);
    throw bad(
      'config',
      `was saved under another configuration${diffs ? ` (${diffs})` : ''}; its history cannot be laid out in this one`,
    );
  }
  const regions = historyRegions(target.layout);
  if (binary !== regions.reduce((n, r) => n + r.bytes, 0))
    throw bad('corrupt', 'has history regions of the wrong size');
  if (!validState(state, target)) throw bad('corrupt', 'has an inconsistent state record');
  const restored = data.subarray(HEADER_BYTES, HEADER_BYTES + binary);
  // Checksums say the bytes are those written, not that the writer wrote what this version would
  // (a bug, a hand edit, a disk returning another sector with its checksum): what the core would
  // trust is checked before it is used.
  const problem = restoredProblem(restored, state, target.layout);
  if (problem !== undefined)
    throw bad('inconsistent', `passes its checksums but its contents do not hold together (${problem})`);
  return { binary: restored, state };
}

const RING_SPECS = (layout: Layout): Record<RingName, RingSpec & { periodMs?: number }> => ({
  tick: layout.history,
  ...layout.rollups,
});

/** A fresh histogram block of `shape` as initHistogram lays it out (header and empty counts), made once per layout shape. */
const freshBlocks = new WeakMap<HistShape, Uint8Array>();
function freshBlock(layout: Layout, shape: HistShape): Uint8Array {
  let block = freshBlocks.get(shape);
  if (block === undefined) {
    const buffer = new ArrayBuffer(shape.bytes);
    initHistogram(buffer, layout, 0, shape, true);
    freshBlocks.set(shape, (block = new Uint8Array(buffer)));
  }
  return block;
}

/**
 * Why a saved histogram block (at byte `at` of `bytes`) cannot be given to the core, or undefined.
 * Its header must be the layout's (the table pointers aside: they are stamped again for this
 * memory), it has no lanes (only live series' histograms have), its counts are ≥ 0 and exact in
 * f64, and min/max are either the empty marks or 0 ≤ min ≤ max (reads walk the buckets between them).
 */
function histogramProblem(bytes: Uint8Array, at: number, layout: Layout, shape: HistShape): string | undefined {
  const fresh = freshBlock(layout, shape);
  // The shape's record is stamped again for this memory; the rest of the header must be a fresh one's.
  for (let o = H.SHAPE + 4; o < H.SUM; o++) {
    if (bytes[at + o] !== fresh[o])
      return o < H.LANES + 4 ? 'it has lanes linked' : `its header differs from the layout's at byte ${o}`;
  }
  for (let o = H.PREVZERO; o < H.PAGES; o++)
    if (bytes[at + o] !== fresh[o]) return `its header differs from the layout's at byte ${o}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, shape.bytes);
  const i64 = (o: number) => view.getBigInt64(o, true);
  const LIMIT = BigInt(Number.MAX_SAFE_INTEGER);
  const sum = i64(H.SUM);
  const min = i64(H.MIN);
  const max = i64(H.MAX);
  let total = 0;
  for (const o of [H.ZERO, H.OVER, H.UNPLACED]) {
    const c = i64(o);
    if (c < 0n || c > LIMIT) return `a count of ${c}`;
    total += Number(c);
  }
  // The pages follow the header (their table is stamped again for this memory): the counts of each.
  for (let page = 0; page < shape.pages; page++) {
    const first = shape.headerBytes + page * PAGE.BYTES;
    for (let o = first; o < first + PAGE.SLOTS * 8; o += 8) {
      // The high word says whether the count is negative or past 2^53 (most are 0 in a sparse block).
      const hi = view.getInt32(o + 4, true);
      if (hi < 0 || hi >= 1 << 21) return `a bucket count of ${i64(o)}`;
      total += hi * 2 ** 32 + view.getUint32(o, true);
    }
  }
  if (total > Number.MAX_SAFE_INTEGER) return `counts adding up past 2^53 (${total})`;
  if (sum < 0n) return `a negative sum (${sum})`;
  if (max < 0n) {
    // Nothing recorded: the empty marks, no counts.
    if (max !== -1n || min !== 0x7fffffffffffffffn || total !== 0 || sum !== 0n)
      return `min ${min}, max ${max} with ${total} values`;
  } else if (min < 0n || min > max) {
    return `min ${min} and max ${max} out of order`;
  }
  return undefined;
}

const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);

/**
 * Why the restored history regions and state cannot be used, or undefined. Follows the layout
 * (ring capacities and columns, rollup histograms and their shape), not fixed offsets: ring
 * positions must be those a ring reaches, times finite and ascending (rollup times whole periods,
 * before the open period), every rollup histogram one the core can walk, the state's figures numbers.
 */
function restoredProblem(binary: Uint8Array, state: SavedState, layout: Layout): string | undefined {
  // A copy at offset 0, so that typed-array views are aligned whatever the file buffer's offset.
  const bytes = new Uint8Array(binary.length);
  bytes.set(binary);
  const specs = RING_SPECS(layout);
  const shape = layout.shapes.latency;
  let at = 0;
  for (const region of historyRegions(layout)) {
    const name = region.name;
    const spec = specs[name];
    const base = at - region.start; // memory address p is at p + base in the bytes
    at += region.bytes;
    const { head, length } = state.rings[name];
    const cap = spec.capacity;
    if (length < cap && head !== length)
      return `the ${name} ring's next slot ${head} does not follow its ${length} points`;
    const t = new DataView(bytes.buffer, spec.columns.t + base, cap * 8);
    let last = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < length; i++) {
      const slot = (head - length + i + cap) % cap;
      const v = t.getFloat64(slot * 8, true);
      if (!Number.isFinite(v) || v < last)
        return `the ${name} ring's point ${i} has time ${v}, not finite and ascending`;
      if (spec.periodMs !== undefined && v % spec.periodMs !== 0)
        return `the ${name} ring's point ${i} ends at ${v}, not at a whole ${name}`;
      last = v;
    }
    if (name === 'tick') continue;
    const r = layout.rollups[name];
    const rs = state.aggregator.rollups[name];
    if (rs.period !== null && (!Number.isSafeInteger(rs.period) || rs.period * r.periodMs < last)) {
      return `the open ${name} ${String(rs.period)} is not after the last closed one`;
    }
    for (const part of [rs.acc, rs.sums, rs.counts]) {
      if (part === null || typeof part !== 'object') return `the open ${name}'s figures are missing`;
      for (const [k, v] of Object.entries(part))
        if (!finite(v)) return `the open ${name}'s ${k} is ${JSON.stringify(v)}`;
    }
    for (const v of Object.values(rs.counts))
      if (!Number.isSafeInteger(v) || (v as number) < 0) return `the open ${name} counts ${v} points`;
    for (let i = 0; i <= r.capacity; i++) {
      const ptr = i < r.capacity ? r.histPtr + i * shape.bytes : r.openPtr;
      const why = histogramProblem(bytes, ptr + base, layout, shape);
      if (why !== undefined)
        return `the ${name} histogram ${i < r.capacity ? `in slot ${i}` : 'of the open period'}: ${why}`;
    }
  }
  const { peakRps, ticks } = state.aggregator;
  if (!finite(peakRps) || peakRps < 0) return `a peak rate of ${peakRps}`;
  if (!Number.isSafeInteger(ticks) || ticks < 0) return `a tick count of ${ticks}`;
  return undefined;
}

function describeDifferences(saved: unknown, now: Record<string, unknown>): string {
  if (saved === null || typeof saved !== 'object') return '';
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (b !== null && typeof b === 'object') {
      for (const k of Object.keys(b))
        walk(
          (a as Record<string, unknown> | undefined)?.[k],
          (b as Record<string, unknown>)[k],
          path ? `${path}.${k}` : k,
        );
    } else if (a !== b) {
      out.push(`${path} ${JSON.stringify(a)} there, ${JSON.stringify(b)} here`);
    }
  };
  walk(saved, now, '');
  return out.join(', ');
}

function validState(s: SavedState, target: PersistenceTarget): boolean {
  if (s === null || typeof s !== 'object' || !s.rings || !s.aggregator || !s.aggregator.rollups) return false;
  for (const name of RING_NAMES) {
    const r = s.rings[name];
    const cap = ringOf(target.aggregator, name).capacity;
    if (
      !r ||
      !Number.isInteger(r.head) ||
      !Number.isInteger(r.length) ||
      r.head < 0 ||
      r.head >= cap ||
      r.length < 0 ||
      r.length > cap
    )
      return false;
    if (name !== 'tick' && (typeof s.aggregator.rollups[name] !== 'object' || s.aggregator.rollups[name] === null))
      return false;
  }
  return typeof s.aggregator.peakRps === 'number' && typeof s.aggregator.ticks === 'number';
}

/** Copies decoded history into the monitor's memory and state. */
function applyHistory(decoded: { binary: Buffer; state: SavedState }, target: PersistenceTarget): void {
  const { layout, aggregator } = target;
  let at = 0;
  for (const r of historyRegions(layout)) {
    new Uint8Array(target.buffer, r.start, r.bytes).set(decoded.binary.subarray(at, at + r.bytes));
    at += r.bytes;
  }
  // The histograms' headers carry this memory's configuration (a pointer to the bucket tables):
  // stamp them again rather than trust the file for it.
  const lat = layout.shapes.latency;
  for (const r of Object.values(layout.rollups)) {
    for (let i = 0; i < r.capacity; i++)
      writeHistogramHeader(target.buffer, layout, r.histPtr + i * lat.bytes, lat, true);
    writeHistogramHeader(target.buffer, layout, r.openPtr, lat, true);
  }
  for (const name of RING_NAMES)
    ringOf(aggregator, name).setPosition(decoded.state.rings[name].head, decoded.state.rings[name].length);
  aggregator.restoreState(decoded.state.aggregator);
}

// ---- atomic writes -------------------------------------------------------------------------

let tmpCounter = 0;
const TMP_MARK = '.tmp-';

function tempName(file: string): string {
  return `${file}${TMP_MARK}${process.pid}-${++tmpCounter}`;
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    // Some platforms (Windows) cannot open or fsync a directory; the rename stands regardless.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF' && code !== 'EACCES') throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Writes `data` to `file` atomically, synchronously: temp file, write, fsync, rename, fsync the directory. */
function writeFileAtomicSync(file: string, data: Uint8Array): void {
  const tmp = tempName(file);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    try {
      let off = 0;
      let hooked = false;
      while (off < data.length) {
        off += writeSync(fd, data, off, Math.min(WRITE_CHUNK, data.length - off));
        if (!hooked && off >= data.length / 2) {
          hooked = true;
          persistenceHooks.midWrite?.(tmp);
        }
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    persistenceHooks.beforeRename?.(tmp);
    renameSync(tmp, file);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
  fsyncDirSync(dirname(file));
}

/**
 * The same without blocking the event loop for the write and fsync. `stillWanted()` is asked just
 * before the (synchronous) rename: a save made meanwhile wins, and this one's temp file is removed.
 */
async function writeFileAtomic(
  file: string,
  data: Uint8Array,
  stillWanted: () => boolean = () => true,
): Promise<boolean> {
  const tmp = tempName(file);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    try {
      let off = 0;
      let hooked = false;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, Math.min(WRITE_CHUNK, data.length - off));
        off += bytesWritten;
        if (!hooked && off >= data.length / 2) {
          hooked = true;
          persistenceHooks.midWrite?.(tmp);
        }
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (!stillWanted()) {
      unlinkQuietly(tmp);
      return false;
    }
    persistenceHooks.beforeRename?.(tmp);
    renameSync(tmp, file);
  } catch (e) {
    unlinkQuietly(tmp);
    throw e;
  }
  fsyncDirSync(dirname(file));
  return true;
}

/** Renames a bad file (or directory) aside, never over an existing name. Returns the new path. */
function keepAside(file: string, now = Date.now()): string {
  let aside = `${file}.corrupt-${now}`;
  for (let i = 1; existsSync(aside); i++) aside = `${file}.corrupt-${now}-${i}`;
  renameSync(file, aside);
  return aside;
}

/** Removes temporary files of earlier saves whose process is gone (a crash mid-save leaves one). */
function removeStaleTemps(file: string): void {
  const dir = dirname(file);
  const prefix = basename(file) + TMP_MARK;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    unlinkQuietly(join(dir, name));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function crc32(data: Uint8Array): number {
  return zlib.crc32 ? zlib.crc32(data) >>> 0 : crc32js(data);
}

let CRC_TABLE: Uint32Array | undefined;
/** Fallback for Node releases before zlib.crc32 (20.15 / 22.2). */
function crc32js(data: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- the monitor's side ---------------------------------------------------------------------

const EMPTY_ROLLUP: RollupState = { period: null, acc: {}, sums: {}, counts: {} };

/**
 * Restores the history at start, saves it every `historySaveInterval` (timer unref()ed) and on
 * close(). Problems are reported on the monitor as an 'error' event when it has an 'error'
 * listener, else as a process warning: persistence never crashes the monitor.
 */
export class HistoryPersistence {
  readonly file: string;
  readonly interval: number;
  private timer: NodeJS.Timeout | undefined;
  private saving = false;
  private generation = 0;
  private closed = false;
  private lastSaveProblem: string | undefined;
  /** Set when a bad file could not be moved aside: saving would replace it. */
  private disabled = false;

  constructor(
    private readonly emitter: EventEmitter,
    private readonly target: PersistenceTarget,
    options: { file: string; interval: number },
  ) {
    this.file = options.file;
    this.interval = options.interval;
  }

  /** Loads the file if there is one. Returns the points restored (tick resolution), 0 when none. */
  restore(): number {
    removeStaleTemps(this.file);
    let data: Buffer;
    try {
      data = readFileSync(this.file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 0;
      if (code === 'EISDIR') {
        this.reject(
          new HistoryFileError(`history file ${this.file} is a directory, not a file`, this.file, 'not-a-file', {
            cause: e,
          }),
        );
        return 0;
      }
      // Nothing says the file is bad: it stays where it is, and is not saved over.
      const why = code === 'EACCES' || code === 'EPERM' ? `permission denied, ${code}` : (code ?? (e as Error).message);
      this.disabled = true;
      const err = new HistoryFileError(
        `history file ${this.file} cannot be read (${why}); left it in place, started with empty history and will not save over it`,
        this.file,
        'unreadable',
        { cause: e },
      );
      process.nextTick(() => this.report(err));
      return 0;
    }
    try {
      const decoded = decodeHistory(this.file, data, this.target);
      applyHistory(decoded, this.target);
      return decoded.state.rings.tick.length;
    } catch (e) {
      const err =
        e instanceof HistoryFileError
          ? e
          : new HistoryFileError(
              `history file ${this.file} cannot be restored: ${(e as Error).message}`,
              this.file,
              'corrupt',
              { cause: e },
            );
      this.clearHistory();
      this.reject(err);
      return 0;
    }
  }

  private clearHistory(): void {
    // Only reached if applying a checked file failed half-way: start from empty rings and open periods.
    const { aggregator, layout, buffer } = this.target;
    for (const name of RING_NAMES) ringOf(aggregator, name).clear();
    for (const r of Object.values(layout.rollups))
      initHistogram(buffer, layout, r.openPtr, layout.shapes.latency, true);
    aggregator.restoreState({
      peakRps: 0,
      ticks: 0,
      rollups: { minute: EMPTY_ROLLUP, hour: EMPTY_ROLLUP, day: EMPTY_ROLLUP },
    });
  }

  /**
   * Keeps the bad file aside and reports it (after the constructor returns, so listeners can
   * attach). If it cannot be moved aside, saving is turned off rather than replace it.
   */
  private reject(err: HistoryFileError): void {
    let note: string;
    try {
      err.keptAs = keepAside(this.file);
      note = `kept it as ${err.keptAs} and started with empty history`;
    } catch (e) {
      this.disabled = true;
      note = `could not move it aside (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}), started with empty history and will not save over it`;
    }
    err.message = `${err.message}; ${note}`;
    process.nextTick(() => this.report(err));
  }

  private report(err: Error): void {
    if (this.emitter.listenerCount('error') > 0) this.emitter.emit('error', err);
    else process.emitWarning(err);
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.saveAsync(), this.interval);
    this.timer.unref();
  }

  /** Saves now, synchronously. Returns whether the file was written (problems are reported, not thrown). */
  save(): boolean {
    if (this.disabled) return false;
    const gen = ++this.generation;
    try {
      const data = encodeHistory(this.target);
      writeFileAtomicSync(this.file, data);
      this.saved(gen, data.length);
      return true;
    } catch (e) {
      this.saveFailed(e);
      return false;
    }
  }

  /** Saves without blocking the event loop for the write (the copy of the memory is synchronous). */
  async saveAsync(): Promise<boolean> {
    if (this.saving || this.closed || this.disabled) return false;
    this.saving = true;
    const gen = ++this.generation;
    try {
      const data = encodeHistory(this.target);
      const done = await writeFileAtomic(this.file, data, () => gen === this.generation);
      if (done) this.saved(gen, data.length);
      return done;
    } catch (e) {
      this.saveFailed(e);
      return false;
    } finally {
      this.saving = false;
    }
  }

  private saved(gen: number, bytes: number): void {
    this.lastSaveProblem = undefined;
    this.emitter.emit('historySaved', { file: this.file, bytes, generation: gen });
  }

  private saveFailed(e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    // One report per kind of failure, not one every interval.
    if (code === this.lastSaveProblem) return;
    this.lastSaveProblem = code;
    this.report(
      new HistoryFileError(`history could not be saved to ${this.file} (${code})`, this.file, 'save', { cause: e }),
    );
  }

  /** Stops the timer and saves a last time (synchronously). Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.save();
    this.closed = true;
  }
}

/** Sets persistence up for a monitor (checked options): restores, starts saving. */
export function setupPersistence(
  emitter: EventEmitter,
  target: PersistenceTarget,
  options: Required<PersistenceOptions>,
): HistoryPersistence {
  const p = new HistoryPersistence(emitter, target, {
    file: options.historyFile,
    interval: options.historySaveInterval,
  });
  p.restore();
  p.start();
  return p;
}
