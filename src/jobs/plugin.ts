import fp from 'fastify-plugin';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { splitSchemaParam } from '../db/url.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Durable jobs in PostgreSQL (pg-boss): they survive restarts and crashes, and retry with backoff. */
    jobs: PgBoss;
    /**
     * Runs `fn` in one transaction on the job queue's database. Its `db` runs SQL in the
     * transaction; passed as the `db` option of `jobs.send`, it inserts the job in it.
     */
    jobsTransaction<T>(fn: (db: PgBoss.Db) => Promise<T>): Promise<T>;
  }
}

/**
 * pg-boss rather than a Redis queue: this Redis is a cache run without persistence, so a job
 * stored there could vanish on restart; PostgreSQL already holds the sessions the jobs act on.
 * pg-boss creates and migrates its own schema (JOBS_SCHEMA) on start.
 */
export default fp(
  async (app) => {
    const { connectionString } = splitSchemaParam(app.config.DATABASE_URL);
    const boss = new PgBoss({
      connectionString,
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

    // pg-boss's pool runs one statement per call: transactions take a connection of their own.
    const txPool = new pg.Pool({ connectionString, max: 2, application_name: 'kyc-gateway-jobs' });
    txPool.on('error', (err) => app.log.error({ err: { message: err.message } }, 'job queue error'));
    const jobsTransaction = async <T>(fn: (db: PgBoss.Db) => Promise<T>): Promise<T> => {
      const client = await txPool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn({ executeSql: (text, values) => client.query(text, values) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    };

    app.decorate('jobs', boss);
    app.decorate('jobsTransaction', jobsTransaction);
    app.addHook('onClose', async () => {
      // Let running jobs finish (a crash mid-job is also safe: the job is retried after it expires).
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
      await txPool.end();
    });
  },
  { name: 'jobs', dependencies: ['config'] },
);
