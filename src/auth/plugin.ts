import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { HttpError } from '../errors/http-error.js';
import { internalApiKeys } from '../config/named-secrets.js';
import { AuthError, createJwtVerifier } from './jwt.js';
import { userRef } from './user-ref.js';

export interface AuthenticatedUser {
  /** Desensitized user id (see user-ref.ts): what lookups use and Alibaba sees. */
  ref: string;
  /** The caller's JWT `sub`, as the merchant's identity provider issued it: never logged, stored only sealed. */
  sub: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Hook for routes that need a caller: verifies `Authorization: Bearer <JWT>`. A failure counts
     * in its address's failure limit (app.limits.authFailuresByIp): 401, or 429 beyond the limit.
     */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /**
     * Hook for /internal/*: checks `x-api-key` against INTERNAL_API_KEY and INTERNAL_API_KEYS
     * (app.limits.apiKeyFailuresByIp), and notes the key's name in request.apiKeyName.
     */
    authenticateApiKey: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
    /** The name of the back-office key the request presented (the audit trail's actor). */
    apiKeyName: string | null;
  }
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Tokens remembered as verified (least recently used go first): ~0.5 KB each. */
const VERIFIED_TOKENS_MAX = 10_000;

export default fp(
  async (app) => {
    const verify = createJwtVerifier(app.config);
    app.decorateRequest('user', null);
    /**
     * Callers by the exact token they presented, until that token expires. A frontend presents the
     * same token on every status read; verifying it again (base64, JSON, HMAC, claims) and hashing
     * its `sub` again (userRef's HMAC) would give the same caller, at ~13 µs a read. What makes a
     * token pass cannot change before its `exp` (signature, issuer, audience, the demo claim; the
     * bound on its remaining lifetime only loosens with time), so only `exp` is checked again. Only
     * tokens that passed are kept, so refused ones cannot fill it.
     */
    const verified = new LRUCache<string, AuthenticatedUser & { validUntilMs: number }>({ max: VERIFIED_TOKENS_MAX });

    /** The caller, or the 401 that refuses it. */
    const callerOf = (request: FastifyRequest): AuthenticatedUser | HttpError => {
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_\-.]{1,8192})$/.exec(header) : null;
      if (!match?.[1]) {
        return new HttpError(401, 'UNAUTHENTICATED', 'Authorization: Bearer <JWT> is required', { 'www-authenticate': 'Bearer' });
      }
      const token = match[1];
      const known = verified.get(token);
      if (known && Date.now() < known.validUntilMs) return { ref: known.ref, sub: known.sub };
      try {
        const { sub, validUntilMs } = verify(token);
        const caller = { ref: userRef(app.config.USER_ID_HASH_SECRET, sub), sub };
        verified.set(token, { ...caller, validUntilMs });
        return caller;
      } catch (err) {
        const reason = err instanceof AuthError ? err.message : 'invalid token';
        return new HttpError(401, 'INVALID_TOKEN', `The bearer token was rejected: ${reason}`, {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      }
    };

    app.decorate('authenticate', async (request: FastifyRequest, reply: FastifyReply) => {
      const caller = callerOf(request);
      if (!(caller instanceof HttpError)) {
        request.user = caller;
        return;
      }
      // Only failures are counted, and only failures are refused beyond the limit: a flood of bad
      // tokens cannot lock out the valid callers behind the same address (a NAT). There is no
      // guard before the check, because a JWT's signature cannot be guessed.
      await app.limits.authFailuresByIp.count(request, reply);
      throw caller;
    });

    const keys = internalApiKeys(app.config).map((k) => ({ name: k.name, digest: digest(k.secret) }));
    app.decorateRequest('apiKeyName', null);
    app.decorate('authenticateApiKey', async (request: FastifyRequest, reply: FastifyReply) => {
      // A key can be guessed: an address that used up its wrong keys is refused before its key is
      // compared, whatever the key, so no guess beyond the limit is ever tried.
      await app.limits.apiKeyFailuresByIp.guard(request, reply);
      const presented = request.headers['x-api-key'];
      if (typeof presented === 'string') {
        // Compared with every key (no early exit), so the time taken does not tell which one came close.
        const presentedDigest = digest(presented);
        let match: string | null = null;
        for (const key of keys) if (timingSafeEqual(presentedDigest, key.digest)) match ??= key.name;
        if (match !== null) {
          request.apiKeyName = match;
          return;
        }
      }
      // A missing key is no guess: it is counted only by the address's request limit.
      if (typeof presented === 'string') await app.limits.apiKeyFailuresByIp.count(request, reply);
      throw new HttpError(401, 'INVALID_API_KEY', 'x-api-key is missing or wrong');
    });
  },
  { name: 'auth', dependencies: ['config', 'limits'] },
);
