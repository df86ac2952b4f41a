// Picks the exposition format a scraper asked for in its Accept header and renders it.
//
// Prometheus 2.42 sends, with --enable-feature=native-histograms:
//   application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,
//   application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,
//   text/plain;version=0.0.4;q=0.5,*/*;q=0.1
// and without it the same list minus the protobuf entry (OpenMetrics 1.0.0 then has q=1).

import { type ClassicLadder, ladderFor, type MetricFamily } from '../core/family-model.js';
import {
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_TEXT_CONTENT_TYPE,
  renderOpenMetrics,
  renderPrometheusText,
  renderTextBytes,
} from './prometheus-text.js';
import { PROTOBUF_CONTENT_TYPE, renderProtobuf } from './prometheus-protobuf.js';

type ExpositionFormat = 'protobuf' | 'openmetrics' | 'text';

interface Negotiated {
  format: ExpositionFormat;
  /** The Content-Type to answer with. */
  contentType: string;
}

export interface RenderOptions {
  /** The scrape request's Accept header; absent or unusable means text format 0.0.4. */
  accept?: string | null;
  /** Prepended to every family name. Default `streamgauge_`. */
  prefix?: string;
  /** Classic histogram boundaries in seconds (snapped to native boundaries). */
  classicBoundariesSeconds?: readonly number[];
}

export interface Rendered {
  format: ExpositionFormat;
  contentType: string;
  /** A string for the text formats (send as UTF-8), bytes for protobuf. */
  body: string | Uint8Array;
}

const TEXT: Negotiated = { format: 'text', contentType: PROMETHEUS_TEXT_CONTENT_TYPE };
const OPENMETRICS: Negotiated = { format: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE };
const OPENMETRICS_0_0_1: Negotiated = {
  format: 'openmetrics',
  contentType: 'application/openmetrics-text; version=0.0.1; charset=utf-8',
};
const PROTOBUF: Negotiated = { format: 'protobuf', contentType: PROTOBUF_CONTENT_TYPE };

// A scraper sends the same header every time: remember the last answer.
let lastAccept: string | undefined;
let lastNegotiated: Negotiated = TEXT;

/**
 * The format for an Accept header: the supported media range with the highest q (ties go to the
 * earlier one), falling back to text format 0.0.4 when nothing listed is supported.
 */
export function negotiate(accept: string | null | undefined): Negotiated {
  if (accept === undefined || accept === null || accept === '') return TEXT;
  if (typeof accept !== 'string') throw new TypeError('accept must be a string');
  if (accept === lastAccept) return lastNegotiated;
  let best: Negotiated = TEXT;
  let bestQ = 0;
  for (const range of accept.split(',')) {
    const params = range.split(';');
    const type = params[0].trim().toLowerCase();
    let q = 1;
    let version: string | undefined;
    let proto: string | undefined;
    let encoding: string | undefined;
    for (let p = 1; p < params.length; p++) {
      const eq = params[p].indexOf('=');
      if (eq < 0) continue;
      const key = params[p].slice(0, eq).trim().toLowerCase();
      const value = unquote(params[p].slice(eq + 1).trim());
      if (key === 'q') q = Number(value);
      else if (key === 'version') version = value;
      else if (key === 'proto') proto = value;
      else if (key === 'encoding') encoding = value.toLowerCase();
    }
    if (!(q > 0)) continue; // q=0 means "not acceptable"; a malformed q is ignored too
    const candidate = match(type, version, proto, encoding);
    if (candidate !== undefined && q > bestQ) {
      best = candidate;
      bestQ = q;
    }
  }
  lastAccept = accept;
  lastNegotiated = best;
  return best;
}

function match(
  type: string,
  version: string | undefined,
  proto: string | undefined,
  encoding: string | undefined,
): Negotiated | undefined {
  switch (type) {
    case 'application/vnd.google.protobuf':
      return proto === 'io.prometheus.client.MetricFamily' && encoding === 'delimited' ? PROTOBUF : undefined;
    case 'application/openmetrics-text':
      if (version === undefined || version === '1.0.0') return OPENMETRICS;
      return version === '0.0.1' ? OPENMETRICS_0_0_1 : undefined;
    case 'text/plain':
      return version === undefined || version === '0.0.4' ? TEXT : undefined;
    case '*/*':
    case 'text/*':
      return TEXT;
    case 'application/*':
      return OPENMETRICS;
    default:
      return undefined;
  }
}

function unquote(s: string): string {
  return s.length >= 2 && s.charCodeAt(0) === 34 && s.charCodeAt(s.length - 1) === 34 ? s.slice(1, -1) : s;
}

/**
 * The seconds ladder of a render in a text format for this Accept header (what its histograms
 * print); undefined for protobuf, or for options the render will refuse in its own words.
 */
export function textLadder(
  accept: string | null | undefined,
  boundaries: readonly number[] | undefined,
): ClassicLadder | undefined {
  try {
    return negotiate(accept).format === 'protobuf' ? undefined : ladderFor(boundaries);
  } catch {
    return undefined;
  }
}

/** Renders `families` in the format the Accept header asks for. */
export function render(families: Iterable<MetricFamily>, options: RenderOptions = {}): Rendered {
  return renderAs(families, options, false);
}

/** As render, with a text format's body as UTF-8 bytes: what an HTTP response sends. */
export function renderBytes(families: Iterable<MetricFamily>, options: RenderOptions = {}): Rendered {
  return renderAs(families, options, true);
}

function renderAs(families: Iterable<MetricFamily>, options: RenderOptions, bytes: boolean): Rendered {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { format, contentType } = negotiate(options.accept);
  const textOptions = { prefix: options.prefix, classicBoundariesSeconds: options.classicBoundariesSeconds };
  const body =
    format === 'protobuf'
      ? renderProtobuf(families, textOptions)
      : bytes
        ? renderTextBytes(families, textOptions, format === 'openmetrics')
        : format === 'openmetrics'
          ? renderOpenMetrics(families, textOptions)
          : renderPrometheusText(families, textOptions);
  return { format, contentType, body };
}
