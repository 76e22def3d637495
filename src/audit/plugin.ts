import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { SWEEP_TIMEOUT_S } from '../jobs/plugin.js';
import { AuditRepository, type AuditAction, type AuditEntry } from './repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Who did what in the back office: append-only rows in PostgreSQL (kyc_audit). */
    audit: {
      repository: AuditRepository;
      /**
       * Records a back-office action by the request's API key (its name) and address. Awaited before
       * the action is done or its data answered: what cannot be recorded is not done.
       */
      record(request: FastifyRequest, action: AuditAction, target: string, detail?: Record<string, unknown>): Promise<void>;
      /** Records several actions of one request in one statement. */
      recordAll(request: FastifyRequest, actions: RequestAction[]): Promise<void>;
      /** Records the service's own actions (retention). */
      recordSystem(entries: AuditEntry[]): Promise<void>;
      /** Deletes rows past AUDIT_RETENTION_DAYS (also run hourly when it is set); returns how many. */
      applyRetention(): Promise<number>;
    };
  }
}

/** One action of a request: who and from where are the request's. */
export type RequestAction = Omit<AuditEntry, 'actor' | 'address'>;

const QUEUE = 'kyc_audit_retention';

export default fp(
  async (app) => {
    const { config } = app;
    const repository = new AuditRepository(app.pgPool);

    const recordAll = (request: FastifyRequest, actions: RequestAction[]) =>
      repository.record(actions.map((a) => ({ actor: request.apiKeyName ?? 'unknown', address: request.ip ?? null, ...a })));
    const record = (request: FastifyRequest, action: AuditAction, target: string, detail?: Record<string, unknown>) =>
      recordAll(request, [{ action, target, detail }]);

    const applyRetention = async () => {
      if (config.AUDIT_RETENTION_DAYS === undefined) return 0;
      const deleted = await repository.deleteOlderThan(config.AUDIT_RETENTION_DAYS);
      if (deleted > 0) app.log.info({ deleted, days: config.AUDIT_RETENTION_DAYS }, 'audit retention: deleted old rows');
      return deleted;
    };

    app.decorate('audit', { repository, record, recordAll, recordSystem: (entries: AuditEntry[]) => repository.record(entries), applyRetention });

    if (!config.JOBS_WORKERS) return;
    await app.ensureQueue({ name: QUEUE, policy: 'singleton', expireInSeconds: SWEEP_TIMEOUT_S });
    await app.workOn(QUEUE, 1, async () => ({ deleted: await applyRetention() }));
    // Unset again: no more runs (the schedule is kept in the job queue's database).
    if (config.AUDIT_RETENTION_DAYS === undefined) await app.jobs.unschedule(QUEUE);
    else await app.jobs.schedule(QUEUE, '29 * * * *');
  },
  { name: 'audit', dependencies: ['config', 'db', 'jobs', 'auth'] },
);
