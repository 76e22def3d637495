/**
 * Merchant events you can see and replay: every delivery attempt recorded, `failed` after
 * MERCHANT_WEBHOOK_MAX_ATTEMPTS (counted, warned), listed, redelivered one by one or in bulk
 * (paced), signed with every secret of MERCHANT_WEBHOOK_SECRETS, with a sequence that only grows.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { EVENT_QUEUES } from '../src/events/plugin.js';
import { SIGNATURE_HEADER, verifyWebhook } from '../src/events/webhook.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { startReceiver } from './helpers/receiver.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, startStack, waitFor, withStack, type Stack } from './helpers/stack.js';

const OPS_KEY = 'deliveries-test-ops-key-0123456789abcdefgh';
const OLD_SECRET = 'deliveries-old-webhook-secret-0123456789abcd';
const NEW_SECRET = 'deliveries-new-webhook-secret-9876543210wxyz';
const RATE = 5;

interface Delivery {
  at: string;
  trigger: string;
  httpStatus: number | null;
  error: string | null;
  latencyMs: number;
}
interface ListedEvent {
  id: string;
  type: string;
  sessionId: string;
  sequence: number;
  createdAt: string;
  state: string;
  attempts: number;
  deliveredAt: string | null;
  data: Record<string, unknown>;
  deliveries: Delivery[];
}

let stack: Stack;
let api: ReturnType<typeof clientFor>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    env: {
      INTERNAL_API_KEYS: `ops:${OPS_KEY}`,
      MERCHANT_WEBHOOK_URL: receiver.url,
      MERCHANT_WEBHOOK_SECRETS: `2026-11:${OLD_SECRET},2026-12:${NEW_SECRET}`,
      MERCHANT_WEBHOOK_MAX_ATTEMPTS: '2',
      MERCHANT_WEBHOOK_REDELIVERY_PER_S: String(RATE),
    },
  });
  api = clientFor(stack);
});
after(async () => {
  await stack.close();
  await receiver.close();
});

const backOffice = async <T = Record<string, unknown>>(own: Stack, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${own.appUrl}/internal${path}`, {
    method,
    headers: { 'x-api-key': OPS_KEY, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
};
const eventsOf = async (sessionId: string, state?: string) =>
  (await backOffice<{ events: ListedEvent[] }>(stack, 'GET', `/kyc/events?sessionId=${sessionId}${state ? `&state=${state}` : ''}`)).body.events;

async function decided(passed: 'Y' | 'N') {
  const token = await signToken(randomId('user-'));
  const res = await api.start(token, { metaInfo: META_INFO });
  const merchantBizId = String(res.body.merchantBizId);
  const sessionId = (await rowsOf(stack.app).session(merchantBizId)).id;
  await api.sim.complete(String(res.body.transactionId), passed, passed === 'Y' ? '200' : '201');
  return { token, merchantBizId, sessionId, transactionId: String(res.body.transactionId) };
}
const allFailed = (sessionId: string, count: number) =>
  waitFor(`${count} failed events of ${sessionId}`, async () => {
    const failed = await eventsOf(sessionId, 'failed');
    return failed.length === count ? failed : undefined;
  }, 20_000);

describe('a failed delivery', () => {
  test('each attempt recorded; failed after MERCHANT_WEBHOOK_MAX_ATTEMPTS (counted, warned); listed; redelivered, verified with each of two secrets', async () => {
    receiver.state.answer = 500; // the merchant's endpoint is down
    const s = await decided('N');
    const failed = await allFailed(s.sessionId, 2);

    // Newest first: the outcome, then the callback's verifying; each tried twice, each try recorded.
    assert.deepEqual(failed.map((e) => [e.type, e.sequence]), [['kyc.session.finished', 2], ['kyc.session.verifying', 1]]);
    for (const e of failed) {
      assert.equal(e.attempts, 2);
      assert.deepEqual(e.deliveries.map((d) => [d.trigger, d.httpStatus, d.error]), [['auto', 500, null], ['auto', 500, null]]);
      assert.ok(e.deliveries.every((d) => d.latencyMs >= 0 && !Number.isNaN(Date.parse(d.at))));
      assert.ok(!JSON.stringify(e).includes('userId'), 'the listing does not name the person');
    }
    assert.equal(receiver.of(s.sessionId).length, 4);
    assert.match(await stack.app.metrics.registry.getSingleMetricAsString('kyc_event_deliveries_total'), /outcome="gave_up",trigger="auto"} 2|trigger="auto",outcome="gave_up"} 2/);
    const warnings = stack.logs.lines.filter((l) => l.includes('"level":40') && l.includes('merchant event failed') && l.includes(failed[0]!.id));
    assert.equal(warnings.length, 1);

    // The endpoint is back: the outcome is sent again now, with the same id and sequence.
    receiver.state.answer = 200;
    const finished = failed[0]!;
    const res = await backOffice<{ event: ListedEvent; delivery: { ok: boolean; httpStatus: number } }>(stack, 'POST', `/kyc/events/${finished.id}/redeliver`);
    assert.equal(res.status, 200);
    assert.deepEqual([res.body.delivery.ok, res.body.delivery.httpStatus, res.body.event.state], [true, 200, 'delivered']);
    assert.deepEqual(res.body.event.deliveries.map((d) => [d.trigger, d.httpStatus]), [['auto', 500], ['auto', 500], ['redeliver', 200]]);
    assert.ok(res.body.event.deliveredAt);

    const sent = receiver.of(s.sessionId).filter((r) => r.event.id === finished.id);
    assert.equal(sent.length, 3);
    assert.deepEqual(new Set(sent.map((r) => `${r.event.id}:${r.event.sequence}:${r.event.createdAt}`)).size, 1, 'the same event every time');
    const redelivered = sent.at(-1)!;
    assert.equal(typeof redelivered.event.data.userId, 'string', 'the person is named');
    // Signed with both secrets: a receiver holding either verifies it (rotation).
    const header = String(redelivered.headers[SIGNATURE_HEADER]);
    assert.match(header, /^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    assert.ok(verifyWebhook(OLD_SECRET, header, redelivered.body), 'the old secret');
    assert.ok(verifyWebhook(NEW_SECRET, header, redelivered.body), 'the new secret');
    assert.ok(verifyWebhook(['another-secret-0123456789-0123456789', NEW_SECRET], header, redelivered.body), 'a receiver holding both');
    assert.ok(!verifyWebhook('another-secret-0123456789-0123456789', header, redelivered.body), 'any other secret fails');
    assert.ok(!verifyWebhook(NEW_SECRET, header, redelivered.body.replace('"failed"', '"passed"')), 'tampering breaks it');
    // The verifying event stays failed; the listing by state shows it alone.
    assert.deepEqual((await eventsOf(s.sessionId, 'failed')).map((e) => e.type), ['kyc.session.verifying']);
  });

  test('an unknown event: 404 EVENT_NOT_FOUND; a malformed id: 400', async () => {
    const unknown = await backOffice<{ code: string }>(stack, 'POST', `/kyc/events/evt_${'0'.repeat(32)}/redeliver`);
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'EVENT_NOT_FOUND']);
    assert.equal((await backOffice(stack, 'POST', '/kyc/events/nope/redeliver')).status, 400);
  });
});

describe('bulk redelivery', () => {
  test(`the failed events since a time are sent again, paced at MERCHANT_WEBHOOK_REDELIVERY_PER_S (${RATE}/s)`, async () => {
    const since = new Date().toISOString();
    receiver.state.answer = 503;
    const sessions = [await decided('Y'), await decided('N'), await decided('Y')];
    for (const s of sessions) await allFailed(s.sessionId, 2);
    receiver.state.answer = 200;

    const res = await backOffice<{ queued: number; ratePerSecond: number; lastDueAt: string; more: boolean }>(stack, 'POST', '/kyc/events/redeliver', { state: 'failed', since });
    assert.equal(res.status, 202);
    assert.deepEqual([res.body.queued, res.body.ratePerSecond, res.body.more], [6, RATE, false]);

    // Each is due one interval after the one before.
    const { rows } = await stack.app.pgPool.query<{ due: Date; id: string }>(
      `SELECT start_after AS due, data->>'eventId' AS id FROM "${stack.config.JOBS_SCHEMA}".job WHERE name = $1 ORDER BY start_after`,
      [EVENT_QUEUES.redeliver],
    );
    assert.equal(rows.length, 6);
    const gaps = rows.slice(1).map((r, i) => r.due.getTime() - rows[i]!.due.getTime());
    assert.ok(gaps.every((g) => Math.abs(g - 1000 / RATE) <= 1), `gaps ${gaps.join(', ')} ms`);
    assert.equal(rows.at(-1)!.due.toISOString(), res.body.lastDueAt);

    // All delivered, none before it was due.
    for (const s of sessions) {
      await waitFor(`the events of ${s.sessionId} delivered`, async () => ((await eventsOf(s.sessionId, 'delivered')).length === 2 ? true : undefined), 15_000);
    }
    const dueOf = new Map(rows.map((r) => [r.id, r.due.getTime()]));
    for (const r of receiver.received.filter((x) => x.status === 200 && dueOf.has(x.event.id))) {
      assert.ok(r.at >= dueOf.get(r.event.id)! - 50, `${r.event.id} arrived ${dueOf.get(r.event.id)! - r.at} ms before it was due`);
    }
    // Nothing failed is left since then.
    const left = await backOffice<{ queued: number }>(stack, 'POST', '/kyc/events/redeliver', { state: 'failed', since });
    assert.equal(left.body.queued, 0);
  });
});

describe('sequence numbers', () => {
  test('only grow per session, whatever order deliveries arrive in; an event keeps its id (per session and status)', async () => {
    receiver.state.answer = 200;
    const token = await signToken(randomId('user-'));
    const res = await api.start(token, { metaInfo: META_INFO });
    const merchantBizId = String(res.body.merchantBizId);
    const sessionId = (await rowsOf(stack.app).session(merchantBizId)).id;
    // Its link expires unused (the sweep asks CheckResult: still in progress), then the user resumes and passes.
    await rowsOf(stack.app).expire(merchantBizId);
    await stack.app.results.reconcile();
    await waitFor('expired', async () => ((await rowsOf(stack.app).session(merchantBizId)).status === 'expired' ? true : undefined));
    const resumed = await api.resume(token, merchantBizId);
    await api.sim.complete(String(resumed.body.transactionId), 'Y', '200');
    const listed = await waitFor('three delivered events', async () => {
      const events = await eventsOf(sessionId, 'delivered');
      return events.length === 3 ? events : undefined;
    }, 15_000);

    assert.deepEqual(listed.map((e) => [e.sequence, e.type, e.data.status]), [
      [3, 'kyc.session.finished', 'passed'],
      [2, 'kyc.session.verifying', 'verifying'],
      [1, 'kyc.session.expired', 'expired'],
    ]);
    for (const e of listed) {
      const status = String(e.data.status);
      assert.equal(e.id, `evt_${createHash('sha256').update(`${sessionId}:${status}`).digest('hex').slice(0, 32)}`);
    }
    // What the receiver got: the person named, the sequences those of the events.
    const got = receiver.of(sessionId);
    assert.deepEqual(got.map((r) => r.event.sequence).sort(), [1, 2, 3]);
    assert.ok(got.every((r) => typeof r.event.data.userId === 'string'));
  });

  test('pages of the listing (newest first) follow nextCursor without overlap; a cursor this service did not give is refused', async () => {
    const all = (await backOffice<{ events: ListedEvent[] }>(stack, 'GET', '/kyc/events?limit=100')).body.events;
    assert.ok(all.length >= 6);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { events: ListedEvent[]; nextCursor: string | null } } = await backOffice(stack, 'GET', `/kyc/events?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      assert.ok(page.body.events.length <= 4);
      seen.push(...page.body.events.map((e) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, all.map((e) => e.id));
    const created = all.map((e) => Date.parse(e.createdAt));
    assert.deepEqual(created, [...created].sort((a, b) => b - a), 'newest first');
    assert.equal((await backOffice(stack, 'GET', '/kyc/events?cursor=bm9wZQ')).status, 400);
  });
});

describe('an event job queued by the version before the outbox', () => {
  /** A session decided before the migration: no event recorded (the trigger did not exist yet). */
  const decidedBeforeOutbox = async () => {
    receiver.state.answer = 200;
    const token = await signToken(randomId('user-'));
    const res = await api.start(token, { metaInfo: META_INFO });
    const merchantBizId = String(res.body.merchantBizId);
    const sessionId = (await rowsOf(stack.app).session(merchantBizId)).id;
    const schema = new URL(stack.config.DATABASE_URL).searchParams.get('schema')!;
    const client = await stack.app.pgPool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`ALTER TABLE "${schema}".kyc_session DISABLE TRIGGER kyc_session_event`);
      await client.query(`UPDATE "${schema}".kyc_session SET status = 'passed', passed = 'Y', sub_code = '200' WHERE id = $1`, [sessionId]);
      await client.query(`ALTER TABLE "${schema}".kyc_session ENABLE TRIGGER kyc_session_event`);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    assert.deepEqual(await eventsOf(sessionId), []);
    return { merchantBizId, sessionId };
  };

  const deliveredOnce = async (sessionId: string) => {
    const got = await waitFor('the event', async () => receiver.of(sessionId)[0]);
    assert.deepEqual([got.event.type, got.event.sequence, got.event.data.status], ['kyc.session.finished', 1, 'passed']);
    assert.equal(typeof got.event.data.userId, 'string', 'the person is named');
    assert.deepEqual((await eventsOf(sessionId)).map((e) => [e.sequence, e.state]), [[1, 'delivered']]);
  };

  test('names a session: the event of its final state is recorded then, and delivered like the others', async () => {
    const { sessionId } = await decidedBeforeOutbox();
    await stack.app.jobs.send(EVENT_QUEUES.deliver, { sessionId }, { singletonKey: sessionId });
    await deliveredOnce(sessionId);
  });

  test('names a merchantBizId (from before sessions had ids): the same, for the one session with it', async () => {
    const { merchantBizId, sessionId } = await decidedBeforeOutbox();
    await stack.app.jobs.send(EVENT_QUEUES.deliver, { merchantBizId }, { singletonKey: merchantBizId });
    await deliveredOnce(sessionId);
  });
});

