import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh per-transaction CallbackToken (32 random bytes, base64url) and the SHA-256 we store. */
export function newCallbackToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashCallbackToken(token) };
}

export function hashCallbackToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Hash-then-compare in constant time; the cost does not depend on how much of the token matches. */
export function callbackTokenMatches(token: string, storedHash: string): boolean {
  const presented = Buffer.from(hashCallbackToken(token), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
