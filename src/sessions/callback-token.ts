import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

const NONCE_BYTES = 16;
const TAG_BYTES = 16;
/** base64url of NONCE_BYTES + TAG_BYTES, unpadded. */
const TOKEN_CHARS = Math.ceil(((NONCE_BYTES + TAG_BYTES) * 4) / 3);
const KEY_INFO = 'kyc-gateway callback-token v1';

/**
 * Per-transaction CallbackTokens: 16 random bytes followed by a 16-byte HMAC-SHA256 of them, under
 * a key derived (HKDF) from a service secret. Two checks, two jobs:
 *  - the MAC says "this service made this token": a forged token is refused with one HMAC, no
 *    database read, so a flood of forged callbacks cannot reach PostgreSQL (and cannot time it);
 *  - the SHA-256 of the whole token, stored on the session row (never the token), says "for this
 *    transaction": only the token sent with this session's Initialize matches.
 */
export class CallbackTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, '', KEY_INFO, 32));
  }

  /** A fresh token (sent to Alibaba once, in Initialize) and the hash to store. */
  issue(): { token: string; hash: string } {
    const nonce = randomBytes(NONCE_BYTES);
    const token = Buffer.concat([nonce, this.tag(nonce)]).toString('base64url');
    return { token, hash: hashCallbackToken(token) };
  }

  /** Stateless, constant time in the token's content: was this token made by this service? */
  isGenuine(token: string): boolean {
    if (token.length !== TOKEN_CHARS) return false;
    const raw = Buffer.from(token, 'base64url');
    // Node's base64url decoder skips foreign characters: insist on the one canonical spelling.
    if (raw.length !== NONCE_BYTES + TAG_BYTES || raw.toString('base64url') !== token) return false;
    return timingSafeEqual(this.tag(raw.subarray(0, NONCE_BYTES)), raw.subarray(NONCE_BYTES));
  }

  private tag(nonce: Buffer): Buffer {
    return createHmac('sha256', this.key).update(nonce).digest().subarray(0, TAG_BYTES);
  }
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
