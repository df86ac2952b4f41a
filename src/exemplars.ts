// Exemplars: a recorded latency linked to the trace it belongs to (trace id and span id), so that a
// slow bucket in a dashboard leads to the request that landed there.
//
// Kept beside the histograms, in this thread's heap, not in the shared memory: an exemplar is two
// strings, taken on a separate entry point (recordLatencyWithExemplar), so the record path without
// one is untouched. Retention per series: the latest exemplar for each power of two of the value
// (0.5..1 ms, 1..2 ms, ...), which leaves every classic bucket and every region of the native
// histogram with a recent example, the slow tail included, within a fixed bound.
import { createRequire } from 'node:module';
import { distUrl } from './module-url.js';
import type { Clock, ExemplarIds, Labels } from './types.js';

export type { ExemplarIds };

/** An exemplar as the exposition writers take it (see NativeHistogram.exemplars). */
export interface Exemplar {
  /** `{ trace_id, span_id }` for the monitor's; at most 128 characters of names and values together. */
  labels: Labels;
  /** The observed value, in the histogram's unit (seconds for durations). */
  value: number;
  /** When it was recorded (ms since the epoch). */
  timestampMs?: number;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZEROS = /^0+$/;

/** Checks ids given by the caller: lowercase hex of the right length, not all zero (W3C Trace Context). */
export function checkExemplarIds(ids: unknown, argName = 'exemplar'): asserts ids is ExemplarIds {
  if (ids === null || typeof ids !== 'object') throw new TypeError(`${argName} must be an object { traceId, spanId }`);
  const { traceId, spanId } = ids as Record<string, unknown>;
  if (typeof traceId !== 'string' || !TRACE_ID.test(traceId) || ZEROS.test(traceId)) {
    throw new TypeError(`${argName}.traceId must be 32 lowercase hex digits, not all zero (got ${describeId(traceId)})`);
  }
  if (typeof spanId !== 'string' || !SPAN_ID.test(spanId) || ZEROS.test(spanId)) {
    throw new TypeError(`${argName}.spanId must be 16 lowercase hex digits, not all zero (got ${describeId(spanId)})`);
  }
}

function describeId(v: unknown): string {
  if (typeof v !== 'string') return typeof v;
  return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
}

// ---- the active span (@opentelemetry/api, an optional peer, loaded on first use) -----------------

interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
}
interface OtelApi {
  trace: {
    getActiveSpan(): { spanContext(): SpanContextLike } | undefined;
    isSpanContextValid(context: SpanContextLike): boolean;
  };
}

const requireHere = createRequire(distUrl);
/** undefined: not looked for yet; null: not installed. */
let otelApi: OtelApi | null | undefined;

function loadOtelApi(): OtelApi | null {
  if (otelApi === undefined) {
    try {
      otelApi = requireHere('@opentelemetry/api') as OtelApi;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      otelApi = null;
    }
  }
  return otelApi;
}

const SAMPLED = 1; // TraceFlags.SAMPLED

/**
 * The ids of the span active in the current context, when @opentelemetry/api is installed, a span
 * is active and it is sampled (an unsampled trace is not stored anywhere to link to); else undefined.
 * Reads the API's global context manager, so it sees the spans of the application's own copy of
 * the API too.
 */
export function activeSpanIds(): ExemplarIds | undefined {
  const api = otelApi === undefined ? loadOtelApi() : otelApi;
  if (api === null) return undefined;
  const span = api.trace.getActiveSpan();
  if (span === undefined) return undefined;
  const context = span.spanContext();
  if ((context.traceFlags & SAMPLED) === 0 || !api.trace.isSpanContextValid(context)) return undefined;
  return context;
}

// ---- retention -------------------------------------------------------------------------------

interface Kept {
  readonly labels: Labels;
  readonly ms: number;
  readonly timestampMs: number;
}

/** Slots per series past the ones of the histogram's range: values at or below its bottom share one. */
function slotOf(ms: number, bottomSlot: number): number {
  return ms > 0 ? Math.max(Math.floor(Math.log2(ms)), bottomSlot) : bottomSlot;
}

/**
 * The latest exemplar per series and power of two of the value. Values are at most 1e10 ms (2^33.3)
 * and those at or below the histogram's smallest resolved value share one slot, so a series holds
 * at most 35 - floor(log2(minMs)) exemplars: 45 with the default range (1 µs .. 1 h).
 */
export class ExemplarStore {
  private readonly bySeries = new Map<number, Map<number, Kept>>();
  private readonly bottomSlot: number;

  constructor(
    private readonly clock: Clock,
    minMs: number,
  ) {
    this.bottomSlot = Math.floor(Math.log2(minMs));
  }

  /** Most exemplars one series can hold. */
  get perSeriesBound(): number {
    return slotOf(1e10, this.bottomSlot) - this.bottomSlot + 1;
  }

  /** Keeps `ids` as the latest exemplar of `ms`'s slot in `series` (`ms` and `ids` already checked). */
  keep(series: number, ms: number, ids: ExemplarIds): void {
    let slots = this.bySeries.get(series);
    if (slots === undefined) this.bySeries.set(series, (slots = new Map()));
    const labels: Labels = Object.freeze({ trace_id: ids.traceId, span_id: ids.spanId });
    slots.set(slotOf(ms, this.bottomSlot), { labels, ms, timestampMs: Math.round(this.clock.now()) });
  }

  /** The exemplars of `series` (values in seconds), or undefined when it has none. */
  of(series: number): Exemplar[] | undefined {
    const slots = this.bySeries.get(series);
    if (slots === undefined) return undefined;
    const out: Exemplar[] = [];
    for (const k of slots.values()) out.push({ labels: k.labels, value: k.ms / 1000, timestampMs: k.timestampMs });
    return out;
  }

  /** The latest exemplar per slot over several series (a merged histogram's), or undefined for none. */
  merged(series: readonly number[]): Exemplar[] | undefined {
    const latest = new Map<number, Kept>();
    for (const s of series) {
      const slots = this.bySeries.get(s);
      if (slots === undefined) continue;
      for (const [slot, k] of slots) {
        const seen = latest.get(slot);
        if (seen === undefined || k.timestampMs >= seen.timestampMs) latest.set(slot, k);
      }
    }
    if (latest.size === 0) return undefined;
    const out: Exemplar[] = [];
    for (const k of latest.values()) out.push({ labels: k.labels, value: k.ms / 1000, timestampMs: k.timestampMs });
    return out;
  }

  /** Exemplars held, all series together. */
  get size(): number {
    let n = 0;
    for (const slots of this.bySeries.values()) n += slots.size;
    return n;
  }
}
