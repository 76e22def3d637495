import { createHmac } from 'node:crypto';

/**
 * The desensitized form of a merchant user id: HMAC-SHA256 under USER_ID_HASH_SECRET, hex.
 * Stored as the session owner and sent to Alibaba as MerchantUserId, as Alibaba recommends.
 */
export function userRef(secret: string, sub: string): string {
  return createHmac('sha256', secret).update(sub, 'utf8').digest('hex');
}
