// Number and time formatting for the page. Missing data (null, NaN) shows as a dash, never as 0.

const DASH = '—';

export function isValue(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A figure with a sensible number of digits for its size: 1 843, 17.9, 0.42, 0.0031. */
export function fmtNumber(v) {
  if (!isValue(v)) return DASH;
  const a = Math.abs(v);
  if (a >= 1000 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 99.95) return v.toFixed(0); // 99.96 would otherwise print as "100.0"
  if (a >= 10) return v.toFixed(1);
  if (a >= 1 || a === 0) return v.toFixed(2).replace(/\.?0+$/, '');
  return v.toPrecision(2);
}

/** Short figures for axes: 2.5k, 1.2M. */
export function fmtCompact(v) {
  if (!isValue(v)) return '';
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toPrecision(3));
}

export function withUnit(text, unit) {
  if (text === DASH || !unit) return text;
  return unit === '%' || unit === '/s' ? `${text}${unit === '/s' ? ' /s' : ' %'}` : `${text} ${unit}`;
}

/** A ratio (0..1) as a percentage. */
export function fmtPercent(ratio) {
  return isValue(ratio) ? withUnit(fmtNumber(ratio * 100), '%') : DASH;
}

export function fmtTime(ms) {
  if (!isValue(ms)) return DASH;
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

export function fmtDuration(seconds) {
  if (!isValue(seconds)) return DASH;
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

export const MB = 1024 * 1024;
