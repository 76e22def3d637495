import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Id of the key derived from USER_ID_HASH_SECRET, used while no KYC_DETAILS_KEYS are configured. */
export const DERIVED_KEY_ID = 'derived1';
const DERIVED_KEY_INFO = 'kyc-gateway personal-data v1';

export interface Sealed {
  keyId: string;
  /** iv (12) | auth tag (16) | ciphertext */
  ciphertext: Buffer;
}

/**
 * AES-256-GCM for personal data at rest: the caller's user id and CheckResult's details. Each row
 * records the id of the key that sealed it, so keys rotate by adding a new one and making it active;
 * old rows stay readable while their key is configured (README → "Rotating the encryption keys").
 * The session id is bound as associated data: a ciphertext copied onto another row does not open.
 *
 * Keys: `KYC_DETAILS_KEYS` (id:base64 of 32 bytes), the active one `KYC_DETAILS_KEY_ID` (default:
 * the first). Without them, user ids are sealed with a key derived (HKDF) from USER_ID_HASH_SECRET
 * under a label of its own; that key stays readable after KYC_DETAILS_KEYS are added.
 */
export class Sealer {
  private readonly keys = new Map<string, Buffer>();
  private readonly activeKeyId: string;
  /** Whether KYC_DETAILS_KEYS are configured (result details are stored only then). */
  readonly hasConfiguredKeys: boolean;

  constructor(config: Pick<Config, 'KYC_DETAILS_KEYS' | 'KYC_DETAILS_KEY_ID' | 'USER_ID_HASH_SECRET'>) {
    for (const entry of config.KYC_DETAILS_KEYS) {
      const [id = '', key = ''] = entry.split(':');
      this.keys.set(id, Buffer.from(key, 'base64'));
    }
    this.hasConfiguredKeys = this.keys.size > 0;
    const first = this.keys.keys().next().value;
    this.keys.set(DERIVED_KEY_ID, Buffer.from(hkdfSync('sha256', config.USER_ID_HASH_SECRET, '', DERIVED_KEY_INFO, 32)));
    this.activeKeyId = config.KYC_DETAILS_KEY_ID ?? first ?? DERIVED_KEY_ID;
  }

  /** The id of the key new data is sealed with. */
  get activeKey(): string {
    return this.activeKeyId;
  }

  seal(plaintext: string, sessionId: string): Sealed {
    const keyId = this.activeKeyId;
    const key = this.keys.get(keyId);
    if (!key) throw new Error('no encryption key configured');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(sessionId, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { keyId, ciphertext: Buffer.concat([iv, cipher.getAuthTag(), body]) };
  }

  open(sealed: Sealed, sessionId: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new Error(`encryption key ${sealed.keyId} is not configured`);
    const iv = sealed.ciphertext.subarray(0, IV_BYTES);
    const tag = sealed.ciphertext.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(sessionId, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.ciphertext.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}
