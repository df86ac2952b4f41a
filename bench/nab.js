// Runs the shipped anomaly detector, with its defaults, over a NAB-format corpus and writes
// NAB-format results for the scorer.
//
//   node --import tsx bench/nab.js [--data <dir>] [--out <dir>] [--score] [--tuning <json>]
//   node --import tsx bench/nab.js --loo [--data <dir>] [--out <dir>]
//
// Defaults: --data ../shared/data/nab (next to the project), --out <os tmpdir>/streamgauge-nab.
//
// <data>/data/<category>/<file>.csv (header timestamp,value) → <out>/<category>/<file>.csv with
// columns timestamp,value,anomaly_score: one row per input row, in order, score in [0, 1].
// --score also runs the NAB scorer (Python 3) at the detector's fixed alarm threshold.
//
// --loo chooses the detector's design constants by leave-one-out: every setting of a small grid
// is run over every file and scored per file (standard profile, fixed threshold); then each file
// (and each category) in turn is left out, the setting is chosen on the others by the rule below,
// and the left-out file is scored with it. The rule, applied to the files it may see: the best
// worst-case per-file score (ties: within one false alarm's cost); among those, NAB scores within
// one point (or, second rule, one standard error) of the best count as equal, and the fewest
// false alarms on generated series without anomalies (test/fixtures/generated.ts) decides. The
// left-out scores' mean, spread and worst case measure the whole procedure, choice included.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALARM_SCORE, AnomalyDetector, TUNING } from '../src/analysis/anomaly.js';
import { QUIET_FAMILIES } from '../test/fixtures/generated.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const args = {
    data: resolve(root, '../shared/data/nab'),
    out: join(tmpdir(), 'streamgauge-nab'),
    score: false,
    loo: false,
    tuning: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--data' || a === '--out') {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a directory`);
      args[a.slice(2)] = resolve(v);
    } else if (a === '--score') {
      args.score = true;
    } else if (a === '--loo') {
      args.loo = true;
    } else if (a === '--tuning') {
      // Design constants other than the shipped ones, as JSON (to measure one setting of the grid).
      args.tuning = JSON.parse(argv[++i] ?? 'null');
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node --import tsx bench/nab.js [--data <dir>] [--out <dir>] [--score | --loo]');
      process.exit(0);
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
  return args;
}

function listSeries(dataDir) {
  const base = join(dataDir, 'data');
  const files = [];
  for (const category of readdirSync(base).sort()) {
    const dir = join(base, category);
    if (!statSync(dir).isDirectory()) continue;
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith('.csv')) files.push({ category, name, path: join(dir, name) });
    }
  }
  return files;
}

function runFile(path, tuning) {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  const header = lines[0].trim().toLowerCase().split(',');
  const ti = header.indexOf('timestamp');
  const vi = header.indexOf('value');
  if (ti < 0 || vi < 0) throw new Error(`${path}: expected a timestamp,value header`);
  const detector = new AnomalyDetector({}, tuning);
  const out = ['timestamp,value,anomaly_score'];
  let alarms = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const cols = line.split(',');
    const raw = cols[vi];
    const value = Number(raw);
    // A row without a usable value still gets a row (NAB scores by position), scored 0.
    let score = 0;
    if (Number.isFinite(value)) {
      const r = detector.update(value);
      score = r.score;
      if (r.alarm) alarms++;
    }
    // Rounded down so that printing never lifts a score over the alarm threshold.
    out.push(`${cols[ti]},${raw},${(Math.floor(score * 1e6) / 1e6).toFixed(6)}`);
  }
  return { text: `${out.join('\n')}\n`, rows: out.length - 1, alarms };
}

const scorer = resolve(root, '../shared/tools/nab_score.py');

/** Runs the detector (default options, `tuning` constants) over every file into `outDir`. */
function runCorpus(series, outDir, tuning) {
  let rows = 0;
  let alarms = 0;
  const perFile = {};
  for (const s of series) {
    const r = runFile(s.path, tuning);
    const dir = join(outDir, s.category);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, s.name), r.text);
    rows += r.rows;
    alarms += r.alarms;
    perFile[`${s.category}/${s.name}`] = r.alarms;
  }
  return { rows, alarms, perFile };
}

