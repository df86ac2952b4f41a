#!/usr/bin/env node
// The build: the wasm core (asc), the ESM build (tsc, then bundled into one file) and the CommonJS build (tsc over a copy of
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
// What `import 'streamgauge'` loads: the ESM build in one file. Node's ESM loader costs about
// 0.13 MB of memory per module it loads: the 52 modules of dist/ took 11.8 MB of RSS to import,
// the same code in one file 5.2 MB. It sits two levels below the package root, as dist/core/
// does, so the paths found from its URL (the wasm core, the dashboard, dependencies) hold.
built =
  step('ESM bundle', ['src', ...common], 'dist/bundle/.stamp-bundle', () =>
    exec(bin('esbuild'), [
      'dist/index.js',
      '--bundle',
      '--format=esm',
      '--platform=node',
      '--target=node20',
      '--packages=external',
      '--log-level=warning',
      '--outfile=dist/bundle/streamgauge.js',
    ]),
  ) || built;
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
// The same for `require('streamgauge')`: 52 CommonJS modules took 12.9 MB of RSS to load, one file
// 8.3 MB. Two levels below dist/cjs/, like dist/cjs/core/, for its module-url.
built =
  step('CommonJS bundle', ['src', ...common, 'tsconfig.cjs.json'], 'dist/cjs/bundle/.stamp-bundle', () =>
    exec(bin('esbuild'), [
      'dist/cjs/index.js',
      '--bundle',
      '--format=cjs',
      '--platform=node',
      '--target=node20',
      '--packages=external',
      '--log-level=warning',
      '--outfile=dist/cjs/bundle/streamgauge.js',
    ]),
  ) || built;
if (!built) console.log('build: up to date');
