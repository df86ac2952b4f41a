// Prometheus text format 0.0.4 and OpenMetrics 1.0 text, written from the neutral model.
// Also the naming rules (prefix, sanitising, label checks) the protobuf writer shares.

import {
  type ClassicLadder,
  checkedClassicBuckets,
  checkExemplars,
  exemplarsByBucket,
  ladderFor,
  type Metric,
  type MetricFamily,
  type Summary,
} from '../core/family-model.js';
import type { Labels } from '../core/types.js';
import type { Exemplar } from '../core/exemplars.js';
import { asciiBytes, TextWriter } from './text-writer.js';

export const DEFAULT_PREFIX = 'streamgauge_';
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export interface TextRenderOptions {
  /** Prepended to every family name before sanitising. Default `streamgauge_`; '' for none. */
  prefix?: string;
  /** Classic histogram boundaries in seconds, snapped to native boundaries. Default: 0.5 ms .. 60 s. */
  classicBoundariesSeconds?: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Names and labels

function isNameChar(c: number, first: boolean, colon: boolean): boolean {
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95) return true; // a-z A-Z _
  if (colon && c === 58) return true; // ':' (metric names only)
  return !first && c >= 48 && c <= 57; // 0-9
}

function sanitize(name: string, colon: boolean): string {
  const n = name.length;
  let i = 0;
  while (i < n && isNameChar(name.charCodeAt(i), i === 0, colon)) i++;
  if (i === n) return name;
  // A leading digit is kept behind an underscore (`5xx` -> `_5xx`) rather than lost.
  const c0 = name.charCodeAt(0);
  let out = c0 >= 48 && c0 <= 57 ? '_' : '';
  for (let k = 0; k < n; k++) {
    out += isNameChar(name.charCodeAt(k), out.length === 0, colon) ? name[k] : '_';
  }
  return out;
}

/** Makes `name` a valid metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`; invalid characters become `_`. */
export function sanitizeMetricName(name: string): string {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  if (name.length === 0) throw new RangeError('name must not be empty');
  return sanitize(name, true);
}

/** Makes `name` a valid label name `[a-zA-Z_][a-zA-Z0-9_]*`; invalid characters become `_`. */
export function sanitizeLabelName(name: string): string {
  if (typeof name !== 'string') throw new TypeError('name must be a string');
  if (name.length === 0) throw new RangeError('name must not be empty');
  return sanitize(name, false);
}

/**
 * The exposed base name of a family: prefix + name, sanitised; for counters without a trailing
 * `_total` (it is added per format). Throws when the name is unusable.
 */
function familyBaseName(prefix: string, family: MetricFamily, argName = 'family'): string {
  if (typeof family.name !== 'string' || family.name.length === 0) {
    throw new TypeError(`${argName}.name must be a non-empty string`);
  }
  let name = sanitize((family.prefix ?? prefix) + family.name, true);
  if (family.type === 'counter' && name.endsWith('_total')) name = name.slice(0, -6);
  return name;
}

export function resolvePrefix(prefix: string | undefined): string {
  if (prefix === undefined) return DEFAULT_PREFIX;
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string');
  return prefix;
}

const FAMILY_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary']);

/** Shape checks of one family that every writer needs before it writes anything of it. */
function checkFamily(family: MetricFamily, argName: string): void {
  if (family === null || typeof family !== 'object') throw new TypeError(`${argName} must be an object`);
  if (!FAMILY_TYPES.has(family.type)) {
    throw new TypeError(`${argName}.type must be counter, gauge, histogram or summary, got ${String(family.type)}`);
  }
  if (typeof family.help !== 'string') throw new TypeError(`${argName}.help must be a string`);
  if (!Array.isArray(family.metrics as unknown)) throw new TypeError(`${argName}.metrics must be an array`);
  if (family.unit !== undefined && (typeof family.unit !== 'string' || family.unit.length === 0)) {
    throw new TypeError(`${argName}.unit must be a non-empty string when given`);
  }
  if (family.prefix !== undefined && typeof family.prefix !== 'string')
    throw new TypeError(`${argName}.prefix must be a string when given`);
}

