import type { Duplex } from 'node:stream';

/**
 * The fan-out's set of listeners: raw sockets in a dense array, walked by index with no iterator, no
 * holes and nothing allocated per listener. Each socket sits beside the key it belongs to (a connection,
 * or the socket itself where nothing else is known); removal swaps the last entry into the hole, so add
 * and delete are O(1) and the order is not kept. The raw socket is the `Duplex` node:http hands to an
 * `'upgrade'` listener — the public door, not a WebSocket library's internals.
 *
 * The arrays are exposed read-only for the hot loop: `for (let i = 0; i < d.size; i++) d.sockets[i]`.
 * Do not add or delete while walking them (a loop that may close a listener collects it first).
 */
export class DenseSockets<K = Duplex, S extends Duplex = Duplex> implements Iterable<K> {
  private readonly _keys: K[] = [];
  private readonly _sockets: S[] = [];
  private readonly at = new Map<K, number>();

  get size(): number {
    return this._keys.length;
  }

  get keys(): readonly K[] {
    return this._keys;
  }

  get sockets(): readonly S[] {
    return this._sockets;
  }

  has(key: K): boolean {
    return this.at.has(key);
  }

  /** Adds `key` with its raw socket; false (and nothing changes) when the key is already in. */
  add(key: K, socket: S): boolean {
    if (this.at.has(key)) return false;
    this.at.set(key, this._keys.length);
    this._keys.push(key);
    this._sockets.push(socket);
    return true;
  }

  /** Removes `key` by moving the last entry into its place; false when it was not in. */
  delete(key: K): boolean {
    const i = this.at.get(key);
    if (i === undefined) return false;
    this.at.delete(key);
    const lastKey = this._keys.pop()!;
    const lastSocket = this._sockets.pop()!;
    if (i < this._keys.length) {
      this._keys[i] = lastKey;
      this._sockets[i] = lastSocket;
      this.at.set(lastKey, i);
    }
    return true;
  }

  /** Removes everything and returns the keys that were in. */
  clear(): K[] {
    const keys = this._keys.splice(0);
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
}