describe('without MERCHANT_WEBHOOK_URL', () => {
  test('events are recorded and listed (pending), not sent; a redelivery answers 409 WEBHOOK_NOT_CONFIGURED', async () => {
    await withStack({ env: { INTERNAL_API_KEYS: `ops:${OPS_KEY}` } }, async (own) => {
      const token = await signToken(randomId('user-'));
      const res = await clientFor(own).start(token, { metaInfo: META_INFO });
      await clientFor(own).sim.complete(String(res.body.transactionId), 'Y', '200');
      const listed = await waitFor('two events', async () => {
        const events = (await backOffice<{ events: ListedEvent[] }>(own, 'GET', '/kyc/events')).body.events;
        return events.length === 2 ? events : undefined;
      });
      assert.deepEqual(listed.map((e) => [e.type, e.state, e.attempts]), [['kyc.session.finished', 'pending', 0], ['kyc.session.verifying', 'pending', 0]]);
      const one = await backOffice<{ code: string }>(own, 'POST', `/kyc/events/${listed[0]!.id}/redeliver`);
      assert.deepEqual([one.status, one.body.code], [409, 'WEBHOOK_NOT_CONFIGURED']);
      const bulk = await backOffice<{ code: string }>(own, 'POST', '/kyc/events/redeliver', { since: new Date(0).toISOString() });
      assert.deepEqual([bulk.status, bulk.body.code], [409, 'WEBHOOK_NOT_CONFIGURED']);
    });
  });
});
