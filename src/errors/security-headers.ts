import helmet from 'helmet';

/**
 * The security headers @fastify/helmet adds to every response (registered in app.ts with the same
 * options), for the answers given outside Fastify's hooks: framework errors before routing and
 * the callback gate's refusals.
 */
export const HELMET_OPTIONS = { contentSecurityPolicy: false } as const;

export const securityHeaders = helmet(HELMET_OPTIONS);
