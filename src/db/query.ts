import type pg from 'pg';
import { toDbError } from './errors.js';

/** One statement on the node-postgres pool, its failures mapped like Prisma's (toDbError). */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (err) {
    throw toDbError(err);
  }
}
