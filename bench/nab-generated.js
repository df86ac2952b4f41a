// Writes the generated, labelled development set (test/fixtures/labelled.ts) in NAB's layout, so
// that bench/nab.js and the NAB scorer run over it as over the open subset:
//
//   node --import tsx bench/nab-generated.js [--out <dir>] [--seed <n>]   (default <os tmpdir>/streamgauge-nab-generated)
//   npm run nab -- --data <dir> --score
//
// <dir>/data/<category>/<file>.csv (timestamp,value; 5-minute steps from Monday 2026-01-05) and
// <dir>/windows.json (NAB's combined_windows.json shape: windows by NAB's own rule, around each
// labelled anomaly). --seed draws the same kinds of series afresh: a replicate of the set, to tell
// a change's gain from the luck of one draw (the development set is the default seed).

import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LABELLED, labelled, nabWindows, SEED } from '../test/fixtures/labelled.ts';

const argv = process.argv.slice(2);
let out = join(tmpdir(), 'streamgauge-nab-generated');
let seed = SEED;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--out' && argv[i + 1]) out = resolve(argv[++i]);
  else if (argv[i] === '--seed' && Number.isSafeInteger(Number(argv[i + 1]))) seed = Number(argv[++i]);
  else {
    console.error('usage: node --import tsx bench/nab-generated.js [--out <dir>] [--seed <n>]');
    process.exit(2);
  }
}

const START = Date.UTC(2026, 0, 5);
const STEP = 5 * 60_000;
const stamp = (i) => new Date(START + i * STEP).toISOString().slice(0, 19).replace('T', ' ');

const windows = {};
let files = 0;
let rows = 0;
for (const [category, makers] of Object.entries(LABELLED)) {
  mkdirSync(join(out, 'data', category), { recursive: true });
  for (const name of Object.keys(makers)) {
    const { values, anomalies } = labelled(category, name, seed);
    const lines = ['timestamp,value'];
    // Six significant digits are plenty and keep the files small.
    for (let i = 0; i < values.length; i++) lines.push(`${stamp(i)},${Number(values[i].toPrecision(6))}`);
    writeFileSync(join(out, 'data', category, `${name}.csv`), `${lines.join('\n')}\n`);
    windows[`${category}/${name}.csv`] = nabWindows(values.length, anomalies).map(([a, b]) => [
      `${stamp(a)}.000000`,
      `${stamp(b)}.000000`,
    ]);
    files++;
    rows += values.length;
  }
}
writeFileSync(join(out, 'windows.json'), `${JSON.stringify(windows, null, 2)}\n`);
const labelledWindows = Object.values(windows).reduce((a, w) => a + w.length, 0);
console.log(`${files} files, ${labelledWindows} windows, ${rows} rows: ${out}`);
