import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { redisCli, redisToolsMissing, SentinelServers } from './helpers/redis-server.js';
import { META_INFO, randomId, startStack, type Stack } from './helpers/stack.js';

const missing = redisToolsMissing();
if (missing) console.warn(`# skipping the Redis Sentinel test: ${missing}`);

const NAME = 'kycmaster';

describe('behind Redis Sentinel', { skip: missing }, () => {
  let servers: SentinelServers | undefined;
  let stack: Stack | undefined;

  before(async () => {
    // A 1-s down-after keeps the test short; production wants it above the budget's horizon (README).
    servers = await SentinelServers.start({ name: NAME, downAfterMs: 1000, failoverTimeoutMs: 3000 });
  });
  after(async () => {
    await stack?.close();
    await servers?.stop();
  });

  test('the master killed: starts fail closed (503, no Initialize) and /readyz 503; after the failover they work again, no restart', async (t) => {
    stack = await startStack({ env: { REDIS_URL: undefined, REDIS_SENTINELS: servers!.sentinels, REDIS_SENTINEL_NAME: NAME } });
    const api = clientFor(stack);
    const readyz = async () => (await fetch(`${stack!.appUrl}/readyz`)).status;
    const initializes = async () => (await api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;
    const token = await signToken(randomId('u'));
    assert.equal((await api.start(token)).status, 201);
    assert.equal(await readyz(), 200);
    assert.equal(await initializes(), 1);

    await servers!.killMaster();
    const killedAt = Date.now();
    // Sentinel needs down-after-milliseconds (1 s) and an election before it promotes the replica:
    // until then no master exists, and the budget fails closed.
    const merchantBizId = randomId('fo');
    const refused = await api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.deepEqual([refused.status, refused.body.code], [503, 'BUDGET_UNAVAILABLE']);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(await readyz(), 503);
    assert.equal(await initializes(), 1, 'fail closed: no unmetered call');

    // Retry as a client would, until the failover is over: nothing but 503 BUDGET_UNAVAILABLE meanwhile. It takes
    // ~3 s; but a Sentinel that finds its timer late by 2 s (a busy machine) enters TILT mode and does nothing for
    // 30 s (seen once in a CI run: no failover within 30 s), so the wait is bounded well beyond that.
    const answers = new Map<string, number>();
    let status = 0;
    while (status !== 201 && Date.now() - killedAt < 75_000) {
      await sleep(250);
      const res = await api.start(token, { metaInfo: META_INFO, merchantBizId });
      status = res.status;
      const key = `${res.status} ${String(res.body.code ?? '')}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
    t.diagnostic(`starts work again ${Date.now() - killedAt} ms after the kill; answers: ${JSON.stringify(Object.fromEntries(answers))}`);
    const sentinelState = status === 201 ? '' : (await redisCli(servers!.sentinelPort, 'info', 'sentinel')).replace(/\r?\n/g, ' ');
    assert.equal(status, 201, `no recovery within 75 s: ${JSON.stringify(Object.fromEntries(answers))}; Sentinel: ${sentinelState}`);
    assert.deepEqual([...answers.keys()].filter((k) => k !== '503 BUDGET_UNAVAILABLE' && k !== '201 '), []);
    assert.equal(await initializes(), 2, 'one Initialize for the start that succeeded');
    assert.equal(await readyz(), 200);
    // The replica is the master now: that is where the service writes.
    assert.match(await redisCli(servers!.replicaPort, 'role'), /^master/);
  });
});
