import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh secret: 24 random bytes, base64url (32 characters). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Compares a presented token with the expected one in constant time. Both are hashed first, so the
 * comparison takes as long whatever the presented length, and a wrong length is not told apart early.
 */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null when there is none of that shape. */
export function bearer(header: string | undefined): string | null {
  if (!header || header.length > 200) return null;
  const m = /^Bearer ([A-Za-z0-9_-]{1,128})$/.exec(header);
  return m ? m[1]! : null;
}
