import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { WebSocket, type RawData } from 'ws';
import { createApp, type App, type AppOptions } from '../../src/app.js';
import { ONE_ADDRESS_CROWD, type ServerConfigInput } from '../../src/config.js';
import { NO_REPLAY, OPEN_GATE, type JoinGate, type ReplayView } from '../../src/server/index.js';

/** The operator token every test app runs with (creating spaces needs it). */
export const OPERATOR_TOKEN = 'test-operator-token-0123456789';
export const OPERATOR = { authorization: `Bearer ${OPERATOR_TOKEN}` };

/**
 * A load signal that never sheds: the real event-loop signal would shed load whenever the test machine is
 * busy; tests that are about shedding pass their own.
 */
export const CALM = { eventLoopLagMs: () => 0, heapUsedBytes: () => 0 };

/**
 * A real app on 127.0.0.1:0 with logs discarded, no load shedding, and recordings in a temporary directory that
 * `close()` removes; call `close()` in afterEach. Calling it twice returns the same promise.
 */
export async function startApp(server: ServerConfigInput = {}, opts: Omit<AppOptions, 'server'> = {}): Promise<{ app: App; url: string; close: () => Promise<void> }> {
  const recordingDir = await mkdtemp(join(tmpdir(), 'stampede-test-rec-'));
  // test clients are many people on one loopback address; tests of the per-address limits set their own
  const app = createApp({ logger: pino({ level: 'silent' }), loadSignal: CALM, ...opts, server: { port: 0, host: '127.0.0.1', demoSpace: false, recordingDir, operatorToken: OPERATOR_TOKEN, ...ONE_ADDRESS_CROWD, ...server } });
  const url = await app.start();
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= app.stop().then(() => rm(recordingDir, { recursive: true, force: true }));
    return closing;
  };
  return { app, url, close };
}

/**
 * Registers an afterEach that closes every app the returned function started in the test, so a
 * failing test never leaks a server.
 */
export function useApps(): typeof startApp {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });
  return async (server, opts) => {
    const s = await startApp(server, opts);
    closers.push(s.close);
    return s;
  };
}

/** A replay view whose join gate the test sets, as a replay's model would: pass `view` as the app's `replay`. */
export function settableGate(): { view: ReplayView; set(gate: JoinGate): void } {
  let gate = OPEN_GATE;
  return { view: { ...NO_REPLAY, joinGate: () => gate }, set: (g) => void (gate = g) };
}

export async function api<T = Record<string, unknown>>(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, recording); the caller reads it as text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Creates a space and returns its id and host token. */
export async function createSpace(url: string, title = 'test space'): Promise<{ id: string; hostToken: string }> {
  const r = await api<{ space: { id: string }; hostToken: string }>(url, 'POST', '/api/v1/spaces', { title, scheduledStart: new Date(0).toISOString() }, OPERATOR);
  if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.space.id, hostToken: r.body.hostToken };
}

export async function startSpace(url: string, id: string, hostToken: string, syntheticHost = false): Promise<void> {
  const r = await api(url, 'POST', `/api/v1/spaces/${id}/start`, { syntheticHost }, { authorization: `Bearer ${hostToken}` });
  if (r.status !== 200) throw new Error(`start failed: ${r.status} ${JSON.stringify(r.body)}`);
}

export interface TestClient {
  ws: WebSocket;
  texts: Record<string, unknown>[];
  binaries: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves when `pred` holds for the messages received so far (checked on every message). */
  until(pred: (c: TestClient) => boolean, what?: string): Promise<void>;
}

export function connect(wsUrl: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> {
  const ws = new WebSocket(wsUrl, opts);
  const texts: Record<string, unknown>[] = [];
  const binaries: Buffer[] = [];
  const waiters = new Set<() => void>();
  const client: TestClient = {
    ws,
    texts,
    binaries,
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    until(pred, what = 'condition') {
      if (pred(client)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pred(client)) {
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        ws.once('close', () => {
          if (waiters.has(check)) {
            waiters.delete(check);
            pred(client) ? resolve() : reject(new Error(`socket closed before ${what}`));
          }
        });
      });
    },
  };
  ws.on('message', (data: RawData, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    if (isBinary) binaries.push(buf);
    else texts.push(JSON.parse(buf.toString()) as Record<string, unknown>);
    for (const w of [...waiters]) w();
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

/** Joins through the HTTP join path and opens the WebSocket with the ticket. */
export async function joinAndConnect(url: string, spaceId: string, name?: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> {
  const r = await api<{ wsUrl: string }>(url, 'POST', `/api/v1/spaces/${spaceId}/join`, name ? { name } : undefined);
  if (r.status !== 200) throw new Error(`join failed: ${r.status} ${JSON.stringify(r.body)}`);
  return connect(r.body.wsUrl, opts);
}

/** Connects as the space's host: the host token goes in the Authorization header, never in the URL. */
export function connectHost(url: string, id: string, hostToken: string): Promise<TestClient> {
  return connect(`${url.replace(/^http/, 'ws')}/ws?space=${id}`, { headers: { authorization: `Bearer ${hostToken}` } });
}

/** Reads one metric sample's value from the app's registry. */
export async function metricValue(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await app.metrics.registry.getSingleMetric(name)?.get();
  if (!m) throw new Error(`no metric ${name}`);
  const v = m.values.find((s) => Object.entries(labels).every(([k, val]) => String((s.labels as Record<string, unknown>)[k]) === val));
  return v?.value ?? 0;
}
