/**
 * How a failed statement on the pool is classified (toDbError), with errors made by a real
 * PostgreSQL: a query error is a bug and stays one (500); a server that is going away or
 * unreachable is DB_UNAVAILABLE (503, retry).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { DbUnavailableError, toDbError } from '../src/db/errors.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
pool.on('error', () => {});
before(async () => {
  await pool.query('SELECT 1');
});
after(async () => {
  await pool.end();
});

const classify = async (run: () => Promise<unknown>) => {
  const err = await run().then(
    () => assert.fail('the statement should have failed'),
    (e: unknown) => e,
  );
  return toDbError(err);
};

test('a query error (division by zero, 22012) is kept as it is', async () => {
  const err = await classify(() => pool.query('SELECT 1 / 0'));
  assert.ok(err instanceof pg.DatabaseError);
  assert.equal(err.code, '22012');
});

test('the server ending the session (57P01, admin shutdown) is DB_UNAVAILABLE', async () => {
  const err = await classify(() => pool.query('SELECT pg_terminate_backend(pg_backend_pid())'));
  assert.ok(err instanceof DbUnavailableError, String(err));
  assert.equal(err.code, 'DB_UNAVAILABLE');
});

test('no server (connection refused) is DB_UNAVAILABLE', async () => {
  const nowhere = new pg.Pool({ connectionString: 'postgresql://postgres@127.0.0.1:9/test', connectionTimeoutMillis: 500 });
  try {
    assert.ok((await classify(() => nowhere.query('SELECT 1'))) instanceof DbUnavailableError);
  } finally {
    await nowhere.end();
  }
});
