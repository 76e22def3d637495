/**
 * `/demo` and `/demo/token`: a clickable merchant frontend for local use. The token endpoint stands in
 * for the merchant's sign-in and mints short-lived HS256 caller JWTs for any test user name, so it
 * is only registered when a secret is configured, and that secret must never be a production one.
 */
import type { FastifyInstance } from 'fastify';
import { createSigner } from 'fast-jwt';
import { z } from 'zod';
import { DEMO_TOKEN_CLAIM } from '../auth/jwt.js';
import { demoSecurityPolicy, renderDemoPage } from './demo-page.js';

export const DEFAULT_DEMO_TOKEN_TTL_SECONDS = 10 * 60;

export interface DemoOptions {
  /** HS256 secret of the service's caller JWTs (its AUTH_JWT_SECRET). */
  jwtSecret: string;
  /** Where the browser reaches the service, e.g. http://127.0.0.1:3000. */
  serviceUrl: string;
  /** Lifetime of the minted tokens. Default 10 minutes. */
  tokenTtlSeconds?: number;
  /** `iss` and `aud` of the minted tokens, when the service requires them (AUTH_JWT_ISSUER/AUDIENCE). */
  issuer?: string;
  audience?: string;
}

const TokenBody = z.object({
  user: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'user must be 1-64 letters, digits or . _ @ -'),
});

/** Checks the options once, at build time, so a bad configuration fails at start rather than in a browser. */
export function checkDemoOptions(options: DemoOptions): DemoOptions & { tokenTtlSeconds: number } {
  if (!options.jwtSecret) throw new Error('demo.jwtSecret must not be empty');
  const url = new URL(options.serviceUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('demo.serviceUrl must be an http(s) URL');
  const tokenTtlSeconds = options.tokenTtlSeconds ?? DEFAULT_DEMO_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(tokenTtlSeconds) || tokenTtlSeconds < 60) throw new Error('demo.tokenTtlSeconds must be an integer ≥ 60');
  return { ...options, serviceUrl: options.serviceUrl.replace(/\/+$/, ''), tokenTtlSeconds };
}

export async function demoRoutes(app: FastifyInstance, raw: DemoOptions): Promise<void> {
  const options = checkDemoOptions(raw);
  const sign = createSigner({
    key: options.jwtSecret,
    algorithm: 'HS256',
    ...(options.issuer ? { iss: options.issuer } : {}),
    ...(options.audience ? { aud: options.audience } : {}),
  });
  const html = renderDemoPage({ serviceUrl: options.serviceUrl, tokenTtlSeconds: options.tokenTtlSeconds });
  const policy = demoSecurityPolicy(options.serviceUrl);

  app.get('/demo', async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', policy)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(html),
  );

  app.post('/demo/token', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const body = TokenBody.safeParse(request.body);
    if (!body.success) {
      return reply.code(400).send({ error: 'invalid_body', message: body.error.issues[0]?.message ?? 'invalid body' });
    }
    const issuedAt = Math.floor(Date.now() / 1000);
    const expiresAt = issuedAt + options.tokenTtlSeconds;
    return {
      user: body.data.user,
      // Marked as a demo token: a production service refuses it even when it shares the secret.
      token: sign({ [DEMO_TOKEN_CLAIM]: true, sub: body.data.user, iat: issuedAt, exp: expiresAt }),
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  });
}
