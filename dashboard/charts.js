// The chart grid: one small uPlot per figure, time-synced cursors, target lines and anomaly bands
// drawn on the canvas in a draw hook.

import { fmtCompact, fmtNumber, fmtTime, isValue, MB, withUnit } from './format.js';

const C = {
  blue: '#58a6ff',
  green: '#3fb950',
  amber: '#d29922',
  red: '#f85149',
  purple: '#bc8cff',
  teal: '#39c5cf',
  pink: '#f778ba',
  orange: '#ff9b50',
  axis: '#8b949e',
  panel: 'rgba(22, 27, 34, 0.85)',
  grid: 'rgba(240, 246, 252, 0.07)',
};

// `scale` turns the monitor's unit into the displayed one; `max` fixes the top of the y axis.
export const CHARTS = [
  {
    id: 'rps',
    title: 'Throughput',
    unit: '/s',
    wide: true,
    target: (f) => f.targets?.targetRps,
    series: [{ field: 'rps', label: 'rps', color: C.blue }],
  },
  {
    id: 'latency',
    title: 'Latency',
    unit: 'ms',
    wide: true,
    target: (f) => f.targets?.targetP95LatencyMs,
    series: [
      { field: 'p50', label: 'p50', color: C.green },
      { field: 'p95', label: 'p95', color: C.amber },
      { field: 'p99', label: 'p99', color: C.red },
    ],
  },
  {
    id: 'errors',
    title: 'Error rate',
    unit: '%',
    scale: 100,
    series: [{ field: 'errorRate', label: 'errors', color: C.red }],
  },
  {
    id: 'connections',
    title: 'Active connections',
    unit: '',
    series: [{ field: 'activeConnections', label: 'open', color: C.teal }],
  },
  {
    id: 'memory',
    title: 'Memory',
    unit: 'MB',
    scale: 1 / MB,
    target: (f) => f.targets?.targetMemoryMb,
    series: [{ field: 'memoryBytes', label: 'memory', color: C.purple }],
  },
  {
    id: 'eventloop',
    title: 'Event-loop delay',
    unit: 'ms',
    series: [{ field: 'eventLoopDelayMs', label: 'delay', color: C.orange }],
  },
  {
    id: 'workers',
    title: 'Worker utilisation',
    unit: '%',
    scale: 100,
    max: 100,
    series: [{ field: 'workerUtilization', label: 'busy', color: C.green }],
  },
  { id: 'queue', title: 'Queue depth', unit: '', series: [{ field: 'queueDepth', label: 'queued', color: C.amber }] },
  {
    id: 'cache',
    title: 'Cache hit ratio',
    unit: '%',
    scale: 100,
    max: 100,
    series: [{ field: 'cacheHitRatio', label: 'hits', color: C.blue }],
  },
  {
    id: 'backpressure',
    title: 'Backpressure',
    unit: '/s',
    series: [{ field: 'backpressure', label: 'events', color: C.pink }],
  },
];

const HEIGHT = 150;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function alpha(hex, a) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

const S = 1000;
const M = 60 * S;
const H = 60 * M;
// uPlot's own steps jump from 1 to 5 minutes, which leaves a small 5-minute chart with one tick.
const TIME_INCRS = [
  S,
  2 * S,
  5 * S,
  10 * S,
  15 * S,
  30 * S,
  M,
  2 * M,
  5 * M,
  10 * M,
  15 * M,
  20 * M,
  30 * M,
  H,
  2 * H,
  3 * H,
  4 * H,
  6 * H,
  12 * H,
  24 * H,
];

const CLOCK = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });
const CLOCK_S = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/** Axis times in 24-hour clock; seconds only when ticks are closer than a minute. */
function fmtClock(ms, seconds) {
  return (seconds ? CLOCK_S : CLOCK).format(ms);
}

function scaled(v, def) {
  return isValue(v) ? v * (def.scale ?? 1) : null;
}

