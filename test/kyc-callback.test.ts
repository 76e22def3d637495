import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId, waitFor } from './helpers/stack.js';
import { rowsOf } from './helpers/rows.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack();

/** A started verification and the token Alibaba will present for it. */
async function started() {
  const sub = randomId('user-');
  const token = await signToken(sub);
  const res = await ctx.api.start(token, { metaInfo: META_INFO });
  assert.equal(res.status, 201);
  const merchantBizId = String(res.body.merchantBizId);
  const transactionId = String(res.body.transactionId);
  const callbackToken = (await ctx.api.sim.transaction(transactionId)).body.params.CallbackToken!;
  return { token, merchantBizId, transactionId, callbackToken };
}

const row = (merchantBizId: string) => rowsOf(ctx.stack.app).session(merchantBizId);
/** The session's (first) transaction: where its callback is recorded. */
const tx = (merchantBizId: string) => rowsOf(ctx.stack.app).transaction(merchantBizId);
/** Waits for CheckResult (a background job) to decide the session. */
const decided = (merchantBizId: string) =>
  waitFor(`a verdict for ${merchantBizId}`, async () => {
    const r = await row(merchantBizId);
    return r.status === 'passed' || r.status === 'failed' ? r : undefined;
  });

describe('GET /kyc/callback', () => {
  test('the simulator completing a verification records the outcome, visible on the status route', async () => {
    const s = await started();
    assert.equal((await ctx.api.session(s.token, s.merchantBizId)).body.status, 'pending');
    const done = await ctx.api.sim.complete(s.transactionId, 'Y', '200');
    assert.equal(done.body.delivery.status, 200, 'the service accepted Alibaba\'s callback');
    await decided(s.merchantBizId);
    const status = await ctx.api.session(s.token, s.merchantBizId);
    assert.equal(status.status, 200);
    assert.equal(status.body.status, 'passed');
    assert.equal(status.body.passed, 'Y');
    assert.equal(status.body.subCode, '200');
    const r = await row(s.merchantBizId);
    assert.equal(r.status, 'passed');
    assert.ok(r.completedAt);
  });

  test('a failed verification reads failed', async () => {
    const s = await started();
    await ctx.api.sim.complete(s.transactionId, 'N', '205');
    await decided(s.merchantBizId);
    const status = await ctx.api.session(s.token, s.merchantBizId);
    assert.equal(status.body.status, 'failed');
    assert.equal(status.body.subCode, '205');
  });

  test('accepts subcode spelled in lower case', async () => {
    const s = await started();
    const res = await ctx.api.callback({ transactionId: s.transactionId, passed: 'Y', subcode: '200', callbackToken: s.callbackToken });
    assert.equal(res.status, 200);
    assert.equal((await tx(s.merchantBizId)).callbackSubCode, '200');
  });

  test('a wrong token → 403 CALLBACK_REJECTED and nothing changes', async () => {
    const s = await started();
    const other = await started();
    for (const callbackToken of ['x', other.callbackToken, s.callbackToken.slice(0, -1) + (s.callbackToken.endsWith('A') ? 'B' : 'A')]) {
      const res = await ctx.api.callback({ transactionId: s.transactionId, passed: 'Y', subCode: '200', callbackToken });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'CALLBACK_REJECTED');
    }
    const r = await row(s.merchantBizId);
    assert.equal(r.status, 'pending');
    assert.equal((await tx(s.merchantBizId)).callbackPassed, null);
  });

  test('a missing token → 400 and nothing changes', async () => {
    const s = await started();
    const res = await ctx.api.callback({ transactionId: s.transactionId, passed: 'Y', subCode: '200' });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'VALIDATION_ERROR');
    assert.equal((await tx(s.merchantBizId)).callbackPassed, null);
  });

  test('an unknown transaction → the same 403 as a wrong token', async () => {
    const s = await started();
    const res = await ctx.api.callback({ transactionId: 'hksbdoesnotexist', passed: 'Y', callbackToken: s.callbackToken });
    assert.equal(res.status, 403);
    assert.equal(res.body.code, 'CALLBACK_REJECTED');
  });

  test("a valid token for one transaction cannot complete another (even naming its session and attempt)", async () => {
    const a = await started();
    const b = await started();
    const sessionId = (await row(b.merchantBizId)).id;
    const res = await ctx.api.callback({ transactionId: b.transactionId, passed: 'Y', callbackToken: a.callbackToken, sessionId, attempt: '1' });
    assert.equal(res.status, 403);
    assert.equal((await tx(b.merchantBizId)).callbackPassed, null);
  });

  test('bad passed values and duplicated keys → 400', async () => {
    const s = await started();
    const bad = await ctx.api.callback({ transactionId: s.transactionId, passed: 'yes', callbackToken: s.callbackToken });
    assert.equal(bad.status, 400);
    const dup = await fetch(`${ctx.stack.appUrl}/kyc/callback?transactionId=${s.transactionId}&passed=Y&passed=N&callbackToken=${s.callbackToken}`);
    assert.equal(dup.status, 400);
    assert.equal((await tx(s.merchantBizId)).callbackPassed, null);
  });

  test('an exact redelivery → 200 duplicate, nothing changes', async () => {
    const s = await started();
    await ctx.api.sim.complete(s.transactionId, 'Y', '200');
    const before = await decided(s.merchantBizId);
    const again = await ctx.api.sim.redeliver(s.transactionId);
    assert.equal(again.body.delivery.status, 200);
    const direct = await ctx.api.callback({ transactionId: s.transactionId, passed: 'Y', subCode: '200', callbackToken: s.callbackToken });
    assert.deepEqual(direct.body, { result: 'duplicate' });
    const after = await row(s.merchantBizId);
    assert.equal(after.updatedAt.getTime(), before.updatedAt.getTime());
  });

  test('a later callback with another outcome → 409, logged as tampering, outcome unchanged', async () => {
    const s = await started();
    await ctx.api.sim.complete(s.transactionId, 'N', '205');
    await decided(s.merchantBizId);
    for (const [passed, subCode] of [['Y', '200'], ['N', '200'], ['Y', '205']] as const) {
      const res = await ctx.api.callback({ transactionId: s.transactionId, passed, subCode, callbackToken: s.callbackToken });
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'CALLBACK_CONFLICT');
    }
    const r = await row(s.merchantBizId);
    assert.equal(r.status, 'failed');
    assert.equal(r.passed, 'N');
    assert.equal(r.subCode, '205');
    assert.equal((await tx(s.merchantBizId)).callbackPassed, 'N');
    assert.ok(ctx.stack.logs.lines.some((l) => l.includes('"callback_tamper"') && l.includes(r.id)));
  });

  test('racing contradictory callbacks: exactly one outcome wins', async () => {
    const s = await started();
    const results = await Promise.all(
      ['Y', 'N', 'Y', 'N', 'Y', 'N'].map((passed) => ctx.api.callback({ transactionId: s.transactionId, passed, subCode: '200', callbackToken: s.callbackToken })),
    );
    const winners = results.filter((r) => r.status === 200 && r.body.result === 'recorded');
    assert.equal(winners.length, 1);
    const r = await row(s.merchantBizId);
    for (const res of results) {
      if (res.status === 409) continue;
      assert.equal(res.status, 200);
    }
    const callbackPassed = (await tx(s.merchantBizId)).callbackPassed;
    assert.ok(callbackPassed === 'Y' || callbackPassed === 'N');
    assert.equal(r.status, 'verifying', 'the callback alone decides nothing');
    assert.equal(results.filter((x) => x.status === 409).length, 3, 'the three that contradict the winner are refused');
  });

  test('a session whose TransactionId was not stored is still completed through the session id and attempt in the CallbackUrl', async () => {
    const s = await started();
    await rowsOf(ctx.stack.app).forgetTransactionId(s.merchantBizId);
    const done = await ctx.api.sim.complete(s.transactionId, 'Y', '200');
    assert.equal(done.body.delivery.status, 200);
    const r = await decided(s.merchantBizId);
    assert.equal(r.transactionId, s.transactionId);
    assert.equal(r.status, 'passed');
  });

  test('the callback token never appears in the logs', async () => {
    const s = await started();
    await ctx.api.sim.complete(s.transactionId, 'Y', '200');
    await ctx.api.callback({ transactionId: s.transactionId, passed: 'N', callbackToken: s.callbackToken });
    assert.ok(!ctx.stack.logs.text.includes(s.callbackToken));
    assert.ok(!ctx.stack.logs.text.includes('callbackToken='));
  });
});

