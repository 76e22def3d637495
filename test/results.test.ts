import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { buildApp } from '../src/app.js';
import { deliveryJobTimeoutS, EVENT_QUEUES } from '../src/events/plugin.js';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, verifyWebhook, WEBHOOK_TIMEOUT_MS } from '../src/events/webhook.js';
import { QUEUES } from '../src/results/plugin.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import {
  DATABASE_URL,
  dropSchemas,
  freePort,
  freshDatabaseUrl,
  LogCapture,
  META_INFO,
  randomId,
  startStack,
  testConfig,
  waitFor,
  withStack,
  type Stack,
  type StackOptions,
} from './helpers/stack.js';

const KEY_1 = `k1:${randomBytes(32).toString('base64')}`;
const KEY_2 = `k2:${randomBytes(32).toString('base64')}`;
const INTERNAL_API_KEY = 'internal-api-key-0123456789-abcdefghij';
const WEBHOOK_SECRET = 'webhook-secret-0123456789-abcdefghijkl';

/**
 * The merchant's webhook receiver: records deliveries; fails the first one whose body has every
 * `|`-separated part of a key in `failOnce`; answers the first one for a key in `holdOnce` (the
 * same form) only once its promise settles.
 */
const deliveries: Array<{ headers: IncomingMessage['headers']; body: string; answered: number }> = [];
const failOnce = new Set<string>();
const holdOnce = new Map<string, Promise<void>>();
/** Sessions whose held delivery has arrived and is not answered yet. */
const holding = new Set<string>();
let webhookUrl = '';
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', async () => {
    const matches = (key: string) => key.split('|').every((part) => body.includes(part));
    const held = [...holdOnce.keys()].find(matches);
    if (held) {
      const release = holdOnce.get(held)!;
      holdOnce.delete(held);
      holding.add(held);
      await release;
      holding.delete(held);
    }
    const id = [...failOnce].find(matches);
    if (id) failOnce.delete(id);
    const answered = id ? 500 : 200;
    deliveries.push({ headers: req.headers, body, answered });
    res.statusCode = answered;
    res.end();
  });
});

let stack: Stack;
let api: ReturnType<typeof clientFor>;
before(async () => {
  const port = await freePort();
  await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
  webhookUrl = `http://127.0.0.1:${port}/kyc-events`;
  stack = await startStack({
    env: {
      KYC_STORE_RESULT_DETAILS: 'true',
      KYC_DETAILS_KEYS: KEY_1,
      INTERNAL_API_KEY,
      MERCHANT_WEBHOOK_URL: webhookUrl,
      MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
    },
  });
  api = clientFor(stack);
});
after(async () => {
  await stack.close();
  receiver.close();
});

async function started() {
  const sub = randomId('user-');
  const token = await signToken(sub);
  const res = await api.start(token, { metaInfo: META_INFO });
  assert.equal(res.status, 201);
  const merchantBizId = String(res.body.merchantBizId);
  return { sub, token, merchantBizId, transactionId: String(res.body.transactionId), sessionId: (await rowsOf(stack.app).session(merchantBizId)).id };
}
const row = (merchantBizId: string) => rowsOf(stack.app).session(merchantBizId);
const tx = (merchantBizId: string) => rowsOf(stack.app).transaction(merchantBizId);
const statusOf = async (merchantBizId: string) => (await row(merchantBizId)).status;
const until = (merchantBizId: string, status: string, timeoutMs = 10_000) =>
  waitFor(`${merchantBizId} to be ${status}`, async () => ((await statusOf(merchantBizId)) === status ? true : undefined), timeoutMs);
const overrideResult = (transactionId: string, result: Record<string, unknown>) =>
  fetch(`${stack.simUrl}/__sim/transactions/${transactionId}/result`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(result),
  });
const checkResultCodes = async () => (await api.sim.calls()).body.filter((c) => c.action === 'CheckResult').map((c) => c.code);
const internal = (sessionId: string, key = INTERNAL_API_KEY) =>
  fetch(`${stack.appUrl}/internal/kyc/sessions/${sessionId}`, { headers: { 'x-api-key': key } });

