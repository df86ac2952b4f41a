// Monitors created and closed in one synchronous stretch (test suites, serverless handlers,
// hot-reloading servers) are not kept until it ends: nothing module-level refers to a monitor, so
// a closed monitor that is no longer referenced is collected at the next collection, inside the
// loop. Measured in a child process run with --expose-gc.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

test('monitors created and closed in one synchronous loop are collected inside it, and all finalised after', () => {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(ROOT, 'test/fixtures/churn-child.ts')],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.is(r.status, 0, r.stderr);
  const { n, perMonitor, duringLoop, finalized } = JSON.parse(r.stdout);
  // A kept monitor costs megabytes of shared memory: were the loop's monitors kept until it
  // returned, it would hold n times that.
  assert.ok(perMonitor > 1e6, `a kept monitor costs ${perMonitor} bytes`);
  assert.ok(
    duringLoop < (n * perMonitor) / 4,
    `the loop held ${(duringLoop / 1e6).toFixed(1)} MB; ${n} kept monitors would be ${((n * perMonitor) / 1e6).toFixed(1)} MB`,
  );
  assert.is(finalized, n, 'every monitor of the loop finalised');
});

test.run();