/** The classic ladder of one family: its own boundaries (bytes, counts) or the render's seconds ladder. */
export function familyLadder(family: MetricFamily, ladder: ClassicLadder): ClassicLadder {
  return family.classicBoundaries === undefined ? ladder : ladderFor(family.classicBoundaries, 'up');
}

/** The argument checks every writer makes before it renders anything. */
export function checkRenderArgs(families: Iterable<MetricFamily>, options: object): void {
  // An array, or the families of a monitor made one at a time as they are written (collectFamiliesInto).
  const f = families as unknown as { [Symbol.iterator]?: unknown } | null;
  if (!Array.isArray(f) && (f === null || typeof f !== 'object' || typeof f[Symbol.iterator] !== 'function'))
    throw new TypeError('families must be an array');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
}

/**
 * checkFamily and familyBaseName of the family at `where`, whose base name must not be in `seen`
 * (another family of the same render); it is added there.
 */
export function checkedFamilyBase(prefix: string, family: MetricFamily, where: string, seen: Set<string>): string {
  checkFamily(family, where);
  const base = familyBaseName(prefix, family, where);
  if (seen.has(base)) throw new RangeError(`${where}.name: metric family ${base} appears twice`);
  seen.add(base);
  return base;
}

/** The label set as sanitised [name, value] pairs, in the given order. */
function labelPairs(labels: Labels, argName: string, reserved?: string): string[] {
  if (labels === null || typeof labels !== 'object') throw new TypeError(`${argName} must be an object`);
  const pairs: string[] = [];
  for (const key in labels) {
    const value = labels[key];
    if (typeof value !== 'string') throw new TypeError(`${argName}.${key} must be a string`);
    if (key.length === 0) throw new RangeError(`${argName} has an empty label name`);
    const name = sanitize(key, false);
    if (name.charCodeAt(0) === 95 && name.charCodeAt(1) === 95) {
      throw new RangeError(`${argName}.${key}: label names starting with __ are reserved by Prometheus`);
    }
    if (name === reserved)
      throw new RangeError(`${argName}.${key}: label ${reserved} is reserved for this metric type`);
    // Label sets are small: a linear scan beats building a Set per series.
    for (let p = 0; p < pairs.length; p += 2) {
      if (pairs[p] === name) throw new RangeError(`${argName}: duplicate label ${name} (after sanitising ${key})`);
    }
    pairs.push(name, value);
  }
  return pairs;
}

/** The label a family's type keeps for itself: `le` for histograms, `quantile` for summaries. */
export function reservedLabel(family: MetricFamily): '' | 'le' | 'quantile' {
  return family.type === 'histogram' ? 'le' : family.type === 'summary' ? 'quantile' : '';
}

/**
 * What a writer makes of a metric's labels (from labelPairs), kept per label set: a series' labels
 * are written in every family of every scrape, and a frozen label set (a monitor's) cannot change.
 * Kept apart by the label the family reserves ('' for none), which labelPairs checks.
 */
export function labelCache<T>(
  make: (pairs: string[]) => T,
): (labels: Labels, where: string, m: number, reserved: '' | 'le' | 'quantile') => T {
  const plain = new WeakMap<Labels, T>();
  const le = new WeakMap<Labels, T>();
  const quantile = new WeakMap<Labels, T>();
  return (labels, where, m, reserved) => {
    // Picked by comparison: an object looked up by a string variable is the slow generic path.
    const kept = reserved === '' ? plain : reserved === 'le' ? le : quantile;
    const cache = labels !== null && typeof labels === 'object' && Object.isFrozen(labels) ? kept : undefined;
    let made = cache?.get(labels);
    if (made === undefined) {
      made = make(labelPairs(labels, `${m < 0 ? where : metricAt(where, m)}.labels`, reserved || undefined));
      cache?.set(labels, made);
    }
    return made;
  };
}

/**
 * `families[f].metrics[m]`, the name of a metric in error messages: made only for a message or a
 * nested check, not for each of the tens of thousands of metrics a scrape writes.
 */
