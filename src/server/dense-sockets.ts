import type { Duplex } from 'node:stream';

/**
 * The fan-out's set of listeners: raw sockets in a dense array, walked by index with no iterator, no
 * holes and nothing allocated per listener. Each socket sits beside the key it belongs to (a connection,
 * or the socket itself where nothing else is known); removal swaps the last entry into the hole, so add
 * and delete are O(1) and the order is not kept. The raw socket is the `Duplex` node:http hands to an
 * `'upgrade'` listener — the public door, not a WebSocket library's internals.
 *
 * Beside the dense arrays, every entry has a SLOT: a small number it keeps while it is in (freed slots are
 * reused). What the audio fan-out reads per listener per chunk lives in typed arrays by slot — whether it
 * still takes data frames (`open`), the sequence number it already heard elsewhere (`after`), since when it
 * has been behind (`behindSince`) — so the hot loop walks a few contiguous arrays instead of one object per
 * listener, and a chunk's fan-out, spread over several event-loop turns, can hold a copy of the dense slot
 * array (who was in when the chunk came) while everything it reads stays live. A slot freed and reused
 * while a chunk's fan-out is under way gives that chunk to the newcomer: a chunk it would have heard had it
 * come a moment earlier, in order before the next.
 *
 * The arrays are exposed read-only for the hot loop: `for (let i = 0; i < d.size; i++) d.sockets[i]`.
 * Do not add or delete while walking them (a loop that may close a listener collects it first).
 */
export class DenseSockets<K = Duplex, S extends Duplex = Duplex> implements Iterable<K> {
  private readonly _keys: K[] = [];
  private readonly _sockets: S[] = [];
  /** Key → dense index. */
  private readonly at = new Map<K, number>();
  /** Dense index → slot (its first `size` entries). */
  private _slots: Int32Array;
  // by slot
  private _open: Uint8Array;
  private _after: Float64Array;
  private _behindSince: Float64Array;
  private readonly _socketOf: (S | undefined)[] = [];
  private readonly _keyOf: (K | undefined)[] = [];
  private readonly free: number[] = [];

  constructor(capacity = 4) {
    this._slots = new Int32Array(capacity);
    this._open = new Uint8Array(capacity);
    this._after = new Float64Array(capacity).fill(-1);
    this._behindSince = new Float64Array(capacity);
  }

  get size(): number {
    return this._keys.length;
  }

  get keys(): readonly K[] {
    return this._keys;
  }

  get sockets(): readonly S[] {
    return this._sockets;
  }

  /** Dense index → slot; valid for the first `size` entries (a copy: `slots.slice(0, size)`). */
  get slots(): Int32Array {
    return this._slots;
  }

  /** By slot: 1 while the entry takes data frames, 0 once it was silenced (its close frame went) or left. */
  get open(): Uint8Array {
    return this._open;
  }

  /** By slot: a listener back from another instance hears only chunks after this sequence number; −1 otherwise. */
  get after(): Float64Array {
    return this._after;
  }

  /** By slot, read and written by the fan-out: when the listener's buffer first went over the skip threshold; 0 while it keeps up. */
  get behindSince(): Float64Array {
    return this._behindSince;
  }

  /** By slot: the entry's socket (undefined once it left). */
  get socketsBySlot(): readonly (S | undefined)[] {
    return this._socketOf;
  }

  /** The key in `slot` (undefined once it left). */
  keyOf(slot: number): K | undefined {
    return this._keyOf[slot];
  }

  has(key: K): boolean {
    return this.at.has(key);
  }

  /** Adds `key` with its raw socket (and, for a listener back from another instance, the last chunk it heard); false when it is already in. */
  add(key: K, socket: S, after = -1): boolean {
    if (this.at.has(key)) return false;
    const i = this._keys.length;
    const slot = this.free.pop() ?? this._socketOf.length;
    if (slot >= this._open.length) this.growSlots(2 * this._open.length);
    if (i >= this._slots.length) {
      const s = new Int32Array(2 * this._slots.length);
      s.set(this._slots);
      this._slots = s;
    }
    this.at.set(key, i);
    this._keys.push(key);
    this._sockets.push(socket);
    this._slots[i] = slot;
    this._socketOf[slot] = socket;
    this._keyOf[slot] = key;
    this._open[slot] = 1;
    this._after[slot] = after;
    this._behindSince[slot] = 0;
    return true;
  }

  /** `key` takes no more data frames; it stays in until deleted. False when it is not in. */
  silence(key: K): boolean {
    const i = this.at.get(key);
    if (i === undefined) return false;
    this._open[this._slots[i]!] = 0;
    return true;
  }

  /** Removes `key` by moving the last entry into its place; false when it was not in. */
  delete(key: K): boolean {
    const i = this.at.get(key);
    if (i === undefined) return false;
    this.at.delete(key);
    this.release(this._slots[i]!);
    const last = this._keys.length - 1;
    const lastKey = this._keys.pop()!;
    const lastSocket = this._sockets.pop()!;
    if (i < last) {
      this._keys[i] = lastKey;
      this._sockets[i] = lastSocket;
      this._slots[i] = this._slots[last]!;
      this.at.set(lastKey, i);
    }
    return true;
  }

  /** Removes everything and returns the keys that were in. */
  clear(): K[] {
    const keys = this._keys.splice(0);
    for (let i = 0; i < keys.length; i++) this.release(this._slots[i]!);
    this._sockets.length = 0;
    this.at.clear();
    return keys;
  }

  /** The keys, from a copy: a caller may delete while iterating (closing every listener, say). */
  [Symbol.iterator](): Iterator<K> {
    return this._keys.slice()[Symbol.iterator]();
  }

  /** Writes one pre-built buffer to every socket: the whole fan-out where nothing else is checked (the floors). */
  writeAll(data: Buffer): void {
    const sockets = this._sockets;
    for (let i = 0; i < sockets.length; i++) sockets[i]!.write(data);
  }

  private release(slot: number): void {
    this._open[slot] = 0;
    this._after[slot] = -1;
    this._behindSince[slot] = 0;
    this._socketOf[slot] = undefined;
    this._keyOf[slot] = undefined;
    this.free.push(slot);
  }

  private growSlots(n: number): void {
    const open = new Uint8Array(n);
    open.set(this._open);
    const after = new Float64Array(n).fill(-1);
    after.set(this._after);
    const behind = new Float64Array(n);
    behind.set(this._behindSince);
    this._open = open;
    this._after = after;
    this._behindSince = behind;
  }
}
