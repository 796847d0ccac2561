/**
 * A live progress line for a person at a terminal (rewritten in place), or a line every so often
 * when output goes to a file or a pipe.
 */
export class ProgressLine {
  private lastPrint = 0;
  private width = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly everyMs = 5_000,
  ) {}

  update(text: string, nowMs: number): void {
    if (this.out.isTTY) {
      const pad = Math.max(0, this.width - text.length);
      this.out.write(`\r${text}${' '.repeat(pad)}`);
      this.width = text.length;
      return;
    }
    if (nowMs - this.lastPrint >= this.everyMs) {
      this.lastPrint = nowMs;
      this.out.write(`${text}\n`);
    }
  }

  done(): void {
    if (this.out.isTTY && this.width > 0) this.out.write('\n');
    this.width = 0;
  }
}
