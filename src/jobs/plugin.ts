import fp from 'fastify-plugin';
import PgBoss from 'pg-boss';
import { splitSchemaParam } from '../db/url.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Durable jobs in PostgreSQL (pg-boss): they survive restarts and crashes, and retry with backoff. */
    jobs: PgBoss;
  }
}

/**
 * pg-boss rather than a Redis queue: this Redis is a cache run without persistence, so a job
 * stored there could vanish on restart; PostgreSQL already holds the sessions the jobs act on.
 * pg-boss creates and migrates its own schema (JOBS_SCHEMA) on start.
 */
export default fp(
  async (app) => {
    const boss = new PgBoss({
      connectionString: splitSchemaParam(app.config.DATABASE_URL).connectionString,
      schema: app.config.JOBS_SCHEMA,
      max: 4,
      application_name: 'kyc-gateway-jobs',
      schedule: app.config.JOBS_WORKERS,
      supervise: app.config.JOBS_WORKERS,
      // Maintenance is what retries a job whose process died mid-job, once the job's timeout has passed.
      maintenanceIntervalSeconds: app.config.JOBS_MAINTENANCE_INTERVAL_S,
    });
    boss.on('error', (err) => app.log.error({ err: { message: err.message } }, 'job queue error'));
    await boss.start();
    app.decorate('jobs', boss);
    app.addHook('onClose', async () => {
      // Let running jobs finish (a crash mid-job is also safe: the job is retried after it expires).
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
    });
  },
  { name: 'jobs', dependencies: ['config'] },
);
