// Loading the compiled core and binding it to a shared memory. The glue only; no logic here.
import { readFileSync } from 'node:fs';
import { H, LANES_SUPPORTED, LAYOUT_VERSION, type Layout, MAX_LANES, PAGE, R, S } from './layout.js';
import { distUrl } from './module-url.js';

// The package's declarations name these two rather than WebAssembly.Memory / WebAssembly.Module,
// so that they compile in projects without the DOM lib (Node's types do not declare WebAssembly).
/** A shared `WebAssembly.Memory`. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
/** A compiled `WebAssembly.Module` (opaque). */
export type WasmModule = object;

/** The core's exports (assembly/index.ts). Pointers are byte offsets; counts cross as f64. */
export interface Core {
  record(h: number, v: number): void;
  /** Only from the thread that owns the lane (see RecordingContext.claimLane). */
  recordOwned(lane: number, v: number): void;
  /** 1 when `lane` became a lane of h, 0 when h has no room left. */
  addLane(h: number, lane: number): number;
  add(p: number, n: number): void;
  add2(p: number, n: number, m: number): void;
  inc(p: number): void;
  addGet(p: number, n: number): number;
  getI64(p: number): number;
  setF64(p: number, v: number): void;
  getF64(p: number): number;
  maxF64(p: number, v: number): void;
  readCounters(
    p: number,
    nCounters: number,
    nAll: number,
    dst: number,
    lane: number,
    laneStride: number,
    lanes: number,
  ): void;
  histSum(h: number): number;
  histMin(h: number): number;
  histMax(h: number): number;
  histReset(h: number): void;
  histMerge(dst: number, src: number): void;
  /** The counts h took since the last call as (code, count) u32 pairs at out (its window state moves on); returns the pair count. */
  histDelta(h: number, out: number): number;
  /** dst += what h took since its last histDelta; returns how many values. */
  histAddLive(h: number, dst: number): number;
  /** dst += n pairs at p; returns how many values. */
  histAddPairs(dst: number, p: number, n: number): number;
  /** The non-empty counters of a lane-less histogram as pairs at out; returns the pair count. */
  histPairs(h: number, out: number): number;
  histSetClamps(dst: number, min: number, max: number): void;
  histUnplaced(h: number): number;
  histUnplacedSum(h: number): number;
  /** The count of the histogram the last histDelta walked. */
  lastDeltaCount(): number;
  /** count, sum, min and max of each of a series' nHists histograms (offsets: u32 at `offsets`), 4 f64 each at dst; firstCount ≥ 0: the first one's count. */
  seriesStats(base: number, offsets: number, nHists: number, firstCount: number, dst: number): void;
  /** Writes [zero, overflow, buckets in the exported range] as f64 at dst; returns the count. */
  histExport(h: number, dst: number): number;
  exportedLo(): number;
  exportedHi(): number;
  histQuantile(h: number, q: number): number;
  /** Lets reads load two counters at once (only where a 64-bit access is a single one). */
  setWideReads(on: number): void;
  setAreas(arena: number, gather: number): void;
  /** n ascending quantiles at qs (f64) into dst (f64, may be qs). */
  histQuantiles(h: number, qs: number, n: number, dst: number): void;
  scanSeries(
    first: number,
    stride: number,
    n: number,
    nCounters: number,
    active: number,
    nGauges: number,
    records: number,
    latency: number,
    lanePtr: number,
    laneStride: number,
    lanes: number,
    laneSeriesBytes: number,
    stamps: number,
    out: number,
  ): number;
}

let compiled: WasmModule | undefined;

/** The compiled module (compiled once per thread that asks; a handle carries it to workers). */
export function coreModule(): WasmModule {
  compiled ??= new WebAssembly.Module(readFileSync(new URL('../../build/streamgauge.wasm', distUrl)));
  return compiled;
}

/** A memory with the layout's fixed part, growing (from the core) as bucket pages are handed out. */
export function createMemory(layout: Layout): WasmMemory {
  return new WebAssembly.Memory({ initial: layout.initialPages, maximum: layout.pages, shared: true });
}

// The offsets the core was built with, against this build's layout: a core and a facade from two
// builds must never share a memory.
const CORE_CONSTANTS: [string, number][] = [
  ['LAYOUT_VERSION', LAYOUT_VERSION],
  ...Object.entries(H).map(([k, v]): [string, number] => [`H_${k}`, v]),
  ...Object.entries(S)
    .filter(([k]) => k !== 'BYTES')
    .map(([k, v]): [string, number] => [`S_${k}`, v]),
  ['MAX_LANES', MAX_LANES],
  ['PAGE_SLOTS', PAGE.SLOTS],
  ['PAGE_BYTES', PAGE.BYTES],
  ['PREV_PAGE_BYTES', PAGE.PREV_BYTES],
];

export function instantiate(module: WasmModule, memory: WasmMemory, layout: Layout): Core {
  const instance = new WebAssembly.Instance(module as WebAssembly.Module, {
    env: { memory: memory as WebAssembly.Memory },
  });
  const exports = instance.exports as Record<string, unknown>;
  for (const [name, want] of CORE_CONSTANTS) {
    const got = (exports[name] as { value?: unknown } | undefined)?.value;
    if (got !== want)
      throw new TypeError(
        `the WebAssembly core does not match this build of streamgauge (${name} is ${String(got)}, expected ${want}): rebuild it (npm run build)`,
      );
  }
  const core = instance.exports as unknown as Core;
  core.setWideReads(LANES_SUPPORTED ? 1 : 0);
  core.setAreas(layout.runtimePtr + R.ARENA * 4, layout.gatherPtr);
  return core;
}
