import fp from 'fastify-plugin';
import type PgBoss from 'pg-boss';
import { isLastAttempt, SWEEP_TIMEOUT_S } from '../jobs/plugin.js';
import { checkSession, type CheckDeps } from './check-result.js';

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
  reconcile: 'kyc_reconcile',
  purge: 'kyc_purge_details',
} as const;

/**
 * The priority of the CheckResult a callback asks for (the sweep's are 0): workers fetch it before
 * a reconciliation backlog, so a user who just finished waits for one job, not for the backlog.
 */
const LIVE_CHECK_PRIORITY = 1;
/** A session verifying this long with no CheckResult job queued or running lost its job (see app.sendOnce). */
const STUCK_VERIFYING_MS = 2 * 60_000;
const RECONCILE_BATCH = 500;
/** A job about one session. Jobs queued before sessions had ids of their own carry its merchantBizId instead. */
interface SessionJob {
  sessionId?: string;
  merchantBizId?: string;
}

/**
 * After the callback: CheckResult (durable job, retried with backoff), the reconciliation sweep
 * for lost callbacks and the retention purge. The merchant's events are recorded by the database
 * with each change and delivered by the events plugin.
 */
export default fp(
  async (app) => {
    const { config, jobs, sessions } = app;
    const retry = { retryDelay: config.CHECK_RESULT_RETRY_DELAY_S, retryBackoff: true };
    // A job still active after expireInSeconds (its process was killed mid-call) is retried by the queue's maintenance.
    await app.ensureQueue({ name: QUEUES.check, policy: 'stately', retryLimit: config.CHECK_RESULT_MAX_ATTEMPTS - 1, expireInSeconds: config.CHECK_RESULT_JOB_TIMEOUT_S, ...retry });
    // A singleton queue runs one job at a time: a sweep orphaned by a killed process stays active, and every later
    // sweep's fetch fails on it (pg-boss #535) until it expires, by default after 15 minutes. A sweep is two queries
    // and at most RECONCILE_BATCH sends of a few ms each, so SWEEP_TIMEOUT_S is ample; one that overran it would only
    // be run again beside itself, which is harmless (sendOnce, and the updates are idempotent).
    await app.ensureQueue({ name: QUEUES.reconcile, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });
    await app.ensureQueue({ name: QUEUES.purge, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });

    /**
     * Queues a session's CheckResult unless one is queued, waiting to retry or running: that job
     * reads the session when it runs, so it does the work (app.sendOnce says why no second one).
     */
    const sendCheck = (sessionId: string, options: PgBoss.SendOptions = {}) =>
      app.sendOnce(QUEUES.check, sessionId, { sessionId } satisfies SessionJob, options);

    const requestCheck = async (sessionId: string) => {
      await sendCheck(sessionId, { priority: LIVE_CHECK_PRIORITY });
    };

    const reconcile = async () => {
      const now = new Date();
      const expired = await sessions.expireUnstarted(now);
      const due = await sessions.findToReconcile(now, new Date(now.getTime() - STUCK_VERIFYING_MS), RECONCILE_BATCH);
      let queued = 0;
      for (const { id } of due) if (await sendCheck(id)) queued++;
      // The expiries above recorded their events: send them now rather than at the next events sweep.
      if (expired > 0) await app.events.sweep(0);
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
    const deps: CheckDeps = { config, sessions, cloudauth: app.cloudauth, sealer: app.sealer, log: app.log, notify: app.events.dispatch };
    /** The session a job is about (a job from before sessions had ids names a merchantBizId that was then unique). */
    const sessionOf = async (job: SessionJob): Promise<string | undefined> =>
      job.sessionId ?? (job.merchantBizId ? sessions.onlySessionWith(job.merchantBizId) : undefined);

    await app.workOn<SessionJob>(QUEUES.check, config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job) return;
      const sessionId = await sessionOf(job.data);
      const log = app.log.child({ job: job.id, sessionId, attempt: job.retryCount + 1 });
      if (!sessionId) return { outcome: 'skipped' };
      try {
        return { outcome: await app.metrics.checkResult(checkSession({ ...deps, log }, sessionId, { lastAttempt: isLastAttempt(job) })) };
      } catch (err) {
        log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'CheckResult will be retried');
        throw err;
      }
    });

    await app.workOn(QUEUES.reconcile, 1, async () => reconcile());
    await app.workOn(QUEUES.purge, 1, async () => ({ purged: await purgeDetails() }));
    await jobs.schedule(QUEUES.reconcile, config.RECONCILE_CRON);
    await jobs.schedule(QUEUES.purge, '17 * * * *');
  },
  { name: 'results', dependencies: ['config', 'jobs', 'sessions', 'cloudauth', 'metrics', 'privacy', 'events'] },
);
