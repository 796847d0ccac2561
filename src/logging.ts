import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable lines (pino-pretty) for a person at a terminal; JSON otherwise. */
  pretty?: boolean;
  /** Where JSON lines go; tests pass a stream they read back. Defaults to stdout. */
  destination?: DestinationStream;
}

/** One root logger per app; modules take `logger.child({ module })`. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const base = { level: opts.level ?? 'info', base: { app: 'stampede' } };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,app', destination: 2 } } });
  }
  return pino(base);
}

/**
 * Keeps a repeated warning from flooding the log (reliability rule 18): the first occurrence of a key
 * in each interval is let through with the number suppressed since the last one; the rest are counted.
 * Keys come from the code (a closed set), never from a client; `maxKeys` bounds memory regardless.
 */
export class LogThrottle {
  private readonly keys = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
    private readonly maxKeys = 256,
  ) {}

  /** How many were suppressed before this one if it should be logged now; null to stay quiet. */
  allow(key: string): number | null {
    const t = this.now();
    const k = this.keys.get(key);
    if (k && t < k.until) {
      k.suppressed++;
      return null;
    }
    if (!k && this.keys.size >= this.maxKeys) this.keys.clear();
    this.keys.set(key, { until: t + this.intervalMs, suppressed: 0 });
    return k?.suppressed ?? 0;
  }
}
