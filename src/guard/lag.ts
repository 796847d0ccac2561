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

/**
 * Samples the real event loop and memory every `windowMs`. Lag is the larger of two readings, so
 * neither can go blind alone:
 * - the p99 of perf_hooks' loop-delay histogram over the last window (a loop that stays behind);
 * - timer drift: how late the sampler's own timer fired, and — read between samples — how long it
 *   has been since the sampler last ran past its due time (a loop too busy to run timers at all,
 *   where the histogram would hold no samples and read 0).
 * A window's reading counts only when the window before it was behind too (the smaller of the last two),
 * so one slow tick — start-up, a GC, the machine's other work — does not shed, but a loop that stays
 * behind does; the between-samples reading needs no second window (it already spans more than one).
 * Memory is read once per window, not per request. start()/stop() are idempotent.
 */
export class LoadMonitor implements LoadReadings {
  private histogram: IntervalHistogram | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastSampleAt = 0;
  private lagMs = 0;
  private sustainedMs = 0;
  private heap = 0;
  private rss = 0;
  private external = 0;

  constructor(
    private readonly windowMs = 500,
    private readonly onSample?: (r: { lagMs: number; heapBytes: number; rssBytes: number; externalBytes: number }) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.lastSampleAt = performance.now();
    this.readMemory();
    const tick = (): void => {
      const now = performance.now();
      const drift = Math.max(0, now - this.lastSampleAt - this.windowMs);
      const h = this.histogram!;
      // percentile() is in ns; an empty window says nothing, and the drift then speaks for it
      const p99 = h.count > 0 ? h.percentile(99) / 1e6 : 0;
      h.reset();
      const reading = Math.max(p99, drift);
      this.sustainedMs = Math.min(this.lagMs, reading);
      this.lagMs = reading;
      this.lastSampleAt = now;
      this.readMemory();
      this.onSample?.({ lagMs: this.lagMs, heapBytes: this.heap, rssBytes: this.rss, externalBytes: this.external });
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
    if (!this.timer) return this.sustainedMs;
    const overdue = performance.now() - this.lastSampleAt - this.windowMs;
    return Math.max(this.sustainedMs, overdue);
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
