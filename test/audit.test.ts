/**
 * Who did what: every back-office action is an append-only row naming the API key (by its name in
 * INTERNAL_API_KEYS; INTERNAL_API_KEY is `default`), the caller's address, the action, its target
 * and the time; GET /internal/audit lists them, itself recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { startReceiver } from './helpers/receiver.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, startStack, waitFor, withStack, type Stack } from './helpers/stack.js';

const KEYS = {
  default: 'audit-test-default-key-0123456789abcdefgh',
  ops: 'audit-test-ops-key-0123456789abcdefghijklm',
  crm: 'audit-test-crm-key-9876543210zyxwvutsrqpon',
};
const ADDRESS = { ops: '198.51.100.7', crm: '203.0.113.9', default: '192.0.2.33' };

interface Entry {
  id: string;
  at: string;
  actor: string;
  address: string | null;
  action: string;
  target: string;
  detail: Record<string, unknown> | null;
}

let stack: Stack;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
before(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    env: {
      // The back office sits behind a proxy on loopback: the audit trail records the caller's address.
      TRUST_PROXY: '127.0.0.1',
      INTERNAL_API_KEY: KEYS.default,
      INTERNAL_API_KEYS: `ops:${KEYS.ops},crm:${KEYS.crm}`,
      MERCHANT_WEBHOOK_URL: receiver.url,
      MERCHANT_WEBHOOK_SECRET: 'audit-test-webhook-secret-0123456789abcdef',
    },
  });
});
after(async () => {
  await stack.close();
  await receiver.close();
});

type Who = keyof typeof KEYS;
const as = async <T = Record<string, unknown>>(who: Who, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${stack.appUrl}/internal${path}`, {
    method,
    headers: {
      'x-api-key': KEYS[who],
      'x-forwarded-for': ADDRESS[who],
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
};
const audit = async (query: string, who: Who = 'crm') => (await as<{ entries: Entry[]; nextCursor: string | null }>(who, 'GET', `/audit?${query}`)).body;

async function decided() {
  const sub = randomId('user-');
  const res = await clientFor(stack).start(await signToken(sub), { metaInfo: META_INFO });
  const merchantBizId = String(res.body.merchantBizId);
  await clientFor(stack).sim.complete(String(res.body.transactionId), 'Y', '200');
  await waitFor('passed', async () => ((await rowsOf(stack.app).session(merchantBizId)).status === 'passed' ? true : undefined));
  return { sub, merchantBizId, sessionId: (await rowsOf(stack.app).session(merchantBizId)).id };
}

describe('the audit trail', () => {
  test('a row for each action (listings, reads of decrypted data, erasures, redeliveries), naming the key, the address, the target and the time', async () => {
    const since = new Date().toISOString();
    const a = await decided();
    const b = await decided();
    const event = await waitFor('an event of A', async () => receiver.of(a.sessionId)[0]?.event);

    assert.equal((await as('ops', 'GET', `/kyc/sessions?merchantBizId=${a.merchantBizId}`)).status, 200);
    assert.equal((await as('crm', 'GET', `/kyc/sessions/${a.sessionId}`)).status, 200);
    assert.equal((await as('crm', 'GET', `/kyc/events?sessionId=${a.sessionId}`)).status, 200);
    assert.equal((await as('ops', 'POST', `/kyc/events/${event.id}/redeliver`)).status, 200);
    assert.equal((await as('ops', 'POST', '/kyc/events/redeliver', { state: 'failed', since })).status, 202);
    assert.equal((await as('default', 'DELETE', `/kyc/sessions/${a.sessionId}`)).status, 202);
    assert.equal((await as('ops', 'DELETE', `/kyc/users/${encodeURIComponent(b.sub)}`)).status, 202);
    // Refused requests do nothing, and are not rows.
    assert.equal((await fetch(`${stack.appUrl}/internal/kyc/sessions/${a.sessionId}`, { headers: { 'x-api-key': 'wrong-key-0123456789-0123456789-012345' } })).status, 401);

    const { entries } = await audit(`since=${encodeURIComponent(since)}`, 'crm');
    const rows = entries.reverse().map((e) => [e.actor, e.address, e.action, e.target]);
    assert.deepEqual(rows, [
      ['ops', ADDRESS.ops, 'sessions.list', `merchantBizId:${a.merchantBizId}`],
      ['crm', ADDRESS.crm, 'session.read', `session:${a.sessionId}`],
      ['crm', ADDRESS.crm, 'events.list', 'events'],
      ['ops', ADDRESS.ops, 'event.redeliver', `event:${event.id}`],
      ['ops', ADDRESS.ops, 'events.redeliver', 'events'],
      ['default', ADDRESS.default, 'session.erase', `session:${a.sessionId}`],
      ['ops', ADDRESS.ops, 'user.erase', 'user'],
      ['ops', ADDRESS.ops, 'session.erase', `session:${b.sessionId}`],
    ]);
    for (const e of entries) assert.ok(Math.abs(Date.parse(e.at) - Date.now()) < 60_000, 'stamped with the time');
    assert.deepEqual(entries.find((e) => e.action === 'user.erase')?.detail, { sessions: [b.sessionId] });
    assert.ok(!JSON.stringify(entries).includes(b.sub), 'the person erased is not named');
    assert.deepEqual(entries.find((e) => e.action === 'session.read')?.detail, { details: false });

    // Reading the trail is an action too.
    const [latest] = (await audit('limit=1', 'ops')).entries;
    assert.deepEqual([latest?.actor, latest?.action, latest?.target], ['crm', 'audit.list', 'audit']);
  });

  test('filters by target, actor and action; pages with nextCursor', async () => {
    const s = await decided();
    for (let i = 0; i < 3; i++) await as('crm', 'GET', `/kyc/sessions/${s.sessionId}`);
    await as('ops', 'GET', `/kyc/sessions/${s.sessionId}`);

    const byTarget = await audit(`target=session:${s.sessionId}`);
    assert.deepEqual(byTarget.entries.map((e) => e.actor), ['ops', 'crm', 'crm', 'crm'], 'newest first');
    const byActor = await audit(`target=session:${s.sessionId}&actor=ops`);
    assert.deepEqual(byActor.entries.map((e) => [e.actor, e.action]), [['ops', 'session.read']]);
    assert.equal((await audit(`target=session:${s.sessionId}&action=session.erase`)).entries.length, 0);

    const first = await audit(`target=session:${s.sessionId}&limit=3`);
    assert.equal(first.entries.length, 3);
    assert.ok(first.nextCursor);
    const second = await audit(`target=session:${s.sessionId}&limit=3&cursor=${first.nextCursor}`);
    assert.deepEqual([...first.entries, ...second.entries].map((e) => e.id), byTarget.entries.map((e) => e.id));
    assert.equal(second.nextCursor, null);
    assert.equal((await as('crm', 'GET', '/audit?cursor=not-ours')).status, 400);
  });

  test('append-only: the database refuses UPDATE, DELETE and TRUNCATE of audit rows', async () => {
    const { prisma } = stack.app;
    const before = await prisma.kycAudit.count();
    assert.ok(before > 0);
    for (const sql of ["UPDATE kyc_audit SET actor = 'someone-else'", 'DELETE FROM kyc_audit', 'TRUNCATE kyc_audit']) {
      await assert.rejects(prisma.$executeRawUnsafe(sql), /append-only/, sql);
    }
    assert.equal(await prisma.kycAudit.count(), before);
    assert.equal(await prisma.kycAudit.count({ where: { actor: 'someone-else' } }), 0);
  });
});

describe('audit retention (AUDIT_RETENTION_DAYS)', () => {
  test('off by default; when set, rows older than it are deleted (the only deletion the database allows), younger ones kept', async () => {
    assert.equal(stack.config.AUDIT_RETENTION_DAYS, undefined);
    assert.equal(await stack.app.audit.applyRetention(), 0);

    await withStack({ env: { INTERNAL_API_KEYS: `ops:${KEYS.ops}`, AUDIT_RETENTION_DAYS: '30' } }, async (own) => {
      const { prisma } = own.app;
      await prisma.$executeRawUnsafe(
        `INSERT INTO kyc_audit (at, actor, action, target) VALUES (now() - interval '31 days', 'ops', 'audit.list', 'audit'), (now() - interval '29 days', 'ops', 'audit.list', 'audit')`,
      );
      // Not even an old row goes without the retention's setting.
      await assert.rejects(prisma.$executeRawUnsafe(`DELETE FROM kyc_audit WHERE at < now() - interval '30 days'`), /append-only/);
      assert.equal(await own.app.audit.applyRetention(), 1);
      const left = await prisma.kycAudit.findMany({ select: { at: true } });
      assert.equal(left.length, 1);
      assert.ok(left[0]!.at.getTime() > Date.now() - 30 * 86_400_000);
    });
  });
});
