/**
 * Heartbeat liveness for one connection (docs/reliability.md #20): each ping carries a fresh payload
 * and only a pong that echoes it proves the peer read our ping. An unrequested pong, or a guess,
 * proves nothing. Eight bytes from a counter and the connection's own salt are enough: the payload
 * only has to be one the peer could not have known without reading the ping.
 */
export class Liveness {
  private expected: Buffer | null = null;
  private answered = true;
  private n = 0;

  constructor(private readonly salt: number) {}

  /** Whether the previous ping was answered; call before pinging again. */
  get alive(): boolean {
    return this.answered;
  }

  /** The payload for the next ping; the connection is not alive until a pong echoes it. */
  nextPing(): Buffer {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32BE(this.salt >>> 0, 0);
    b.writeUInt32BE((++this.n * 2654435761) >>> 0, 4);
    this.expected = b;
    this.answered = false;
    return b;
  }

  /** A pong arrived; it counts only when it carries the payload of our last ping. */
  pong(data: Buffer): void {
    if (this.expected && data.equals(this.expected)) this.answered = true;
  }
}
