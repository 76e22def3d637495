import fp from 'fastify-plugin';
import type PgBoss from 'pg-boss';
import { FINAL_STATUSES } from '../sessions/status.js';
import { checkSession, type CheckDeps } from './check-result.js';
import { DetailsCipher } from './details-cipher.js';
import { deliverEvent, sessionEvent } from './notify.js';

declare module 'fastify' {
  interface FastifyInstance {
    results: {
      /** Queues the CheckResult that decides a session (deduplicated per session). */
      requestCheck(merchantBizId: string): Promise<void>;
      /** One reconciliation sweep (also run on RECONCILE_CRON): returns how many sessions were queued or expired. */
      reconcile(): Promise<{ queued: number; expired: number }>;
      /** Purges stored details past KYC_RESULT_RETENTION_DAYS (also run hourly). */
      purgeDetails(): Promise<number>;
      cipher: DetailsCipher;
    };
  }
}

export const QUEUES = {
  check: 'kyc_check_result',
  notify: 'kyc_notify',
  reconcile: 'kyc_reconcile',
  purge: 'kyc_purge_details',
} as const;

const STUCK_VERIFYING_MS = 2 * 60_000;
const RECONCILE_BATCH = 500;
const NOTIFY_ATTEMPTS = 12;

interface SessionJob {
  merchantBizId: string;
}

/**
 * After the callback: CheckResult (durable job, retried with backoff), the reconciliation sweep
 * for lost callbacks, the retention purge and the merchant's signed events.
 */
export default fp(
  async (app) => {
    const { config, jobs, sessions } = app;
    const cipher = new DetailsCipher(config.KYC_DETAILS_KEYS, config.KYC_DETAILS_KEY_ID);
    const retry = { retryDelay: config.CHECK_RESULT_RETRY_DELAY_S, retryBackoff: true };
    /** createQueue keeps an existing queue's options: update them so a changed configuration applies to new jobs. */
    const ensureQueue = async (options: PgBoss.Queue) => {
      await jobs.createQueue(options.name, { ...options });
      await jobs.updateQueue(options.name, { ...options });
    };
    // A job still active after expireInSeconds (its process was killed mid-call) is retried by the queue's maintenance.
    await ensureQueue({ name: QUEUES.check, policy: 'stately', retryLimit: config.CHECK_RESULT_MAX_ATTEMPTS - 1, expireInSeconds: config.CHECK_RESULT_JOB_TIMEOUT_S, ...retry });
    await ensureQueue({ name: QUEUES.notify, policy: 'stately', retryLimit: NOTIFY_ATTEMPTS - 1, ...retry });
    await jobs.createQueue(QUEUES.reconcile, { name: QUEUES.reconcile, policy: 'singleton' });
    await jobs.createQueue(QUEUES.purge, { name: QUEUES.purge, policy: 'singleton' });

    const workerIds: Record<keyof typeof QUEUES, string[]> = { check: [], notify: [], reconcile: [], purge: [] };
    /** Wakes a queue's idle workers now instead of at their next poll. */
    const wake = (queue: keyof typeof QUEUES) => {
      for (const id of workerIds[queue]) jobs.notifyWorker(id);
    };

    const notify = async (merchantBizId: string) => {
      if (!config.MERCHANT_WEBHOOK_URL) return;
      // Sent just before the state change it reports, and run a second later: if the process dies
      // in between, the job still finds the session and the sweep finishes the state change.
      await jobs.send(QUEUES.notify, { merchantBizId }, { singletonKey: merchantBizId, startAfter: 1 });
    };

    const requestCheck = async (merchantBizId: string) => {
      await jobs.send(QUEUES.check, { merchantBizId }, { singletonKey: merchantBizId });
      wake('check');
    };

    const reconcile = async () => {
      const now = new Date();
      const expired = await sessions.expireUnstarted(now);
      const due = await sessions.findToReconcile(now, new Date(now.getTime() - STUCK_VERIFYING_MS), RECONCILE_BATCH);
      for (const { merchantBizId } of due) await jobs.send(QUEUES.check, { merchantBizId }, { singletonKey: merchantBizId });
      if (due.length > 0) wake('check');
      if (due.length > 0 || expired > 0) app.log.info({ queued: due.length, expired }, 'reconciliation sweep');
      return { queued: due.length, expired };
    };

    const purgeDetails = async () => {
      const purged = await sessions.purgeDetails(new Date(Date.now() - config.KYC_RESULT_RETENTION_DAYS * 86_400_000));
      if (purged > 0) app.log.info({ purged }, 'purged stored result details');
      return purged;
    };

    app.decorate('results', { requestCheck, reconcile, purgeDetails, cipher });

    if (!config.JOBS_WORKERS) return;
    const workOptions = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: config.JOBS_POLL_INTERVAL_S };
    /** pg-boss runs one job at a time per worker: `count` workers run that many concurrently. */
    const work = async <T>(queue: keyof typeof QUEUES, count: number, handler: PgBoss.WorkWithMetadataHandler<T>) => {
      for (let i = 0; i < count; i++) workerIds[queue].push(await jobs.work<T>(QUEUES[queue], workOptions, handler));
    };
    const deps: CheckDeps = { config, sessions, cloudauth: app.cloudauth, cipher, log: app.log, notify };
    const lastAttempt = (job: PgBoss.JobWithMetadata<unknown>) => job.retryCount >= job.retryLimit;

    await work<SessionJob>('check', config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job) return;
      const log = app.log.child({ job: job.id, merchantBizId: job.data.merchantBizId, attempt: job.retryCount + 1 });
      try {
        return { outcome: await app.metrics.checkResult(checkSession({ ...deps, log }, job.data.merchantBizId, { lastAttempt: lastAttempt(job) })) };
      } catch (err) {
        log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'CheckResult will be retried');
        throw err;
      }
    });

    await work<SessionJob>('notify', config.JOBS_CONCURRENCY, async ([job]) => {
      if (!job || !config.MERCHANT_WEBHOOK_URL || !config.MERCHANT_WEBHOOK_SECRET) return;
      const session = await sessions.findByMerchantBizId(job.data.merchantBizId);
      if (!session) return;
      if (!(FINAL_STATUSES as readonly string[]).includes(session.status)) throw new Error('session not final yet');
      const event = sessionEvent(session);
      await deliverEvent(config.MERCHANT_WEBHOOK_URL, config.MERCHANT_WEBHOOK_SECRET, event);
      app.log.info({ merchantBizId: session.merchantBizId, eventId: event.id }, 'merchant event delivered');
    });

    await work('reconcile', 1, async () => reconcile());
    await work('purge', 1, async () => ({ purged: await purgeDetails() }));
    await jobs.schedule(QUEUES.reconcile, config.RECONCILE_CRON);
    await jobs.schedule(QUEUES.purge, '17 * * * *');
  },
  { name: 'results', dependencies: ['config', 'jobs', 'sessions', 'cloudauth', 'metrics'] },
);
