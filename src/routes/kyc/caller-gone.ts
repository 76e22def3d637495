import type { FastifyReply } from 'fastify';

/**
 * Calls `fn` if the caller goes away before its answer is written: the response's 'close' before it
 * finished (the request's 'close' fires as soon as its body has been read, since Node 16).
 */
export function onCallerGone(reply: FastifyReply, fn: () => void): void {
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) fn();
  });
}
