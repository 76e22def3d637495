import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../errors/schema.js';
import { EXEMPT_FROM_OVERLOAD } from '../overload/options.js';
import { checkRedis } from '../redis/client.js';

/** Each readiness check answers within this, so /readyz answers within it too (they run together). */
export const READINESS_CHECK_TIMEOUT_MS = 500;

const checkResult = z.enum(['ok', 'error', 'timeout']);
const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({
      postgres: checkResult.describe('SELECT 1'),
      redis: checkResult.describe('PING; on a Redis Cluster, CLUSTER INFO must say cluster_state:ok'),
      config: z.literal('ok').describe('Validated at start-up: a bad configuration stops the process before it listens.'),
      load: z.enum(['ok', 'overloaded']).describe('Overloaded while other routes answer 503 OVERLOADED (OVERLOAD_*).'),
    }),
  })
  .describe('Readiness');
type Checks = z.infer<typeof readinessSchema>['checks'];

/** Settles with 'ok', 'error' or 'timeout' within `ms`; the reason of a failure goes to `failed`. */
async function bounded(check: () => Promise<unknown>, ms: number, failed: (reason: string) => void): Promise<'ok' | 'error' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const run = check().then(
    () => 'ok' as const,
    (err: unknown) => {
      failed(err instanceof Error ? err.message.slice(0, 200) : String(err));
      return 'error' as const;
    },
  );
  try {
    const result = await Promise.race([run, timeout]);
    if (result === 'timeout') failed(`no answer within ${ms} ms`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      config: EXEMPT_FROM_OVERLOAD,
      schema: {
        summary: 'Liveness: the process is up',
        tags: ['ops'],
        response: { 200: z.object({ status: z.literal('ok') }), ...errorResponses() },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: EXEMPT_FROM_OVERLOAD,
      schema: {
        summary: 'Readiness: PostgreSQL and Redis answer, and the process is not overloaded',
        description: `Each check is bounded by ${READINESS_CHECK_TIMEOUT_MS} ms and they run together.`,
        tags: ['ops'],
        response: {
          ...errorResponses(),
          200: readinessSchema,
          503: readinessSchema.describe('Not ready: the checks say which dependency failed.'),
        },
      },
    },
    async (request, reply) => {
      const reasons: Record<string, string> = {};
      const [postgres, redis] = await Promise.all([
        bounded(() => app.prisma.$queryRaw`SELECT 1`, READINESS_CHECK_TIMEOUT_MS, (r) => (reasons.postgres = r)),
        bounded(() => checkRedis(app.redis), READINESS_CHECK_TIMEOUT_MS, (r) => (reasons.redis = r)),
      ]);
      const checks: Checks = { postgres, redis, config: 'ok', load: app.isUnderPressure() ? 'overloaded' : 'ok' };
      const ready = Object.values(checks).every((c) => c === 'ok');
      if (!ready) request.log.warn({ checks, reasons }, 'not ready');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );
};

export default healthRoutes;
