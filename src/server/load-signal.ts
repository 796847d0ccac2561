import { getHeapStatistics } from 'node:v8';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Clock } from '../clock.js';
import type { LoadSignal } from './admission.js';

/**
 * Samples the real event loop: the p99 delay over each window, so one slow tick does not shed load
 * but a loop that stays behind does; and the heap in use, once per window. start()/stop() are idempotent.
 */
export class EventLoopSignal implements LoadSignal {
  private histogram: IntervalHistogram | null = null;
  private lagMs = 0;
  private heapBytes = 0;
  private running = false;
  private loop: Promise<void> | null = null;
  private abort = new AbortController();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 500,
    private readonly onSample?: (lagMs: number) => void,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.heapBytes = getHeapStatistics().used_heap_size;
    this.loop = (async () => {
      while (this.running) {
        await this.clock.sleep(this.windowMs, this.abort.signal);
        if (!this.running || !this.histogram) break;
        // percentile() is in ns; an empty window reports 0
        this.lagMs = this.histogram.count > 0 ? this.histogram.percentile(99) / 1e6 : 0;
        this.histogram.reset();
        this.heapBytes = getHeapStatistics().used_heap_size;
        this.onSample?.(this.lagMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
    this.histogram?.disable();
    this.histogram = null;
  }

  eventLoopLagMs(): number {
    return this.lagMs;
  }

  /** The heap in use at the end of the last window: read once per window, not per request. */
  heapUsedBytes(): number {
    return this.heapBytes;
  }
}
