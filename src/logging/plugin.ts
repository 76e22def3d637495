import fp from 'fastify-plugin';
import { REQUEST_ID_HEADER, requestContext } from './request-log.js';

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

/** Request ids echoed to the caller, and the request context upstream calls report to. */
export default fp(
  async (app) => {
    app.decorateRequest('upstreamRequestId', null);
    app.decorateRequest('logQuietly', false);
    app.addHook('onSend', async (request, reply) => {
      reply.header(REQUEST_ID_HEADER, request.id);
    });
    // Runs the rest of the request (route preHandlers, handler) inside the request's context.
    app.addHook('preHandler', (request, _reply, done) => {
      requestContext.run(request, done);
    });
  },
  { name: 'request-logging' },
);