function score(dataDir, outDir, perFile) {
  const cmd = ['--data', dataDir, '--results', outDir, '--threshold', String(ALARM_SCORE), '--quiet'];
  if (!perFile) cmd.push('--no-per-file');
  const r = spawnSync('python3', [scorer, ...cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`scorer failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

// ---- leave-one-out ---------------------------------------------------------------------------

// Small on purpose: four knobs, two values each (16 settings, under two minutes on this machine).
const GRID = [];
for (const minSurpriseSd of [0.06, 0.09]) {
  for (const spikeTailFraction of [0.02, 0.04]) {
    for (const noveltyPersistence of [1, 2]) {
      for (const levelClip of [0, 2]) GRID.push({ minSurpriseSd, spikeTailFraction, noveltyPersistence, levelClip });
    }
  }
}

/** NAB-normalised standard score of a set of files, from the scorer's per-file results. */
function normalised(files, keys) {
  let raw = 0;
  let nul = 0;
  let perfect = 0;
  for (const k of keys) {
    const f = files[k];
    raw += f.raw_score;
    nul -= f.windows - f.windows_in_probation;
    perfect += f.windows;
  }
  return perfect === nul ? Number.NaN : (100 * (raw - nul)) / (perfect - nul);
}

function summary(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  return { n, mean, sd, worst: Math.min(...xs), best: Math.max(...xs) };
}

// One false alarm far from any window costs 0.11 of a window, 5.5 points of a one-window file's
// score: worst cases closer than that are ties.
const TIE = 5.5;

/**
 * The rule: best worst-case per-file score over `keys`; among ties (within TIE), the settings
 * whose NAB score over `keys` is within `margin` of the best: 'point' (1 point) or 'se' (one
 * standard error of the mean per-file score: a difference those files cannot tell from chance);
 * among those, the fewest alarms on generated series without anomalies.
 */
function choose(results, keys, margin = 'point') {
  const scored = keys.filter((k) => results[0].files[k].windows > 0);
  const rows = results.map((r, i) => {
    const per = scored.map((k) => normalised(r.files, [k]));
    const s = summary(per);
    return { i, worst: s.worst, se: s.sd / Math.sqrt(s.n), all: normalised(r.files, keys), quiet: r.quiet };
  });
  const topWorst = Math.max(...rows.map((r) => r.worst));
  const tied = rows.filter((r) => r.worst >= topWorst - TIE);
  const top = tied.reduce((a, b) => (b.all > a.all ? b : a));
  const close = tied.filter((r) => r.all >= top.all - (margin === 'se' ? top.se : 1));
  close.sort((a, b) => a.quiet - b.quiet || b.all - a.all);
  return close[0].i;
}

/** Alarms per 10 000 points on generated series without anomalies (3 seeds of each family). */
function quietAlarms(tuning) {
  let alarms = 0;
  let points = 0;
  for (const generate of Object.values(QUIET_FAMILIES)) {
    for (let seed = 1; seed <= 3; seed++) {
      const d = new AnomalyDetector({}, tuning);
      for (const v of generate(10_000, seed)) if (d.update(v).alarm) alarms++;
      points += 10_000;
    }
  }
  return (alarms * 10_000) / points;
}

function leaveOneOut(series, args) {
  const results = [];
  const t0 = performance.now();
  for (let i = 0; i < GRID.length; i++) {
    const dir = join(args.out, `loo-${i}`);
    const run = runCorpus(series, dir, GRID[i]);
    const scored = score(args.data, dir, true);
    const files = {};
    for (const [k, v] of Object.entries(scored.per_file)) files[k] = v.standard;
    results.push({ tuning: GRID[i], files, alarms: run.perFile, quiet: quietAlarms(GRID[i]) });
  }
  const keys = Object.keys(results[0].files).sort();
  const fmt = (t) => JSON.stringify(t);
  console.log(
    `${GRID.length} settings × ${keys.length} files run and scored in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log(
    '\nsetting                                                               in-sample  per-file mean / worst  generated: alarms/10k',
  );
  for (const r of results) {
    const per = keys.filter((k) => r.files[k].windows > 0).map((k) => normalised(r.files, [k]));
    const s = summary(per);
    console.log(
      `${fmt(r.tuning).padEnd(70)} ${normalised(r.files, keys).toFixed(2).padStart(8)}  ${s.mean.toFixed(1).padStart(5)} / ${s.worst.toFixed(1).padStart(6)}  ${r.quiet.toFixed(2).padStart(6)}`,
    );
  }
  for (const margin of ['point', 'se']) {
    console.log(
      `\nrule: NAB scores within ${margin === 'se' ? 'one standard error' : 'one point'} of the best are equal`,
    );
    // Leave one file out.
    const leftOut = [];
    const windowless = [];
    const picks = new Map();
    for (const k of keys) {
      const i = choose(
        results,
        keys.filter((x) => x !== k),
        margin,
      );
      picks.set(i, (picks.get(i) ?? 0) + 1);
      if (results[i].files[k].windows > 0) leftOut.push(normalised(results[i].files, [k]));
      else windowless.push(results[i].alarms[k]);
    }
    const s = summary(leftOut);
    console.log(
      `leave one file out (${keys.length} folds): left-out files with windows (${s.n}): mean ${s.mean.toFixed(1)}, sd ${s.sd.toFixed(1)}, worst ${s.worst.toFixed(1)}, best ${s.best.toFixed(1)}`,
    );
    console.log(`  alarms on left-out files without windows: ${windowless.join(', ')}`);
    console.log(`  settings chosen: ${[...picks].map(([i, n]) => `${fmt(GRID[i])} ×${n}`).join('; ')}`);
    // Leave one category out.
    const categories = [...new Set(keys.map((k) => k.split('/')[0]))];
    for (const c of categories) {
      const rest = keys.filter((k) => !k.startsWith(`${c}/`));
      const mine = keys.filter((k) => k.startsWith(`${c}/`));
      const i = choose(results, rest, margin);
      const alarms = mine.reduce((a, k) => a + results[i].alarms[k], 0);
      const v = normalised(results[i].files, mine);
      console.log(
        `leave out ${c}: chosen ${fmt(GRID[i])}, left-out score ${Number.isNaN(v) ? '(no windows)' : v.toFixed(2)}, alarms ${alarms}`,
      );
    }
  }
  const all = choose(results, keys);
  console.log(
    `\nchosen on all files (one-point rule): ${fmt(GRID[all])} (shipped: ${fmt(TUNING)}), in-sample ${normalised(results[all].files, keys).toFixed(2)}`,
  );
}

const args = parseArgs(process.argv.slice(2));
const series = listSeries(args.data);
if (series.length === 0) throw new Error(`no <category>/<file>.csv under ${join(args.data, 'data')}`);
if (args.loo) {
  leaveOneOut(series, args);
  process.exit(0);
}
const t0 = performance.now();
const { rows, alarms } = runCorpus(series, args.out, args.tuning);
const ms = performance.now() - t0;
console.log(
  `${series.length} files, ${rows} rows, ${alarms} alarms in ${ms.toFixed(0)} ms (${((ms * 1e6) / rows).toFixed(0)} ns/row incl. I/O)`,
);
console.log(`results: ${args.out}`);
console.log(`alarm threshold: ${ALARM_SCORE}`);

if (args.score) {
  const summary = score(args.data, args.out, false);
  for (const [profile, e] of Object.entries(summary.profiles)) {
    const c = e.counts;
    console.log(
      `${profile.padEnd(20)} ${e.normalized_score.toFixed(2).padStart(7)}  (windows detected ${c.tp}, missed ${c.fn}, false-positive rows ${c.fp})`,
    );
  }
} else {
  console.log(
    `score with: python3 ${scorer} --data ${args.data} --results ${args.out} --threshold ${ALARM_SCORE}   (or add --score)`,
  );
}