describe('CheckResult decides the outcome', () => {
  test('callback → verifying while CheckResult runs → passed', async () => {
    const s = await started();
    await api.sim.fault({ action: 'CheckResult', status: 200, code: 'Success', delayMs: 1500 });
    await api.sim.complete(s.transactionId, 'Y', '200');
    assert.equal((await api.session(s.token, s.merchantBizId)).body.status, 'verifying');
    await until(s.merchantBizId, 'passed');
    const view = await api.session(s.token, s.merchantBizId);
    assert.equal(view.body.status, 'passed');
    assert.equal(view.body.passed, 'Y');
    assert.equal(view.body.subCode, '200');
  });

  test('CheckResult says N although the callback said Y → failed', async () => {
    const s = await started();
    await overrideResult(s.transactionId, { Passed: 'N', SubCode: '201' });
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'failed');
    const r = await row(s.merchantBizId);
    assert.equal(r.passed, 'N');
    assert.equal(r.subCode, '201');
    assert.equal((await tx(s.merchantBizId)).callbackPassed, 'Y');
    // Logged just after the write the wait above sees.
    await waitFor('the warning', async () => (stack.logs.lines.some((l) => l.includes('CheckResult contradicts the callback') && l.includes(s.sessionId)) ? true : undefined));
  });

  test('P (still running) is asked again later', async () => {
    const s = await started();
    await overrideResult(s.transactionId, { Passed: 'P' });
    await api.sim.complete(s.transactionId, 'Y', '200');
    await waitFor('a first CheckResult', async () => ((await row(s.merchantBizId)).status === 'verifying' && (await checkResultCodes()).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await statusOf(s.merchantBizId), 'verifying');
    await overrideResult(s.transactionId, { Passed: 'Y', SubCode: '200' });
    await until(s.merchantBizId, 'passed', 15_000);
  });

  test('throttling and 5xx from CheckResult are retried', async () => {
    const s = await started();
    const before = (await checkResultCodes()).length;
    await api.sim.fault({ action: 'CheckResult', status: 500, code: 'InternalError' });
    await api.sim.fault({ action: 'CheckResult', status: 403, code: 'Throttling.Api', retryAfterMs: 100, count: 6 });
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'passed', 20_000);
    const codes = (await checkResultCodes()).slice(before);
    assert.equal(codes[0], 'InternalError');
    assert.ok(codes.includes('Throttling.Api'));
    assert.equal(codes.at(-1), 'Success');
  });

  test('a refused CheckResult (InvalidParameter) → error at once, with a reason', async () => {
    const s = await started();
    await api.sim.fault({ action: 'CheckResult', status: 400, code: 'InvalidParameter', message: 'TransactionId is invalid' });
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'error');
    assert.equal((await row(s.merchantBizId)).errorCode, 'CHECK_RESULT_REJECTED');
  });
});

describe('reconciliation', () => {
  test('a lost callback: the expired session is reconciled with CheckResult', async () => {
    const s = await started();
    await overrideResult(s.transactionId, { Passed: 'Y', SubCode: '200' }); // finished at Alibaba, callback never came
    await rowsOf(stack.app).expire(s.merchantBizId);
    const { queued } = await stack.app.results.reconcile();
    assert.ok(queued >= 1);
    await until(s.merchantBizId, 'passed');
    assert.equal((await tx(s.merchantBizId)).callbackPassed, null);
  });

  test('no callback and no result → expired', async () => {
    const s = await started();
    await rowsOf(stack.app).expire(s.merchantBizId);
    await stack.app.results.reconcile();
    await until(s.merchantBizId, 'expired');
    assert.equal((await api.session(s.token, s.merchantBizId)).body.status, 'expired');
  });

  test('a session whose Initialize never answered expires without asking Alibaba', async () => {
    const merchantBizId = randomId('unstarted');
    const expiresAt = new Date(Date.now() - 1000);
    await stack.app.prisma.kycSession.create({
      data: {
        id: randomUUID(),
        merchantBizId,
        userRef: 'x'.repeat(64),
        docType: '01000000',
        expiresAt,
        transactions: { create: { seq: 1, callbackTokenHash: '0'.repeat(64), expiresAt } },
      },
    });
    const { expired } = await stack.app.results.reconcile();
    assert.ok(expired >= 1);
    assert.equal(await statusOf(merchantBizId), 'expired');
  });

  test('the sweep uses the (status, expires_at) index, not a scan of the table', async () => {
    await stack.app.prisma.$executeRawUnsafe('SET enable_seqscan = off');
    const plan = await stack.app.prisma.$queryRawUnsafe<Array<{ 'QUERY PLAN': string }>>(
      `EXPLAIN SELECT merchant_biz_id FROM kyc_session WHERE status = 'pending' AND expires_at < now() AND transaction_id IS NOT NULL`,
    );
    await stack.app.prisma.$executeRawUnsafe('RESET enable_seqscan');
    assert.match(plan.map((p) => p['QUERY PLAN']).join('\n'), /kyc_session_status_expires_at_idx/);
  });
});

describe('durability', () => {
  test('a queued CheckResult survives a restart between the callback and the fetch', async () => {
    const sim = await startStack({ env: { JOBS_WORKERS: 'false' } });
    const simApi = clientFor(sim);
    let second: Awaited<ReturnType<typeof buildApp>> | undefined;
    try {
      const token = await signToken(randomId('user-'));
      const res = await simApi.start(token, { metaInfo: META_INFO });
      const merchantBizId = String(res.body.merchantBizId);
      await simApi.sim.complete(String(res.body.transactionId), 'Y', '200');
      await new Promise((r) => setTimeout(r, 700));
      const read = () => rowsOf(sim.app).session(merchantBizId);
      assert.equal((await read()).status, 'verifying', 'no worker ran yet');
      await sim.app.close(); // the process that took the callback is gone

      second = await buildApp({ ...sim.config, JOBS_WORKERS: true }, { logStream: new LogCapture() });
      await second.ready();
      const app2 = second;
      await waitFor('the restarted worker to decide', async () => {
        const r = await rowsOf(app2).session(merchantBizId);
        return r.status === 'passed' ? r : undefined;
      });
    } finally {
      await second?.close();
      await sim.sim.close();
      await dropSchemas(sim.config);
    }
  });
});

