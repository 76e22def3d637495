/** `/__sim/*`: the control API used by tests, benchmarks and the demo. Not part of Alibaba's API. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { CallLog } from './call-log.js';
import { completeAndNotify, notify, type CompletionDeps } from './completion.js';
import type { FaultQueue } from './faults.js';
import type { ProbeLog } from './probe.js';
import type { Transaction } from './store.js';

export interface ControlDeps extends CompletionDeps {
  calls: CallLog;
  faults: FaultQueue;
  probes: ProbeLog;
  /** Forgets everything: transactions, calls, faults, probes, nonces, rate-limit windows. */
  reset: () => void;
}

const CompleteBody = z.object({
  passed: z.enum(['Y', 'N']),
  subCode: z.string().min(1).optional(),
});

const FaultBody = z.object({
  action: z.string().min(1),
  status: z.number().int().min(200).max(599).default(500),
  code: z.string().min(1),
  message: z.string().optional(),
  count: z.number().int().min(1).default(1),
  delayMs: z.number().int().min(0).default(0),
  retryAfterMs: z.number().int().min(0).optional(),
});

const ResultOverride = z.record(z.string(), z.unknown());

const FAILURE_STATUS = { not_found: 404, expired: 410, already_completed: 409 } as const;

interface Params {
  id: string;
}

export async function controlRoutes(app: FastifyInstance, deps: ControlDeps): Promise<void> {
  const { store } = deps;
  const view = (t: Transaction) => ({ ...t, state: store.stateOf(t) });

  app.get('/__sim/health', async () => ({ ok: true }));

  app.post('/__sim/reset', async (_request, reply) => {
    deps.reset();
    return reply.code(204).send();
  });

  app.get('/__sim/transactions', async () => store.list().map(view));

  app.get<{ Params: Params }>('/__sim/transactions/:id', async (request, reply) => {
    const transaction = store.get(request.params.id);
    return transaction ? view(transaction) : notFound(reply);
  });

  app.post<{ Params: Params }>('/__sim/transactions/:id/complete', async (request, reply) => {
    const body = CompleteBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, body.error);
    const outcome = await completeAndNotify(deps, request.params.id, body.data.passed, body.data.subCode);
    if (!outcome.ok) return reply.code(FAILURE_STATUS[outcome.reason]).send({ error: outcome.reason });
    return { transaction: view(outcome.transaction), delivery: outcome.delivery };
  });

  app.post<{ Params: Params }>('/__sim/transactions/:id/redeliver', async (request, reply) => {
    const transaction = store.get(request.params.id);
    if (!transaction) return notFound(reply);
    if (!transaction.outcome) return reply.code(409).send({ error: 'not_completed' });
    return { delivery: await notify(deps, transaction) };
  });

  app.put<{ Params: Params }>('/__sim/transactions/:id/result', async (request, reply) => {
    const body = ResultOverride.safeParse(request.body);
    if (!body.success) return badRequest(reply, body.error);
    const transaction = store.get(request.params.id);
    if (!transaction) return notFound(reply);
    transaction.resultOverride = body.data;
    return view(transaction);
  });

  app.get('/__sim/faults', async () => deps.faults.list());
  app.post('/__sim/faults', async (request, reply) => {
    const body = FaultBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, body.error);
    deps.faults.add(body.data);
    return reply.code(201).send(body.data);
  });
  app.delete('/__sim/faults', async (_request, reply) => {
    deps.faults.clear();
    return reply.code(204).send();
  });

  // The CallbackUrl checks made at Initialize (a refused Initialize leaves no transaction to show them).
  app.get('/__sim/probes', async () => deps.probes.list());
  app.delete('/__sim/probes', async (_request, reply) => {
    deps.probes.clear();
    return reply.code(204).send();
  });

  app.get('/__sim/calls', async () => deps.calls.list());
  app.delete('/__sim/calls', async (_request, reply) => {
    deps.calls.clear();
    return reply.code(204).send();
  });
}

function notFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ error: 'not_found' });
}

function badRequest(reply: FastifyReply, error: z.ZodError): FastifyReply {
  return reply.code(400).send({ error: 'invalid_body', detail: z.prettifyError(error) });
}
