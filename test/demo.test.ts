import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from './fixtures/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('npm start: the demo serves /metrics under load and exits cleanly on SIGINT with a summary', async () => {
  const child = spawn(process.execPath, ['demo/demo.js', '--port', '0', '--threads', '1', '--incident', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await until('the metrics URL', 30_000, () => /Prometheus metrics\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out)?.[1]);
    // Both sides of the load show up: the server interceptor's gRPC families, and the clients' round
    // trips recorded in worker threads into the monitor's default series.
    const body = await until('requests from both sides', 30_000, async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const server = /grpc_server_msg_received_total\{grpc_method="Chat",grpc_service="demo\.Echo",grpc_type="bidi_stream"\} (\d+)/.exec(text);
      const client = /streamgauge_requests_total (\d+)/.exec(text);
      return server && client && Number(server[1]) > 0 && Number(client[1]) > 0 ? text : undefined;
    });
    assert.match(body, /grpc_server_started_total\{grpc_method="Chat",grpc_service="demo\.Echo",grpc_type="bidi_stream"\} [1-9]/);
    assert.match(body, /streamgauge_request_duration_seconds_bucket\{/);
    assert.match(body, /streamgauge_cache_hits_total/);
    const page = await fetch(`${url}/`);
    assert.is(page.status, 200, 'the dashboard is served');
    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    assert.is(code, 0, `exit code (stderr: ${err.slice(-500)})`);
    assert.match(out, /summary/);
    assert.match(out, /throughput\s+[\d.,]+ rps/);
    assert.match(out, /overall score \d/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test.run();
