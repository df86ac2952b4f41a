// Runs every benchmark suite in bench/ (each *.js file but this one and the tools listed in
// NOT_SUITES), one after another, each in its own process, and prints their figures.
//
//   node bench/run.js                 every suite, full runs
//   node bench/run.js --quick         every suite, short runs (a check that they work)
//   node bench/run.js record tick     only these suites
//   node bench/run.js --json          one JSON object: { machine, suites: { name: figures } }
//
// Each suite takes --json (and prints one JSON object of named figures) and --quick. The suites
// import ../dist, so build first (`npm run build`; `npm run bench` does).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Scripts in bench/ that are not suites: tools (they take other arguments) and the suites' shared module. */
const NOT_SUITES = new Set(['run.js', 'nab.js', 'nab-generated.js', 'common.js', 'harness.js']);

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--')).map((a) => a.replace(/\.js$/, ''));

const all = readdirSync(here)
  .filter((f) => f.endsWith('.js') && !NOT_SUITES.has(f) && !f.startsWith('_'))
  .map((f) => basename(f, '.js'))
  .sort();
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`no such suite: ${unknown.join(', ')} (suites: ${all.join(', ')})`);
  process.exit(2);
}
const suites = wanted.length > 0 ? all.filter((s) => wanted.includes(s)) : all;

function runSuite(name) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, `${name}.js`), '--json', ...(quick ? ['--quick'] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
      if (!json) process.stderr.write(d);
    });
    child.on('close', (code, signal) => {
      if (code !== 0)
        return resolve({
          ok: false,
          error: `exited with ${signal ?? code}${err ? `: ${err.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
        });
      const figures = lastJsonObject(out);
      if (figures === undefined) resolve({ ok: false, error: `did not print a JSON object: ${out.slice(0, 200)}` });
      else resolve({ ok: true, figures });
    });
  });
}

/** The suite's JSON object: all of its output, or (after other output) its last line, or its last block from a line starting with '{'. */
function lastJsonObject(out) {
  const text = out.trim();
  const candidates = [text, text.slice(text.lastIndexOf('\n') + 1), text.slice(text.lastIndexOf('\n{') + 1)];
  for (const c of candidates) {
    try {
      const v = JSON.parse(c);
      if (v !== null && typeof v === 'object') return v;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

function flatten(value, prefix = '', out = []) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

function show(v) {
  if (typeof v === 'boolean') return v ? 'PASS' : 'MISS';
  if (typeof v === 'number')
    return Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(Number.isInteger(v) ? 0 : 1) : v.toPrecision(3);
  return Array.isArray(v) ? JSON.stringify(v) : String(v);
}

const cpus = os.cpus();
const machine = {
  cpu: cpus[0]?.model.trim() ?? 'unknown',
  cores: cpus.length,
  node: process.version,
  date: new Date().toISOString(),
};
const results = {};
let failed = 0;
for (const name of suites) {
  if (!json) console.log(`\n=== ${name}${quick ? ' (quick)' : ''} ===`);
  const r = await runSuite(name);
  if (!r.ok) {
    failed++;
    results[name] = { error: r.error };
    if (!json) console.log(`FAILED: ${r.error}`);
    continue;
  }
  results[name] = r.figures;
  if (!json) {
    const rows = flatten(r.figures).filter(([k]) => !k.startsWith('machine.') && k !== 'suite' && k !== 'quick');
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${show(v)}`);
  }
}
if (json) process.stdout.write(`${JSON.stringify({ machine, quick, suites: results })}\n`);
else
  console.log(
    `\n${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.date}${failed ? `; ${failed} suite(s) failed` : ''}`,
  );
process.exitCode = failed > 0 ? 1 : 0;