describe('GET /kyc/sessions/:merchantBizId', () => {
  test('owner only: another user gets 404, as for a session that does not exist', async () => {
    const s = await started();
    const other = await ctx.api.session(await signToken(randomId('user-')), s.merchantBizId);
    assert.equal(other.status, 404);
    assert.equal(other.body.code, 'SESSION_NOT_FOUND');
    const missing = await ctx.api.session(s.token, 'nosuchsession');
    assert.equal(missing.status, 404);
    assert.deepEqual(other.body, missing.body);
    assert.equal((await ctx.api.session(undefined, s.merchantBizId)).status, 401);
  });

  test('shape of a pending session', async () => {
    const s = await started();
    const res = await ctx.api.session(s.token, s.merchantBizId);
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['attempts', 'expiresAt', 'maxAttempts', 'merchantBizId', 'status', 'transactionId', 'updatedAt']);
    assert.equal(res.body.attempts, 1);
    assert.equal(res.body.maxAttempts, ctx.stack.config.KYC_MAX_TRANSACTIONS_PER_SESSION);
    assert.equal(res.body.transactionId, s.transactionId);
  });

  test('a session past expiresAt with no outcome reads expired; one with an outcome keeps it', async () => {
    const s = await started();
    const t = await started();
    await ctx.api.sim.complete(t.transactionId, 'Y', '200');
    await decided(t.merchantBizId);
    await rowsOf(ctx.stack.app).expire([s.merchantBizId, t.merchantBizId]);
    assert.equal((await ctx.api.session(s.token, s.merchantBizId)).body.status, 'expired');
    assert.equal((await ctx.api.session(t.token, t.merchantBizId)).body.status, 'passed');
  });

  test('an invalid merchantBizId → 400', async () => {
    const s = await started();
    const res = await ctx.api.session(s.token, 'bad-id');
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'VALIDATION_ERROR');
  });
});
