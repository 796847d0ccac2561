import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** What the shedder decides on; the server samples the real process, tests pass their own. */
export interface LoadReadings {
  /** Event-loop lag in ms: never 0 while the loop is blocked or too busy to sample. */
  eventLoopLagMs(): number;
  heapUsedBytes(): number;
  rssBytes(): number;
  /** Memory outside the JS heap: Buffers, ArrayBuffers and native allocations (process.memoryUsage().external). */
  externalBytes(): number;
}

export interface LoadMonitorOptions {
  /** How often the sampler reads the loop and memory (default 500 ms). */
  windowMs?: number;
  /**
   * Lag read in the first this-many ms after start() does not count toward shedding (memory does): a
   * fresh process is slow by nature — JIT, lazy module set-up, the demo space's encoder, a machine busy
   * starting it — and read as overload it refused its very first joins. The gauge still reports it.
   * Default 0 (off); the server passes `shedWarmupMs`.
   */
  warmupMs?: number;
  /** The monotonic clock in ms (default performance.now); tests pass their own. */
  now?: () => number;
  onSample?: (r: { lagMs: number; heapBytes: number; rssBytes: number; externalBytes: number }) => void;
}

/**
 * The lag arithmetic, apart from timers and perf_hooks so a test can feed it windows at chosen times.
 * A window's reading is the larger of the loop-delay p99 and the sampler's own drift; it counts only
 * when the window before it was behind too (the smaller of the last two), and the between-samples
 * reading (how overdue the next window is) counts at once. Nothing read during the warm-up counts.
 */
export class LagWindows {
  /** The last window's reading, warm-up or not: what the gauge shows. */
  lastMs = 0;
  private prevMs = 0;
  private sustainedMs = 0;
  private lastAt: number;
  private readonly warmEndsAt: number;

  constructor(
    private readonly windowMs: number,
    startedAt: number,
    warmupMs = 0,
  ) {
    this.lastAt = startedAt;
    this.warmEndsAt = startedAt + warmupMs;
  }

  /** A window ended at `now` with the histogram's p99 (0 when it holds no samples); returns its reading. */
  window(now: number, p99Ms: number): number {
    const drift = Math.max(0, now - this.lastAt - this.windowMs);
    const reading = Math.max(p99Ms, drift);
    this.lastAt = now;
    this.lastMs = reading;
    if (now <= this.warmEndsAt) {
      // start-up: neither this window nor the next one's comparison with it counts
      this.prevMs = 0;
      this.sustainedMs = 0;
    } else {
      this.sustainedMs = Math.min(this.prevMs, reading);
      this.prevMs = reading;
    }
    return reading;
  }

  /** The lag the shedder sees at `now`; `sampling` = the sampler is running (between samples it may be overdue). */
  lagAt(now: number, sampling: boolean): number {
    if (!sampling) return this.sustainedMs;
    // overdue counts from the end of the warm-up at the earliest: a start-up stall is not overload
    const overdue = now - Math.max(this.lastAt, this.warmEndsAt) - this.windowMs;
    return Math.max(this.sustainedMs, overdue);
  }
}

/**
 * Samples the real event loop and memory every `windowMs`. Lag is the larger of two readings, so
 * neither can go blind alone:
 * - the p99 of perf_hooks' loop-delay histogram over the last window (a loop that stays behind);
 * - timer drift: how late the sampler's own timer fired, and — read between samples — how long it
 *   has been since the sampler last ran past its due time (a loop too busy to run timers at all,
 *   where the histogram would hold no samples and read 0).
 * A window's reading counts only when the window before it was behind too (the smaller of the last two),
 * so one slow tick — a GC, the machine's other work — does not shed, but a loop that stays behind does;
 * the between-samples reading needs no second window (it already spans more than one). Nothing read in
 * the warm-up after start() counts (LagWindows). Memory is read once per window, not per request.
 * start()/stop() are idempotent.
 */
export class LoadMonitor implements LoadReadings {
  private histogram: IntervalHistogram | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lag: LagWindows;
  private heap = 0;
  private rss = 0;
  private external = 0;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly o: LoadMonitorOptions = {}) {
    this.windowMs = o.windowMs ?? 500;
    this.now = o.now ?? (() => performance.now());
    this.lag = new LagWindows(this.windowMs, this.now());
  }

  start(): void {
    if (this.timer) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.lag = new LagWindows(this.windowMs, this.now(), this.o.warmupMs ?? 0);
    this.readMemory();
    const tick = (): void => {
      const h = this.histogram!;
      // percentile() is in ns; an empty window says nothing, and the drift then speaks for it
      const p99 = h.count > 0 ? h.percentile(99) / 1e6 : 0;
      h.reset();
      const lagMs = this.lag.window(this.now(), p99);
      this.readMemory();
      this.o.onSample?.({ lagMs, heapBytes: this.heap, rssBytes: this.rss, externalBytes: this.external });
      this.timer = setTimeout(tick, this.windowMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.windowMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.histogram?.disable();
    this.histogram = null;
  }

  private readMemory(): void {
    const m = process.memoryUsage();
    this.heap = getHeapStatistics().used_heap_size;
    this.rss = m.rss;
    // external already includes array buffers (every Node Buffer)
    this.external = m.external;
  }

  eventLoopLagMs(): number {
    return this.lag.lagAt(this.now(), this.timer !== null);
  }

  heapUsedBytes(): number {
    return this.heap;
  }

  rssBytes(): number {
    return this.rss;
  }

  externalBytes(): number {
    return this.external;
  }
}
