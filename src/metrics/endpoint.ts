import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** What a scrape reads: a prom-client Registry, or metrics merged from several (the load workers'). */
export type MetricsSource = Pick<Registry, 'metrics' | 'contentType'>;

/** Answers a Prometheus scrape from `registry` (text format, the registry's content type). */
export async function writeMetrics(registry: MetricsSource, res: ServerResponse): Promise<void> {
  const text = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
  res.end(text);
}

export interface MetricsEndpointOptions {
  registry: MetricsSource;
  host: string;
  /** 0 = any free port. */
  port: number;
}

/**
 * A process's /metrics on a port of its own, for a part that has no HTTP server of its own (the load
 * generator): GET /metrics and nothing else. start()/stop(); stop() is idempotent.
 */
export class MetricsEndpoint {
  private readonly server: Server;
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: MetricsEndpointOptions) {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      writeMetrics(this.o.registry, res).catch(() => res.destroy());
    });
  }

  /** Listens; resolves to the scrape URL. */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        const { port } = this.server.address() as AddressInfo;
        resolve(`http://${this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host}:${port}/metrics`);
      });
    });
  }

  stop(): Promise<void> {
    this.stopping ??= new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.stopping;
  }
}
