import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedDetails {
  keyId: string;
  /** iv (12) | auth tag (16) | ciphertext */
  ciphertext: Buffer;
}

/**
 * AES-256-GCM for the personal data CheckResult returns. Each row records the id of the key that
 * sealed it, so keys rotate by adding a new one and making it active; old rows stay readable while
 * their key is configured. The session id is bound as associated data: a ciphertext copied onto
 * another row does not decrypt.
 */
export class DetailsCipher {
  private readonly keys: Map<string, Buffer>;

  constructor(
    keys: readonly string[],
    private readonly activeKeyId: string | undefined,
  ) {
    this.keys = new Map(
      keys.map((entry) => {
        const [id = '', key = ''] = entry.split(':');
        return [id, Buffer.from(key, 'base64')] as const;
      }),
    );
  }

  get enabled(): boolean {
    return this.keys.size > 0;
  }

  seal(plaintext: string, sessionId: string): SealedDetails {
    const keyId = this.activeKeyId ?? this.keys.keys().next().value;
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (!keyId || !key) throw new Error('no encryption key configured');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(sessionId, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { keyId, ciphertext: Buffer.concat([iv, cipher.getAuthTag(), body]) };
  }

  open(sealed: SealedDetails, sessionId: string): string {
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
