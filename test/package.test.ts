// The packed package as users get it: `npm pack`, installed into new projects — ESM TypeScript
// (strict, no DOM lib, no skipLibCheck), CommonJS JavaScript and CommonJS TypeScript — compiled
// with tsc and run: a worker thread records through attach(), the main thread scrapes /metrics.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const typesNode = JSON.parse(
  readFileSync(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
).version;
const RECORDS = 1000;

const files = (dir: string, entries: Record<string, unknown>) => {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(entries)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  }
};

const strictTs = (module: 'nodenext') => ({
  compilerOptions: {
    strict: true,
    module,
    target: 'es2022',
    lib: ['es2022'],
    types: ['node'],
    outDir: 'out',
    rootDir: '.',
  },
  include: ['*.ts'],
});

// The scrape: the worker's records, read from /metrics; the dashboard page and its uPlot; and
// what the gRPC interceptor and the OpenTelemetry bridge say without their peer dependency.
const mainBody = (workerUrl: string) => `
const monitor = new StreamPerformanceMonitor({ logger: false });
const served = await monitor.serve({ port: 0 });
const worker = new Worker(${workerUrl}, { workerData: monitor.handle() });
await new Promise((resolve, reject) => {
  worker.on('exit', resolve);
  worker.on('error', reject);
});
const text = await (await fetch(served.url + '/metrics')).text();
const dashboard = [(await fetch(served.url + '/')).status, (await fetch(served.url + '/assets/uplot.js')).status];
await served.close();
monitor.close();
let grpcError = '';
try {
  grpcServerInterceptor(monitor);
} catch (err) {
  grpcError = (err as Error).message;
}
let otelError = '';
try {
  openTelemetryProducer(monitor);
} catch (err) {
  otelError = (err as Error).message;
}
console.log(JSON.stringify({ requests: Number(/^streamgauge_requests_total (\\d+)/m.exec(text)?.[1]), dashboard, grpcError, otelError }));
`;
const workerBody = `for (let i = 1; i <= ${RECORDS}; i++) recorder.recordLatency(i / 100);\n`;

test('the packed package installs without gRPC, OpenTelemetry or piscina, compiles under strict TypeScript without DOM, and runs from ESM and CommonJS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgauge-consumer-'));
  try {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], {
      cwd: root,
    });
    const tarball = join(dir, JSON.parse(stdout)[0].filename);

    // One install shared by three projects in its subfolders (each with its own module type).
    files(dir, { 'package.json': { name: 'consumers', private: true } });
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', tarball, `@types/node@${typesNode}`],
      { cwd: dir },
    );
    const installed = readdirSync(join(dir, 'node_modules'));
    assert.ok(installed.includes('streamgauge'), 'installed');
    assert.not.ok(
      installed.includes('@grpc') || installed.includes('piscina') || installed.includes('@opentelemetry'),
      `optional peers are not installed: ${installed.join(' ')}`,
    );

    // ESM TypeScript, strict, lib es2022 only, no skipLibCheck.
    files(join(dir, 'esm-ts'), {
      'package.json': { type: 'module' },
      'tsconfig.json': strictTs('nodenext'),
      'main.ts': `import { Worker } from 'node:worker_threads';\nimport { grpcServerInterceptor, openTelemetryProducer, StreamPerformanceMonitor } from 'streamgauge';\n${mainBody("new URL('./worker.js', import.meta.url)")}`,
      'worker.ts': `import { workerData } from 'node:worker_threads';\nimport { attach, type MonitorHandle } from 'streamgauge';\nconst recorder = attach(workerData as MonitorHandle);\n${workerBody}`,
    });
    // CommonJS TypeScript: a project without "type", as `npm init -y` makes it.
    files(join(dir, 'cjs-ts'), {
      'package.json': { name: 'cjs-ts', version: '1.0.0' },
      'tsconfig.json': strictTs('nodenext'),
      'main.ts': `import { Worker } from 'node:worker_threads';\nimport { join } from 'node:path';\nimport { grpcServerInterceptor, openTelemetryProducer, StreamPerformanceMonitor } from 'streamgauge';\nasync function main() {\n${mainBody("join(__dirname, 'worker.js')")}}\nvoid main();\n`,
      'worker.ts': `import { workerData } from 'node:worker_threads';\nimport { attach, type MonitorHandle } from 'streamgauge';\nconst recorder = attach(workerData as MonitorHandle);\n${workerBody}`,
    });
    // CommonJS JavaScript.
    files(join(dir, 'cjs-js'), {
      'package.json': { name: 'cjs-js', version: '1.0.0' },
      'main.js': `const { Worker } = require('node:worker_threads');\nconst { join } = require('node:path');\nconst { grpcServerInterceptor, openTelemetryProducer, StreamPerformanceMonitor } = require('streamgauge');\nasync function main() {\n${mainBody("join(__dirname, 'worker.js')").replaceAll(' as Error', '')}}\nmain();\n`,
      'worker.js': `const { workerData } = require('node:worker_threads');\nconst { attach } = require('streamgauge');\nconst recorder = attach(workerData);\n${workerBody}`,
    });

    for (const project of ['esm-ts', 'cjs-ts']) {
      const compiled = await run(process.execPath, [tsc, '-p', join(dir, project)]).catch((err) => err);
      assert.is(compiled.stdout, '', `${project} compiles:\n${compiled.stdout}`);
    }
    for (const [project, main] of [
      ['esm-ts', 'out/main.js'],
      ['cjs-ts', 'out/main.js'],
      ['cjs-js', 'main.js'],
    ]) {
      const { stdout: out } = await run(process.execPath, [main], { cwd: join(dir, project) });
      const result = JSON.parse(out);
      assert.is(result.requests, RECORDS, `${project}: the worker's records, scraped`);
      assert.equal(result.dashboard, [200, 200], `${project}: the dashboard and its assets`);
      assert.match(
        result.grpcError,
        /npm install @grpc\/grpc-js/,
        `${project}: the gRPC interceptor without @grpc/grpc-js`,
      );
      assert.match(
        result.otelError,
        /npm install @opentelemetry\/sdk-metrics/,
        `${project}: the OpenTelemetry bridge without @opentelemetry/sdk-metrics`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
