// The dashboard page: loads history for the chosen range, then follows the monitor's ticks over
// Server-Sent Events. All times come from the monitor (frame.t), never from the browser's clock,
// so a monitor running on another machine or on a simulated clock still lines up.

import { CHARTS, createCharts } from './charts.js';
import { fmtTime } from './format.js';
import { renderAnomalies, renderErrors, renderSeries, renderSummary, renderWorkers } from './tables.js';

const RANGES = {
  '5m': { resolution: 'tick', spanMs: 5 * 60_000, bucketMs: 0 },
  '1h': { resolution: 'minute', spanMs: 60 * 60_000, bucketMs: 60_000 },
  '1d': { resolution: 'hour', spanMs: 24 * 60 * 60_000, bucketMs: 60 * 60_000 },
};
const FIELDS = [...new Set(CHARTS.flatMap((c) => c.series.map((s) => s.field)))];
const UNITS = Object.fromEntries(
  CHARTS.flatMap((c) => c.series.map((s) => [s.field, { scale: c.scale ?? 1, unit: c.unit }])),
);
const REQUEST_TIMEOUT_MS = 10_000;

/** Shared with the charts: what to draw around the data. */
const view = { frame: null, windowStart: 0, windowEnd: 0, spanMs: RANGES['5m'].spanMs, anomalies: [] };
/** The narrowest time axis drawn for a monitor younger than the range. */
const MIN_SPAN_MS = 10_000;
let rangeKey = '5m';
let columns = emptyColumns();
let historyAnomalies = [];
let loadToken = 0;
let loading = false;
let lastBucket = -1;

const charts = createCharts(document.getElementById('charts'), view);

function emptyColumns() {
  return { t: [], fields: Object.fromEntries(FIELDS.map((f) => [f, []])) };
}

/** Copies the monitor's columns, with NaN (sent as null) and missing fields as gaps. */
function toColumns(history) {
  const out = emptyColumns();
  const t = Array.isArray(history.t) ? history.t : [];
  out.t = t.slice();
  for (const f of FIELDS) {
    const src = history.fields?.[f] ?? [];
    out.fields[f] = t.map((_, i) => (typeof src[i] === 'number' ? src[i] : null));
  }
  return out;
}

function appendPoint(frame) {
  const t = columns.t;
  if (t.length > 0 && frame.t <= t[t.length - 1]) return;
  t.push(frame.t);
  for (const f of FIELDS) {
    const v = frame.point?.[f];
    columns.fields[f].push(typeof v === 'number' ? v : null);
  }
  // Keep just the visible window (plus one point so the line enters from the left edge).
  let drop = 0;
  while (drop < t.length - 1 && t[drop + 1] < frame.t - view.spanMs) drop++;
  if (drop > 0) {
    t.splice(0, drop);
    for (const f of FIELDS) columns.fields[f].splice(0, drop);
  }
}

function mergeAnomalies(frame) {
  const seen = new Map();
  for (const a of [...historyAnomalies, ...(frame?.anomalies ?? [])]) seen.set(`${a.series}\u0000${a.start}`, a);
  return [...seen.values()];
}

function showFrame(frame) {
  view.frame = frame;
  view.anomalies = mergeAnomalies(frame);
  renderSummary(frame);
  renderSeries(frame);
  renderErrors(frame);
  renderWorkers(frame);
  renderAnomalies(view.anomalies, UNITS);
  document.getElementById('updated').textContent = `updated ${fmtTime(frame.t)}`;
}

function draw() {
  const last = columns.t[columns.t.length - 1];
  view.windowEnd = Math.max(view.frame?.t ?? 0, last ?? 0);
  view.windowStart = view.windowEnd - view.spanMs;
  // Ticks of a monitor younger than the range would fill only the right edge of every chart: the
  // axis then starts when the monitor did (or at the oldest point, for history restored from a file).
  if (RANGES[rangeKey].resolution === 'tick') {
    const uptime = view.frame?.summary?.uptimeSeconds;
    const started =
      typeof uptime === 'number' && Number.isFinite(uptime) ? view.frame.t - uptime * 1000 : Number.POSITIVE_INFINITY;
    const oldest = Math.min(started, columns.t[0] ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(oldest))
      view.windowStart = Math.min(view.windowEnd - MIN_SPAN_MS, Math.max(view.windowStart, oldest));
  }
  charts.setData(columns);
}

