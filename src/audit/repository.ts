import type pg from 'pg';
import { query, transaction } from '../db/query.js';

/** What the back office (or retention) can do; each is one audit row. */
export const AUDIT_ACTIONS = [
  'sessions.list',
  'session.read',
  'session.erase',
  'user.erase',
  'events.list',
  'event.redeliver',
  'events.redeliver',
  'audit.list',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  /** The API key's name, or `retention`. */
  actor: string;
  address: string | null;
  action: AuditAction;
  /** session:<id>, event:<id>, merchantBizId:<id>, user, events, audit. */
  target: string;
  detail?: Record<string, unknown> | undefined;
}

export interface AuditRow extends Required<Omit<AuditEntry, 'detail'>> {
  id: string;
  at: Date;
  detail: Record<string, unknown> | null;
}

export interface AuditFilter {
  target?: string | undefined;
  actor?: string | undefined;
  action?: AuditAction | undefined;
  since?: Date | undefined;
  /** Keyset cursor: rows with a smaller id. */
  beforeId?: string | undefined;
}

/**
 * The audit trail (kyc_audit). Only ever inserted into: the database refuses UPDATE and TRUNCATE,
 * and a DELETE other than retention's (the trigger kyc_audit_append_only).
 */
export class AuditRepository {
  constructor(private readonly pool: pg.Pool) {}

  async record(entries: AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await query(
      this.pool,
      `INSERT INTO kyc_audit (actor, address, action, target, detail)
       SELECT actor, address, action, target, detail FROM jsonb_to_recordset($1::jsonb)
           AS x(actor varchar, address varchar, action varchar, target varchar, detail jsonb)`,
      [JSON.stringify(entries.map((e) => ({ ...e, detail: e.detail ?? null })))],
    );
  }

  /** Newest first. */
  async list(filter: AuditFilter, limit: number): Promise<AuditRow[]> {
    const { rows } = await query<AuditRow>(
      this.pool,
      `SELECT id::text, at, actor, address, action, target, detail FROM kyc_audit
        WHERE ($1::varchar IS NULL OR target = $1)
          AND ($2::varchar IS NULL OR actor = $2)
          AND ($3::varchar IS NULL OR action = $3)
          AND ($4::timestamptz IS NULL OR at >= $4)
          AND ($5::bigint IS NULL OR id < $5)
        ORDER BY id DESC
        LIMIT $6`,
      [filter.target ?? null, filter.actor ?? null, filter.action ?? null, filter.since ?? null, filter.beforeId ?? null, limit],
    );
    return rows;
  }

  /**
   * Deletes rows older than `days` days. The transaction names the retention it applies
   * (kyc.audit_retention_days), which is the only DELETE the append-only trigger lets through.
   */
  deleteOlderThan(days: number): Promise<number> {
    return transaction(this.pool, async (client) => {
      await client.query(`SELECT set_config('kyc.audit_retention_days', $1, true)`, [String(days)]);
      const { rowCount } = await client.query(`DELETE FROM kyc_audit WHERE at < now() - make_interval(days => $1)`, [days]);
      return rowCount ?? 0;
    });
  }
}
