import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { HttpError } from '../errors/http-error.js';
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
    /** preHandler for routes that need a caller: verifies `Authorization: Bearer <JWT>`. */
    authenticate: (request: FastifyRequest) => Promise<void>;
  }
  interface FastifyRequest {
    user: AuthenticatedUser | null;
  }
}

export default fp(
  async (app) => {
    const verify = createJwtVerifier(app.config);
    app.decorateRequest('user', null);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_\-.]{1,8192})$/.exec(header) : null;
      if (!match?.[1]) {
        throw new HttpError(401, 'UNAUTHENTICATED', 'Authorization: Bearer <JWT> is required', { 'www-authenticate': 'Bearer' });
      }
      try {
        const caller = verify(match[1]);
        request.user = { ref: userRef(app.config.USER_ID_HASH_SECRET, caller.sub), sub: caller.sub };
      } catch (err) {
        const reason = err instanceof AuthError ? err.message : 'invalid token';
        throw new HttpError(401, 'INVALID_TOKEN', `The bearer token was rejected: ${reason}`, {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      }
    });
  },
  { name: 'auth', dependencies: ['config'] },
);
