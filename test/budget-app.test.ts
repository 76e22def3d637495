import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rowsOf } from './helpers/rows.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { startRedis, stop } from './helpers/redis-server.js';
import { freePort, META_INFO, randomId, startStack, type Stack } from './helpers/stack.js';

const stacks: Stack[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const s of stacks) await s.close();
  for (const c of children) await stop(c);
});

describe('the QPS budget, seen through POST /kyc/start', () => {
  test('over the budget: callers wait, then 429 QPS_BUDGET_EXHAUSTED with Retry-After; nothing unmetered reaches Alibaba', async () => {
    // Alibaba (the simulator) enforces 2 QPS too: a Throttling.Api would show the budget leaking.
    const stack = await startStack({ simQps: 2, env: { CLOUDAUTH_QPS: '2', CLOUDAUTH_BUDGET_WAIT_MS: '600' } });
    stacks.push(stack);
    const api = clientFor(stack);
    const ids = Array.from({ length: 8 }, () => randomId('q'));
    const results = await Promise.all(
      ids.map(async (merchantBizId) => api.start(await signToken(randomId('u')), { metaInfo: META_INFO, merchantBizId })),
    );
    const created = results.filter((r) => r.status === 201);
    const limited = results.filter((r) => r.status === 429);
    assert.equal(created.length + limited.length, 8, JSON.stringify(results.map((r) => r.body)));
    assert.ok(created.length >= 2 && created.length <= 4, `created ${created.length}`); // 2 now, ≤ 2 more within 600 ms of waiting at most
    for (const r of limited) {
      assert.equal(r.body.code, 'QPS_BUDGET_EXHAUSTED');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    const calls = (await api.sim.calls()).body;
    assert.equal(calls.filter((c) => c.code?.startsWith('Throttling')).length, 0);
    assert.equal(calls.filter((c) => c.action === 'Initialize').length, created.length);
    // A caller turned away by the budget never reached Alibaba: its merchantBizId stays free for a retry.
    const rows = await stack.app.prisma.kycSession.count({ where: { merchantBizId: { in: ids } } });
    assert.equal(rows, created.length, 'no half-started sessions are left behind');
  });

  test('over the budget, a new start is refused at once and a repeated start still gets its session', async () => {
    const stack = await startStack({ env: { CLOUDAUTH_QPS_INITIALIZE: '1', CLOUDAUTH_BUDGET_WAIT_MS: '0' } });
    stacks.push(stack);
    const api = clientFor(stack);
    const token = await signToken(randomId('u'));
    const first = randomId('first');
    assert.equal((await api.start(token, { metaInfo: META_INFO, merchantBizId: first })).status, 201);
    const refused = await api.start(token, { metaInfo: META_INFO, merchantBizId: randomId('refused') });
    assert.deepEqual([refused.status, refused.body.code], [429, 'QPS_BUDGET_EXHAUSTED']);
    const again = await api.start(token, { metaInfo: META_INFO, merchantBizId: first });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.merchantBizId, first);
  });

  test('Redis down: 503 BUDGET_UNAVAILABLE quickly and no upstream call; recovery without a restart', async () => {
    const port = await freePort();
    const redis = await startRedis(port);
    children.push(redis);
    const stack = await startStack({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    stacks.push(stack);
    const api = clientFor(stack);
    const token = await signToken(randomId('u'));
    assert.equal((await api.start(token)).status, 201);

    await stop(redis);
    const merchantBizId = randomId('down');
    const t0 = Date.now();
    const res = await api.start(token, { metaInfo: META_INFO, merchantBizId });
    const took = Date.now() - t0;
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'BUDGET_UNAVAILABLE');
    assert.ok(took <= 500, `answered in ${took} ms`);
    assert.equal((await api.sim.calls()).body.filter((c) => c.action === 'Initialize').length, 1, 'fail closed: no unmetered call');
    assert.equal(await rowsOf(stack.app).sessionOrNull(merchantBizId), null, 'the reservation was released');

    children.push(await startRedis(port));
    let status = 0;
    for (let i = 0; i < 40 && status !== 201; i++) {
      await sleep(100);
      status = (await api.start(token, { metaInfo: META_INFO, merchantBizId })).status;
    }
    assert.equal(status, 201, 'the same merchantBizId works once Redis is back');
  });
});
