// Shared by the benchmark suites in bench/: their flags, the machine description and the
// statistics and table printing they report with. Not a suite itself (bench/run.js skips it).
import os from 'node:os';

/** The flags every suite takes: --json (one JSON object on stdout) and --quick (a short run). */
export function parseArgs(argv = process.argv) {
  return { json: argv.includes('--json'), quick: argv.includes('--quick') };
}

/** A xorshift32 generator of uniform draws in [0, 1) from `seed`: the same seed, the same values. */
export function xorshift(seed) {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The nearest-rank q-quantile (rank ⌈q·n⌉, at least 1) of values in any order. */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

export function printTable(head, rows) {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells) => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Prints `name value` lines, the names padded to 34 columns and the values with two decimals. */
export function printRatios(ratios) {
  for (const [name, v] of Object.entries(ratios)) console.log(`${name.padEnd(34)} ${v.toFixed(2)}`);
}

/** Prints one PASS or MISS line per bar. */
export function printBars(bars) {
  for (const [name, ok] of Object.entries(bars)) console.log(`${ok ? 'PASS' : 'MISS'}  ${name}`);
}

/** Resolves when the worker posts the message `what` (rejects on its error). */
export function workerSaid(worker, what) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m === what) {
        worker.off('message', on);
        resolve();
      }
    };
    worker.on('message', on);
    worker.once('error', reject);
  });
}
