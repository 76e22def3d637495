import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rowsOf } from './helpers/rows.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { freshDatabaseUrl, META_INFO, randomId, startStack, waitFor, type Stack } from './helpers/stack.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

// The service reaches PostgreSQL through a proxy the tests cut, blackhole or slow down.
const proxy = new TcpProxy({ host: '127.0.0.1', port: 5432 });
let stack: Stack;
let api: ReturnType<typeof clientFor>;
before(async () => {
  const port = await proxy.listen();
  const url = new URL(await freshDatabaseUrl());
  url.port = String(port);
  stack = await startStack({ env: { DATABASE_URL: url.toString() } });
  api = clientFor(stack);
});
after(async () => {
  proxy.restore();
  await stack.close();
  await proxy.close();
});

const initializeCalls = async () => (await api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;
const timed = async <T>(f: () => Promise<T>) => {
  const t0 = Date.now();
  const value = await f();
  return { value, ms: Date.now() - t0 };
};
/** Reads a session through a direct connection (the service's own path is the one being broken). */
const rowOf = (merchantBizId: string) => rowsOf(stack.app).sessionOrNull(merchantBizId);

describe('PostgreSQL down or slow', () => {
  for (const [fault, apply] of [
    ['down (connections refused)', () => proxy.cut()],
    ['hanging (connections never answered)', () => proxy.blackhole()],
    ['slow (1.5 s per round trip)', () => proxy.delay(1500)],
  ] as const) {
    test(`${fault}: 503 DB_UNAVAILABLE within 1 s, no call to Alibaba; recovers without a restart`, async () => {
      const token = await signToken(randomId('u'));
      const calls = await initializeCalls();
      apply();
      const { value: res, ms } = await timed(() => api.start(token, { metaInfo: META_INFO }));
      proxy.restore();
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.code, 'DB_UNAVAILABLE');
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.ok(ms <= 1000, `answered in ${ms} ms`);
      assert.equal(await initializeCalls(), calls, 'the row is reserved first: no upstream call without it');
      const again = await waitFor('recovery', async () => {
        const r = await api.start(token, { metaInfo: META_INFO });
        return r.status === 201 ? r : undefined;
      });
      assert.equal(again.status, 201);
    });
  }

  test('the status route and a genuine callback answer 503 too, with a code; a forged callback is still refused', async () => {
    const token = await signToken(randomId('u'));
    const started = await api.start(token, { metaInfo: META_INFO });
    assert.equal(started.status, 201);
    const { transactionId, merchantBizId } = started.body as { transactionId: string; merchantBizId: string };
    const callbackToken = (await api.sim.transaction(transactionId)).body.params.CallbackToken!;
    const forgedToken = `${callbackToken.slice(0, 20)}${callbackToken[20] === 'A' ? 'B' : 'A'}${callbackToken.slice(21)}`;
    proxy.cut();
    const status = await api.session(token, 'abc123');
    const callback = await api.callback({ transactionId, merchantBizId, passed: 'Y', subCode: '200', callbackToken });
    // A token this service did not make is refused without reading the database.
    const forged = await api.callback({ transactionId, merchantBizId, passed: 'Y', subCode: '200', callbackToken: forgedToken });
    proxy.restore();
    assert.deepEqual([status.status, status.body.code], [503, 'DB_UNAVAILABLE']);
    assert.deepEqual([callback.status, callback.body.code], [503, 'DB_UNAVAILABLE']);
    assert.deepEqual([forged.status, forged.body.code], [403, 'CALLBACK_REJECTED']);
  });
});

describe('overload does not reach PostgreSQL', () => {
  test('with the QPS budget full, a start is refused 429 without touching the database (down here)', async () => {
    // Fill the next ~3 s of the account's Initialize budget, as a busy fleet would.
    const key = `kyc:budget:{${stack.config.CLOUDAUTH_ACCOUNT}}:Initialize`;
    const [seconds, micros] = (await stack.app.redis.time()).map(Number) as [number, number];
    const nowUs = seconds * 1e6 + micros;
    const n = stack.config.CLOUDAUTH_QPS;
    const members = Array.from({ length: 3 * n }, (_, i) => [nowUs + Math.floor(i / n) * 1.05e6, `fill-${i}`] as const);
    await stack.app.redis.zadd(key, ...members.flat());
    await stack.app.redis.pexpire(key, 5000);
    proxy.cut();
    const res = await api.start(await signToken(randomId('u')), { metaInfo: META_INFO });
    proxy.restore();
    await stack.app.redis.del(key);
    assert.deepEqual([res.status, res.body.code], [429, 'QPS_BUDGET_EXHAUSTED']);
  });
});

describe('PostgreSQL fails after Initialize succeeded', () => {
  test('a short outage: the TransactionId is written by a retry', async () => {
    const merchantBizId = randomId('retry');
    await api.sim.fault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 600 });
    const pending = api.start(await signToken(randomId('u')), { metaInfo: META_INFO, merchantBizId });
    await sleep(250);
    proxy.cut(); // after the reservation, before Initialize answers
    await sleep(650);
    proxy.restore();
    const res = await pending;
    assert.equal(res.status, 201);
    const row = await rowOf(merchantBizId);
    assert.equal(row?.transactionId, res.body.transactionId);
  });

  test('a long outage: the caller still gets the transaction, and the callback completes the session by merchantBizId', async () => {
    const merchantBizId = randomId('lost');
    await api.sim.fault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 500 });
    const pending = api.start(await signToken(randomId('u')), { metaInfo: META_INFO, merchantBizId });
    await sleep(250);
    proxy.cut();
    const res = await pending; // the store retries give up while the database is still away
    proxy.restore();
    assert.equal(res.status, 201);
    const transactionId = String(res.body.transactionId);
    assert.match(transactionId, /^hksb/);
    assert.equal((await rowOf(merchantBizId))?.transactionId, null, 'not stored');

    const done = await api.sim.complete(transactionId, 'Y', '200');
    assert.equal(done.body.delivery.status, 200);
    const row = await waitFor('the verdict', async () => {
      const r = await rowOf(merchantBizId);
      return r?.status === 'passed' ? r : undefined;
    });
    assert.equal(row.transactionId, transactionId);
  });
});
