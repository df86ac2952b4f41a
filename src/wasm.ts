// Loading the compiled core and binding it to a shared memory. The glue only; no logic here.
import { readFileSync } from 'node:fs';
import { LANES_SUPPORTED } from './layout.js';
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
  histStats(h: number, count: number, dst: number): void;
  readCounters(p: number, nCounters: number, nAll: number, dst: number, lane: number, laneStride: number, lanes: number): void;
  histSum(h: number): number;
  histMin(h: number): number;
  histMax(h: number): number;
  histReset(h: number): void;
  histMerge(dst: number, src: number): void;
  /** Low 32 bits of h's counters into dst (a window snapshot); returns h's count. */
  histSnap32(h: number, dst: number): number;
  /** Returns the window's count. */
  histWindow(h: number, old: number, dst: number): number;
  /** Writes [zero, overflow, buckets in the exported range] as f64 at dst; returns their total. */
  histExport(h: number, dst: number): number;
  exportedLo(): number;
  exportedHi(): number;
  histQuantile(h: number, q: number): number;
  /** Lets reads load two counters at once (only where a 64-bit access is a single one). */
  setWideReads(on: number): void;
  /** n ascending quantiles at qs (f64) into dst (f64, may be qs); count: h's count if known, else -1. */
  histQuantiles(h: number, count: number, qs: number, n: number, dst: number): void;
}

let compiled: WasmModule | undefined;

/** The compiled module (compiled once per thread that asks; a handle carries it to workers). */
export function coreModule(): WasmModule {
  compiled ??= new WebAssembly.Module(readFileSync(new URL('../build/streamgauge.wasm', distUrl)));
  return compiled;
}

export function createMemory(pages: number): WasmMemory {
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

export function instantiate(module: WasmModule, memory: WasmMemory): Core {
  const instance = new WebAssembly.Instance(module as WebAssembly.Module, { env: { memory: memory as WebAssembly.Memory } });
  const core = instance.exports as unknown as Core;
  core.setWideReads(LANES_SUPPORTED ? 1 : 0);
  return core;
}
