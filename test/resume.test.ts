/**
 * A TransactionUrl works once: a user who reloads, loses the tab or fails on a broken camera needs a
 * new transaction. POST /kyc/sessions/:merchantBizId/resume makes one (a new Initialize with the
 * same MerchantBizId and a new CallbackToken); the first transaction decided settles the session and
 * it never flips; what attempts cost is capped per session and per user per day.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashCallbackToken } from '../src/sessions/callback-token.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, waitFor, withStack } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack();
const rows = () => rowsOf(ctx.stack.app);
const initializeCalls = async () => (await ctx.api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;

async function started() {
  const token = await signToken(randomId('user-'));
  const merchantBizId = randomId('res');
  const res = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { token, merchantBizId, transactionId: String(res.body.transactionId), transactionUrl: String(res.body.transactionUrl) };
}
const decided = (merchantBizId: string) =>
  waitFor(`a verdict for ${merchantBizId}`, async () => {
    const r = await rows().session(merchantBizId);
    return r.status === 'passed' || r.status === 'failed' ? r : undefined;
  });

describe('POST /kyc/sessions/:merchantBizId/resume', () => {
  test('after the first link was used: a new transaction (same MerchantBizId, new token) that decides the session', async () => {
    const s = await started();
    // The user opens the link (it works once), then the tab is lost.
    assert.equal((await fetch(s.transactionUrl)).status, 200);

    const resumed = await ctx.api.resume(s.token, s.merchantBizId);
    assert.equal(resumed.status, 201, JSON.stringify(resumed.body));
    assert.deepEqual(Object.keys(resumed.body).sort(), ['attempt', 'expiresAt', 'merchantBizId', 'protocol', 'transactionId', 'transactionUrl']);
    assert.equal(resumed.body.attempt, 2);
    assert.notEqual(resumed.body.transactionId, s.transactionId);
    assert.notEqual(resumed.body.transactionUrl, s.transactionUrl);

    const first = (await ctx.api.sim.transaction(s.transactionId)).body.params;
    const second = (await ctx.api.sim.transaction(String(resumed.body.transactionId))).body.params;
    assert.equal(second.MerchantBizId, s.merchantBizId);
    assert.equal(second.MerchantUserId, first.MerchantUserId);
    assert.notEqual(second.CallbackToken, first.CallbackToken, 'a new CallbackToken');
    for (const policy of ['ProductCode', 'SecurityLevel', 'Model', 'IdSpoof', 'Authorize', 'DocType', 'DocVideo']) assert.equal(second[policy], first[policy], policy);
    const row = await rows().session(s.merchantBizId);
    assert.match(second.CallbackUrl!, new RegExp(`sessionId=${row.id}&attempt=2$`));
    assert.deepEqual(row.transactions.map((t) => [t.seq, t.transactionId]), [[1, s.transactionId], [2, resumed.body.transactionId]]);
    assert.equal(row.transactions[1]!.callbackTokenHash, hashCallbackToken(second.CallbackToken!));

    // The status names the newest transaction and counts the attempts.
    const status = await ctx.api.session(s.token, s.merchantBizId);
    assert.deepEqual([status.body.status, status.body.transactionId, status.body.attempts], ['pending', resumed.body.transactionId, 2]);
    // A repeated start stays idempotent: the newest transaction, no new Initialize.
    const calls = await initializeCalls();
    const again = await ctx.api.start(s.token, { metaInfo: META_INFO, merchantBizId: s.merchantBizId });
    assert.deepEqual([again.status, again.body.transactionId, again.body.attempt], [200, resumed.body.transactionId, 2]);
    assert.equal(await initializeCalls(), calls);

    // The second transaction decides.
    await ctx.api.sim.complete(String(resumed.body.transactionId), 'Y', '200');
    const done = await decided(s.merchantBizId);
    assert.deepEqual([done.status, done.passed, done.decidedTransactionId], ['passed', 'Y', resumed.body.transactionId]);
  });

  test("an old transaction's late result is recorded and logged, and never flips the session", async () => {
    const s = await started();
    const resumed = await ctx.api.resume(s.token, s.merchantBizId);
    await ctx.api.sim.complete(String(resumed.body.transactionId), 'Y', '200');
    await decided(s.merchantBizId);

    // The first link, finished after all, with the opposite verdict.
    const late = await ctx.api.sim.complete(s.transactionId, 'N', '201');
    assert.equal(late.body.delivery.status, 200, 'its callback is accepted (a genuine token of this session)');
    await waitFor('the late verdict on its transaction', async () => ((await rows().transaction(s.merchantBizId, 1)).passed === 'N' ? true : undefined));
    const row = await rows().session(s.merchantBizId);
    assert.deepEqual([row.status, row.passed, row.decidedTransactionId], ['passed', 'Y', resumed.body.transactionId]);
    assert.deepEqual(row.transactions.map((t) => [t.seq, t.callbackPassed, t.passed]), [[1, 'N', 'N'], [2, 'Y', 'Y']]);
    assert.equal((await ctx.api.session(s.token, s.merchantBizId)).body.status, 'passed');
    // Logged just after the write the wait above sees.
    await waitFor('the log line', async () => (ctx.stack.logs.lines.some((l) => l.includes('recorded, not applied') && l.includes(row.id)) ? true : undefined));
  });

  test('the first decided transaction wins even when it is the older one', async () => {
    const s = await started();
    const resumed = await ctx.api.resume(s.token, s.merchantBizId);
    await ctx.api.sim.complete(s.transactionId, 'N', '201');
    const done = await decided(s.merchantBizId);
    assert.deepEqual([done.status, done.decidedTransactionId], ['failed', s.transactionId]);
    assert.equal((await ctx.api.resume(s.token, s.merchantBizId)).body.code, 'SESSION_COMPLETED');
    await ctx.api.sim.complete(String(resumed.body.transactionId), 'Y', '200');
    await waitFor('the second verdict on its transaction', async () => ((await rows().transaction(s.merchantBizId, 2)).passed === 'Y' ? true : undefined));
    assert.equal((await rows().session(s.merchantBizId)).status, 'failed');
  });

  test('refused for a decided session (409 SESSION_COMPLETED), someone else\'s (404) and one still starting (409 SESSION_STARTING)', async () => {
    const s = await started();
    assert.equal((await ctx.api.resume(await signToken(randomId('other-')), s.merchantBizId)).status, 404);
    const unknown = await ctx.api.resume(s.token, randomId('none'));
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'SESSION_NOT_FOUND']);

    // While a start is still waiting for Initialize.
    const slow = randomId('slow');
    await ctx.api.sim.fault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 1000 });
    const pending = ctx.api.start(s.token, { metaInfo: META_INFO, merchantBizId: slow });
    await waitFor('the reservation', async () => ((await rows().sessionOrNull(slow)) ? true : undefined));
    const starting = await ctx.api.resume(s.token, slow);
    assert.deepEqual([starting.status, starting.body.code, starting.headers.get('retry-after')], [409, 'SESSION_STARTING', '1']);
    assert.equal((await pending).status, 201);

    await ctx.api.sim.complete(s.transactionId, 'Y', '200');
    const verifying = await ctx.api.resume(s.token, s.merchantBizId);
    assert.deepEqual([verifying.status, verifying.body.code], [409, 'SESSION_COMPLETED'], 'a callback being verified counts as decided');
    await decided(s.merchantBizId);
    assert.equal((await ctx.api.resume(s.token, s.merchantBizId)).body.code, 'SESSION_COMPLETED');
  });

  test('an expired session without a result may be resumed; so may one whose start failed', async () => {
    const s = await started();
    await rows().expire(s.merchantBizId);
    assert.equal((await ctx.api.session(s.token, s.merchantBizId)).body.status, 'expired');
    assert.equal((await ctx.api.start(s.token, { metaInfo: META_INFO, merchantBizId: s.merchantBizId })).body.code, 'SESSION_EXPIRED');
    const resumed = await ctx.api.resume(s.token, s.merchantBizId);
    assert.equal(resumed.status, 201);
    assert.ok(Date.parse(String(resumed.body.expiresAt)) > Date.now() + 29 * 60_000);
    const status = await ctx.api.session(s.token, s.merchantBizId);
    assert.deepEqual([status.body.status, status.body.transactionId], ['pending', resumed.body.transactionId]);

    const failed = randomId('fail');
    await ctx.api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'MetaInfo is invalid' });
    assert.equal((await ctx.api.start(s.token, { metaInfo: META_INFO, merchantBizId: failed })).body.code, 'INVALID_META_INFO');
    const retried = await ctx.api.resume(s.token, failed);
    assert.deepEqual([retried.status, retried.body.attempt], [201, 2]);
    assert.equal((await ctx.api.session(s.token, failed)).body.status, 'pending');
  });

  test('a resume that fails at Alibaba leaves the session and its current transaction as they were', async () => {
    const s = await started();
    await ctx.api.sim.fault({ action: 'Initialize', status: 500, code: 'InternalError' });
    assert.equal((await ctx.api.resume(s.token, s.merchantBizId)).body.code, 'UPSTREAM_ERROR');
    const status = await ctx.api.session(s.token, s.merchantBizId);
    assert.deepEqual([status.body.status, status.body.transactionId, status.body.attempts], ['pending', s.transactionId, 2]);
    const again = await ctx.api.start(s.token, { metaInfo: META_INFO, merchantBizId: s.merchantBizId });
    assert.deepEqual([again.status, again.body.transactionId], [200, s.transactionId]);
  });

  test('body fields are checked like a start\'s; a different merchantBizId in the body is refused', async () => {
    const s = await started();
    const other = await ctx.api.resume(s.token, s.merchantBizId, { metaInfo: META_INFO, merchantBizId: 'another1' });
    assert.deepEqual([other.status, other.body.code], [400, 'VALIDATION_ERROR']);
    const policy = await ctx.api.resume(s.token, s.merchantBizId, { metaInfo: META_INFO, ProductCode: 'eKYC_PRO' });
    assert.deepEqual([policy.status, policy.body.code], [400, 'VALIDATION_ERROR']);
    const docType = await ctx.api.resume(s.token, s.merchantBizId, { metaInfo: META_INFO, docType: '00000001' });
    assert.equal(docType.body.code, 'DOC_TYPE_NOT_ALLOWED');
    assert.equal((await ctx.api.resume(undefined, s.merchantBizId)).status, 401);
  });
});

describe('what attempts cost', () => {
  test(`KYC_MAX_TRANSACTIONS_PER_SESSION (3 by default): past it, 429 ATTEMPTS_EXHAUSTED without Retry-After`, async () => {
    const s = await started();
    assert.equal((await ctx.api.resume(s.token, s.merchantBizId)).status, 201);
    assert.equal((await ctx.api.resume(s.token, s.merchantBizId)).status, 201);
    const calls = await initializeCalls();
    const capped = await ctx.api.resume(s.token, s.merchantBizId);
    assert.deepEqual([capped.status, capped.body.code, capped.headers.get('retry-after')], [429, 'ATTEMPTS_EXHAUSTED', null]);
    assert.equal(await initializeCalls(), calls, 'no Initialize');
    assert.equal((await rows().session(s.merchantBizId)).transactions.length, 3);
  });

  test('concurrent resumes of one session: one Initialize each within the cap, the rest refused', async () => {
    const s = await started();
    const calls = await initializeCalls();
    const results = await Promise.all([1, 2, 3, 4].map(() => ctx.api.resume(s.token, s.merchantBizId)));
    const created = results.filter((r) => r.status === 201).length;
    assert.ok(created >= 1 && created <= 2, `created ${created}`);
    for (const r of results.filter((x) => x.status !== 201)) {
      assert.ok(['SESSION_STARTING', 'ATTEMPTS_EXHAUSTED'].includes(String(r.body.code)), JSON.stringify(r.body));
    }
    assert.equal((await initializeCalls()) - calls, created);
    assert.ok((await rows().session(s.merchantBizId)).transactions.length <= 3);
  });

  test('KYC_MAX_STARTS_PER_USER_PER_DAY counts starts and resumes of one user; past it 429 with Retry-After; other users are not affected', async () => {
    await withStack({ env: { KYC_MAX_STARTS_PER_USER_PER_DAY: '3' } }, async (stack) => {
      const api = clientFor(stack);
      const token = await signToken(randomId('busy-'));
      const a = randomId('a');
      assert.equal((await api.start(token, { metaInfo: META_INFO, merchantBizId: a })).status, 201);
      assert.equal((await api.resume(token, a)).status, 201);
      assert.equal((await api.start(token, { metaInfo: META_INFO })).status, 201);
      // A repeat of a live one costs nothing and is still answered.
      assert.equal((await api.start(token, { metaInfo: META_INFO, merchantBizId: a })).status, 200);

      const b = randomId('b');
      const capped = await api.start(token, { metaInfo: META_INFO, merchantBizId: b });
      assert.deepEqual([capped.status, capped.body.code], [429, 'ATTEMPTS_EXHAUSTED']);
      const retryAfter = Number(capped.headers.get('retry-after'));
      assert.ok(retryAfter > 86_000 && retryAfter <= 86_400, `Retry-After ${retryAfter}`);
      assert.equal((await api.resume(token, a)).body.code, 'ATTEMPTS_EXHAUSTED');
      assert.equal(await stack.app.prisma.kycSession.count({ where: { merchantBizId: b } }), 0, 'nothing left of the refused start');

      // A day later (the entries moved back), the user may start again.
      await stack.app.prisma.$executeRaw`UPDATE kyc_user_quota SET starts = ARRAY(SELECT x - interval '1 day' FROM unnest(starts) x)`;
      assert.equal((await api.start(token, { metaInfo: META_INFO })).status, 201);
      assert.equal((await api.start(await signToken(randomId('calm-')), { metaInfo: META_INFO })).status, 201);
    });
  });

  test('a start that never reached Alibaba (its caller left while it queued for a QPS slot) gives its place back', async () => {
    await withStack({ env: { KYC_MAX_STARTS_PER_USER_PER_DAY: '1', CLOUDAUTH_QPS: '1' } }, async (stack) => {
      const api = clientFor(stack);
      const token = await signToken(randomId('u-'));
      // Another user takes the only slot of this second; this user's start queues for the next, and leaves.
      assert.equal((await api.start(await signToken(randomId('first-')), { metaInfo: META_INFO })).status, 201);
      const merchantBizId = randomId('left');
      const leaving = fetch(`${stack.appUrl}/kyc/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ metaInfo: META_INFO, merchantBizId }),
        signal: AbortSignal.timeout(300),
      }).catch(() => undefined);
      await leaving;
      await waitFor('the released reservation', async () => ((await stack.app.prisma.kycSession.count({ where: { merchantBizId } })) === 0 ? true : undefined));
      assert.equal((await api.sim.calls()).body.filter((c) => c.action === 'Initialize').length, 1, 'it never reached Alibaba');
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await api.start(token, { metaInfo: META_INFO })).status, 201, 'the abandoned start did not count');
    });
  });
});
