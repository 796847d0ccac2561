/**
 * The replay's progress line. On a terminal it is rewritten in place, at most every `minRedrawMs`
 * of wall time, and cut to the terminal's width; piped to a file it is one line per `everySimMs` of
 * simulated time (5 simulated minutes), so a log of the night stays a few dozen lines.
 */

/** What one line says. */
export interface ProgressFields {
  /** Local clock of the simulated time, e.g. "20:25 ET". */
  clock: string;
  /** 0..1: how far through the night. */
  done: number;
  phase: string;
  listeners: number;
  availability: number;
  offered: number;
  /** Real clients, when there are any: "41/200 in, 41/668 joins ok". */
  real?: { in: number; of: number; admitted: number; attempts: number };
}

export interface ProgressOut {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

const compact = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n)));

/** A bar of `width` cells, filled to `done` in eighths of a cell. */
export function bar(done: number, width: number): string {
  const eighths = Math.round(Math.min(1, Math.max(0, done)) * width * 8);
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  return '█'.repeat(full) + (part ? ' ▏▎▍▌▋▊▉'[part]! : '') + '·'.repeat(Math.max(0, width - full - (part ? 1 : 0)));
}

/**
 * One progress line no wider than `width` columns: the clock, a bar of simulated time (when there is
 * room for one), then the figures in order of importance — the least important are dropped first.
 */
export function formatProgress(f: ProgressFields, width: number, withBar: boolean): string {
  const parts = [
    `${f.phase}`,
    `${compact(f.listeners)} listening`,
    `joins ${(f.availability * 100).toFixed(f.availability < 0.1 ? 1 : 0)}% ok`,
    `${compact(f.offered)}/s offered`,
    ...(f.real ? [`real ${f.real.in}/${f.real.of} in`, `${f.real.admitted}/${f.real.attempts} real joins ok`] : []),
  ];
  const pct = `${Math.floor(f.done * 100)}%`.padStart(5);
  const head = (barWidth: number): string => (withBar && barWidth > 0 ? `${f.clock} ${bar(f.done, barWidth)}${pct}` : `${f.clock}${pct}`);
  for (let keep = parts.length; keep >= 1; keep--) {
    const tail = parts.slice(0, keep).join(' · ');
    const room = width - tail.length - f.clock.length - pct.length - 3;
    const barWidth = Math.min(20, room);
    if (!withBar && room >= 0) return `${head(0)}  ${tail}`;
    if (withBar && barWidth >= 8) return `${head(barWidth)}  ${tail}`;
  }
  return head(0).slice(0, Math.max(1, width));
}

export class ReplayProgress {
  private lastDraw = -Infinity;
  private lastSimSlot = -Infinity;
  private drawn = 0;
  private pending: ProgressFields | null = null;
  /** Lines held back until begin(): the replay may step before its header is printed. */
  private held: string[] | null = [];

  constructor(
    private readonly out: ProgressOut,
    private readonly o: { quiet?: boolean; minRedrawMs?: number; everySimMs?: number } = {},
  ) {}

  /** Starts printing (what came before is printed now). */
  begin(): void {
    const held = this.held;
    this.held = null;
    if (held) for (const line of held) this.out.write(line);
    if (this.pending && this.out.isTTY) this.draw(this.pending);
  }

  /** A new step: `simMs` is the simulated time, `wallMs` the wall clock. */
  update(f: ProgressFields, simMs: number, wallMs: number): void {
    if (this.o.quiet) return;
    if (this.out.isTTY) {
      this.pending = f;
      if (this.held || wallMs - this.lastDraw < (this.o.minRedrawMs ?? 100)) return;
      this.lastDraw = wallMs;
      this.draw(f);
      return;
    }
    const slot = Math.floor(simMs / (this.o.everySimMs ?? 300_000));
    if (slot === this.lastSimSlot) return;
    this.lastSimSlot = slot;
    const line = `${formatProgress(f, 200, false)}\n`;
    if (this.held) this.held.push(line);
    else this.out.write(line);
  }

  private draw(f: ProgressFields): void {
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    const text = formatProgress(f, width, true);
    this.out.write(`\r${text}${' '.repeat(Math.max(0, this.drawn - text.length))}`);
    this.drawn = text.length;
    this.pending = null;
  }

  /** The last state drawn in full, and the cursor moved to a fresh line. */
  done(): void {
    if (this.o.quiet || !this.out.isTTY) return;
    if (this.pending) this.draw(this.pending);
    if (this.drawn > 0) this.out.write('\n');
    this.drawn = 0;
  }
}