async function getJson(path) {
  const res = await fetch(path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${path}: HTTP ${res.status}`);
  return body;
}

/** A line under the header: a problem (`error`) or a plain remark (`info`); '' hides it. */
function notice(text, kind = 'error') {
  const node = document.getElementById('notice');
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = text === '';
}

/** (Re)loads the history of the current range. A newer load makes an older one's answer moot. */
async function load() {
  const token = ++loadToken;
  const range = RANGES[rangeKey];
  loading = true;
  try {
    const current = await getJson('api/current');
    if (token !== loadToken) return;
    showFrame(current);
    // One bucket more than the span, so the first rollup starts at or before the left edge.
    const since = Math.max(0, Math.floor(current.t - range.spanMs - range.bucketMs));
    const history = await getJson(`api/history?resolution=${range.resolution}&since=${since}`);
    if (token !== loadToken) return;
    columns = toColumns(history);
    historyAnomalies = Array.isArray(history.anomalies) ? history.anomalies : [];
    view.anomalies = mergeAnomalies(view.frame);
    if (range.resolution === 'tick') appendPoint(view.frame);
    if (range.bucketMs) lastBucket = Math.floor(view.frame.t / range.bucketMs);
    draw();
    document.body.dataset.loaded = rangeKey;
    // A young monitor has no closed rollup yet: say when the first one will be there.
    if (range.bucketMs && columns.t.length === 0) {
      const complete = Math.ceil(view.frame.t / range.bucketMs) * range.bucketMs;
      notice(
        `No ${range.resolution} rollups yet in this range: the current ${range.resolution} is complete at ${fmtTime(complete)}.`,
        'info',
      );
    } else {
      notice('');
    }
  } catch (error) {
    if (token === loadToken) {
      notice(`Could not load history: ${error.message}`);
      delete document.body.dataset.loaded;
    }
  } finally {
    if (token === loadToken) loading = false;
  }
}

function onFrame(frame) {
  if (!frame || typeof frame.t !== 'number') return;
  showFrame(frame);
  // History failed earlier (e.g. the monitor had not ticked yet): ticks flowing means try again.
  if (!document.body.dataset.loaded && !loading) load();
  const range = RANGES[rangeKey];
  if (range.resolution === 'tick') {
    appendPoint(frame);
  } else if (Math.floor(frame.t / range.bucketMs) !== lastBucket) {
    // A rollup period closed: fetch it rather than mixing tick points into a rollup chart.
    lastBucket = Math.floor(frame.t / range.bucketMs);
    setTimeout(load, 200);
  }
  draw();
}

function setStatus(state, text) {
  const status = document.getElementById('status');
  status.dataset.state = state;
  document.getElementById('status-text').textContent = text;
}

/** EventSource reconnects by itself; after a gap the history is reloaded to fill it. */
function connect() {
  let hadError = false;
  setStatus('connecting', 'connecting…');
  const events = new EventSource('events');
  events.addEventListener('open', () => {
    setStatus('live', 'live');
    if (hadError) load();
    hadError = false;
  });
  events.addEventListener('tick', (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  events.addEventListener('error', () => {
    hadError = true;
    if (events.readyState === EventSource.CLOSED) {
      // Closed for good (e.g. the server refused): the browser will not retry, so we do.
      setStatus('offline', 'offline — retrying');
      events.close();
      setTimeout(connect, 5000);
    } else {
      setStatus('reconnecting', 'reconnecting…');
    }
  });
}

function selectRange(key) {
  if (!RANGES[key] || key === rangeKey) return;
  rangeKey = key;
  view.spanMs = RANGES[key].spanMs;
  document.body.dataset.range = key;
  for (const button of /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('.range button'))) {
    button.setAttribute('aria-pressed', String(button.dataset.range === key));
  }
  columns = emptyColumns();
  historyAnomalies = [];
  delete document.body.dataset.loaded;
  draw();
  load();
}

for (const button of /** @type {NodeListOf<HTMLButtonElement>} */ (document.querySelectorAll('.range button'))) {
  button.addEventListener('click', () => selectRange(button.dataset.range));
}

load().then(connect);
