#!/usr/bin/env node
// The build: the wasm core (asc), the ESM build (tsc) and the CommonJS build (tsc over a copy of
// src/ marked CommonJS, with src/cjs/ in place of its ESM-only modules). Each step runs only when
// one of its inputs is newer than its last successful run (--force: every step), so `npm start`
// and `npm test` start at once when nothing changed.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const bin = (name) => join(root, 'node_modules', '.bin', name);

/** Newest modification time (ms) of `paths` and everything under them. */
function newest(paths) {
  let t = 0;
  for (const p of paths.map((x) => join(root, x))) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    // A folder's own time changes when a file is added, removed or renamed in it.
    t = Math.max(t, st.mtimeMs);
    if (st.isDirectory()) t = Math.max(t, newest(readdirSync(p).map((n) => join(p, n).slice(root.length + 1))));
  }
  return t;
}

function step(name, inputs, stamp, run) {
  const stampPath = join(root, stamp);
  if (!force && existsSync(stampPath) && statSync(stampPath).mtimeMs >= newest(inputs)) return false;
  const started = Date.now();
  run();
  mkdirSync(dirname(stampPath), { recursive: true });
  writeFileSync(stampPath, `${new Date().toISOString()}\n`);
  console.log(`build: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return true;
}

function exec(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${[cmd, ...args].join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

const common = ['package.json', 'tsconfig.json'];
let built = false;
built =
  step('wasm core', ['assembly', 'asconfig.json', 'package.json'], 'build/.stamp-wasm', () =>
    exec(bin('asc'), ['assembly/index.ts', '--config', 'asconfig.json', '--target', 'release']),
  ) || built;
// Each output folder is emptied before it is rebuilt: a module moved or deleted in src/ must not
// live on in dist/, where a stale import of it would still resolve. (Emptying dist/ takes the
// CommonJS build's stamp with it, so that build follows.)
built =
  step('ESM', ['src', ...common], 'dist/.stamp-esm', () => {
    rmSync(join(root, 'dist'), { recursive: true, force: true });
    exec(bin('tsc'), ['-p', 'tsconfig.json']);
  }) || built;
built =
  step('CommonJS', ['src', ...common, 'tsconfig.cjs.json'], 'dist/cjs/.stamp-cjs', () => {
    const copy = join(root, 'build', 'cjs-src');
    rmSync(copy, { recursive: true, force: true });
    rmSync(join(root, 'dist', 'cjs'), { recursive: true, force: true });
    cpSync(join(root, 'src'), copy, { recursive: true, filter: (p) => !p.startsWith(join(root, 'src', 'cjs')) });
    cpSync(join(root, 'src', 'cjs'), copy, { recursive: true });
    writeFileSync(join(copy, 'package.json'), '{ "type": "commonjs" }\n');
    exec(bin('tsc'), ['-p', 'tsconfig.cjs.json']);
    writeFileSync(join(root, 'dist', 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
  }) || built;
if (!built) console.log('build: up to date');
