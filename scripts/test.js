#!/usr/bin/env node
// The two test tiers, listed here and nowhere else. `unit` is what to run on every change: it
// needs nothing but this process and its worker threads. `e2e` drives real things: a Prometheus
// server, Chromium, gRPC servers and clients over loopback, the demo, a simulated day, forked
// cluster workers, `npm pack`. `node scripts/test.js` runs both, unit first; each tier is one uvu
// run that prints its own "Total:/Passed:" lines.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The end-to-end test files (names without `.test.ts`); every other `test/*.test.ts` is a unit test. */
const E2E = [
  'cluster',
  'cluster-dashboard',
  'cluster-prometheus',
  'dashboard-browser',
  'dashboard-monitor',
  'day',
  'demo',
  'grpc',
  'package',
  'prometheus-e2e',
  'prometheus-exemplars',
  'prometheus-hosts',
  'prometheus-server',
  'promtool',
  'rules',
];

const e2ePattern = `^(${E2E.join('|')})\\.test\\.ts$`;
const uvu = join(root, 'node_modules', 'uvu', 'bin.js');

/** Runs one tier; returns uvu's exit status. */
function tier(name) {
  const args = name === 'e2e' ? ['test', e2ePattern] : ['test', '\\.test\\.ts$', '--ignore', e2ePattern];
  console.log(`\n# ${name} tests`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', uvu, ...args], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

const which = process.argv[2] ?? 'all';
if (!['unit', 'e2e', 'all'].includes(which)) {
  console.error(`usage: node scripts/test.js [unit|e2e|all] (got ${which})`);
  process.exit(2);
}
// Both tiers run even when the first fails, so one run reports every failure.
const statuses = (which === 'all' ? ['unit', 'e2e'] : [which]).map(tier);
process.exit(statuses.find((s) => s !== 0) ?? 0);
