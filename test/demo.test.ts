import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until, within } from './fixtures/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function startDemo(args: string[]) {
  const child = spawn(process.execPath, ['demo/demo.js', '--port', '0', '--threads', '1', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const io = { out: '', err: '' };
  child.stdout.on('data', (d) => (io.out += d));
  child.stderr.on('data', (d) => (io.err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, io, exited };
}

/** The request rate of the last status line before `index` in the output. */
function rpsBefore(out: string, index: number): number {
  const lines = [...out.slice(0, index).matchAll(/^\s*\d+ s {2}rps\s+([\d,]+)/gm)];
  assert.ok(lines.length > 0, 'a status line');
  return Number(lines[lines.length - 1][1].replaceAll(',', ''));
}

test('npm start: the demo serves /metrics under load and exits cleanly on SIGINT with a summary', async () => {
  const { child, io, exited } = startDemo(['--incident', '0']);
  try {
    const url = await until(
      'the metrics URL',
      30_000,
      () => /Prometheus metrics\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(io.out)?.[1],
    );
    // Both sides of the load show up: the server interceptor's gRPC families, and the clients' round
    // trips recorded in worker threads into the monitor's default series.
    const body = await until('requests from both sides', 30_000, async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const server =
        /grpc_server_msg_received_total\{grpc_method="Chat",grpc_service="demo\.Echo",grpc_type="bidi_stream"\} (\d+)/.exec(
          text,
        );
      const client = /streamgauge_requests_total (\d+)/.exec(text);
      return server && client && Number(server[1]) > 0 && Number(client[1]) > 0 ? text : undefined;
    });
    assert.match(
      body,
      /grpc_server_started_total\{grpc_method="Chat",grpc_service="demo\.Echo",grpc_type="bidi_stream"\} [1-9]/,
    );
    assert.match(body, /streamgauge_request_duration_seconds_bucket\{/);
    assert.match(body, /streamgauge_cache_hits_total/);
    const page = await fetch(`${url}/`);
    assert.is(page.status, 200, 'the dashboard is served');
    child.kill('SIGINT');
    const code = await within(exited, 30_000, 'the demo exits after SIGINT');
    assert.is(code, 0, `exit code (stderr: ${io.err.slice(-500)})`);
    assert.match(io.out, /summary/);
    assert.match(io.out, /throughput\s+[\d.,]+ rps/);
    assert.match(io.out, /overall score \d/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('the demo keeps its load through failed streams, and its incident is reported as an anomaly that recovers', async () => {
  // Failed streams often (one in 20), an incident 12 s in (8 s long), and a run that ends by itself.
  const { child, io, exited } = startDemo(['--duration', '30', '--incident', '12', '--fail-every', '20']);
  try {
    const code = await within(exited, 90_000, 'the demo ends after --duration');
    const out = io.out;
    assert.is(code, 0, `exit code (stderr: ${io.err.slice(-500)})`);

    const failed = /requests ([\d,]+), failed ([\d,]+) \(([^)]*)\)/.exec(out);
    assert.ok(failed, `a counts line in the summary:\n${out.slice(-1500)}`);
    assert.ok(Number(failed[2].replaceAll(',', '')) >= 2, `streams failed during the run: ${failed[0]}`);
    assert.match(failed[3], /UNAVAILABLE/);

    const start = out.indexOf('incident: replies delayed');
    const over = out.indexOf('incident over');
    const summary = out.indexOf('\nsummary');
    assert.ok(start > 0 && over > start && summary > over, `the incident starts, ends, then the summary:\n${out}`);
    // Reported while it lasts, and over after it ended.
    const anomaly = out.slice(start, over).match(/⚠ anomaly: (p95|p99|rps) /);
    assert.ok(anomaly, `an anomaly during the incident:\n${out.slice(start, summary)}`);
    assert.match(out.slice(start + anomaly.index!, summary), /✓ \w+ recovered after/);

    // Requests keep flowing: load before the incident and again after it (how much depends on what
    // else the machine is doing, so only that there is some).
    const before = rpsBefore(out, start);
    const after = rpsBefore(out, summary);
    assert.ok(before > 0, 'load before the incident');
    assert.ok(after > 0, `load after the incident (before it: ${before} rps)`);

    const throughput = /throughput\s+([\d.,]+) rps/.exec(out.slice(summary));
    assert.ok(throughput && Number(throughput[1].replaceAll(',', '')) > 0, 'the summary throughput is not zero');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test.run();
