import { WebSocket } from 'ws';

/** What an `AudioSocket` tells, once, when it stops taking data frames: the room it is a listener of. */
export interface ClosingWatcher<K> {
  /** `key` takes no more data frames (it stays in the room until its socket closes). */
  silence(key: K): boolean;
}

/**
 * ws's WebSocket (the server makes every socket one, through `WebSocketServer`'s documented `WebSocket`
 * option) that tells the fan-out, once, when it stops taking data frames — so the fan-out's hot loop needs
 * no per-listener `readyState` read.
 *
 * A WebSocket sends its close frame in `close()` only, and every path to it goes through that method on
 * the instance: ours (a space ending, a slow consumer, a violation, the shutdown) and ws's own (the peer's
 * close frame, `receiverOnConclude`; a frame-level violation, `receiverOnError`). After the close frame no
 * data frame may follow (RFC 6455 §5.5.1). `terminate()` destroys the socket. ws's other moves to CLOSING
 * (the peer ends its side, a socket error) end or destroy the raw socket first, which the fan-out sees in
 * the socket's own `writable`.
 */
export class AudioSocket extends WebSocket {
  private watcher: ClosingWatcher<unknown> | null = null;
  private watchKey: unknown = null;

  /** `watcher.silence(key)` is called the first time this socket sends its close frame or is terminated. */
  watchClosing<K>(watcher: ClosingWatcher<K>, key: K): void {
    this.watcher = watcher as ClosingWatcher<unknown>;
    this.watchKey = key;
  }

  override close(code?: number, data?: string | Buffer): void {
    this.closing();
    super.close(code, data);
  }

  override terminate(): void {
    this.closing();
    super.terminate();
  }

  private closing(): void {
    const w = this.watcher;
    if (w === null) return;
    this.watcher = null;
    w.silence(this.watchKey);
    this.watchKey = null;
  }
}
