import { createSecretKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, importSPKI, jwtVerify, type JWTVerifyOptions } from 'jose';
import type { Config } from '../config/schema.js';

export interface Caller {
  /** The merchant's user id (JWT `sub`). Never log it; use `userRef` from auth/user-ref.ts instead. */
  sub: string;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

interface Key {
  key: KeyObject | Awaited<ReturnType<typeof importSPKI>>;
  algorithm: string;
}

/**
 * Verifies caller JWTs. Algorithms are pinned per configured key (HS256 for the secret, RS256/ES256
 * for the public key), so neither `alg: none` nor HS/RS confusion can pass; `exp` and `sub` are required.
 */
export async function createJwtVerifier(config: Config): Promise<(token: string) => Promise<Caller>> {
  const keys: Key[] = [];
  if (config.AUTH_JWT_SECRET) {
    keys.push({ key: createSecretKey(Buffer.from(config.AUTH_JWT_SECRET, 'utf8')), algorithm: 'HS256' });
  }
  if (config.AUTH_JWT_PUBLIC_KEY) {
    const algorithm = config.AUTH_JWT_PUBLIC_KEY_ALG;
    keys.push({ key: await importSPKI(config.AUTH_JWT_PUBLIC_KEY, algorithm), algorithm });
  }
  const base: JWTVerifyOptions = {
    requiredClaims: ['exp', 'sub'],
    clockTolerance: 5,
    ...(config.AUTH_JWT_ISSUER ? { issuer: config.AUTH_JWT_ISSUER } : {}),
    ...(config.AUTH_JWT_AUDIENCE ? { audience: config.AUTH_JWT_AUDIENCE } : {}),
  };

  return async (token) => {
    const alg = headerAlg(token);
    const match = keys.find((k) => k.algorithm === alg);
    if (!match) throw new AuthError('unsupported token algorithm');
    try {
      const { payload } = await jwtVerify(token, match.key, { ...base, algorithms: [match.algorithm] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
        throw new AuthError('token has no usable sub');
      }
      return { sub: payload.sub };
    } catch (err) {
      if (err instanceof AuthError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new AuthError('token expired');
      throw new AuthError('invalid token');
    }
  };
}

function headerAlg(token: string): string | undefined {
  const [header] = token.split('.', 1);
  if (!header) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && 'alg' in parsed && typeof parsed.alg === 'string'
      ? parsed.alg
      : undefined;
  } catch {
    return undefined;
  }
}
