// The tables under the charts. Every string from the monitor (labels, error types, series names)
// goes into the DOM through textContent: it is shown, never parsed as HTML.

import { fmtDuration, fmtNumber, fmtPercent, fmtTime, isValue, withUnit } from './format.js';

function cell(text, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function row(...cells) {
  const tr = document.createElement('tr');
  tr.append(...cells);
  return tr;
}

function emptyRow(columns, text) {
  const td = cell(text, 'empty');
  td.colSpan = columns;
  return row(td);
}

function body(tableId) {
  return /** @type {HTMLTableElement} */ (document.getElementById(tableId)).tBodies[0];
}

/** Achievement as a percentage, coloured by whether the target is met. */
function achievedCell(ratio) {
  const td = cell(fmtPercent(ratio), 'num');
  if (isValue(ratio)) td.dataset.state = ratio >= 1 ? 'ok' : ratio >= 0.9 ? 'near' : 'bad';
  return td;
}

export function renderSummary(frame) {
  const s = frame.summary ?? {};
  const t = frame.targets ?? {};
  const c = frame.comparison ?? {};
  const num = (v, unit) => cell(withUnit(fmtNumber(v), unit), 'num');
  const pct = (v) => cell(fmtPercent(v), 'num');
  const none = () => cell('', 'num');
  body('summary').replaceChildren(
    row(cell('Throughput'), num(s.throughputRps, '/s'), num(t.targetRps, '/s'), achievedCell(c.throughputAchievement)),
    row(
      cell('Latency p95'),
      num(s.p95LatencyMs, 'ms'),
      num(t.targetP95LatencyMs, 'ms'),
      achievedCell(c.latencyAchievement),
    ),
    row(cell('Memory'), num(s.memoryUsageMb, 'MB'), num(t.targetMemoryMb, 'MB'), achievedCell(c.memoryEfficiency)),
    // The comparison carries the success rate itself, not its ratio to the target.
    row(
      cell('Success rate'),
      pct(s.successRate),
      pct(t.targetSuccessRate),
      achievedCell(ratio(s.successRate, t.targetSuccessRate)),
    ),
    row(
      cell('Latency avg · p50'),
      cell(`${fmtNumber(s.avgLatencyMs)} · ${fmtNumber(s.p50LatencyMs)} ms`, 'num'),
      none(),
      none(),
    ),
    row(
      cell('Latency p99 · p99.9'),
      cell(`${fmtNumber(s.p99LatencyMs)} · ${fmtNumber(s.p999LatencyMs)} ms`, 'num'),
      none(),
      none(),
    ),
    row(cell('Connections'), num(s.activeConnections, ''), none(), none()),
    row(cell('Worker utilisation'), pct(s.workerUtilization), none(), none()),
    row(cell('Cache efficiency'), pct(s.cacheEfficiency), none(), none()),
    row(cell('Uptime'), cell(fmtDuration(s.uptimeSeconds), 'num'), none(), none()),
  );

  // The verdict names what is missed; the overall score (an average of capped achievements, so
  // it can pass 100 % while a target is missed) is left to the tooltip.
  const verdict = document.getElementById('verdict');
  verdict.dataset.state = c.meetsTargets === true ? 'ok' : c.meetsTargets === false ? 'bad' : 'unknown';
  const missed = [
    [c.throughputAchievement, 'throughput'],
    [c.latencyAchievement, 'p95'],
    [c.memoryEfficiency, 'memory'],
    [ratio(s.successRate, t.targetSuccessRate), 'success rate'],
  ]
    .filter(([v]) => isValue(v) && v < 1)
    .map(([, name]) => name);
  verdict.textContent =
    c.meetsTargets === true
      ? 'meets targets'
      : c.meetsTargets === false
        ? `misses ${missed.length ? missed.join(', ') : 'targets'}`
        : 'targets —';
  verdict.title = isValue(c.overallScore) ? `overall score ${fmtPercent(c.overallScore)}` : '';
}

function ratio(value, target) {
  return isValue(value) && isValue(target) && target > 0 ? value / target : Number.NaN;
}

/** Label set as `key=value` chips; the label text is data, so it stays text. */
function labelsCell(labels) {
  const td = cell('', 'labels');
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) td.append(document.createTextNode('(all)'));
  for (const [key, value] of entries) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    const k = document.createElement('span');
    k.className = 'k';
    k.textContent = key;
    const v = document.createElement('span');
    v.className = 'v';
    v.textContent = String(value);
    chip.append(k, '=', v);
    td.append(chip);
  }
  return td;
}

