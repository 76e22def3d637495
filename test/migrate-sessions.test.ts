/**
 * The migration to sessions scoped per user (20261201150000_sessions_per_user) carries existing rows
 * over: a database as the previous release left it, with sessions in every state, is migrated, and
 * the service then serves those sessions: their owners read them, a pending one's callback is
 * accepted and decided, the back office shows them (without a userId: it was never kept).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { userRef } from '../src/auth/user-ref.js';
import { defaultMigrationsDir, migrate } from '../src/db/migrate.js';
import { CallbackTokens } from '../src/sessions/callback-token.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import { DATABASE_URL, randomId, startStack, testConfig, waitFor, type Stack } from './helpers/stack.js';

const SCOPED = '20261201150000_sessions_per_user';
const INTERNAL_API_KEY = 'migrate-test-internal-api-key-0123456789abcdef';
const tmp = mkdtempSync(join(tmpdir(), 'kyc-migrate-sessions-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The migrations before `name`, as the previous release shipped them. */
function migrationsBefore(name: string): string {
  const all = defaultMigrationsDir();
  const dir = join(tmp, 'before');
  for (const m of readdirSync(all).filter((m) => m < name && !m.endsWith('.toml'))) cpSync(join(all, m), join(dir, m), { recursive: true });
  return dir;
}

describe(`migration ${SCOPED}`, () => {
  test('carries every existing session over, and the service serves them afterwards', async () => {
    const schema = `t_${randomId()}`.toLowerCase();
    const url = new URL(DATABASE_URL);
    url.searchParams.set('schema', schema);
    const databaseUrl = url.toString();
    await migrate({ databaseUrl, migrationsDir: migrationsBefore(SCOPED), log: () => {} });

    const config = testConfig({ DATABASE_URL: databaseUrl });
    const tokens = new CallbackTokens(config.USER_ID_HASH_SECRET);
    const [alice, bob] = ['legacy-alice', 'legacy-bob'];
    const pendingToken = tokens.issue();
    const ids = { pending: randomId('pend'), passed: randomId('pass'), error: randomId('err') };
    const expiresAt = new Date(Date.now() + 20 * 60_000);

    const client = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      const insert = `INSERT INTO kyc_session (merchant_biz_id, user_ref, status, doc_type, transaction_id, transaction_url, protocol,
          callback_token_hash, passed, sub_code, callback_passed, callback_sub_code, callback_at, checked_at, error_code,
          upstream_request_id, expires_at, completed_at, updated_at)
        VALUES ($1, $2, $3, '01000000', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())`;
      // A live one, a decided one (its callback and CheckResult), one whose Initialize failed.
      await client.query(insert, [ids.pending, userRef(config.USER_ID_HASH_SECRET, alice), 'pending', 'hksblegacypending', 'https://a.example/p', 'proto1',
        pendingToken.hash, null, null, null, null, null, null, null, 'REQ-1', expiresAt, null]);
      await client.query(insert, [ids.passed, userRef(config.USER_ID_HASH_SECRET, bob), 'passed', 'hksblegacypassed', 'https://a.example/q', 'proto2',
        tokens.issue().hash, 'Y', '200', 'Y', '200', new Date(), new Date(), null, 'REQ-2', expiresAt, new Date()]);
      await client.query(insert, [ids.error, userRef(config.USER_ID_HASH_SECRET, alice), 'error', null, null, null,
        tokens.issue().hash, null, null, null, null, null, null, 'UPSTREAM_REJECTED', 'REQ-3', expiresAt, null]);
    } finally {
      await client.end();
    }

    const { applied } = await migrate({ databaseUrl, log: () => {} });
    assert.ok(applied.includes(SCOPED), `applied ${applied.join(', ')}`);

    let stack: Stack | undefined;
    try {
      stack = await startStack({ env: { DATABASE_URL: databaseUrl, INTERNAL_API_KEY, JOBS_SCHEMA: config.JOBS_SCHEMA } });
      const rows = rowsOf(stack.app);

      // Every row is there, with an id of its own, its data, and its transaction as transaction 1.
      const pending = await rows.session(ids.pending);
      assert.match(pending.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(
        [pending.status, pending.transactionId, pending.userIdCiphertext, pending.upstreamRequestId, pending.expiresAt.getTime()],
        ['pending', 'hksblegacypending', null, 'REQ-1', expiresAt.getTime()],
      );
      assert.deepEqual(
        pending.transactions.map((t) => [t.seq, t.transactionId, t.transactionUrl, t.protocol, t.callbackTokenHash, t.callbackPassed]),
        [[1, 'hksblegacypending', 'https://a.example/p', 'proto1', pendingToken.hash, null]],
      );
      const passed = await rows.session(ids.passed);
      assert.deepEqual([passed.status, passed.passed, passed.subCode, passed.decidedTransactionId], ['passed', 'Y', '200', 'hksblegacypassed']);
      assert.deepEqual(
        passed.transactions.map((t) => [t.seq, t.transactionId, t.callbackPassed, t.callbackSubCode, t.passed, t.subCode]),
        [[1, 'hksblegacypassed', 'Y', '200', 'Y', '200']],
      );
      const failed = await rows.session(ids.error);
      assert.deepEqual([failed.status, failed.errorCode, failed.transactionId], ['error', 'UPSTREAM_REJECTED', null]);
      assert.deepEqual(failed.transactions.map((t) => [t.seq, t.transactionId, t.errorCode]), [[1, null, 'UPSTREAM_REJECTED']]);

      // Their owners read them; nobody else does.
      const api = clientFor(stack);
      const aliceJwt = await signToken(alice);
      const read = await api.session(aliceJwt, ids.pending);
      assert.deepEqual([read.status, read.body.status, read.body.transactionId, read.body.attempts], [200, 'pending', 'hksblegacypending', 1]);
      assert.equal((await api.session(await signToken(bob), ids.pending)).status, 404);
      assert.equal((await api.session(await signToken(bob), ids.passed)).body.status, 'passed');

      // The legacy transaction's callback (its old CallbackUrl named the merchantBizId) is accepted.
      const callback = await api.callback({ merchantBizId: ids.pending, transactionId: 'hksblegacypending', passed: 'Y', subCode: '200', callbackToken: pendingToken.token });
      assert.deepEqual([callback.status, callback.body.result], [200, 'recorded']);
      assert.equal((await rows.transaction(ids.pending)).callbackPassed, 'Y');

      // The back office lists them; the person is unknown for sessions from before it was kept.
      const listed = await fetch(`${stack.appUrl}/internal/kyc/sessions?merchantBizId=${ids.passed}`, { headers: { 'x-api-key': INTERNAL_API_KEY } });
      const body = (await listed.json()) as { sessions: Array<{ id: string; userId: string | null; status: string }> };
      assert.deepEqual(body.sessions.map((s) => [s.id, s.userId, s.status]), [[passed.id, null, 'passed']]);

      // A failed legacy start may now be resumed (the simulator has no such transaction: it is a new one).
      const resumed = await api.resume(aliceJwt, ids.error);
      assert.equal(resumed.status, 201, JSON.stringify(resumed.body));
      assert.equal(resumed.body.attempt, 2);
      await waitFor('the resumed session to be pending', async () => ((await rows.session(ids.error)).status === 'pending' ? true : undefined));
    } finally {
      await stack?.close();
    }
  });
});
