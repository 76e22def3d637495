import fp from 'fastify-plugin';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { transaction } from '../db/query.js';
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
    /** Creates a queue, or updates an existing one's options (createQueue keeps them), so a changed configuration applies to new jobs. */
    ensureQueue(options: PgBoss.Queue): Promise<void>;
    /**
     * Queues a job on a stately queue unless one with the same key is queued, waiting to retry or
     * running (that job does the work when it runs). Returns whether it queued one. See below.
     */
    sendOnce(queue: string, key: string, data: object, options?: PgBoss.SendOptions): Promise<boolean>;
    /**
     * Starts `count` workers of a queue in this process, one job at a time each (polling every
     * JOBS_POLL_INTERVAL_S); a job sendOnce queues on it wakes them at once.
     */
    workOn<T>(queue: string, count: number, handler: PgBoss.WorkWithMetadataHandler<T>): Promise<void>;
  }
}

/**
 * Past this a sweep job (a singleton queue's) counts as dead (its process was killed) and is
 * retried, instead of after pg-boss's default 15 minutes: an orphan holds its queue until then
 * (pg-boss #535). A sweep is a few queries and at most a batch of sends.
 */
export const SWEEP_TIMEOUT_S = 300;

/** Whether this run of a job is its last attempt. */
export const isLastAttempt = (job: PgBoss.JobWithMetadata<unknown>): boolean => job.retryCount >= job.retryLimit;

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
    const jobsTransaction = <T>(fn: (db: PgBoss.Db) => Promise<T>): Promise<T> =>
      transaction(txPool, (client) => fn({ executeSql: (text, values) => client.query(text, values) }));

    const ensureQueue = async (options: PgBoss.Queue) => {
      await boss.createQueue(options.name, { ...options });
      await boss.updateQueue(options.name, { ...options });
    };

    /** This process's workers by queue, woken when a job is queued on it. */
    const workers = new Map<string, string[]>();
    const workOptions = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: app.config.JOBS_POLL_INTERVAL_S };
    const workOn = async <T>(queue: string, count: number, handler: PgBoss.WorkWithMetadataHandler<T>) => {
      const ids = workers.get(queue) ?? [];
      workers.set(queue, ids);
      for (let i = 0; i < count; i++) ids.push(await boss.work<T>(queue, workOptions, handler));
    };

    /**
     * A stately queue accepts a second job beside one of the same key that is active or waiting to
     * retry, but pg-boss 10 cannot start it: the fetch that reaches it breaks the one-active-job-per-key
     * index and fails whole, so the queue stops, for every key, until the other job ends: for a job
     * orphaned by a killed process, its expiry plus maintenance later (pg-boss #535). Nor would it do
     * to send only once the other job looks dead: a job sent beside its retry stops the queue the same
     * way when the retry comes due. The lock per (queue, key) orders concurrent senders, so no job can
     * appear between the look and the insert.
     */
    const sendOnce = async (queue: string, key: string, data: object, options: PgBoss.SendOptions = {}): Promise<boolean> => {
      const sent = await jobsTransaction(async (db) => {
        await db.executeSql('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [queue, key]);
        // The predicate of pg-boss's stately index (job_i3 on each queue's partition), which serves this look.
        const { rows } = await db.executeSql(
          `SELECT 1 FROM ${app.config.JOBS_SCHEMA}.job
            WHERE name = $1 AND COALESCE(singleton_key, '') = $2 AND state <= 'active' AND policy = 'stately' LIMIT 1`,
          [queue, key],
        );
        if (rows.length > 0) return false;
        return (await boss.send(queue, data, { ...options, singletonKey: key, db })) !== null;
      });
      // Idle workers of this process take it now instead of at their next poll.
      if (sent) for (const id of workers.get(queue) ?? []) boss.notifyWorker(id);
      return sent;
    };

    app.decorate('jobs', boss);
    app.decorate('jobsTransaction', jobsTransaction);
    app.decorate('ensureQueue', ensureQueue);
    app.decorate('sendOnce', sendOnce);
    app.decorate('workOn', workOn);
    app.addHook('onClose', async () => {
      // Let running jobs finish (a crash mid-job is also safe: the job is retried after it expires).
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
      await txPool.end();
    });
  },
  { name: 'jobs', dependencies: ['config'] },
);