export function metricAt(where: string, m: number): string {
  return `${where}.metrics[${m}]`;
}

/** Escapes a label value for both text formats: backslash, double quote, newline. */
export function escapeLabelValue(value: string): string {
  return escapeText(value, true);
}

/** Escapes HELP text for text format 0.0.4 (backslash and newline only). */
export function escapeHelpText(help: string): string {
  return escapeText(help, false);
}

/** Escapes HELP text for OpenMetrics (backslash, double quote, newline). */
export function escapeHelpOpenMetrics(help: string): string {
  return escapeText(help, true);
}

function escapeText(s: string, quote: boolean): string {
  const n = s.length;
  let out = '';
  let from = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let rep: string;
    if (c === 92) rep = '\\\\';
    else if (c === 10) rep = '\\n';
    else if (c === 34 && quote) rep = '\\"';
    else continue;
    out += s.slice(from, i) + rep;
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

// ---------------------------------------------------------------------------------------------
// Numbers

/** A sample value as both formats spell it: `+Inf`, `-Inf`, `NaN`, else the shortest round-trip form. */
function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return '' + v;
}

/** OpenMetrics wants `le` and `quantile` values canonical: integers carry `.0` (`1.0`, not `1`). */
function formatCanonical(v: number): string {
  const s = formatValue(v);
  return Number.isInteger(v) && Math.abs(v) < 1e21 ? s + '.0' : s;
}

// ---------------------------------------------------------------------------------------------
// Writers

/** Renders text format 0.0.4 (`text/plain; version=0.0.4`). */
export function renderPrometheusText(families: Iterable<MetricFamily>, options: TextRenderOptions = {}): string {
  return renderTextFormat(families, options, false);
}

/** Renders OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`), ending in `# EOF`. */
export function renderOpenMetrics(families: Iterable<MetricFamily>, options: TextRenderOptions = {}): string {
  return renderTextFormat(families, options, true);
}

// One writer for every render: a render runs to its end without yielding, so none overlaps another.
const writer = new TextWriter();

/** Text 0.0.4 or OpenMetrics as UTF-8 bytes: what a response sends, without a string between. */
export function renderTextBytes(families: Iterable<MetricFamily>, options: TextRenderOptions, om: boolean): Buffer {
  writeTextFormat(families, options, om);
  return writer.takeBytes();
}

function renderTextFormat(families: Iterable<MetricFamily>, options: TextRenderOptions, om: boolean): string {
  writeTextFormat(families, options, om);
  return writer.take();
}

function writeTextFormat(families: Iterable<MetricFamily>, options: TextRenderOptions, om: boolean): void {
  checkRenderArgs(families, options);
  const prefix = resolvePrefix(options.prefix);
  const ladder = ladderFor(options.classicBoundariesSeconds);
  const seen = new Set<string>();
  const w = writer;
  try {
    let f = 0;
    for (const family of families) {
      const where = `families[${f++}]`;
      const base = checkedFamilyBase(prefix, family, where, seen);
      // Text 0.0.4 names a counter family by its sample (`x_total`); OpenMetrics by its base (`x`).
      const described = family.type === 'counter' && !om ? base + '_total' : base;
      if (family.help.length > 0) {
        w.str('# HELP ');
        w.str(described);
        w.str(' ');
        w.str(om ? escapeHelpOpenMetrics(family.help) : escapeHelpText(family.help));
        w.str('\n');
      }
      w.str('# TYPE ');
      w.str(described);
      w.str(' ');
      w.str(family.type);
      w.str('\n');
      if (om && family.unit !== undefined && base.endsWith('_' + family.unit)) {
        w.str('# UNIT ');
        w.str(base);
        w.str(' ');
        w.str(family.unit);
        w.str('\n');
      }
      writeMetrics(w, family, base, where, familyLadder(family, ladder), om);
    }
    if (om) w.str('# EOF\n');
  } catch (err) {
    w.reset();
    throw err;
  }
}

