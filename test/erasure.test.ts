/**
 * Erasure (GDPR, PDPO, PDPA requests, and retention): answered 202 at once, then a durable job
 * removes the person and the details here, asks Alibaba's DeleteVerifyResult for every transaction
 * (through the QPS budget, retried with backoff) and records kyc.session.redacted. A tombstone
 * stays; nothing revives an erased session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { userRef } from '../src/auth/user-ref.js';
import { eraseSession } from '../src/erasure/erase.js';
import { ErasureRepository } from '../src/erasure/repository.js';
import { verifyWebhook } from '../src/events/webhook.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { byteaHex, dumpData } from './helpers/pg-dump.js';
import { startReceiver } from './helpers/receiver.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, startStack, waitFor, withStack, type Stack } from './helpers/stack.js';

const OPS_KEY = 'erasure-test-ops-key-0123456789abcdefghij';
const WEBHOOK_SECRET = 'erasure-test-webhook-secret-0123456789abcdef';

interface Erasure {
  requestedAt: string;
  redactedAt: string | null;
  completedAt: string | null;
}
interface BackOfficeSession {
  id: string;
  merchantBizId: string;
  userId: string | null;
  status: string;
  passed: string | null;
  details: unknown;
  erasure: Erasure | null;
  transactions: Array<{ attempt: number; transactionId: string | null; upstreamDeletion: { state: string; attempts: number; lastError: string | null } | null }>;
}

let stack: Stack;
let api: ReturnType<typeof clientFor>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    env: {
      KYC_STORE_RESULT_DETAILS: 'true',
      KYC_DETAILS_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      INTERNAL_API_KEYS: `ops:${OPS_KEY}`,
      MERCHANT_WEBHOOK_URL: receiver.url,
      MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
  });
  api = clientFor(stack);
});
after(async () => {
  await stack.close();
  await receiver.close();
});

const backOffice = async <T = Record<string, unknown>>(own: Stack, method: string, path: string) => {
  const res = await fetch(`${own.appUrl}/internal${path}`, { method, headers: { 'x-api-key': OPS_KEY } });
  return { status: res.status, body: (await res.json()) as T };
};
const sessionView = async (own: Stack, id: string) => (await backOffice<BackOfficeSession>(own, 'GET', `/kyc/sessions/${id}`)).body;
const erased = (own: Stack, id: string, timeoutMs = 20_000) =>
  waitFor(`the erasure of ${id} to complete`, async () => {
    const view = await sessionView(own, id);
    return view.erasure?.completedAt ? view : undefined;
  }, timeoutMs);

async function startIn(own: Stack, sub = randomId('user-')) {
  const token = await signToken(sub);
  const res = await clientFor(own).start(token, { metaInfo: META_INFO });
  assert.equal(res.status, 201);
  const merchantBizId = String(res.body.merchantBizId);
  return { sub, token, merchantBizId, transactionId: String(res.body.transactionId), sessionId: (await rowsOf(own.app).session(merchantBizId)).id };
}
const statusOf = async (own: Stack, merchantBizId: string) => (await rowsOf(own.app).session(merchantBizId)).status;
const until = (own: Stack, merchantBizId: string, status: string) =>
  waitFor(`${merchantBizId} to be ${status}`, async () => ((await statusOf(own, merchantBizId)) === status ? true : undefined), 15_000);
const simCalls = async (own: Stack, action: string) => (await clientFor(own).sim.calls()).body.filter((c) => c.action === action);
const simDeletions = async (own: Stack, transactionId: string) =>
  (await fetch(`${own.simUrl}/__sim/transactions/${transactionId}`).then((r) => r.json())) as { deletions: Array<{ deleteType: string; deleted: boolean; failReason?: string }> };

describe('an erasure end to end', () => {
  test('a resumed session: 202 at once; details and the person gone from a pg_dump; DeleteVerifyResult for both transactions, retried through failures and throttling; the tombstone; the redacted event', async () => {
    // A session resumed once (its first link expired half an hour ago), then passed, with its details stored.
    const s = await startIn(stack, `needle-${randomId()}@Example.COM`);
    await rowsOf(stack.app).expire(s.merchantBizId, new Date(Date.now() - 31 * 60_000));
    const resumed = await api.resume(s.token, s.merchantBizId);
    assert.equal(resumed.status, 201);
    const second = String(resumed.body.transactionId);
    await api.sim.complete(second, 'Y', '200');
    await until(stack, s.merchantBizId, 'passed');
    const row = await rowsOf(stack.app).session(s.merchantBizId);
    assert.equal(row.transactions.length, 2);
    assert.ok(row.detailsCiphertext && row.userIdCiphertext && row.userRef);
    const tx = await fetch(`${stack.simUrl}/__sim/transactions/${second}`).then((r) => r.json() as Promise<{ params: Record<string, string> }>);
    const callbackToken = tx.params.CallbackToken!;

    // What a pg_dump shows of the person and the details before: the test's own check that it can fail.
    const personal = [
      row.userRef!,
      byteaHex(row.userIdCiphertext!),
      byteaHex(row.detailsCiphertext!),
      ...row.transactions.flatMap((t) => [t.callbackTokenHash!, `/verify/${t.transactionId}`, t.protocol!]),
    ];
    const before = await dumpData(stack);
    for (const value of personal) assert.ok(before.includes(value), `the dump shows ${value.slice(0, 16)}… before`);

    // Alibaba fails once (5xx), then throttles more than one call's retries absorb.
    await api.sim.fault({ action: 'DeleteVerifyResult', status: 500, code: 'InternalError' });
    await api.sim.fault({ action: 'DeleteVerifyResult', status: 403, code: 'Throttling.Api', retryAfterMs: 50, count: 6 });

    const accepted = await backOffice<{ sessions: Array<{ id: string; erasure: Erasure }> }>(stack, 'DELETE', `/kyc/sessions/${s.sessionId}`);
    assert.equal(accepted.status, 202);
    assert.equal(accepted.body.sessions[0]?.id, s.sessionId);
    assert.ok(accepted.body.sessions[0]?.erasure.requestedAt);
    assert.equal(accepted.body.sessions[0]?.erasure.completedAt, null);
    // Detached from the person at once: their own status read no longer finds it.
    assert.equal((await api.session(s.token, s.merchantBizId)).status, 404);

    const view = await erased(stack, s.sessionId);
    // The tombstone: id, merchantBizId, status, outcome, timestamps, redactedAt; no person, no details.
    assert.deepEqual([view.id, view.merchantBizId, view.status, view.passed, view.userId, view.details], [s.sessionId, s.merchantBizId, 'passed', 'Y', null, null]);
    assert.ok(view.erasure?.redactedAt && view.erasure.completedAt);
    // Each transaction asked for at Alibaba, and asked again after the failures.
    assert.deepEqual(
      view.transactions.map((t) => [t.attempt, t.upstreamDeletion?.state]),
      [[1, 'absent'], [2, 'deleted']],
    );
    assert.ok(view.transactions.every((t) => t.upstreamDeletion!.attempts === 2), JSON.stringify(view.transactions));
    const codes = (await simCalls(stack, 'DeleteVerifyResult')).map((c) => c.code);
    assert.equal(codes[0], 'InternalError');
    assert.equal(codes.filter((c) => c === 'Throttling.Api').length, 6);
    assert.equal(codes.at(-1), 'Success');
    assert.deepEqual((await simDeletions(stack, row.transactions[0]!.transactionId!)).deletions.map((d) => [d.deleteType, d.deleted, d.failReason]), [['All', false, 'NOT_COMPLETED']]);
    assert.deepEqual((await simDeletions(stack, second)).deletions.map((d) => [d.deleteType, d.deleted]), [['All', true]]);

    // Nothing of the person or the details is left in the database.
    const afterDump = await dumpData(stack);
    assert.ok(afterDump.includes(s.sessionId) && afterDump.includes(s.merchantBizId), 'the tombstone is in the dump');
    for (const value of personal) assert.ok(!afterDump.includes(value), `the dump still shows ${value.slice(0, 16)}…`);

    // The event: signed, after the session's others, without the person.
    const redacted = await waitFor('the redacted event', async () => receiver.of(s.sessionId).find((r) => r.event.type === 'kyc.session.redacted'));
    assert.ok(verifyWebhook(WEBHOOK_SECRET, String(redacted.headers['x-kyc-signature']), redacted.body));
    assert.ok(!('userId' in redacted.event.data) && !redacted.body.includes(s.sub));
    assert.deepEqual(redacted.event.data.upstreamDeletions, { absent: 1, deleted: 1 });
    assert.deepEqual([redacted.event.data.status, redacted.event.data.passed], ['passed', 'Y']);
    const sequences = receiver.of(s.sessionId).map((r) => [r.event.type, r.event.sequence]);
    assert.deepEqual(sequences, [['kyc.session.verifying', 1], ['kyc.session.finished', 2], ['kyc.session.redacted', 3]]);
    assert.match(await stack.app.metrics.registry.getSingleMetricAsString('kyc_erasures_total'), /outcome="complete"} [1-9]/);

    // Idempotent: asked again, nothing more happens.
    const deletionsBefore = codes.length;
    const again = await backOffice<{ sessions: Array<{ erasure: Erasure }> }>(stack, 'DELETE', `/kyc/sessions/${s.sessionId}`);
    assert.equal(again.status, 202);
    assert.deepEqual(again.body.sessions[0]?.erasure, view.erasure);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await simCalls(stack, 'DeleteVerifyResult')).length, deletionsBefore);
    assert.equal(receiver.of(s.sessionId).filter((r) => r.event.type === 'kyc.session.redacted').length, 1);

    // A late callback of the erased transaction: 200, ignored.
    const late = await api.callback({ transactionId: second, passed: 'Y', subCode: '200', callbackToken });
    assert.deepEqual([late.status, late.body.result], [200, 'ignored']);
    assert.equal(await statusOf(stack, s.merchantBizId), 'passed');
  });

  test('a pending session is expired first: the late callback is ignored; its transaction is deleted at Alibaba once it has expired', async () => {
    const s = await startIn(stack);
    const accepted = await backOffice(stack, 'DELETE', `/kyc/sessions/${s.sessionId}`);
    assert.equal(accepted.status, 202);
    assert.equal(await statusOf(stack, s.merchantBizId), 'expired');
    // Erased here; the link is still live at Alibaba, so its deletion waits.
    const redacted = await waitFor('the local erasure', async () => {
      const view = await sessionView(stack, s.sessionId);
      return view.erasure?.redactedAt ? view : undefined;
    });
    assert.equal(redacted.erasure?.completedAt, null);
    assert.deepEqual(redacted.transactions.map((t) => [t.upstreamDeletion?.state, t.upstreamDeletion?.attempts]), [['pending', 0]]);

    // The user finishes at Alibaba after all: the callback is answered 200 and changes nothing.
    const checksBefore = (await simCalls(stack, 'CheckResult')).length;
    assert.equal((await api.sim.complete(s.transactionId, 'Y', '200')).body.delivery.status, 200);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await statusOf(stack, s.merchantBizId), 'expired');
    assert.equal((await simCalls(stack, 'CheckResult')).length, checksBefore, 'no CheckResult for an erased session');

    // 31 minutes later (its expiry moved back rather than waited for): the sweep runs the erasure again.
    await rowsOf(stack.app).expire(s.merchantBizId, new Date(Date.now() - 31 * 60_000));
    assert.ok((await stack.app.erasure.sweep()) >= 1);
    const done = await erased(stack, s.sessionId);
    assert.deepEqual(done.transactions.map((t) => t.upstreamDeletion?.state), ['deleted'], 'what the user did meanwhile is deleted too');
    const types = await waitFor('the expired and redacted events', async () => {
      const got = receiver.of(s.sessionId).map((r) => `${r.event.sequence}:${r.event.type}`);
      return got.length === 2 ? got : undefined;
    });
    assert.deepEqual(types, ['1:kyc.session.expired', '2:kyc.session.redacted']);
  });
});

describe('the person reading an erased session', () => {
  test('their cached status and their long poll learn it at once: 404 (the session is no longer theirs)', async () => {
    const s = await startIn(stack);
    // Read twice: the second is answered from the status cache.
    assert.equal((await api.session(s.token, s.merchantBizId)).body.status, 'pending');
    assert.equal((await api.session(s.token, s.merchantBizId)).body.status, 'pending');
    const waiting = fetch(`${stack.appUrl}/kyc/sessions/${s.merchantBizId}?wait=20&status=pending`, { headers: { authorization: `Bearer ${s.token}` } });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    assert.equal((await backOffice(stack, 'DELETE', `/kyc/sessions/${s.sessionId}`)).status, 202);
    const woken = await waiting;
    assert.ok(Date.now() - t0 < 5000, `the long poll answered after ${Date.now() - t0} ms`);
    assert.equal(woken.status, 404);
    assert.equal((await api.session(s.token, s.merchantBizId)).status, 404);
  });
});

describe('DELETE /internal/kyc/users/:userId', () => {
  test("erases every session of that person (found by the JWT sub as issued), and their day-cap row; another person's stays", async () => {
    const alice = `Ålice/${randomId()}@Example.COM`;
    const a1 = await startIn(stack, alice);
    const a2 = await startIn(stack, alice);
    const b = await startIn(stack);
    for (const t of [a1, a2]) await api.sim.complete(t.transactionId, 'Y', '200');
    for (const t of [a1, a2]) await until(stack, t.merchantBizId, 'passed');
    const refOf = (sub: string) => userRef(stack.config.USER_ID_HASH_SECRET, sub);
    assert.ok(await stack.app.prisma.kycUserQuota.findUnique({ where: { userRef: refOf(alice) } }));

    const res = await backOffice<{ sessions: Array<{ id: string }> }>(stack, 'DELETE', `/kyc/users/${encodeURIComponent(alice)}`);
    assert.equal(res.status, 202);
    assert.deepEqual(res.body.sessions.map((x) => x.id).sort(), [a1.sessionId, a2.sessionId].sort());
    for (const t of [a1, a2]) assert.equal((await erased(stack, t.sessionId)).userId, null);
    assert.equal(await stack.app.prisma.kycUserQuota.findUnique({ where: { userRef: refOf(alice) } }), null);

    const bView = await sessionView(stack, b.sessionId);
    assert.deepEqual([bView.userId, bView.erasure], [b.sub, null]);
    assert.ok(await stack.app.prisma.kycUserQuota.findUnique({ where: { userRef: refOf(b.sub) } }));

    // The audit trail names the sessions, never the person.
    const trail = JSON.stringify(await stack.app.prisma.kycAudit.findMany({ where: { action: { in: ['user.erase', 'session.erase'] } }, select: { target: true, detail: true } }));
    assert.ok(trail.includes(a1.sessionId) && trail.includes(a2.sessionId));
    assert.ok(!trail.includes(alice) && !trail.includes(refOf(alice)));

    // A person with no session: nothing to erase.
    const none = await backOffice<{ sessions: unknown[] }>(stack, 'DELETE', `/kyc/users/${randomId('nobody-')}`);
    assert.deepEqual([none.status, none.body.sessions], [202, []]);
  });
});

describe('deletions at Alibaba that do not succeed', () => {
  test('refused (InvalidParameter): not asked again; failing on the last attempt: failed, the erasure incomplete; a repeated DELETE asks again', async () => {
    // No workers: the test runs each erasure attempt itself.
    await withStack({ env: { INTERNAL_API_KEYS: `ops:${OPS_KEY}`, JOBS_WORKERS: 'false' } }, async (own) => {
      const run = (sessionId: string, lastAttempt: boolean) =>
        eraseSession(
          { repository: new ErasureRepository(own.app.pgPool), cloudauth: own.app.cloudauth, log: own.app.log, notify: own.app.events.dispatch, inFlightSince: () => new Date() },
          sessionId,
          { lastAttempt },
        );
      const ownApi = clientFor(own);
      // Callbacks came (nothing waits for an expiry); with no worker, CheckResult never decides.
      const refused = await startIn(own);
      const failing = await startIn(own);
      for (const t of [refused, failing]) await ownApi.sim.complete(t.transactionId, 'Y', '200');
      for (const t of [refused, failing]) assert.equal((await backOffice(own, 'DELETE', `/kyc/sessions/${t.sessionId}`)).status, 202);

      await ownApi.sim.fault({ action: 'DeleteVerifyResult', status: 400, code: 'InvalidParameter', message: 'TransactionId is invalid' });
      assert.equal(await run(refused.sessionId, false), 'incomplete');
      assert.deepEqual((await sessionView(own, refused.sessionId)).transactions.map((t) => [t.upstreamDeletion?.state, t.upstreamDeletion?.lastError]), [['rejected', 'InvalidParameter']]);

      await ownApi.sim.fault({ action: 'DeleteVerifyResult', status: 500, code: 'InternalError' });
      assert.equal(await run(failing.sessionId, true), 'incomplete');
      const failed = await sessionView(own, failing.sessionId);
      assert.deepEqual(failed.transactions.map((t) => t.upstreamDeletion?.state), ['failed']);
      assert.equal(failed.status, 'expired', 'verifying, it was ended by the erasure');
      assert.ok(failed.erasure?.completedAt);

      // Asked again: the failed deletion is pending again, and this time Alibaba deletes.
      assert.equal((await backOffice(own, 'DELETE', `/kyc/sessions/${failing.sessionId}`)).status, 202);
      assert.equal((await sessionView(own, failing.sessionId)).erasure?.completedAt, null);
      assert.equal(await run(failing.sessionId, false), 'complete');
      assert.deepEqual((await sessionView(own, failing.sessionId)).transactions.map((t) => t.upstreamDeletion?.state), ['deleted']);
      // One redacted event per session, however often it completes.
      const redacted = await own.app.prisma.kycEvent.findMany({ where: { sessionId: failing.sessionId, type: 'kyc.session.redacted' } });
      assert.equal(redacted.length, 1);
      assert.deepEqual(redacted[0]!.data, { ...(redacted[0]!.data as object), upstreamDeletions: { failed: 1 } }, 'recorded when it first completed');
    });
  });
});

describe('retention (KYC_SESSION_RETENTION_DAYS)', () => {
  test('a session older than the retention is erased the same way, recorded as retention in the audit trail; a younger one is kept', async () => {
    await withStack({ env: { INTERNAL_API_KEYS: `ops:${OPS_KEY}`, KYC_SESSION_RETENTION_DAYS: '7' } }, async (own) => {
      const old = await startIn(own);
      const young = await startIn(own);
      for (const t of [old, young]) await clientFor(own).sim.complete(t.transactionId, 'N', '201');
      for (const t of [old, young]) await until(own, t.merchantBizId, 'failed');
      await own.app.prisma.kycSession.update({ where: { id: old.sessionId }, data: { createdAt: new Date(Date.now() - 8 * 86_400_000) } });

      assert.equal(await own.app.erasure.applyRetention(), 1);
      const view = await erased(own, old.sessionId);
      assert.deepEqual([view.status, view.userId, view.transactions[0]?.upstreamDeletion?.state], ['failed', null, 'deleted']);
      const youngView = await sessionView(own, young.sessionId);
      assert.deepEqual([youngView.erasure, youngView.userId], [null, young.sub]);
      assert.equal(await own.app.erasure.applyRetention(), 0, 'asked once');

      const [row] = await own.app.prisma.kycAudit.findMany({ where: { actor: 'retention' } });
      assert.deepEqual([row?.action, row?.target, row?.address], ['session.erase', `session:${old.sessionId}`, null]);
    });
  });
});
