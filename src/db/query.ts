import type pg from 'pg';
import { toDbError } from './errors.js';

/**
 * One statement on the node-postgres pool, its failures mapped like Prisma's (toDbError). A named
 * statement (`{ name, text }`) is prepared once per connection: PostgreSQL parses and plans it once.
 */
export async function query<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  text: string | { name: string; text: string },
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  try {
    return await (typeof text === 'string' ? pool.query<R>(text, values) : pool.query<R>({ ...text, values }));
  } catch (err) {
    throw toDbError(err);
  }
}