function writeMetrics(
  w: TextWriter,
  family: MetricFamily,
  base: string,
  where: string,
  ladder: ClassicLadder,
  om: boolean,
): void {
  const metrics = family.metrics;
  const reserved = reservedLabel(family);
  const names = lineNames(family.type === 'counter' ? base + '_total' : base, family.type, base);
  for (let m = 0; m < metrics.length; m++) {
    const metric = metrics[m];
    if (metric === null || typeof metric !== 'object') throw new TypeError(`${metricAt(where, m)} must be an object`);
    const labels = lineLabels(metric.labels, where, m, reserved);
    const ts = metric.timestampMs === undefined ? '' : timestampSuffix(metric, metricAt(where, m), om);
    switch (family.type) {
      case 'counter':
      case 'gauge': {
        const value = typeof metric.value === 'number' ? metric.value : checkValue(metric, metricAt(where, m));
        head(w, names.open, names.bare, labels);
        sample(w, value);
        end(w, ts);
        break;
      }
      case 'histogram':
        writeHistogram(w, metric, metricAt(where, m), names, labels, ts, ladder, om);
        break;
      case 'summary':
        writeSummary(w, metric, metricAt(where, m), names, labels, ts, om);
        break;
    }
  }
}

/**
 * The encoded names that start a family's lines: `name{` (before labels) and `name ` (none), and for
 * histograms and summaries those of `_sum` and `_count` too (and `_bucket{` of a histogram).
 */
interface LineNames {
  open: Text;
  bare: Text;
  bucket: Text;
  sumOpen: Text;
  sumBare: Text;
  countOpen: Text;
  countBare: Text;
}

/** Encoded ASCII (a kept piece of text), or a string where it is not all ASCII (label values). */
type Text = Uint8Array | string;

function put(w: TextWriter, t: Text): void {
  if (typeof t === 'string') w.str(t);
  else w.bytes(t);
}

// The names and boundaries printed on every line of a family, the same from one render to the next:
// encoded once and kept (a few dozen families; bounded all the same, as renders may name anything).
const pieces = new Map<string, Text>();

function piece(s: string): Text {
  let t = pieces.get(s);
  if (t === undefined) {
    if (pieces.size >= 4096) pieces.clear();
    t = asciiBytes(s) ?? s;
    pieces.set(s, t);
  }
  return t;
}

const NO_TEXT: Text = '';

function lineNames(name: string, type: MetricFamily['type'], base: string): LineNames {
  const split = type === 'histogram' || type === 'summary';
  return {
    open: piece(name + '{'),
    bare: piece(name + ' '),
    bucket: type === 'histogram' ? piece(base + '_bucket{') : NO_TEXT,
    sumOpen: split ? piece(base + '_sum{') : NO_TEXT,
    sumBare: split ? piece(base + '_sum ') : NO_TEXT,
    countOpen: split ? piece(base + '_count{') : NO_TEXT,
    countBare: split ? piece(base + '_count ') : NO_TEXT,
  };
}

const CLOSE = piece('} ');

/** `name{labels} ` of a sample, or `name ` when there are no labels. */
function head(w: TextWriter, open: Text, bare: Text, labels: Text): void {
  if (labels.length === 0) put(w, bare);
  else {
    put(w, open);
    put(w, labels);
    put(w, CLOSE);
  }
}

/** `name{labels,le="…"} ` (or `quantile`): `open` is the name with its `{`, `reserved` the rest. */
function reservedHead(w: TextWriter, open: Text, labels: Text, reserved: Text): void {
  put(w, open);
  if (labels.length > 0) {
    put(w, labels);
    w.byte(44); // ','
  }
  put(w, reserved);
}

/** A line's end: its timestamp, if any, and the newline. */
function end(w: TextWriter, ts: string): void {
  if (ts.length > 0) w.str(ts);
  w.byte(10);
}

/** A sample value as formatValue spells it. */
function sample(w: TextWriter, v: number): void {
  if (v === Infinity) w.str('+Inf');
  else if (v === -Infinity) w.str('-Inf');
  else if (Number.isNaN(v)) w.str('NaN');
  else w.num(v);
}