/** Targets come in the displayed unit already (rps, ms, MB), so they are not scaled. */
function displayTarget(def, view) {
  return def.target?.(view.frame ?? {});
}

/** A chart card: header (title, latest values) and a uPlot body. `view` is shared page state. */
class Chart {
  constructor(def, host, view) {
    this.def = def;
    this.view = view;
    this.card = el('article', def.wide ? 'card wide' : 'card');
    this.card.dataset.chart = def.id;
    const head = el('header');
    head.append(el('h3', '', def.title));
    this.values = el('div', 'values');
    this.valueNodes = def.series.map((s) => {
      const item = el('span', 'value');
      item.style.setProperty('--c', s.color);
      const name = el('span', 'name', s.label);
      const figure = el('span', 'figure', '—');
      item.append(name, figure);
      this.values.append(item);
      return figure;
    });
    this.hoverTime = el('span', 'hover-time');
    head.append(this.hoverTime, this.values);
    this.body = el('div', 'plot');
    this.card.append(head, this.body);
    host.append(this.card);
    this.data = [[], ...def.series.map(() => [])];
    this.plot = new uPlot(this.options(this.body.clientWidth || 300), this.data, this.body);
    new ResizeObserver(() => {
      const width = this.body.clientWidth;
      if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
    }).observe(this.body);
  }

