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
import { MAX_MS } from './config.js';
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

/** Checks ids given by the caller: lowercase hex of the right length, not all zero (W3C Trace Context). */
export function checkExemplarIds(ids: unknown, argName = 'exemplar'): asserts ids is ExemplarIds {
  if (ids === null || typeof ids !== 'object') throw new TypeError(`${argName} must be an object { traceId, spanId }`);
  const { traceId, spanId } = ids as Record<string, unknown>;
  if (!isHexId(traceId, 32)) {
    throw new TypeError(
      `${argName}.traceId must be 32 lowercase hex digits, not all zero (got ${describeId(traceId)})`,
    );
  }
  if (!isHexId(spanId, 16)) {
    throw new TypeError(`${argName}.spanId must be 16 lowercase hex digits, not all zero (got ${describeId(spanId)})`);
  }
}

/** `length` lowercase hex digits, not all zero: both rules in one pass over the string. */
function isHexId(v: unknown, length: number): boolean {
  if (typeof v !== 'string' || v.length !== length) return false;
  let nonZero = false;
  for (let i = 0; i < length; i++) {
    const c = v.charCodeAt(i);
    if (c === 48) continue; // '0'
    if ((c > 48 && c <= 57) || (c >= 97 && c <= 102)) nonZero = true;
    else return false;
  }
  return nonZero;
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
  readonly traceId: string;
  readonly spanId: string;
  readonly ms: number;
  readonly timestampMs: number;
  /** `{ trace_id, span_id }`, made when first exported. */
  labels: Labels | undefined;
}

function exported(k: Kept): Exemplar {
  k.labels ??= Object.freeze({ trace_id: k.traceId, span_id: k.spanId });
  return { labels: k.labels, value: k.ms / 1000, timestampMs: k.timestampMs };
}

/** Slots per series past the ones of the histogram's range: values at or below its bottom share one. */
function slotOf(ms: number, bottomSlot: number): number {
  return ms > 0 ? Math.max(Math.floor(Math.log2(ms)), bottomSlot) : bottomSlot;
}

/**
 * The latest exemplar per series and power of two of the value. Values are at most 1e10 ms (2^33.3)
 * and those at or below the histogram's smallest resolved value share one slot, so a series holds
 * at most 34 - floor(log2(minMs)) exemplars: 44 with the default range (1 µs .. 1 h).
 */
export class ExemplarStore {
  /** Per series, its slots from bottomSlot up (holes where none was kept). */
  private readonly bySeries = new Map<number, (Kept | undefined)[]>();
  private readonly bottomSlot: number;

  constructor(
    private readonly clock: Clock,
    minMs: number,
  ) {
    this.bottomSlot = Math.floor(Math.log2(minMs));
    this.perSeriesBound = slotOf(MAX_MS, this.bottomSlot) - this.bottomSlot + 1;
  }

  /** Most exemplars one series can hold. */
  readonly perSeriesBound: number;

  /** Keeps `ids` as the latest exemplar of `ms`'s slot in `series` (`ms` and `ids` already checked). */
  keep(series: number, ms: number, ids: ExemplarIds): void {
    let slots = this.bySeries.get(series);
    if (slots === undefined) this.bySeries.set(series, (slots = new Array(this.perSeriesBound).fill(undefined)));
    slots[slotOf(ms, this.bottomSlot) - this.bottomSlot] = {
      traceId: ids.traceId,
      spanId: ids.spanId,
      ms,
      timestampMs: Math.round(this.clock.now()),
      labels: undefined,
    };
  }

  /** The exemplars of `series` (values in seconds, ascending), or undefined when it has none. */
  of(series: number): Exemplar[] | undefined {
    const slots = this.bySeries.get(series);
    if (slots === undefined) return undefined;
    const out: Exemplar[] = [];
    for (const k of slots) if (k !== undefined) out.push(exported(k));
    return out;
  }

  /** The latest exemplar per slot over several series (a merged histogram's), or undefined for none. */
  merged(series: readonly number[]): Exemplar[] | undefined {
    const latest: (Kept | undefined)[] = new Array(this.perSeriesBound).fill(undefined);
    let any = false;
    for (const s of series) {
      const slots = this.bySeries.get(s);
      if (slots === undefined) continue;
      for (let i = 0; i < slots.length; i++) {
        const k = slots[i];
        const seen = latest[i];
        if (k !== undefined && (seen === undefined || k.timestampMs >= seen.timestampMs)) {
          latest[i] = k;
          any = true;
        }
      }
    }
    if (!any) return undefined;
    const out: Exemplar[] = [];
    for (const k of latest) if (k !== undefined) out.push(exported(k));
    return out;
  }

  /** Exemplars held, all series together. */
  get size(): number {
    let n = 0;
    for (const slots of this.bySeries.values()) for (const k of slots) if (k !== undefined) n++;
    return n;
  }
}
