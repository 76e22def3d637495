/**
 * `npm run keys:reseal`: re-seals every user id and result details sealed with a key other than the
 * active one (KYC_DETAILS_KEY_ID, else the first of KYC_DETAILS_KEYS), so the old key can be removed
 * from KYC_DETAILS_KEYS (README → "Runbook: rotating the encryption keys"). Run it after every
 * instance seals with the new key; it is safe to run twice, and beside running instances: each row
 * is rewritten only if it still holds what was read.
 */
import pg from 'pg';
import { isMainModule } from '../cli/is-main.js';
import { loadConfigOrExit } from '../config/load.js';
import { splitSchemaParam } from '../db/url.js';
import { Sealer } from './cipher.js';

const BATCH = 200;

/** The sealed columns of kyc_session: the ciphertext and the id of the key that sealed it. */
const SEALED = [
  { data: 'user_id_ciphertext', key: 'user_id_key_id' },
  { data: 'details_ciphertext', key: 'details_key_id' },
] as const;

export interface ResealResult {
  /** Values re-sealed with the active key, per column. */
  resealed: Record<(typeof SEALED)[number]['data'], number>;
  /** Rows left as they were because their key is not configured (cannot be opened). */
  unreadable: number;
}

export async function resealAll(pool: pg.Pool, sealer: Sealer): Promise<ResealResult> {
  const result: ResealResult = { resealed: { user_id_ciphertext: 0, details_ciphertext: 0 }, unreadable: 0 };
  for (const column of SEALED) {
    const skipped = new Set<string>();
    for (;;) {
      const { rows } = await pool.query<{ id: string; data: Buffer; key: string }>(
        `SELECT id, ${column.data} AS data, ${column.key} AS key FROM kyc_session
          WHERE ${column.data} IS NOT NULL AND ${column.key} <> $1 AND NOT (id = ANY($2::uuid[]))
          ORDER BY id LIMIT ${BATCH}`,
        [sealer.activeKey, [...skipped]],
      );
      if (rows.length === 0) break;
      for (const row of rows) {
        let plain: string;
        try {
          plain = sealer.open({ keyId: row.key, ciphertext: row.data }, row.id);
        } catch {
          skipped.add(row.id);
          result.unreadable++;
          continue;
        }
        const sealed = sealer.seal(plain, row.id);
        const { rowCount } = await pool.query(
          `UPDATE kyc_session SET ${column.data} = $2, ${column.key} = $3 WHERE id = $1 AND ${column.data} = $4`,
          [row.id, sealed.ciphertext, sealed.keyId, row.data],
        );
        if (rowCount === 1) result.resealed[column.data]++;
      }
    }
  }
  return result;
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const { connectionString, schema } = splitSchemaParam(config.DATABASE_URL);
  const pool = new pg.Pool({ connectionString, max: 2, options: `-c search_path="${schema.replaceAll('"', '""')}"` });
  try {
    const sealer = new Sealer(config);
    const { resealed, unreadable } = await resealAll(pool, sealer);
    console.log(`re-sealed with key ${sealer.activeKey}: ${resealed.user_id_ciphertext} user ids, ${resealed.details_ciphertext} result details`);
    if (unreadable > 0) {
      console.error(`${unreadable} rows are sealed with a key that is not configured: add it to KYC_DETAILS_KEYS and run again`);
      process.exitCode = 1;
    }
  } finally {
    await pool.end();
  }
}

if (isMainModule(import.meta.url)) await main();
