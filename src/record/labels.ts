// Series label sets as Prometheus sees them. Every label set that series() accepts must reach every
// exposition format as a label set of its own: two series exposed with the same labels would be
// kept as one by Prometheus, silently.
import { timer } from '../core/timer.js';
import type { Labels, Recorder, SeriesOptions } from '../core/types.js';
import type { Core } from '../core/wasm.js';

/**
 * Label names the exposition adds itself (`direction`, `error_type`) or that Prometheus keeps for
 * histograms and summaries (`le`, `quantile`). A series label so named is exposed as
 * `exported_<name>`; a series label named `exported_<name>` is therefore refused, so that the
 * renaming can never make two label sets one.
 */
export const EXPOSITION_LABELS: ReadonlySet<string> = new Set(['le', 'quantile', 'direction', 'error_type']);

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const EXPORTED = 'exported_';

/**
 * A label set's [name, value] pairs, sorted by name, checked, and without the labels whose value is
 * empty: to Prometheus an empty value is no label at all, so `{ path: '' }` is the series `{}`.
 */
export function labelPairsOf(labels: unknown): [string, string][] {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw new TypeError(
      `labels must be an object of label names to string values (got ${labels === null ? 'null' : Array.isArray(labels) ? 'an array' : typeof labels})`,
    );
  }
  const names = Object.keys(labels).sort();
  const pairs: [string, string][] = [];
  for (const name of names) {
    const value = (labels as Record<string, unknown>)[name];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new RangeError(
        `labels: ${JSON.stringify(name)} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)`,
      );
    }
    if (name.startsWith(EXPORTED) && EXPOSITION_LABELS.has(name.slice(EXPORTED.length))) {
      const own = name.slice(EXPORTED.length);
      throw new RangeError(
        `labels: ${name} is reserved: a series label named ${own} is exposed as ${name} (the exposition uses ${own} itself)`,
      );
    }
    if (typeof value !== 'string')
      throw new TypeError(`labels.${name} must be a string (got ${value === null ? 'null' : typeof value})`);
    if (value !== '') pairs.push([name, value]);
  }
  return pairs;
}

/** A series' labels as exposed: those the exposition uses itself renamed `exported_<name>`. */
export function exposedName(name: string): string {
  return EXPOSITION_LABELS.has(name) ? EXPORTED + name : name;
}

/**
 * What series() gives for a label set it refused under invalidValues 'count': everything recorded
 * through it is skipped and counted as invalid (one increment of the counter at `invalidAt`).
 */
export class DiscardingRecorder implements Recorder {
  private readonly invalid: () => void;

  constructor(
    core: Pick<Core, 'inc'>,
    invalidAt: number,
    private readonly seriesOf: (labels: Labels, options?: SeriesOptions) => Recorder,
  ) {
    this.invalid = () => core.inc(invalidAt);
  }

  recordLatency(): void {
    this.invalid();
  }
  recordError(): void {
    this.invalid();
  }
  recordLatencyWithExemplar(): void {
    this.invalid();
  }
  recordErrorWithExemplar(): void {
    this.invalid();
  }
  startTimer(): () => number {
    return timer(() => this.invalid());
  }
  recordStreamSession(): void {
    this.invalid();
  }
  recordBatchProcessing(): void {
    this.invalid();
  }
  recordMessages(): void {
    this.invalid();
  }
  recordBackpressureEvent(): void {
    this.invalid();
  }
  recordCacheHit(): void {
    this.invalid();
  }
  recordCacheMiss(): void {
    this.invalid();
  }
  updateCacheHitRatio(): void {
    this.invalid();
  }
  updateMemoryUsage(): void {
    this.invalid();
  }
  updateWorkerUtilization(): void {
    this.invalid();
  }
  updateQueueDepth(): void {
    this.invalid();
  }
  connectionOpened(): void {
    this.invalid();
  }
  connectionClosed(): void {
    this.invalid();
  }
  series(labels: Labels, options?: SeriesOptions): Recorder {
    return this.seriesOf(labels, options);
  }
}
