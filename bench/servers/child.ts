import { encodeAudioChunk } from '../../src/protocol/index.js';

/**
 * The parent ↔ server protocol for benchmark children: a child reports its port once listening, and
 * answers 'cpu' with its own CPU time so far (µs), so the client swarm in the parent does not blur it.
 */
export type ToChild = { type: 'cpu' } | { type: 'stop' };
export type FromChild = { type: 'ready'; port: number; spaceId?: string } | { type: 'cpu'; micros: number };

export function serveChild(start: () => Promise<{ port: number; spaceId?: string; stop: () => Promise<void> }>): void {
  void start().then(({ port, spaceId, stop }) => {
    process.send!({ type: 'ready', port, ...(spaceId ? { spaceId } : {}) } satisfies FromChild);
    process.on('message', (m: ToChild) => {
      if (m.type === 'cpu') {
        const u = process.cpuUsage();
        process.send!({ type: 'cpu', micros: u.user + u.system } satisfies FromChild);
      } else if (m.type === 'stop') void stop().then(() => process.exit(0));
    });
  });
}

/** The same 516-byte audio chunk every baseline sends: five 100-byte frames, 100 ms apart. */
const FRAMES = Array.from({ length: 5 }, () => new Uint8Array(100).fill(7));
const CHUNK_INTERVAL_MS = 100;

/**
 * Calls `broadcast` with a fresh chunk every 100 ms, scheduled from the start so a slow tick does not
 * push the later ones back (as Stampede's synthetic host does). Returns a function that stops it.
 */
export function audioTicker(broadcast: (chunk: Buffer) => void): () => void {
  let seq = 0;
  const t0 = Date.now();
  let timer: NodeJS.Timeout;
  const tick = (): void => {
    broadcast(encodeAudioChunk({ seq: seq++, captureMs: Date.now(), frames: FRAMES }));
    timer = setTimeout(tick, t0 + seq * CHUNK_INTERVAL_MS - Date.now());
  };
  tick();
  return () => clearTimeout(timer);
}
