import fp from 'fastify-plugin';
import { lazyChildLoggerFactory } from './lazy-child.js';
import { REQUEST_ID_HEADER } from './request-log.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** RequestId of the last Alibaba call made for this request (logged with the request). */
    upstreamRequestId: string | null;
    /**
     * Log this request's line at debug: for refusals a flood produces by the thousand (forged
     * callbacks), which metrics count instead; a flood must not become a log flood.
     */
    logQuietly: boolean;
  }
}

/** Request ids echoed to the caller. */
export default fp(
  async (app) => {
    app.decorateRequest('upstreamRequestId', null);
    app.decorateRequest('logQuietly', false);
    // Each request's logger is made when first written to (lazy-child.ts).
    app.setChildLoggerFactory(lazyChildLoggerFactory);
    // Hooks on every request take a callback, not a promise: cheaper per request.
    app.addHook('onSend', (request, reply, payload, done) => {
      reply.header(REQUEST_ID_HEADER, request.id);
      done(null, payload);
    });
  },
  { name: 'request-logging' },
);
