import { SignJWT } from 'jose';

export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789-abcdefghij';

/** A caller token as a merchant's auth server would issue it. */
export function signToken(sub: string, opts: { secret?: string; expiresIn?: string | number; alg?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: opts.alg ?? 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '5m')
    .sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}