  /** @returns {import('uplot').Options} */
  options(width) {
    const def = this.def;
    const view = this.view;
    const unit = def.unit;
    return {
      width,
      height: HEIGHT,
      ms: 1,
      legend: { show: false },
      padding: [8, 18, 0, 0], // room on the right for the last time label
      // Synced vertical cursor across charts; no horizontal line (it would mean nothing on the others).
      cursor: { sync: { key: 'streamgauge' }, y: false, drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: () => [view.windowStart, view.windowEnd] },
        y: {
          range: (_u, _min, max) => {
            if (def.max) return [0, def.max];
            const target = displayTarget(def, view);
            const top = Math.max(isValue(max) ? max : 0, isValue(target) ? target : 0);
            return [0, top > 0 ? top * 1.12 : 1];
          },
        },
      },
      axes: [
        {
          stroke: C.axis,
          grid: { stroke: C.grid, width: 1 },
          ticks: { stroke: C.grid, size: 4 },
          font: '11px system-ui, sans-serif',
          size: 24,
          incrs: TIME_INCRS,
          // Wide charts get roomier ticks, so labels never need seconds at 5 minutes; a span short
          // enough for seconds (a young monitor) leaves room for the longer labels.
          space: (_u, _axis, min, max, dim) =>
            dim > 400 ? 80 : (TIME_INCRS.find((i) => i >= ((max - min) * 44) / dim) ?? H) < M ? 64 : 44,
          values: (_u, splits) => splits.map((v) => fmtClock(v, splits[1] - splits[0] < 60_000)),
        },
        {
          stroke: C.axis,
          grid: { stroke: C.grid, width: 1 },
          ticks: { show: false },
          font: '11px system-ui, sans-serif',
          space: 28,
          gap: 4,
          values: (_u, splits) => splits.map((v) => withUnit(fmtCompact(v), unit)),
          size: (_u, values) => (values ? Math.max(...values.map((v) => v.length)) * 6.5 + 12 : 40),
        },
      ],
      series: [
        {},
        ...def.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          fill: def.series.length === 1 ? alpha(s.color, 0.1) : undefined,
          spanGaps: false,
          points: { show: false },
        })),
      ],
      hooks: {
        draw: [(u) => this.drawOverlays(u)],
        setCursor: [(u) => this.showValues(u.cursor.idx)],
      },
    };
  }

  /** Shows the values under the cursor, or the latest ones when the cursor is away. */
  showValues(idx) {
    const last = this.data[0].length - 1;
    const i = idx ?? last;
    this.def.series.forEach((_s, k) => {
      const v = i >= 0 ? this.data[k + 1][i] : null;
      this.valueNodes[k].textContent = withUnit(fmtNumber(v), this.def.unit);
    });
    this.hoverTime.textContent = idx == null ? '' : fmtTime(this.data[0][idx]);
  }

  setData(columns) {
    const def = this.def;
    this.data = [columns.t, ...def.series.map((s) => (columns.fields[s.field] ?? []).map((v) => scaled(v, def)))];
    this.plot.setData(this.data);
    this.card.dataset.points = String(columns.t.length);
    this.showValues(this.plot.cursor.idx);
  }

  drawOverlays(u) {
    const { ctx, bbox } = u;
    const def = this.def;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();

    const target = displayTarget(def, this.view);
    if (isValue(target)) {
      const y = Math.round(u.valToPos(target, 'y', true)) + 0.5;
      ctx.strokeStyle = alpha(C.axis, 0.8);
      ctx.lineWidth = dpr;
      ctx.setLineDash([5 * dpr, 4 * dpr]);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      // The label sits on a patch of panel colour so a line running through it stays readable.
      ctx.font = `${10 * dpr}px system-ui, sans-serif`;
      const right = bbox.left + bbox.width - 4 * dpr;
      const width = ctx.measureText('target').width;
      ctx.fillStyle = C.panel;
      ctx.fillRect(right - width - 3 * dpr, y - 13 * dpr, width + 6 * dpr, 11 * dpr);
      ctx.fillStyle = C.axis;
      ctx.textAlign = 'right';
      ctx.fillText('target', right, y - 4 * dpr);
    }

    for (const a of this.view.anomalies) {
      const s = def.series.find((x) => x.field === a.series);
      if (!s || !isValue(a.start)) continue;
      const end = isValue(a.end) ? a.end : this.view.windowEnd;
      if (end < u.scales.x.min || a.start > u.scales.x.max) continue;
      const x0 = u.valToPos(a.start, 'x', true);
      const x1 = Math.max(u.valToPos(end, 'x', true), x0 + 4 * dpr);
      ctx.fillStyle = alpha(C.red, 0.14);
      ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
      // The expected band, so the eye sees how far outside it the value went.
      const lo = scaled(a.expectedLow, def);
      const hi = scaled(a.expectedHigh, def);
      if (isValue(lo) && isValue(hi)) {
        const yHi = u.valToPos(hi, 'y', true);
        const yLo = u.valToPos(lo, 'y', true);
        ctx.strokeStyle = alpha(C.red, 0.55);
        ctx.lineWidth = dpr;
        ctx.setLineDash([3 * dpr, 3 * dpr]);
        ctx.strokeRect(x0, yHi, x1 - x0, yLo - yHi);
        ctx.setLineDash([]);
      }
      const v = scaled(a.value, def);
      if (isValue(v)) marker(ctx, (x0 + x1) / 2, u.valToPos(v, 'y', true), a.direction, s.color, dpr);
    }
    ctx.restore();
  }
}

function marker(ctx, x, y, direction, color, dpr) {
  const r = 5 * dpr;
  const up = direction !== 'down';
  ctx.fillStyle = C.red;
  ctx.strokeStyle = color;
  ctx.lineWidth = dpr;
  ctx.beginPath();
  ctx.moveTo(x, up ? y - r : y + r);
  ctx.lineTo(x - r, up ? y + r * 0.6 : y - r * 0.6);
  ctx.lineTo(x + r, up ? y + r * 0.6 : y - r * 0.6);
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
}

/** Builds every chart into `host`; returns an object that redraws them all from columns. */
export function createCharts(host, view) {
  const charts = CHARTS.map((def) => new Chart(def, host, view));
  return {
    setData(columns) {
      for (const chart of charts) chart.setData(columns);
    },
    redraw() {
      for (const chart of charts) chart.plot.redraw(false, true);
    },
  };
}
