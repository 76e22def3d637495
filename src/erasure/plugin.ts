import fp from 'fastify-plugin';
import { userRef } from '../auth/user-ref.js';
import { isLastAttempt, SWEEP_TIMEOUT_S } from '../jobs/plugin.js';
import { longestStartMs } from '../sessions/start.js';
import { eraseSession, type EraseDeps } from './erase.js';
import { ErasureRepository, type ErasureRequested } from './repository.js';

export const ERASURE_QUEUES = {
  /** One job per session (stately, keyed by its id). */
  erase: 'kyc_erase',
  /** Runs again the erasures whose job was lost or that wait for a transaction to expire (RECONCILE_CRON). */
  sweep: 'kyc_erasure_sweep',
  /** KYC_SESSION_RETENTION_DAYS (hourly). */
  retention: 'kyc_session_retention',
} as const;

/** Runs of an erasure before its failing deletions at Alibaba are `failed`: 3 to 6 hours with the default 5-s first delay (doubling, jittered). */
export const ERASURE_ATTEMPTS = 12;
/** Erasure jobs at once per process: each call takes a slot of the DeleteVerifyResult budget. */
const ERASE_WORKERS = 2;
const SWEEP_BATCH = 500;
const RETENTION_BATCH = 500;
/** Batches per retention run (the next run goes on). */
const RETENTION_BATCHES = 10;

declare module 'fastify' {
  interface FastifyInstance {
    /** Erasure of sessions (GDPR/PDPO/PDPA requests and retention): a tombstone stays. */
    erasure: {
      /** Asks for these sessions' erasure (idempotent) and queues it; answers the sessions found. */
      requestSessions(sessionIds: string[]): Promise<ErasureRequested[]>;
      /**
       * Asks for the erasure of every session of a person (their JWT `sub` as issued, found by its
       * keyed hash), and forgets their day-cap row; `record` is awaited first with the sessions found.
       */
      requestUser(userId: string, record: (sessionIds: string[]) => Promise<void>): Promise<ErasureRequested[]>;
      /** Queues the unfinished erasures without a job (also run on RECONCILE_CRON); returns how many. */
      sweep(): Promise<number>;
      /** Asks for the erasure of sessions older than KYC_SESSION_RETENTION_DAYS (also run hourly); returns how many. */
      applyRetention(): Promise<number>;
    };
  }
}

export default fp(
  async (app) => {
    const { config, jobs } = app;
    const repository = new ErasureRepository(app.pgPool, app.sessionChanges);
    // A run makes one DeleteVerifyResult per transaction (each within CLOUDAUTH_TIMEOUT_MS) and a few queries.
    const expireInSeconds =
      Math.ceil((config.KYC_MAX_TRANSACTIONS_PER_SESSION * config.CLOUDAUTH_TIMEOUT_MS + (2 * config.KYC_MAX_TRANSACTIONS_PER_SESSION + 4) * config.DATABASE_TIMEOUT_MS) / 1000) + 60;
    await app.ensureQueue({
      name: ERASURE_QUEUES.erase,
      policy: 'stately',
      retryLimit: ERASURE_ATTEMPTS - 1,
      retryDelay: config.CHECK_RESULT_RETRY_DELAY_S,
      retryBackoff: true,
      expireInSeconds,
    });
    await app.ensureQueue({ name: ERASURE_QUEUES.sweep, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });
    await app.ensureQueue({ name: ERASURE_QUEUES.retention, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });

    const queue = (sessionId: string) => app.sendOnce(ERASURE_QUEUES.erase, sessionId, { sessionId });

    const requestSessions = async (sessionIds: string[]) => {
      const requested = await repository.request(sessionIds);
      for (const r of requested) {
        // The request may have ended the session (expired): its event is recorded.
        await app.events.dispatch(r.id);
        if (r.completedAt === null) await queue(r.id);
      }
      return requested;
    };

    const requestUser = async (userId: string, record: (sessionIds: string[]) => Promise<void>) => {
      const ref = userRef(config.USER_ID_HASH_SECRET, userId);
      const ids = await repository.sessionsOf(ref);
      await record(ids);
      const requested = await requestSessions(ids);
      await repository.forgetQuota(ref);
      return requested;
    };

    const sweep = async () => {
      let queued = 0;
      for (const id of await repository.unfinished(SWEEP_BATCH)) if (await queue(id)) queued++;
      return queued;
    };

    const applyRetention = async () => {
      const days = config.KYC_SESSION_RETENTION_DAYS;
      if (days === undefined) return 0;
      const before = new Date(Date.now() - days * 86_400_000);
      let total = 0;
      for (let i = 0; i < RETENTION_BATCHES; i++) {
        const ids = await repository.olderThan(before, RETENTION_BATCH);
        if (ids.length === 0) break;
        // Recorded first: nothing is erased unrecorded (a failed run is recorded again by the next).
        await app.audit.recordSystem(ids.map((id) => ({ actor: 'retention', address: null, action: 'session.erase', target: `session:${id}`, detail: { retentionDays: days } })));
        total += (await requestSessions(ids)).length;
        if (ids.length < RETENTION_BATCH) break;
      }
      if (total > 0) app.log.info({ sessions: total, days }, 'retention: erasing old sessions');
      return total;
    };

    app.decorate('erasure', { requestSessions, requestUser, sweep, applyRetention });

    if (!config.JOBS_WORKERS) return;
    const inFlightMs = longestStartMs(config);
    const deps: Omit<EraseDeps, 'log'> = {
      repository,
      cloudauth: app.cloudauth,
      notify: app.events.dispatch,
      inFlightSince: () => new Date(Date.now() - inFlightMs),
    };
    await app.workOn<{ sessionId: string }>(ERASURE_QUEUES.erase, ERASE_WORKERS, async ([job]) => {
      if (!job) return;
      const log = app.log.child({ job: job.id, sessionId: job.data.sessionId, attempt: job.retryCount + 1 });
      try {
        const outcome = await eraseSession({ ...deps, log }, job.data.sessionId, { lastAttempt: isLastAttempt(job) });
        if (outcome === 'complete' || outcome === 'incomplete') app.metrics.erasure(outcome);
        return { outcome };
      } catch (err) {
        log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'erasure will be retried');
        throw err;
      }
    });
    await app.workOn(ERASURE_QUEUES.sweep, 1, async () => ({ queued: await sweep() }));
    await jobs.schedule(ERASURE_QUEUES.sweep, config.RECONCILE_CRON);
    await app.workOn(ERASURE_QUEUES.retention, 1, async () => ({ requested: await applyRetention() }));
    if (config.KYC_SESSION_RETENTION_DAYS === undefined) await jobs.unschedule(ERASURE_QUEUES.retention);
    else await jobs.schedule(ERASURE_QUEUES.retention, '23 * * * *');
  },
  { name: 'erasure', dependencies: ['config', 'db', 'jobs', 'cloudauth', 'events', 'audit', 'metrics', 'session-changes'] },
);
