import type { Sealer } from '../privacy/cipher.js';
import type { Session } from './repository.js';

/**
 * The person a session belongs to, as the merchant's identity provider named them (the caller's JWT
 * `sub`), opened from its sealed form; null for sessions started before it was kept.
 */
export function userIdOf(sealer: Sealer, session: Pick<Session, 'id' | 'userIdCiphertext' | 'userIdKeyId'>): string | null {
  if (!session.userIdCiphertext || !session.userIdKeyId) return null;
  return sealer.open({ keyId: session.userIdKeyId, ciphertext: Buffer.from(session.userIdCiphertext) }, session.id);
}
