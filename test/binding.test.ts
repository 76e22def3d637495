/**
 * A result is only as good as its binding to the person: merchantBizId is scoped to the caller,
 * every back-office view and merchant event names the person (`userId`, the caller's JWT `sub` as
 * issued), and that `sub` is never stored in plaintext.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { dumpData } from './helpers/pg-dump.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, startStack, waitFor, type Stack } from './helpers/stack.js';

const INTERNAL_API_KEY = 'binding-test-internal-api-key-0123456789abcdef';
const WEBHOOK_SECRET = 'binding-test-webhook-secret-0123456789abcdef';

/** The merchant's receiver: every event body it got. */
const events: Array<{ id: string; type: string; data: Record<string, unknown> }> = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    events.push(JSON.parse(body) as (typeof events)[number]);
    res.end();
  });
});

let stack: Stack;
let api: ReturnType<typeof clientFor>;
before(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  stack = await startStack({ env: { INTERNAL_API_KEY, MERCHANT_WEBHOOK_URL: webhook, MERCHANT_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  api = clientFor(stack);
});
after(async () => {
  await stack.close();
  receiver.close();
});

const backOffice = async <T>(path: string): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${stack.appUrl}/internal${path}`, { headers: { 'x-api-key': INTERNAL_API_KEY } });
  return { status: res.status, body: (await res.json()) as T };
};
interface View {
  id: string;
  merchantBizId: string;
  userId: string | null;
  status: string;
  transactionId: string | null;
}

describe('one merchantBizId, two people', () => {
  test('each gets a session of their own; the back office lists both, naming each person; events name the person', async () => {
    const merchantBizId = randomId('order');
    // Identity-provider subjects as issued: case, symbols and non-ASCII kept exactly.
    const alice = `Alice.${randomId()}@Example.COM`;
    const bob = `bøb|${randomId()}`;
    const a = await api.start(await signToken(alice), { metaInfo: META_INFO, merchantBizId });
    const b = await api.start(await signToken(bob), { metaInfo: META_INFO, merchantBizId });
    assert.deepEqual([a.status, b.status], [201, 201]);

    const listed = await backOffice<{ sessions: View[] }>(`/kyc/sessions?merchantBizId=${merchantBizId}`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.sessions.map((s) => [s.merchantBizId, s.userId, s.transactionId]).sort(),
      [[merchantBizId, alice, a.body.transactionId], [merchantBizId, bob, b.body.transactionId]].sort(),
    );
    const [first, second] = listed.body.sessions;
    assert.notEqual(first!.id, second!.id);

    // One session by its id, with its transactions.
    const one = await backOffice<View & { transactions: Array<{ attempt: number; transactionId: string }> }>(`/kyc/sessions/${first!.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.userId, first!.userId);
    assert.deepEqual(one.body.transactions.map((t) => [t.attempt, t.transactionId]), [[1, first!.transactionId]]);

    // Alice's verification passes, Bob's fails: each event names its person and its session.
    await api.sim.complete(String(a.body.transactionId), 'Y', '200');
    await api.sim.complete(String(b.body.transactionId), 'N', '201');
    const byPerson = await waitFor('both events', async () => {
      const mine = events.filter((e) => e.data.merchantBizId === merchantBizId && e.type === 'kyc.session.finished');
      return mine.length === 2 ? new Map(mine.map((e) => [e.data.userId, e])) : undefined;
    }, 15_000);
    const aliceSession = listed.body.sessions.find((s) => s.userId === alice)!;
    const bobSession = listed.body.sessions.find((s) => s.userId === bob)!;
    assert.deepEqual([byPerson.get(alice)?.data.id, byPerson.get(alice)?.data.status], [aliceSession.id, 'passed']);
    assert.deepEqual([byPerson.get(bob)?.data.id, byPerson.get(bob)?.data.status], [bobSession.id, 'failed']);
    // Event ids are per session (and status): the same merchantBizId does not make them collide.
    assert.notEqual(byPerson.get(alice)?.id, byPerson.get(bob)?.id);

    // Neither reads the other's outcome.
    assert.equal((await api.session(await signToken(alice), merchantBizId)).body.status, 'passed');
    assert.equal((await api.session(await signToken(bob), merchantBizId)).body.status, 'failed');
  });

  test("a user cannot resume or block another's session with the same merchantBizId", async () => {
    const merchantBizId = randomId('order');
    const aliceJwt = await signToken(randomId('alice-'));
    const bobJwt = await signToken(randomId('bob-'));
    const a = await api.start(aliceJwt, { metaInfo: META_INFO, merchantBizId });
    // Bob resuming "order…" reaches no session of his: 404, and Alice's is untouched.
    assert.equal((await api.resume(bobJwt, merchantBizId)).status, 404);
    // Bob starting it makes his own; resuming then resumes his own.
    assert.equal((await api.start(bobJwt, { metaInfo: META_INFO, merchantBizId })).status, 201);
    assert.equal((await api.resume(bobJwt, merchantBizId)).body.attempt, 2);
    const aliceView = await api.session(aliceJwt, merchantBizId);
    assert.deepEqual([aliceView.body.transactionId, aliceView.body.attempts], [a.body.transactionId, 1]);
  });
});

describe('the person at rest', () => {
  test('a pg_dump of the service\'s tables does not show the JWT sub; the back office still reads it', async () => {
    const sub = `needle-${randomId()}-person@example.com`;
    const res = await api.start(await signToken(sub), { metaInfo: META_INFO });
    assert.equal(res.status, 201);
    const row = await rowsOf(stack.app).session(String(res.body.merchantBizId));
    assert.ok(row.userIdCiphertext && row.userIdKeyId, 'sealed');

    const stdout = await dumpData(stack);
    assert.ok(stdout.includes(String(res.body.merchantBizId)), 'the dump has the session');
    for (const form of [sub, Buffer.from(sub).toString('hex'), Buffer.from(sub).toString('base64')]) {
      assert.ok(!stdout.includes(form), `the dump shows the sub (${form.slice(0, 12)}…)`);
    }
    assert.ok(!stack.logs.text.includes(sub), 'nor do the logs');

    const view = await backOffice<View>(`/kyc/sessions/${row.id}`);
    assert.equal(view.body.userId, sub);
    // Sealed to its session: the ciphertext copied onto another row does not open.
    assert.throws(() => stack.app.sealer.open({ keyId: row.userIdKeyId!, ciphertext: Buffer.from(row.userIdCiphertext!) }, 'another-session'));
  });
});
