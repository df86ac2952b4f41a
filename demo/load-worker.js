// A load-generator task, run on piscina worker threads: one bidi stream of echo messages with a
// few in flight, recording client-side round-trip latency into the monitor through attach().
import { performance } from 'node:perf_hooks';
import grpc from '@grpc/grpc-js';
import { attach } from '../dist/index.js';
import { echoService } from './echo-service.js';

const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
const clients = new Map();

export default async function stream({ handle, address, messages, inFlight, payloadBytes, recording }) {
  // The monitor's default series: the round trips are the headline figures of the demo.
  const recorder = attach(handle);
  // Nothing is recorded while the load warms up (until the main thread sets recording[0]).
  const on = () => Atomics.load(/** @type {Int32Array} */ (recording), 0) === 1;
  let client = clients.get(address);
  if (!client) {
    client = new Client(address, grpc.credentials.createInsecure());
    clients.set(address, client);
  }
  const call = client.Chat();
  const sentAt = [];
  const payload = Buffer.alloc(payloadBytes, 7);
  let sent = 0;
  let received = 0;
  return new Promise((resolve) => {
    const send = () => {
      while (sent < messages && sent - received < inFlight) {
        sentAt.push(performance.now());
        sent++;
        call.write(payload);
      }
      if (sent === messages) call.end();
    };
    call.on('data', () => {
      if (on()) recorder.recordLatency(performance.now() - sentAt[received]);
      received++;
      send();
    });
    call.on('error', (err) => {
      if (on()) recorder.recordError(grpc.status[err.code] ?? 'UNKNOWN');
    });
    // 'status' ends every call, failed or not. 'close' does not: after an error status the
    // writable side is still open (the stream stopped part-way), so the task would never end and
    // its worker thread would take no more streams.
    call.on('status', () => resolve({ sent, received }));
    send();
  });
}
