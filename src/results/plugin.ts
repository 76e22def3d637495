import fp from 'fastify-plugin';
import type PgBoss from 'pg-boss';
import type { Config } from '../config/schema.js';
import { FINAL_STATUSES } from '../sessions/status.js';
import { checkSession, type CheckDeps } from './check-result.js';
import { deliverEvent, sessionEvent, WEBHOOK_TIMEOUT_MS } from './notify.js';
import { userIdOf } from '../sessions/user-id.js';

declare module 'fastify' {
  interface FastifyInstance {
    results: {
      /** Queues the CheckResult that decides a session, unless it has one queued or running. */
      requestCheck(sessionId: string): Promise<void>;
      /** One reconciliation sweep (also run on RECONCILE_CRON): returns how many sessions it queued a CheckResult for or expired. */
      reconcile(): Promise<{ queued: number; expired: number }>;
      /** Purges stored details past KYC_RESULT_RETENTION_DAYS (also run hourly). */
      purgeDetails(): Promise<number>;
    };
  }
}

export const QUEUES = {
  check: 'kyc_check_result',
  notify: 'kyc_notify',
  reconcile: 'kyc_reconcile',
  purge: 'kyc_purge_details',
} as const;

/**
 * The priority of the CheckResult a callback asks for (the sweep's are 0): workers fetch it before
 * a reconciliation backlog, so a user who just finished waits for one job, not for the backlog.
 */
const LIVE_CHECK_PRIORITY = 1;
/** A session verifying this long with no CheckResult job queued or running lost its job (see sendOnce). */
const STUCK_VERIFYING_MS = 2 * 60_000;
const RECONCILE_BATCH = 500;
/** Past this a reconciliation or purge job counts as dead (its process was killed) and is retried. */
const SWEEP_TIMEOUT_S = 300;
const NOTIFY_ATTEMPTS = 12;
/** Slack of a merchant event job over the longest a live one can take (see notifyJobTimeoutS). */
const NOTIFY_JOB_MARGIN_S = 60;

/**
 * Past this a merchant event job counts as dead (its process was killed mid-delivery) and is
 * retried, instead of after pg-boss's default 15 minutes. A live job runs two queries (each within
 * DATABASE_TIMEOUT_MS) and one delivery (within WEBHOOK_TIMEOUT_MS); the margin covers a busy event
 * loop. One that still overran would only be delivered twice, with the same event id.
 */
export const notifyJobTimeoutS = (config: Pick<Config, 'DATABASE_TIMEOUT_MS'>): number =>
  Math.ceil((WEBHOOK_TIMEOUT_MS + 2 * config.DATABASE_TIMEOUT_MS) / 1000) + NOTIFY_JOB_MARGIN_S;

/** A job about one session. Jobs queued before sessions had ids of their own carry its merchantBizId instead. */
interface SessionJob {
  sessionId?: string;
  merchantBizId?: string;
}

/**
 * After the callback: CheckResult (durable job, retried with backoff), the reconciliation sweep
 * for lost callbacks, the retention purge and the merchant's signed events.
 */