export function renderSeries(frame) {
  const rows = [...(frame.series ?? [])].sort((a, b) => (b.rps || 0) - (a.rps || 0));
  const tbody = body('series');
  if (rows.length === 0) return tbody.replaceChildren(emptyRow(7, 'no series recorded'));
  tbody.replaceChildren(
    ...rows.map((s) =>
      row(
        labelsCell(s.labels),
        cell(fmtNumber(s.requests), 'num'),
        cell(fmtNumber(s.rps), 'num'),
        cell(withUnit(fmtNumber(s.p50), 'ms'), 'num'),
        cell(withUnit(fmtNumber(s.p95), 'ms'), 'num'),
        cell(withUnit(fmtNumber(s.p99), 'ms'), 'num'),
        cell(fmtPercent(s.errorRate), 'num'),
      ),
    ),
  );
}

export function renderErrors(frame) {
  const entries = Object.entries(frame.errorsByType ?? {}).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, n]) => sum + (isValue(n) ? n : 0), 0);
  const tbody = body('errors');
  if (entries.length === 0) return tbody.replaceChildren(emptyRow(3, 'no errors'));
  tbody.replaceChildren(
    ...entries.map(([type, count]) =>
      row(
        cell(type, 'type'),
        cell(fmtNumber(count), 'num'),
        cell(fmtPercent(total > 0 ? count / total : Number.NaN), 'num'),
      ),
    ),
  );
}

export function renderAnomalies(anomalies, units) {
  const list = [...anomalies].sort((a, b) => b.start - a.start);
  const tbody = body('anomalies');
  if (list.length === 0) return tbody.replaceChildren(emptyRow(6, 'none detected'));
  tbody.replaceChildren(
    ...list.map((a) => {
      const { scale = 1, unit = '' } = units[a.series] ?? {};
      const show = (v) => withUnit(fmtNumber(isValue(v) ? v * scale : v), unit);
      const state = cell(isValue(a.end) ? `ended ${fmtTime(a.end)}` : 'ongoing', 'state');
      state.dataset.state = isValue(a.end) ? 'ended' : 'ongoing';
      return row(
        cell(fmtTime(a.start)),
        cell(`${a.series} ${a.direction === 'down' ? '▼' : '▲'}`, 'type'),
        cell(show(a.value), 'num'),
        cell(`${show(a.expectedLow)} – ${show(a.expectedHigh)}`, 'num'),
        cell(isValue(a.score) ? `${fmtNumber(a.score)} σ` : '—', 'num'),
        state,
      );
    }),
  );
}

/** A cluster primary's workers (its frames carry them; a monitor's do not, and the panel stays hidden). */
export function renderWorkers(frame) {
  const panel = document.getElementById('workers-panel');
  const list = Array.isArray(frame.workers) ? frame.workers : null;
  panel.hidden = list === null;
  if (list === null) return;
  const tbody = body('workers');
  if (list.length === 0) return tbody.replaceChildren(emptyRow(6, 'no worker has reported'));
  tbody.replaceChildren(
    ...list.map((w) => {
      const state = cell(String(w.state), 'state');
      // A late worker counts with its previous report; an exited one with its last, kept for good.
      state.dataset.state = w.state === 'live' ? 'ok' : w.state === 'late' ? 'near' : 'ended';
      return row(
        cell(`#${fmtNumber(w.id)}`),
        cell(isValue(w.pid) ? String(w.pid) : '—', 'num'),
        cell(fmtNumber(w.requests), 'num'),
        cell(fmtNumber(w.activeConnections), 'num'),
        cell(fmtTime(w.lastReportAt)),
        state,
      );
    }),
  );
}
