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

/**
 * Runs `fn` in a transaction on a connection of the pool: committed when it returns, rolled back
 * when it throws (its error is rethrown as is). A connection whose rollback failed is discarded.
 */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