export default fp(
  async (app) => {
    const { config, jobs, sessions } = app;
    const retry = { retryDelay: config.CHECK_RESULT_RETRY_DELAY_S, retryBackoff: true };
    /** createQueue keeps an existing queue's options: update them so a changed configuration applies to new jobs. */
    const ensureQueue = async (options: PgBoss.Queue) => {
      await jobs.createQueue(options.name, { ...options });
      await jobs.updateQueue(options.name, { ...options });
    };
    // A job still active after expireInSeconds (its process was killed mid-call) is retried by the queue's maintenance.
    await ensureQueue({ name: QUEUES.check, policy: 'stately', retryLimit: config.CHECK_RESULT_MAX_ATTEMPTS - 1, expireInSeconds: config.CHECK_RESULT_JOB_TIMEOUT_S, ...retry });
    await ensureQueue({ name: QUEUES.notify, policy: 'stately', retryLimit: NOTIFY_ATTEMPTS - 1, expireInSeconds: notifyJobTimeoutS(config), ...retry });
    // A singleton queue runs one job at a time: a sweep orphaned by a killed process stays active, and every later
    // sweep's fetch fails on it (pg-boss #535) until it expires, by default after 15 minutes. A sweep is two queries
    // and at most RECONCILE_BATCH sends of a few ms each, so SWEEP_TIMEOUT_S is ample; one that overran it would only
    // be run again beside itself, which is harmless (sendOnce, and the updates are idempotent).
    await ensureQueue({ name: QUEUES.reconcile, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });
    await ensureQueue({ name: QUEUES.purge, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });

    const workerIds: Record<keyof typeof QUEUES, string[]> = { check: [], notify: [], reconcile: [], purge: [] };
    /** Wakes a queue's idle workers now instead of at their next poll. */
    const wake = (queue: keyof typeof QUEUES) => {
      for (const id of workerIds[queue]) jobs.notifyWorker(id);
    };

    /**
     * Queues a session's job on a stately queue (CheckResult, merchant event) unless one of that
     * session is already queued, waiting to retry or running: that job reads the session when it
     * runs, so it does the work. The stately queue accepts a second job beside such a one, but
     * pg-boss 10 cannot start it: the fetch that reaches it breaks the one-active-job-per-key index
     * and fails whole, so the queue stops, for every session, until the other job ends: for a job
     * orphaned by a killed process, its expiry plus maintenance later (pg-boss #535). Nor would it do
     * to send only once the other job looks dead: a job sent beside its retry stops the queue the same
     * way when the retry comes due. The lock per (queue, session) orders concurrent senders (callback,
     * sweep, CheckResult), so no job can appear between the look and the insert.
     */
    const sendOnce = (queue: typeof QUEUES.check | typeof QUEUES.notify, sessionId: string, options: PgBoss.SendOptions = {}): Promise<boolean> =>
      app.jobsTransaction(async (db) => {
        await db.executeSql('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [queue, sessionId]);
        // The predicate of pg-boss's stately index (job_i3 on each queue's partition), which serves this look.
        const { rows } = await db.executeSql(
          `SELECT 1 FROM ${config.JOBS_SCHEMA}.job
            WHERE name = $1 AND COALESCE(singleton_key, '') = $2 AND state <= 'active' AND policy = 'stately' LIMIT 1`,
          [queue, sessionId],
        );
        if (rows.length > 0) return false;
        return (await jobs.send(queue, { sessionId } satisfies SessionJob, { ...options, singletonKey: sessionId, db })) !== null;
      });

    const notify = async (sessionId: string) => {
      if (!config.MERCHANT_WEBHOOK_URL) return;
      // Sent just before the state change it reports, and run a second later: if the process dies
      // in between, the job still finds the session and the sweep finishes the state change. Not
      // sent while one is pending: that one reads the session when it runs, and retries until final.
      await sendOnce(QUEUES.notify, sessionId, { startAfter: 1 });
    };

    const requestCheck = async (sessionId: string) => {
      if (await sendOnce(QUEUES.check, sessionId, { priority: LIVE_CHECK_PRIORITY })) wake('check');
    };

    const reconcile = async () => {
      const now = new Date();
      const expired = await sessions.expireUnstarted(now);
      const due = await sessions.findToReconcile(now, new Date(now.getTime() - STUCK_VERIFYING_MS), RECONCILE_BATCH);
      let queued = 0;
      for (const { id } of due) if (await sendOnce(QUEUES.check, id)) queued++;
      if (queued > 0) wake('check');
      if (queued > 0 || expired > 0) app.log.info({ queued, expired }, 'reconciliation sweep');
      return { queued, expired };
    };

    const purgeDetails = async () => {
      const purged = await sessions.purgeDetails(new Date(Date.now() - config.KYC_RESULT_RETENTION_DAYS * 86_400_000));
      if (purged > 0) app.log.info({ purged }, 'purged stored result details');
      return purged;
    };

    app.decorate('results', { requestCheck, reconcile, purgeDetails });

    if (!config.JOBS_WORKERS) return;
    const workOptions = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: config.JOBS_POLL_INTERVAL_S };
    /** pg-boss runs one job at a time per worker: `count` workers run that many concurrently. */
    const work = async <T>(queue: keyof typeof QUEUES, count: number, handler: PgBoss.WorkWithMetadataHandler<T>) => {
      for (let i = 0; i < count; i++) workerIds[queue].push(await jobs.work<T>(QUEUES[queue], workOptions, handler));
    };
    const deps: CheckDeps = { config, sessions, cloudauth: app.cloudauth, sealer: app.sealer, log: app.log, notify };
    /** The session a job is about (a job from before sessions had ids names a merchantBizId that was then unique). */
    const sessionOf = async (job: SessionJob): Promise<string | undefined> => {
      if (job.sessionId) return job.sessionId;
      if (!job.merchantBizId) return undefined;
      const matches = await sessions.listByMerchantBizId(job.merchantBizId, 2);
      return matches.length === 1 ? matches[0]!.id : undefined;
    };
    const lastAttempt = (job: PgBoss.JobWithMetadata<unknown>) => job.retryCount >= job.retryLimit;

    await work<SessionJob>('check', config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job) return;
      const sessionId = await sessionOf(job.data);
      const log = app.log.child({ job: job.id, sessionId, attempt: job.retryCount + 1 });
      if (!sessionId) return { outcome: 'skipped' };
      try {
        return { outcome: await app.metrics.checkResult(checkSession({ ...deps, log }, sessionId, { lastAttempt: lastAttempt(job) })) };
      } catch (err) {
        log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'CheckResult will be retried');
        throw err;
      }
    });

    await work<SessionJob>('notify', config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job || !config.MERCHANT_WEBHOOK_URL || !config.MERCHANT_WEBHOOK_SECRET) return;
      const sessionId = await sessionOf(job.data);
      const session = sessionId ? await sessions.findById(sessionId) : null;
      if (!session) return;
      if (!(FINAL_STATUSES as readonly string[]).includes(session.status)) throw new Error('session not final yet');
      const event = sessionEvent(session, userIdOf(app.sealer, session));
      await deliverEvent(config.MERCHANT_WEBHOOK_URL, config.MERCHANT_WEBHOOK_SECRET, event);
      app.log.info({ sessionId: session.id, merchantBizId: session.merchantBizId, eventId: event.id }, 'merchant event delivered');
      // sendOnce queues no event of this session while this job runs. An expired or error session
      // reopened by a late callback and decided meanwhile: run again to deliver its new state.
      const now = await sessions.findById(session.id);
      if (now && now.status !== session.status) throw new Error('session changed during delivery');
    });

    await work('reconcile', 1, async () => reconcile());
    await work('purge', 1, async () => ({ purged: await purgeDetails() }));
    await jobs.schedule(QUEUES.reconcile, config.RECONCILE_CRON);
    await jobs.schedule(QUEUES.purge, '17 * * * *');
  },
  { name: 'results', dependencies: ['config', 'jobs', 'sessions', 'cloudauth', 'metrics', 'privacy'] },
);
