import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';

/**
 * The bench's host for Stampede with BENCH_HOST=worker, in a worker thread of the server's process (bench/servers/stampede.ts):
 * it connects to the space as its host and sends every chunk the ticker posts. Its CPU time is the
 * process's, so Stampede still pays for it; but it runs in its own V8 isolate, so the server's isolate
 * holds no client socket — as in a deployment, where the host is on another machine. A client socket
 * in the server's isolate adds two socket shapes to Node's shared write call site (docs/bench.md, Fan-out).
 */
const { url, token } = workerData as { url: string; token: string };
const port = parentPort!;
const host = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
host.once('open', () => port.postMessage({ open: true }));
host.once('error', (err) => port.postMessage({ error: err.message }));
port.on('message', (m: Uint8Array | 'stop') => {
  if (m === 'stop') {
    host.terminate();
    port.close();
    return;
  }
  host.send(m);
});
