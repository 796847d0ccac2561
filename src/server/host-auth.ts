import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../protocol/index.js';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Host authentication, in one place: each space's host token (24 random bytes, base64url), issued when
 * the space is created and checked in constant time on host actions (`Authorization: Bearer`) and on the
 * host's WebSocket (`?hostToken=`). Only its SHA-256 is kept, which is also what the other instances of a
 * cluster learn: a host is recognised on any instance, and the token itself never travels.
 */
export class HostKeys {
  private readonly hashes = new Map<string, string>();

  issue(spaceId: string): string {
    const token = randomBytes(24).toString('base64url');
    this.hashes.set(spaceId, hashToken(token));
    return token;
  }

  /** The hash of a space's host token (hex), for the other instances. */
  hashOf(spaceId: string): string | undefined {
    return this.hashes.get(spaceId);
  }

  /** A space another instance created: its host token's hash. */
  learn(spaceId: string, hash: string): void {
    this.hashes.set(spaceId, hash);
  }

  /** Throws FORBIDDEN unless `token` is the space's host token. */
  check(spaceId: string, token: string): void {
    const expected = this.hashes.get(spaceId);
    if (!expected || !timingSafeEqual(Buffer.from(hashToken(token)), Buffer.from(expected))) throw new ApiError('FORBIDDEN');
  }

  /** Throws UNAUTHORIZED without a well-formed `Bearer` header, FORBIDDEN with the wrong token. */
  checkBearer(spaceId: string, header: string | undefined): void {
    const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(header ?? '');
    if (!m) throw new ApiError('UNAUTHORIZED');
    this.check(spaceId, m[1]!);
  }
}