/** Another pg-boss on a stack's job queue, as a killed process was. */
async function withBoss<T>(own: Stack, fn: (boss: PgBoss) => Promise<T>): Promise<T> {
  const boss = new PgBoss({ connectionString: DATABASE_URL, schema: own.config.JOBS_SCHEMA, max: 1, migrate: false, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  try {
    return await fn(boss);
  } finally {
    await boss.stop({ graceful: false });
  }
}
const startIn = async (own: Stack) => {
  const token = await signToken(randomId('user-'));
  const res = await clientFor(own).start(token, { metaInfo: META_INFO });
  assert.equal(res.status, 201);
  const merchantBizId = String(res.body.merchantBizId);
  return { merchantBizId, transactionId: String(res.body.transactionId), sessionId: (await rowsOf(own.app).session(merchantBizId)).id };
};
const statusIn = async (own: Stack, merchantBizId: string) => (await rowsOf(own.app).session(merchantBizId)).status;
/** A stack's jobs of a queue (and session) that are queued, waiting to retry or running. */
const liveJobs = async (own: Stack, queue: string, sessionId: string) =>
  (
    await own.app.prisma.$queryRawUnsafe<Array<{ state: string }>>(
      `SELECT state::text FROM "${own.config.JOBS_SCHEMA}".job WHERE name = $1 AND singleton_key = $2 AND state <= 'active'`,
      queue,
      sessionId,
    )
  ).map((j) => j.state);
/** The statuses of the merchant events delivered (answered 2xx) for a session, in order. */
const deliveredStatuses = (merchantBizId: string) =>
  deliveries
    .filter((d) => d.answered === 200 && d.body.includes(merchantBizId))
    .map((d) => (JSON.parse(d.body) as { data: { status: string } }).data.status);

/**
 * A process SIGKILLed mid-CheckResult leaves its job `active` until CHECK_RESULT_JOB_TIMEOUT_S
 * (120 s) has passed and maintenance retries it. The stately check queue lets a second job of the
 * same session be `created` next to it, and pg-boss then fails (silently) every fetch of the queue
 * that reaches that job: no session's CheckResult would run until the orphan expired. Each test
 * has a stack of its own, so its job queue holds only the jobs it makes, with one CheckResult
 * worker: several workers fetching at the same moment can skip the row a failing fetch holds
 * locked, which lets some jobs through by chance and would make the test flaky.
 */
describe('a CheckResult job orphaned by a killed process', () => {
  /** Queues a session's CheckResult and starts it, never to finish it: what the kill leaves behind. */
  const orphanCheck = (own: Stack, sessionId: string) =>
    withBoss(own, async (boss) => {
      // Not due yet, so the stack's workers leave it; fetched here regardless.
      const id = await boss.send(QUEUES.check, { sessionId }, { singletonKey: sessionId, startAfter: 3600 });
      const [job] = await boss.fetch(QUEUES.check, { ignoreStartAfter: true });
      assert.ok(id && job?.id === id, 'the orphan is the job started');
      return id;
    });
  /** The session's check jobs that are queued, waiting to retry or running. */
  const liveChecks = (own: Stack, sessionId: string) => liveJobs(own, QUEUES.check, sessionId);
  /** The callback was recorded 3 minutes ago and the session is still verifying: the sweep's "stuck" case. */
  const verifyingSince3Min = async (own: Stack, sessionId: string) => {
    await own.app.prisma.$executeRaw`
      UPDATE kyc_transaction SET callback_passed = 'Y', callback_sub_code = '200', callback_at = now() - interval '3 minutes'
       WHERE session_id = ${sessionId}::uuid AND seq = 1`;
    await own.app.prisma.$executeRaw`
      UPDATE kyc_session SET status = 'verifying', updated_at = now() - interval '3 minutes' WHERE id = ${sessionId}::uuid`;
  };
  /** One CheckResult worker (see above); no scheduled sweep: the tests run it when they mean to. */
  const ownStack = (): StackOptions => ({ env: { JOBS_CONCURRENCY: '1', RECONCILE_CRON: '0 0 1 1 *' } });
  /** What maintenance does once the orphan's CHECK_RESULT_JOB_TIMEOUT_S has passed: fail it, to be retried. */
  const expireOrphan = (own: Stack, id: string) =>
    withBoss(own, (boss) => boss.fail(QUEUES.check, id, { message: 'job failed by timeout in active state' }));
  const until = (own: Stack, merchantBizId: string, status: string, timeoutMs = 5000) =>
    waitFor(`${merchantBizId} to be ${status}`, async () => ((await statusIn(own, merchantBizId)) === status ? true : undefined), timeoutMs);
  /** Alibaba has the verdict (the user finished), whether or not the callback reached us. */
  const finishedAtAlibaba = (own: Stack, transactionId: string) =>
    fetch(`${own.simUrl}/__sim/transactions/${transactionId}/result`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ Passed: 'Y', SubCode: '200' }),
    });
  /** Another session's CheckResult, after the callback: it must run as soon as usual (well under a second). */
  const otherSessionIsDecided = async (own: Stack) => {
    const b = await startIn(own);
    await clientFor(own).sim.complete(b.transactionId, 'Y', '200');
    await until(own, b.merchantBizId, 'passed');
  };

  test('the sweep leaves a session whose job is orphaned alone: other sessions are still checked; the orphan\'s retry decides it', async () => {
    await withStack(ownStack(), async (own) => {
      const a = await startIn(own);
      await finishedAtAlibaba(own, a.transactionId);
      await verifyingSince3Min(own, a.sessionId);
      const orphan = await orphanCheck(own, a.sessionId);

      await own.app.results.reconcile();
      assert.deepEqual(await liveChecks(own, a.sessionId), ['active'], 'no second job next to the orphan');
      await otherSessionIsDecided(own);

      // Once the orphan expires, its retry decides A.
      await expireOrphan(own, orphan);
      await until(own, a.merchantBizId, 'passed', 10_000);
    });
  });

  test('a callback for a session whose job is orphaned queues nothing more: other sessions are still checked', async () => {
    await withStack(ownStack(), async (own) => {
      // The sweep asked CheckResult for an expired session, and the process died during the call; then the callback comes.
      const c = await startIn(own);
      await rowsOf(own.app).expire(c.merchantBizId);
      const orphan = await orphanCheck(own, c.sessionId);
      const delivered = await clientFor(own).sim.complete(c.transactionId, 'Y', '200');
      assert.equal(delivered.body.delivery.status, 200);
      assert.equal(await statusIn(own, c.merchantBizId), 'verifying');
      assert.deepEqual(await liveChecks(own, c.sessionId), ['active'], 'no second job next to the orphan');
      await otherSessionIsDecided(own);

      // Once the orphan expires, its retry reads the session again (now verifying) and decides C.
      await expireOrphan(own, orphan);
      await until(own, c.merchantBizId, 'passed', 10_000);
    });
  });

  test('a session stuck verifying with no job at all (lost between the callback and the queue) is queued by the sweep', async () => {
    await withStack(ownStack(), async (own) => {
      const d = await startIn(own);
      await finishedAtAlibaba(own, d.transactionId);
      await verifyingSince3Min(own, d.sessionId);
      assert.deepEqual(await liveChecks(own, d.sessionId), []);
      assert.equal((await own.app.results.reconcile()).queued, 1);
      await until(own, d.merchantBizId, 'passed');
    });
  });
});

