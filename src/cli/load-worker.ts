import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../clock.js';
import { createClientMetrics, runWorkerPart, type ToWorker, type WorkerInput } from '../load/index.js';
import { createRng } from '../sim/index.js';

/**
 * The entry of one `stampede load --workers N` worker thread: its own composition root (clock, RNG,
 * client metrics), running its share of the plan and reporting to the parent over the worker port.
 */
const input = workerData as WorkerInput;
const port = parentPort!;
await runWorkerPart(
  input,
  { post: (msg) => port.postMessage(msg), onMessage: (fn) => port.on('message', (msg: ToWorker) => fn(msg)) },
  { clock: systemClock(), random: createRng(input.seed).fork(`load-worker-${input.index}`).next, metrics: createClientMetrics() },
);
port.close();
