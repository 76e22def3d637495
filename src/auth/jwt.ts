import { createVerifier, TokenError, type Algorithm } from 'fast-jwt';
import type { Config } from '../config/schema.js';

export interface Caller {
  /** The merchant's user id (JWT `sub`). Never log it; use `userRef` from auth/user-ref.ts instead. */
  sub: string;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

/**
 * Verifies caller JWTs. Algorithms are pinned per configured key (HS256 for the secret, RS256/ES256
 * for the public key), so neither `alg: none` nor HS/RS confusion can pass; `exp` and `sub` are
 * required. Synchronous (fast-jwt on node:crypto): WebCrypto's verify, which jose uses, hops to
 * the libuv thread pool, measured at p50 0.6 / p99 2.3 ms per start against 0.2 / 0.4 ms here.
 */
export function createJwtVerifier(config: Config): (token: string) => Caller {
  const common = {
    requiredClaims: ['exp', 'sub'],
    clockTolerance: 5_000,
    ...(config.AUTH_JWT_ISSUER ? { allowedIss: config.AUTH_JWT_ISSUER } : {}),
    ...(config.AUTH_JWT_AUDIENCE ? { allowedAud: config.AUTH_JWT_AUDIENCE } : {}),
  };
  const verifiers = new Map<string, (token: string) => Record<string, unknown>>();
  const add = (algorithm: Algorithm, key: string) => verifiers.set(algorithm, createVerifier({ ...common, key, algorithms: [algorithm] }));
  if (config.AUTH_JWT_SECRET) add('HS256', config.AUTH_JWT_SECRET);
  if (config.AUTH_JWT_PUBLIC_KEY) add(config.AUTH_JWT_PUBLIC_KEY_ALG, config.AUTH_JWT_PUBLIC_KEY);

  return (token) => {
    const verify = verifiers.get(headerAlg(token) ?? '');
    if (!verify) throw new AuthError('unsupported token algorithm');
    let payload: Record<string, unknown>;
    try {
      payload = verify(token);
    } catch (err) {
      if (err instanceof TokenError && err.code === TokenError.codes.expired) throw new AuthError('token expired');
      throw new AuthError('invalid token');
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
      throw new AuthError('token has no usable sub');
    }
    return { sub: payload.sub };
  };
}

/** The header's `alg`, to pick the one verifier bound to it (a map lookup: only exact names match). */
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
