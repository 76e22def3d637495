/**
 * `/verify/:transactionId`: the page behind TransactionUrl, where a person picks Pass or Fail.
 *
 * Single use, as Alibaba documents: "the TransactionUrl can be used only once. Accessing it more
 * than once causes authentication exceptions." The first GET shows the page; every later GET shows
 * an error page, even before the verification is complete. The page's form still completes it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { appendQuery } from './callback.js';
import { completeAndNotify, type CompletionDeps } from './completion.js';
import { PAGE_SECURITY_POLICY, renderDonePage, renderErrorPage, renderVerifyPage } from './page.js';
import type { CompletionResult } from './store.js';

type Failure = Extract<CompletionResult, { ok: false }>['reason'] | 'already_used' | 'not_opened';

const FAILURE_PAGES: Record<Failure, { status: number; title: string; detail: string }> = {
  not_found: { status: 404, title: 'Unknown verification', detail: 'This verification link is not valid.' },
  expired: { status: 410, title: 'Verification expired', detail: 'This verification link has expired (30 minutes).' },
  already_completed: { status: 409, title: 'Already completed', detail: 'This verification link was already used.' },
  already_used: {
    status: 409,
    title: 'Verification exception',
    detail: 'This verification link was already used: it can be opened only once. Start a new verification.',
  },
  not_opened: {
    status: 409,
    title: 'Verification exception',
    detail: 'This verification was not started from its link.',
  },
};

interface Params {
  transactionId: string;
}

export async function pageRoutes(app: FastifyInstance, deps: CompletionDeps): Promise<void> {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => done(null, new URLSearchParams(String(body))),
  );

  app.get<{ Params: Params }>('/verify/:transactionId', async (request, reply) => {
    const transaction = deps.store.get(request.params.transactionId);
    if (!transaction) return sendFailure(reply, 'not_found');
    const state = deps.store.stateOf(transaction);
    if (state === 'expired') return sendFailure(reply, 'expired');
    const first = deps.store.recordOpen(transaction);
    if (!first) return sendFailure(reply, 'already_used');
    if (state === 'completed') return sendFailure(reply, 'already_completed');
    return sendHtml(reply, 200, renderVerifyPage(transaction));
  });

  app.post<{ Params: Params }>('/verify/:transactionId/complete', async (request, reply) => {
    const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
    const passed = form.get('passed');
    if (passed !== 'Y' && passed !== 'N') {
      return sendHtml(reply, 400, renderErrorPage('Bad request', 'passed must be Y or N.'));
    }
    // The form exists only on the opened page (the control API completes without it).
    const opened = deps.store.get(request.params.transactionId);
    if (opened && opened.opens === 0) return sendFailure(reply, 'not_opened');
    const outcome = await completeAndNotify(deps, request.params.transactionId, passed);
    if (!outcome.ok) return sendFailure(reply, outcome.reason);
    const { transaction } = outcome;
    if (transaction.returnUrl) {
      return reply.redirect(appendQuery(transaction.returnUrl, [['transactionId', transaction.transactionId]]), 303);
    }
    return sendHtml(reply, 200, renderDonePage(transaction));
  });
}

function sendFailure(reply: FastifyReply, reason: Failure): FastifyReply {
  const page = FAILURE_PAGES[reason];
  return sendHtml(reply, page.status, renderErrorPage(page.title, page.detail));
}

function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', PAGE_SECURITY_POLICY)
    .header('cache-control', 'no-store')
    .send(html);
}