/** The id an event of this session and status gets (the outbox's kyc_event_id). */
const eventIdFor = (sessionId: string, status: string) => `evt_${createHash('sha256').update(`${sessionId}:${status}`).digest('hex').slice(0, 32)}`;
/** The sequence numbers of the events delivered (answered 2xx) for a session, in the order they arrived. */
const deliveredSequences = (merchantBizId: string) =>
  deliveries
    .filter((d) => d.answered === 200 && d.body.includes(merchantBizId))
    .map((d) => (JSON.parse(d.body) as { sequence: number }).sequence);

/**
 * The event queue is stately too (one job per event): a process killed while delivering leaves its
 * job `active` (until its timeout, deliveryJobTimeoutS), and a second job of that event queued
 * beside it would stop the delivery of every event, as on the check queue above. One worker per
 * queue, as there.
 */
describe('a merchant event job orphaned by a killed process', () => {
  /** Read when a test runs: the webhook's URL is known only once `before` has run. */
  const ownStack = (): StackOptions => ({ env: { JOBS_CONCURRENCY: '1', RECONCILE_CRON: '0 0 1 1 *', MERCHANT_WEBHOOK_URL: webhookUrl, MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  /** Queues the delivery of an event (recorded or still to come) and starts it, never to finish it: what the kill leaves behind. */
  const orphanEvent = (own: Stack, eventId: string) =>
    withBoss(own, async (boss) => {
      const id = await boss.send(EVENT_QUEUES.deliver, { eventId }, { singletonKey: eventId, startAfter: 3600 });
      const [job] = await boss.fetch(EVENT_QUEUES.deliver, { ignoreStartAfter: true });
      assert.ok(id && job?.id === id, 'the orphan is the job started');
      return id;
    });
  const until = (own: Stack, merchantBizId: string, status: string, timeoutMs = 5000) =>
    waitFor(`${merchantBizId} to be ${status}`, async () => ((await statusIn(own, merchantBizId)) === status ? true : undefined), timeoutMs);
  const delivered = (merchantBizId: string, status: string, timeoutMs = 5000) =>
    waitFor(`the ${status} event of ${merchantBizId}`, async () => (deliveredStatuses(merchantBizId).includes(status) ? true : undefined), timeoutMs);

  test("an event whose delivery died with its process gets no second job beside the orphan: other events are still delivered; the orphan's retry delivers it", async () => {
    await withStack(ownStack(), async (own) => {
      // The delivery of A's `passed` event died; the change that records it comes after.
      const a = await startIn(own);
      const passedEvent = eventIdFor(a.sessionId, 'passed');
      const orphan = await orphanEvent(own, passedEvent);
      await clientFor(own).sim.complete(a.transactionId, 'Y', '200');
      await until(own, a.merchantBizId, 'passed');
      await delivered(a.merchantBizId, 'verifying');

      // B's events are delivered as usual.
      const b = await startIn(own);
      await clientFor(own).sim.complete(b.transactionId, 'N', '201');
      await until(own, b.merchantBizId, 'failed');
      await delivered(b.merchantBizId, 'failed');
      assert.deepEqual(await liveJobs(own, EVENT_QUEUES.deliver, passedEvent), ['active'], 'no second job next to the orphan');
      assert.deepEqual(deliveredStatuses(a.merchantBizId), ['verifying']);

      // Once the orphan expires, its retry delivers A's outcome.
      await withBoss(own, (boss) => boss.fail(EVENT_QUEUES.deliver, orphan, { message: 'job failed by timeout in active state' }));
      await delivered(a.merchantBizId, 'passed', 10_000);
      assert.deepEqual(deliveredStatuses(a.merchantBizId), ['verifying', 'passed']);
    });
  });

  test('a late callback while the `expired` event is in delivery: the newer events are delivered meanwhile, and the late one carries the lower sequence', async () => {
    const own = await startStack(ownStack());
    let answer = () => {};
    try {
      // Past its expiry with no callback: the sweep's CheckResult (still "P") makes it expired and records its event.
      const a = await startIn(own);
      holdOnce.set(`${a.merchantBizId}|kyc.session.expired`, new Promise<void>((r) => (answer = r)));
      await rowsOf(own.app).expire(a.merchantBizId);
      await own.app.results.reconcile();
      await until(own, a.merchantBizId, 'expired');
      await waitFor('the expired event to be in delivery', async () => (holding.has(`${a.merchantBizId}|kyc.session.expired`) ? true : undefined));

      // The user finishes after all: the callback reopens A and CheckResult decides it while that delivery runs.
      await clientFor(own).sim.complete(a.transactionId, 'Y', '200');
      await until(own, a.merchantBizId, 'passed');
      await delivered(a.merchantBizId, 'passed', 10_000);
      answer();
      await delivered(a.merchantBizId, 'expired', 10_000);

      // Arrived out of order; the sequence tells the receiver the expiry is the older news.
      assert.deepEqual(deliveredStatuses(a.merchantBizId), ['verifying', 'passed', 'expired']);
      assert.deepEqual(deliveredSequences(a.merchantBizId), [2, 3, 1]);
    } finally {
      answer();
      await own.close();
    }
  });
});

describe('a merchant event job orphaned by a killed process, once its timeout has passed', () => {
  test('is retried after about a minute (derived from the webhook timeout), not pg-boss\'s default 15 minutes', async () => {
    await withStack({
      env: {
        JOBS_CONCURRENCY: '1',
        RECONCILE_CRON: '0 0 1 1 *',
        JOBS_MAINTENANCE_INTERVAL_S: '1',
        MERCHANT_WEBHOOK_URL: webhookUrl,
        MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      },
    }, async (own) => {
      // The event of A's outcome, whose delivery died with its process.
      const a = await startIn(own);
      const passedEvent = eventIdFor(a.sessionId, 'passed');
      const orphan = await withBoss(own, async (boss) => {
        const id = await boss.send(EVENT_QUEUES.deliver, { eventId: passedEvent }, { singletonKey: passedEvent, startAfter: 3600 });
        const [job] = await boss.fetch(EVENT_QUEUES.deliver, { ignoreStartAfter: true });
        assert.ok(id && job?.id === id, 'the orphan is the job started');
        return id;
      });
      await clientFor(own).sim.complete(a.transactionId, 'Y', '200');
      await waitFor(`${a.merchantBizId} to be passed`, async () => ((await statusIn(own, a.merchantBizId)) === 'passed' ? true : undefined));
      assert.deepEqual(await liveJobs(own, EVENT_QUEUES.deliver, passedEvent), ['active'], 'only the orphan');

      // Its process was killed one second more than the event timeout ago (started_on moved back rather than waited for).
      const timeoutS = deliveryJobTimeoutS(own.config);
      assert.ok(timeoutS * 1000 > WEBHOOK_TIMEOUT_MS + 3 * own.config.DATABASE_TIMEOUT_MS && timeoutS <= 120, `a minute or so over a live delivery: ${timeoutS} s`);
      const [job] = await own.app.prisma.$queryRawUnsafe<Array<{ expire: number }>>(
        `UPDATE "${own.config.JOBS_SCHEMA}".job SET started_on = now() - make_interval(secs => $2) WHERE id = $1::uuid
         RETURNING extract(epoch FROM expire_in)::int AS expire`,
        orphan,
        timeoutS + 1,
      );
      assert.equal(job?.expire, timeoutS);

      // Maintenance (every second here) retires the orphan; its retry delivers A's outcome.
      await waitFor(`the passed event of ${a.merchantBizId}`, async () => (deliveredStatuses(a.merchantBizId).includes('passed') ? true : undefined), 10_000);
      assert.deepEqual(deliveredStatuses(a.merchantBizId), ['verifying', 'passed']);
    });
  });
});

/**
 * Alibaba's callback recorded while the CheckResult of a session past its expiry (asked by the
 * sweep: no callback yet) is in flight. That CheckResult's "P" was about the session before the
 * callback: it must not make it `expired`, and the callback queued no CheckResult of its own (one
 * per session is running). CheckResult is asked again and decides.
 */
describe('a callback while the CheckResult of an expired session runs', () => {
  test('the "P" asked before the callback does not expire the session: CheckResult is asked again and decides passed', async () => {
    const options = { env: { JOBS_CONCURRENCY: '1', RECONCILE_CRON: '0 0 1 1 *', MERCHANT_WEBHOOK_URL: webhookUrl, MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET } };
    await withStack(options, async (own) => {
      const ownApi = clientFor(own);
      const checkResults = async () => (await ownApi.sim.calls()).body.filter((c) => c.action === 'CheckResult');
      const a = await startIn(own);
      await rowsOf(own.app).expire(a.merchantBizId);
      // Alibaba computes the answer as the call arrives (the user has not finished: "P"), and holds it.
      await ownApi.sim.fault({ action: 'CheckResult', status: 200, code: 'Success', delayMs: 2500 });
      assert.equal((await own.app.results.reconcile()).queued, 1);
      await waitFor('the CheckResult to be in flight', async () => ((await checkResults()).some((c) => c.code === undefined) ? true : undefined));

      // The user finishes meanwhile: the callback is taken (verifying) and queues nothing beside the running job.
      const delivered = await ownApi.sim.complete(a.transactionId, 'Y', '200');
      assert.equal(delivered.body.delivery.status, 200);
      assert.equal(await statusIn(own, a.merchantBizId), 'verifying');
      assert.deepEqual(await liveJobs(own, QUEUES.check, a.sessionId), ['active'], 'only the job in flight');
      assert.ok((await checkResults()).some((c) => c.code === undefined), 'the callback came while CheckResult was in flight');

      // The held "P" arrives, then a later CheckResult says Y.
      const final = await waitFor(`${a.merchantBizId} to be decided`, async () => {
        const status = await statusIn(own, a.merchantBizId);
        return status === 'pending' || status === 'verifying' ? undefined : status;
      }, 15_000);
      assert.equal(final, 'passed');
      const r = await rowsOf(own.app).session(a.merchantBizId);
      assert.deepEqual([r.passed, r.transactions[0]!.callbackPassed], ['Y', 'Y']);
      assert.ok((await checkResults()).length >= 2, 'decided by a CheckResult asked after the held one');

      // The merchant hears of the callback and the outcome, never of an expiry.
      await waitFor(`the passed event of ${a.merchantBizId}`, async () => (deliveredStatuses(a.merchantBizId).includes('passed') ? true : undefined), 15_000);
      assert.deepEqual(deliveredStatuses(a.merchantBizId), ['verifying', 'passed']);
    });
  });
});

describe('a reconciliation backlog', () => {
  test('does not hold up the CheckResult of a callback: that one is fetched first', async () => {
    // One worker, and Alibaba answering in 150 ms: the backlog takes a second or two to work through.
    await withStack({ env: { JOBS_CONCURRENCY: '1', RECONCILE_CRON: '0 0 1 1 *' }, simLatencyMs: 150 }, async (own) => {
      const backlog = [];
      for (let i = 0; i < 12; i++) backlog.push(await startIn(own));
      const live = await startIn(own);
      await rowsOf(own.app).expire(backlog.map((b) => b.merchantBizId));
      assert.equal((await own.app.results.reconcile()).queued, backlog.length);

      // The user finishes while the sweep's CheckResults are queued.
      assert.equal((await clientFor(own).sim.complete(live.transactionId, 'Y', '200')).body.delivery.status, 200);
      await waitFor(`${live.merchantBizId} to pass`, async () => ((await statusIn(own, live.merchantBizId)) === 'passed' ? true : undefined), 15_000);
      const undecided = (await Promise.all(backlog.map((b) => statusIn(own, b.merchantBizId)))).filter((s) => s === 'pending');
      assert.ok(undecided.length >= backlog.length / 2, `decided after ${backlog.length - undecided.length} of the ${backlog.length} sweep jobs`);
    });
  });
});

describe('a sweep orphaned by a killed process', () => {
  test('holds its queue no longer than the sweep timeout (300 s), not pg-boss\'s default 15 minutes', async () => {
    await withStack({ env: { RECONCILE_CRON: '0 0 1 1 *', JOBS_MAINTENANCE_INTERVAL_S: '1' } }, async (own) => {
      const a = await startIn(own);
      await rowsOf(own.app).expire(a.merchantBizId);
      // A sweep started by a process killed 301 s ago (started_on moved back rather than waited for).
      const orphan = await withBoss(own, async (boss) => {
        const id = await boss.send(QUEUES.reconcile, {}, { startAfter: 3600 });
        const [job] = await boss.fetch(QUEUES.reconcile, { ignoreStartAfter: true });
        assert.ok(id && job?.id === id, 'the orphan is the job started');
        return id;
      });
      const [row] = await own.app.prisma.$queryRawUnsafe<Array<{ expire: number }>>(
        `UPDATE "${own.config.JOBS_SCHEMA}".job SET started_on = now() - interval '301 seconds' WHERE id = $1::uuid
         RETURNING extract(epoch FROM expire_in)::int AS expire`,
        orphan,
      );

      // The next scheduled sweep runs once maintenance (every second here) has retired the orphan.
      await own.app.jobs.send(QUEUES.reconcile, {});
      await waitFor(`${a.merchantBizId} to be expired by a sweep`, async () => ((await statusIn(own, a.merchantBizId)) === 'expired' ? true : undefined), 10_000);
      assert.equal(row?.expire, 300);
    });
  });

  test('a restart applies the sweep timeout to the reconcile and purge queues, and the event timeout to the event queue, of an existing job queue', async () => {
    const config = testConfig({ DATABASE_URL: await freshDatabaseUrl(), JOBS_WORKERS: 'false' });
    const timeouts = async () => {
      const app = await buildApp(config, { logStream: new LogCapture() });
      try {
        await app.ready();
        return Promise.all([QUEUES.reconcile, QUEUES.purge, EVENT_QUEUES.deliver].map(async (q) => (await app.jobs.getQueue(q))?.expireInSeconds));
      } finally {
        await app.close();
      }
    };
    const expected = [300, 300, deliveryJobTimeoutS(config)];
    try {
      assert.deepEqual(await timeouts(), expected);
      // As a deployment made before the timeouts left them.
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      try {
        await client.query(`UPDATE "${config.JOBS_SCHEMA}".queue SET expire_seconds = NULL WHERE name = ANY($1)`, [[QUEUES.reconcile, QUEUES.purge, EVENT_QUEUES.deliver]]);
      } finally {
        await client.end();
      }
      assert.deepEqual(await timeouts(), expected);
    } finally {
      await dropSchemas(config);
    }
  });
});

describe('result details at rest', () => {
  test('stored encrypted (no plaintext in the row), decrypted only by the internal route, never returned to the frontend', async () => {
    const s = await started();
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'passed');
    const res = await internal(s.sessionId);
    assert.equal(res.status, 200);
    // A passport's OCR fields (the default docType): surname, passportNo, …
    const body = (await res.json()) as { details: { extIdInfo: { ocrIdInfo: { surname: string; passportNo: string } } } & Record<string, unknown> };
    const { surname: name, passportNo: idNumber } = body.details.extIdInfo.ocrIdInfo;
    assert.ok(name.length > 3 && idNumber.length > 3);
    // Every field of CheckResult that carries the verification's data is kept with the others.
    assert.deepEqual(Object.keys(body.details).sort(), ['ekycResult', 'extBasicInfo', 'extFaceInfo', 'extIdInfo', 'extInfo', 'extRiskInfo', 'extSourceInfo']);
    assert.ok(body.details.ekycResult !== null && body.details.extInfo !== null, 'EkycResult and ExtInfo are stored');

    const [raw] = await stack.app.prisma.$queryRawUnsafe<Array<{ row: string }>>(
      `SELECT row_to_json(k)::text AS row FROM kyc_session k WHERE merchant_biz_id = $1`,
      s.merchantBizId,
    );
    assert.ok(raw && raw.row.includes('details_ciphertext'));
    const ciphertext = (await row(s.merchantBizId)).detailsCiphertext!;
    for (const secret of [name, idNumber]) {
      assert.ok(!raw.row.includes(secret), 'no plaintext in the row');
      assert.ok(!Buffer.from(ciphertext).includes(Buffer.from(secret)), 'no plaintext in the ciphertext');
    }
    assert.equal((await row(s.merchantBizId)).detailsKeyId, 'k1');

    const publicView = JSON.stringify((await api.session(s.token, s.merchantBizId)).body);
    assert.ok(!publicView.includes(name) && !publicView.includes('details'));
    assert.ok(!stack.logs.text.includes(name) && !stack.logs.text.includes(idNumber), 'never logged');
  });

  test('the internal route needs the API key', async () => {
    const s = await started();
    assert.equal((await internal(s.sessionId, 'wrong-key-0123456789-0123456789-0123')).status, 401);
    assert.equal((await fetch(`${stack.appUrl}/internal/kyc/sessions/${s.sessionId}`)).status, 401);
  });

  test('after a key rotation, details sealed with the old key still open; new ones use the new key', async () => {
    const s = await started();
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'passed');
    const rotated = await buildApp({ ...stack.config, JOBS_WORKERS: false, KYC_DETAILS_KEYS: [KEY_2, KEY_1], KYC_DETAILS_KEY_ID: 'k2' }, { logStream: new LogCapture() });
    try {
      const sealed = rotated.sealer.seal('{"x":1}', 'abc');
      assert.equal(sealed.keyId, 'k2');
      const r = await row(s.merchantBizId);
      const opened = rotated.sealer.open({ keyId: r.detailsKeyId!, ciphertext: Buffer.from(r.detailsCiphertext!) }, s.sessionId);
      assert.match(opened, /ocrIdInfo/);
      assert.throws(() => rotated.sealer.open({ keyId: r.detailsKeyId!, ciphertext: Buffer.from(r.detailsCiphertext!) }, 'another'), 'bound to its session');
    } finally {
      await rotated.close();
    }
  });

  test('details are purged after the retention period', async () => {
    const s = await started();
    await api.sim.complete(s.transactionId, 'Y', '200');
    await until(s.merchantBizId, 'passed');
    await rowsOf(stack.app).update(s.merchantBizId, { detailsStoredAt: new Date(Date.now() - (stack.config.KYC_RESULT_RETENTION_DAYS + 1) * 86_400_000) });
    assert.ok((await stack.app.results.purgeDetails()) >= 1);
    const r = await row(s.merchantBizId);
    assert.equal(r.detailsCiphertext, null);
    assert.ok(r.detailsPurgedAt);
    const view = (await (await internal(s.sessionId)).json()) as { details: unknown; status: string };
    assert.equal(view.details, null);
    assert.equal(view.status, 'passed', 'the outcome stays');
  });
});

describe('merchant events', () => {
  test('a final state is POSTed signed, redelivered after a failure with the same event id', async () => {
    const s = await started();
    failOnce.add(`${s.merchantBizId}|kyc.session.finished`); // the merchant's endpoint fails once
    await api.sim.complete(s.transactionId, 'N', '201');
    const mine = () => deliveries.filter((d) => d.body.includes(s.merchantBizId) && d.body.includes('kyc.session.finished'));
    await waitFor('two deliveries', async () => (mine().length >= 2 ? true : undefined), 20_000);
    const [first, second] = mine();
    assert.equal(first!.answered, 500);
    assert.equal(second!.answered, 200);
    assert.equal(first!.headers[EVENT_ID_HEADER], second!.headers[EVENT_ID_HEADER]);
    for (const d of [first!, second!]) {
      assert.ok(verifyWebhook(WEBHOOK_SECRET, String(d.headers[SIGNATURE_HEADER]), d.body), 'signature verifies');
      assert.ok(!verifyWebhook('another-secret', String(d.headers[SIGNATURE_HEADER]), d.body));
      assert.ok(!verifyWebhook(WEBHOOK_SECRET, String(d.headers[SIGNATURE_HEADER]), d.body.replace('"failed"', '"passed"')), 'tampering breaks it');
    }
    const event = JSON.parse(second!.body) as { id: string; type: string; sessionId: string; sequence: number; data: { id: string; userId: string; status: string; passed: string; merchantBizId: string } };
    assert.equal(event.id, second!.headers[EVENT_ID_HEADER]);
    assert.equal(event.type, 'kyc.session.finished');
    assert.deepEqual([event.sessionId, event.sequence], [s.sessionId, 2], 'after the verifying event (1)');
    assert.equal(first!.body, second!.body, 'a retry sends the same event');
    assert.deepEqual([event.data.id, event.data.merchantBizId, event.data.status, event.data.passed], [s.sessionId, s.merchantBizId, 'failed', 'N']);
    assert.equal(event.data.userId, s.sub, 'the event names the person: the JWT sub as issued');
  });

  test('an old signature is refused (replay window)', () => {
    const body = '{"id":"evt_1"}';
    const t = Math.floor(Date.now() / 1000) - 3600;
    const header = `t=${t},v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex')}`;
    assert.equal(verifyWebhook(WEBHOOK_SECRET, header, body), false);
  });
});
