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
