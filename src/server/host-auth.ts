import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../protocol/index.js';

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Host authentication, in one place: each space's host token (24 random bytes, base64url), issued when
 * the space is created and checked in constant time on host actions (`Authorization: Bearer`) and on the
 * host's WebSocket (`?hostToken=`).
 */
export class HostKeys {
  private readonly tokens = new Map<string, string>();

  issue(spaceId: string): string {
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(spaceId, token);
    return token;
  }

  /** Throws FORBIDDEN unless `token` is the space's host token. */
  check(spaceId: string, token: string): void {
    const expected = this.tokens.get(spaceId);
    if (!expected || !tokenMatches(token, expected)) throw new ApiError('FORBIDDEN');
  }

  /** Throws UNAUTHORIZED without a well-formed `Bearer` header, FORBIDDEN with the wrong token. */
  checkBearer(spaceId: string, header: string | undefined): void {
    const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(header ?? '');
    if (!m) throw new ApiError('UNAUTHORIZED');
    this.check(spaceId, m[1]!);
  }
}
