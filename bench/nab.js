// Runs the shipped anomaly detector, with its defaults, over a NAB-format corpus and writes
// NAB-format results for the scorer.
//
//   node --import tsx bench/nab.js [--data <dir>] [--out <dir>] [--score]
//
// Defaults: --data ../shared/data/nab (next to the project), --out <os tmpdir>/streamgauge-nab.
//
// <data>/data/<category>/<file>.csv (header timestamp,value) → <out>/<category>/<file>.csv with
// columns timestamp,value,anomaly_score: one row per input row, in order, score in [0, 1].
// --score also runs the NAB scorer (Python 3) at the detector's fixed alarm threshold.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALARM_SCORE, AnomalyDetector } from '../src/anomaly.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const args = { data: resolve(root, '../shared/data/nab'), out: join(tmpdir(), 'streamgauge-nab'), score: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--data' || a === '--out') {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a directory`);
      args[a.slice(2)] = resolve(v);
    } else if (a === '--score') {
      args.score = true;
    } else if (a === '--help' || a === '-h') {
      console.log('usage: node --import tsx bench/nab.js [--data <dir>] [--out <dir>] [--score]');
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

function runFile(path) {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  const header = lines[0].trim().toLowerCase().split(',');
  const ti = header.indexOf('timestamp');
  const vi = header.indexOf('value');
  if (ti < 0 || vi < 0) throw new Error(`${path}: expected a timestamp,value header`);
  const detector = new AnomalyDetector();
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

const args = parseArgs(process.argv.slice(2));
const series = listSeries(args.data);
if (series.length === 0) throw new Error(`no <category>/<file>.csv under ${join(args.data, 'data')}`);
const t0 = performance.now();
let rows = 0;
let alarms = 0;
for (const s of series) {
  const r = runFile(s.path);
  const dir = join(args.out, s.category);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, s.name), r.text);
  rows += r.rows;
  alarms += r.alarms;
}
const ms = performance.now() - t0;
console.log(`${series.length} files, ${rows} rows, ${alarms} alarms in ${ms.toFixed(0)} ms (${((ms * 1e6) / rows).toFixed(0)} ns/row incl. I/O)`);
console.log(`results: ${args.out}`);
console.log(`alarm threshold: ${ALARM_SCORE}`);

const scorer = resolve(root, '../shared/tools/nab_score.py');
const cmd = ['python3', scorer, '--data', args.data, '--results', args.out, '--threshold', String(ALARM_SCORE), '--no-per-file', '--quiet'];
if (args.score) {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scorer failed: ${r.stderr || r.error}`);
  const summary = JSON.parse(r.stdout);
  for (const [profile, e] of Object.entries(summary.profiles)) {
    const c = e.counts;
    console.log(`${profile.padEnd(20)} ${e.normalized_score.toFixed(2).padStart(7)}  (windows detected ${c.tp}, missed ${c.fn}, false-positive rows ${c.fp})`);
  }
} else {
  console.log(`score with: ${cmd.slice(0, -2).join(' ')}   (or add --score)`);
}
