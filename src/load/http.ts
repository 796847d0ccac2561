// only its types at load time: every `stampede serve` loads this module with the CLI, and importing
// autocannon took 260–320 ms of each start (docs/reliability.md #17); it is loaded when a run needs it
import type autocannon from 'autocannon';
import { profileSeconds, type HttpProfile, type HttpRequestKind, type Phase } from './profile.js';
import type { ClientKind, ClientMetrics, ClientOutcome, KindStats } from './results.js';

export interface HttpTarget {
  base: URL;
  spaceId: string;
}

/** What each request kind sends: the traffic shapes of the night's join and audio planes, and junk. */
function requestFor(kind: HttpRequestKind, spaceId: string): autocannon.Request[] {
  const space = `/api/v1/spaces/${spaceId}`;
  switch (kind) {
    case 'join':
      return [{ method: 'POST', path: `${space}/join`, headers: { 'content-type': 'application/json' }, body: '{"name":"load"}' }];
    case 'details':
      return [{ method: 'GET', path: space }];
    case 'playlist':
      return [{ method: 'GET', path: `${space}/playlist` }];
    case 'chunk':
      // a CDN listener: the playlist, then the newest chunk in it
      return [
        {
          method: 'GET',
          path: `${space}/playlist`,
          onResponse: (_status: number, body: string, ctx: Record<string, unknown>) => {
            try {
              ctx.last = (JSON.parse(body) as { last?: number }).last;
            } catch {
              ctx.last = undefined;
            }
          },
        } as autocannon.Request,
        {
          method: 'GET',
          path: `${space}/chunks/0`,
          setupRequest: (req: autocannon.Request, ctx: object) => {
            const last = (ctx as { last?: unknown }).last;
            return { ...req, path: `${space}/chunks/${typeof last === 'number' && last >= 0 ? last : 0}` };
          },
        },
      ];
    case 'junk':
      // what a flood looks like from the server: broken JSON, unknown spaces, wrong methods, big bodies
      return [
        { method: 'POST', path: `${space}/join`, headers: { 'content-type': 'application/json' }, body: '{"name": ' },
        { method: 'GET', path: '/api/v1/spaces/does-not-exist' },
        { method: 'DELETE', path: '/api/v1/spaces' },
        { method: 'POST', path: `${space}/join`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(20_000) }) },
      ];
    case 'metrics':
      return [{ method: 'GET', path: '/metrics' }];
  }
}

/** Maps a status to an outcome: 2xx ok; 429/503 refused (the server said "not now"); the rest errors. */
export function outcomeOf(kind: ClientKind, status: number): ClientOutcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 429 || status === 503) return 'refused';
  // junk is meant to be refused: a clean 4xx is the server doing its job
  if (kind === 'junk' && status >= 400 && status < 500) return 'refused';
  // a chunk that has just left the live window is a miss a listener retries, not a failure
  if (kind === 'chunk' && status === 404) return 'refused';
  return 'error';
}

/** Splits phases into constant-rate steps: a ramp becomes one step per second. */
export function steps(phases: readonly Phase[]): { seconds: number; rate: number }[] {
  const out: { seconds: number; rate: number }[] = [];
  for (const ph of phases) {
    if ('pause' in ph) out.push({ seconds: ph.duration, rate: 0 });
    else if ('rampTo' in ph) {
      const n = Math.max(1, Math.round(ph.duration));
      for (let i = 0; i < n; i++) out.push({ seconds: ph.duration / n, rate: ph.arrivalRate + ((ph.rampTo - ph.arrivalRate) * (i + 0.5)) / n });
    } else out.push({ seconds: ph.duration, rate: ph.arrivalRate });
  }
  return out;
}

/**
 * Runs an HTTP profile with autocannon, one run per constant-rate step (autocannon's overallRate),
 * recording every response into the kind's stats and the client metrics.
 */
export async function runHttp(
  profile: HttpProfile,
  target: HttpTarget,
  stats: KindStats,
  metrics: ClientMetrics,
  opts: { signal?: AbortSignal; onStep?: (done: number, total: number) => void; sleep: (ms: number, signal?: AbortSignal) => Promise<void> },
): Promise<void> {
  // a closed model: vus connections, each sending its next request once the last is answered
  const closed = profile.executor === 'constant-vus';
  const plan = closed ? [{ seconds: profileSeconds(profile), rate: 0 }] : steps(profile.phases);
  const kind = profile.request as ClientKind;
  let elapsed = 0;
  const total = plan.reduce((a, s) => a + s.seconds, 0);
  const cannon = (await import('autocannon')).default;
  for (const step of plan) {
    if (opts.signal?.aborted) return;
    if (step.rate <= 0 && !closed) {
      await opts.sleep(step.seconds * 1000, opts.signal);
    } else {
      let finished!: () => void;
      const done = new Promise<void>((resolve) => (finished = resolve));
      const connections = closed ? profile.vus! : Math.max(1, Math.min(profile.connections, Math.ceil(step.rate)));
      // at the intended rate each connection sends one request every connections/rate seconds; a closed
      // model has no intended rate (it measures service time, as k6's constant-vus does)
      const expectedIntervalMs = closed ? undefined : (1000 * connections) / step.rate;
      const instance = cannon({
        url: target.base.origin,
        connections,
        duration: step.seconds,
        ...(closed ? {} : { overallRate: step.rate }),
        timeout: Math.ceil(profile.timeoutMs / 1000),
        requests: requestFor(profile.request, target.spaceId),
      } as autocannon.Options, () => finished());
      instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
        const outcome = outcomeOf(kind, status);
        stats.record(outcome, ms, String(status), expectedIntervalMs);
        metrics.requests.inc({ kind, outcome });
        metrics.duration.observe({ kind }, ms / 1000);
      });
      instance.on('reqError', (err: Error) => {
        const timeout = /timeout/i.test(err.message);
        stats.record(timeout ? 'timeout' : 'error', profile.timeoutMs, timeout ? undefined : err.message.slice(0, 40), expectedIntervalMs);
        metrics.requests.inc({ kind, outcome: timeout ? 'timeout' : 'error' });
      });
      const stop = (): void => instance.stop();
      opts.signal?.addEventListener('abort', stop, { once: true });
      await done;
      opts.signal?.removeEventListener('abort', stop);
    }
    elapsed += step.seconds;
    opts.onStep?.(elapsed, total);
  }
}