/** `name="value",...` of a metric's labels (checked, sanitised, escaped), '' for none. */
function joinLabels(pairs: string[]): string {
  // Joined, not appended: a cached text is kept flat, not as a rope of its pieces.
  const parts: string[] = [];
  for (let p = 0; p < pairs.length; p += 2) {
    parts.push((p === 0 ? '' : ',') + pairs[p] + '="' + escapeText(pairs[p + 1], true) + '"');
  }
  return parts.join('');
}

/** labelCache's text of a label set, for exemplars (whose labels are rarely kept objects). */
const labelText = labelCache(joinLabels);

// A frozen label set (a monitor's series) is written on several lines of many families in every
// render: its text is kept encoded, one copy shared by the family types, each of which checks it
// once against the label it reserves (`le`, `quantile`). One lookup a metric when it is kept.
const keptPlain = new WeakMap<Labels, Text>();
const keptLe = new WeakMap<Labels, Text>();
const keptQuantile = new WeakMap<Labels, Text>();

/** A metric's labels as written on its lines (checked, sanitised, escaped); empty for none. */
function lineLabels(labels: Labels, where: string, m: number, reserved: '' | 'le' | 'quantile'): Text {
  // Picked by comparison: an object looked up by a string variable is the slow generic path.
  const kept = reserved === '' ? keptPlain : reserved === 'le' ? keptLe : keptQuantile;
  let text = kept.get(labels);
  if (text !== undefined) return text;
  const at = `${metricAt(where, m)}.labels`;
  const joined = joinLabels(labelPairs(labels, at, reserved || undefined));
  // Only a frozen label set cannot change before the next render.
  if (labels === null || typeof labels !== 'object' || !Object.isFrozen(labels)) return joined;
  text = keptPlain.get(labels);
  if (text === undefined) {
    text = joined.length === 0 ? NO_TEXT : (asciiBytes(joined) ?? joined);
    keptPlain.set(labels, text);
  }
  kept.set(labels, text);
  return text;
}

// The same few boundaries and quantiles are printed for every series on every scrape: keep their
// text, encoded, from `le="` to the `"} ` that follows it.
const leText004 = new Map<number, Text>();
const leOpenMetrics = new Map<number, Text>();
const quantileText004 = new Map<number, Text>();
const quantileOpenMetrics = new Map<number, Text>();

function reservedText(kept: Map<number, Text>, label: string, v: number, om: boolean): Text {
  let t = kept.get(v);
  if (t === undefined) {
    if (kept.size >= 4096) kept.clear();
    const text = label + '="' + (om ? formatCanonical(v) : formatValue(v)) + '"} ';
    t = asciiBytes(text) ?? text;
    kept.set(v, t);
  }
  return t;
}

const LE_INF = piece('le="+Inf"} ');

// The `le` texts of the last bounds written: the series of a family mostly share one bounds array.
let lastBounds: readonly number[] = [];
let lastOm = false;
let lastLe: Text[] = [LE_INF];

/** The `le` text of each bound, then of `+Inf`. */
function leTexts(bounds: readonly number[], om: boolean): Text[] {
  if (bounds === lastBounds && om === lastOm) return lastLe;
  const kept = om ? leOpenMetrics : leText004;
  const texts: Text[] = [];
  for (let k = 0; k < bounds.length; k++) texts.push(reservedText(kept, 'le', bounds[k], om));
  texts.push(LE_INF);
  lastBounds = bounds;
  lastOm = om;
  lastLe = texts;
  return texts;
}

