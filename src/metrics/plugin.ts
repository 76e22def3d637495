import fp from 'fastify-plugin';
import { createMetrics, type Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry and metrics (see metrics.ts); served at /metrics. */
    metrics: Metrics;
  }
}

/** Route label of requests that matched no route (never the raw URL: labels must stay few). */
export const UNMATCHED_ROUTE = 'unmatched';

export default fp(
  async (app) => {
    const metrics = createMetrics({
      countSessions: async () => {
        const rows = await app.prisma.kycSession.groupBy({ by: ['status'], _count: { _all: true } });
        return rows.map((r) => ({ status: r.status, count: r._count._all }));
      },
      onCollectError: (err) => app.log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'metrics: sessions count left out'),
    });
    app.decorate('metrics', metrics);

    app.addHook('onResponse', (request, reply, done) => {
      metrics.httpDuration.observe(
        { method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      done();
    });
    app.addHook('onClose', async () => {
      metrics.registry.clear();
    });
  },
  { name: 'metrics', dependencies: ['config', 'db'] },
);
