import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { bearer, tokenMatches } from '../guard/index.js';
import { ApiError } from '../protocol/index.js';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Who may act on spaces, in one place (docs/reliability.md #24):
 * - the operator token creates spaces, and starts or ends any of them; it is configured
 *   (`operatorToken`, `STAMPEDE_OPERATOR_TOKEN`) or generated at start and printed by the CLI;
 * - each space's host token (24 random bytes, base64url), issued when the space is created, starts and
 *   ends that space and connects its host. Only its SHA-256 is kept, which is also what the other
 *   instances of a cluster learn: a host is recognised on any instance, and the token itself never travels.
 * Every comparison is in constant time.
 */
export class HostKeys {
  private readonly hashes = new Map<string, string>();

  constructor(private readonly operatorToken: string) {}

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

  /** A space the server no longer remembers. */
  forget(spaceId: string): void {
    this.hashes.delete(spaceId);
  }

  private isHost(spaceId: string, token: string): boolean {
    const expected = this.hashes.get(spaceId);
    return expected !== undefined && timingSafeEqual(Buffer.from(hashToken(token)), Buffer.from(expected));
  }

  /** Throws FORBIDDEN unless `token` is the space's host token (the host's WebSocket). */
  check(spaceId: string, token: string): void {
    if (!this.isHost(spaceId, token)) throw new ApiError('FORBIDDEN', 'that is not the host token of this space');
  }

  /** Creating a space: UNAUTHORIZED without a `Bearer` header, FORBIDDEN unless it is the operator token. */
  checkOperator(header: string | undefined): void {
    const given = bearer(header);
    if (!given) throw new ApiError('UNAUTHORIZED', 'creating a space needs the operator token (Authorization: Bearer <operator token>; `stampede serve` prints it)');
    if (!tokenMatches(given, this.operatorToken)) throw new ApiError('FORBIDDEN', 'that is not the operator token');
  }

  /** Starting and ending a space: its host token or the operator token. */
  checkHostOrOperator(spaceId: string, header: string | undefined): void {
    const given = bearer(header);
    if (!given) throw new ApiError('UNAUTHORIZED', "starting or ending a space needs its host token or the operator token (Authorization: Bearer <token>)");
    if (!this.isHost(spaceId, given) && !tokenMatches(given, this.operatorToken)) throw new ApiError('FORBIDDEN', 'the token is neither the host token of this space nor the operator token');
  }
}
