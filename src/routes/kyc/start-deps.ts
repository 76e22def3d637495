import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../errors/http-error.js';
import type { StartDeps } from '../../sessions/start.js';
import { onCallerGone } from './caller-gone.js';

/**
 * What a start or a resume needs from the app, for one request: the budget's look-ahead (read-only)
 * sent to Redis with the per-user limit (one round trip for both; its verdict is dropped if the
 * limit refuses), and a signal that gives up the upstream wait (and a queued budget slot) when the
 * caller goes away.
 */
export async function startDeps(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<{ deps: StartDeps; signal: AbortSignal }> {
  const lookAhead = app.budget.check('Initialize');
  lookAhead.catch(() => {}); // handled: startSession awaits it
  await app.limits.startByUser(request, reply);
  const abort = new AbortController();
  onCallerGone(reply, () => abort.abort(new HttpError(503, 'REQUEST_ABORTED', 'The request was abandoned')));
  return {
    deps: {
      config: app.config,
      sessions: app.sessions,
      callbackTokens: app.callbackTokens,
      sealer: app.sealer,
      lookAhead,
      cloudauth: app.cloudauth,
      log: request.log,
      onUpstreamRequestId: (id) => {
        request.upstreamRequestId = id;
      },
    },
    signal: abort.signal,
  };
}
