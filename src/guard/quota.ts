/**
 * A byte budget shared by everything that writes to one place (docs/reliability.md #24: recordings on
 * disk). Writers ask before writing; a refusal is final for that writer until bytes are released.
 */
export class ByteQuota {
  private usedBytes = 0;

  constructor(
    readonly limit: number,
    /** Told the bytes in use after every change (a gauge). */
    private readonly onChange?: (usedBytes: number) => void,
  ) {
    onChange?.(0);
  }

  /** Bytes already taken before this process started (files on disk): counted even past the limit. */
  count(bytes: number): void {
    this.usedBytes += bytes;
    this.onChange?.(this.usedBytes);
  }

  /** Takes `bytes` from the budget if they fit. */
  take(bytes: number): boolean {
    if (this.usedBytes + bytes > this.limit) return false;
    this.usedBytes += bytes;
    this.onChange?.(this.usedBytes);
    return true;
  }

  release(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
    this.onChange?.(this.usedBytes);
  }

  get used(): number {
    return this.usedBytes;
  }

  /** Whether `bytes` more would fit now. */
  fits(bytes: number): boolean {
    return this.usedBytes + bytes <= this.limit;
  }
}
