import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/**
 * The security headers @fastify/helmet adds to every response (registered in app.ts with the same
 * options), for the answers given outside Fastify's hooks: framework errors before routing and
 * the callback gate's refusals.
 */
export const HELMET_OPTIONS = { contentSecurityPolicy: false } as const;

export const securityHeaders = helmet(HELMET_OPTIONS);

/**
 * The same headers as a flat [name, value, …] list for `writeHead`, taken once from helmet itself:
 * with these options (no CSP, so no per-request nonce) they are the same on every response, and
 * one writeHead costs far less than helmet's dozen setHeader calls per response.
 */
export function staticSecurityHeaders(): string[] {
  const headers: string[] = [];
  const collector = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push(name.toLowerCase(), String(value));
      return collector;
    },
    removeHeader() {},
    getHeader() {
      return undefined;
    },
  };
  securityHeaders({ headers: {} } as IncomingMessage, collector as unknown as ServerResponse, () => {});
  return headers;
}