function writeHistogram(
  w: TextWriter,
  metric: Metric,
  at: string,
  names: LineNames,
  labels: Text,
  ts: string,
  ladder: ClassicLadder,
  om: boolean,
): void {
  const h = metric.histogram;
  if (h === undefined) throw new TypeError(`${at}.histogram is required in a histogram family`);
  const { bounds, counts } = checkedClassicBuckets(h, ladder, `${at}.histogram`);
  // Exemplars exist in OpenMetrics only; text 0.0.4 leaves them out.
  let picks: (Exemplar | undefined)[] | undefined;
  if (om && h.exemplars !== undefined && h.exemplars.length > 0) {
    checkExemplars(h.exemplars, `${at}.histogram.exemplars`);
    picks = exemplarsByBucket(h.exemplars, bounds);
  }
  const le = leTexts(bounds, om);
  for (let k = 0; k <= bounds.length; k++) {
    reservedHead(w, names.bucket, labels, le[k]);
    w.num(k < bounds.length ? counts[k] : h.count);
    if (ts.length > 0) w.str(ts);
    if (picks !== undefined) w.str(exemplarText(picks[k], at));
    w.byte(10);
  }
  head(w, names.sumOpen, names.sumBare, labels);
  sample(w, h.sum);
  end(w, ts);
  head(w, names.countOpen, names.countBare, labels);
  w.num(h.count);
  end(w, ts);
}

/** ` # {labels} value timestamp` (OpenMetrics' exemplar after a bucket's sample), '' for none. */
function exemplarText(e: Exemplar | undefined, at: string): string {
  if (e === undefined) return '';
  const ts = e.timestampMs === undefined ? '' : ' ' + formatValue(e.timestampMs / 1000);
  return ' # {' + labelText(e.labels, `${at}.histogram.exemplar`, -1, '') + '} ' + formatValue(e.value) + ts;
}

function writeSummary(
  w: TextWriter,
  metric: Metric,
  at: string,
  names: LineNames,
  labels: Text,
  ts: string,
  om: boolean,
): void {
  const s = metric.summary;
  if (s === undefined || s === null || typeof s !== 'object') {
    throw new TypeError(`${at}.summary is required in a summary family`);
  }
  checkSummary(s, `${at}.summary`);
  const quantileText = om ? quantileOpenMetrics : quantileText004;
  for (let q = 0; q < s.quantiles.length; q++) {
    const { quantile: phi, value: v } = s.quantiles[q];
    reservedHead(w, names.open, labels, reservedText(quantileText, 'quantile', phi, om));
    sample(w, v);
    end(w, ts);
  }
  head(w, names.sumOpen, names.sumBare, labels);
  sample(w, s.sum);
  end(w, ts);
  head(w, names.countOpen, names.countBare, labels);
  w.num(s.count);
  end(w, ts);
}

export function checkSummary(s: Summary, argName: string): void {
  if (typeof s.count !== 'number' || !Number.isSafeInteger(s.count) || s.count < 0) {
    throw new RangeError(`${argName}.count must be a non-negative safe integer`);
  }
  if (typeof s.sum !== 'number') throw new TypeError(`${argName}.sum must be a number`);
  if (!Array.isArray(s.quantiles as unknown)) throw new TypeError(`${argName}.quantiles must be an array`);
  for (let q = 0; q < s.quantiles.length; q++) {
    const { quantile, value } = s.quantiles[q];
    if (typeof quantile !== 'number' || !(quantile >= 0 && quantile <= 1)) {
      throw new RangeError(`${argName}.quantiles[${q}].quantile must be in 0..1`);
    }
    if (typeof value !== 'number') throw new TypeError(`${argName}.quantiles[${q}].value must be a number`);
  }
}

export function checkValue(metric: Metric, at: string): number {
  const v = metric.value;
  if (typeof v !== 'number') throw new TypeError(`${at}.value must be a number`);
  return v;
}

/** Validated timestampMs, or undefined. */
export function checkTimestamp(metric: Metric, at: string): number | undefined {
  const t = metric.timestampMs;
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isSafeInteger(t)) {
    throw new RangeError(`${at}.timestampMs must be an integer number of milliseconds`);
  }
  return t;
}

// Text 0.0.4 timestamps are integer milliseconds; OpenMetrics timestamps are seconds.
function timestampSuffix(metric: Metric, at: string, om: boolean): string {
  const t = checkTimestamp(metric, at);
  if (t === undefined) return '';
  return ' ' + (om ? formatValue(t / 1000) : '' + t);
}
