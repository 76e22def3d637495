import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { buildApp } from '../src/app.js';
import { QpsBudget } from '../src/budget/index.js';
import { failFastClusterOptions } from '../src/redis/options.js';
import { assertExactUnderOverload } from './helpers/budget-exactness.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { RedisClusterServers, redisToolsMissing } from './helpers/redis-server.js';
import { freePort, LogCapture, META_INFO, randomId, startStack, waitFor, type Stack } from './helpers/stack.js';

const missing = redisToolsMissing();
if (missing) console.warn(`# skipping the Redis Cluster tests: ${missing}`);

describe('on a 3-master Redis Cluster', { skip: missing }, () => {
  let servers: RedisClusterServers | undefined;
  const clients: Cluster[] = [];
  let stack: Stack | undefined;

  before(async () => {
    // A short node timeout, so that the last test sees a lost master marked failed quickly.
    servers = await RedisClusterServers.start({ masters: 3, nodeTimeoutMs: 1000 });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await stack?.close();
    await servers?.stop();
  });

  async function cluster(): Promise<Cluster> {
    const c = new Cluster(servers!.addresses, failFastClusterOptions);
    c.on('error', () => {});
    clients.push(c);
    if (c.status !== 'ready') await once(c, 'ready');
    return c;
  }

  // The exactness test of test/budget.test.ts, with each instance on a Cluster client.
  test('the QPS budget: no sliding 1 s window holds more than N starts across 3 instances, throughput ≈ N/s', async (t) => {
    const N = 10;
    const keyPrefix = `test:budget:${randomUUID()}`;
    const budgets = await Promise.all(
      [0, 1, 2].map(async () => new QpsBudget({ redis: await cluster(), keyPrefix, account: 'acct', limits: { Initialize: N }, maxWaitMs: 1500 })),
    );
    await assertExactUnderOverload(t, budgets, N);
  });

  test('the service: start → callback → status passed; per-user limit; /readyz', async () => {
    stack = await startStack({
      env: { REDIS_URL: undefined, REDIS_CLUSTER_NODES: servers!.addresses.join(','), RATE_LIMIT_PER_USER: '2' },
    });
    const api = clientFor(stack);
    const token = await signToken(randomId('u'));
    const merchantBizId = randomId('cl');
    const started = await api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const completed = await api.sim.complete(String(started.body.transactionId), 'Y');
    assert.equal(completed.body.delivery.status, 200, 'the callback was accepted');
    // The outcome is confirmed by a CheckResult job, which takes a slot of the budget on the cluster too.
    const passed = await waitFor(
      'the session to pass',
      async () => {
        const s = await api.session(token, merchantBizId);
        return s.body.status === 'passed' ? s : undefined;
      },
      20_000,
    );
    assert.equal(passed.body.passed, 'Y');

    // The rate limits count on the cluster (they let requests through when Redis fails, so a broken store would show here).
    assert.equal((await api.start(token, { metaInfo: META_INFO })).status, 201);
    const limited = await api.start(token, { metaInfo: META_INFO });
    assert.deepEqual([limited.status, limited.body.code], [429, 'RATE_LIMITED']);

    const ready = await fetch(`${stack.appUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { checks: { redis: string } }).checks.redis, 'ok');
  });

  test('the change feed on the cluster: live, and a change through a second instance wakes a long poll at once', async () => {
    assert.ok(stack, 'runs after the flow test');
    const other = await buildApp({ ...stack.config, JOBS_WORKERS: false }, { logStream: new LogCapture() });
    const port = await freePort();
    await other.listen({ port, host: '127.0.0.1' });
    try {
      const live = async (url: string) => /^kyc_session_changes_live 1$/m.test(await (await fetch(`${url}/metrics`)).text()) || undefined;
      await waitFor('both feeds to be live', async () => ((await live(stack!.appUrl)) && (await live(`http://127.0.0.1:${port}`))) || undefined, 10_000);
      const api = clientFor(stack);
      const token = await signToken(randomId('w'));
      const started = await api.start(token, { metaInfo: META_INFO });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const transactionId = String(started.body.transactionId);
      const sim = (await api.sim.transaction(transactionId)).body;
      const waiting = fetch(`${stack.appUrl}/kyc/sessions/${started.body.merchantBizId}?wait=20&status=pending`, {
        headers: { authorization: `Bearer ${token}` },
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as { status?: string }, at: performance.now() }));
      await sleep(1000);
      // Alibaba's callback reaches the other instance, which publishes the change on the cluster.
      const callback = new URL(new URL(sim.callbackUrl!).pathname + new URL(sim.callbackUrl!).search, `http://127.0.0.1:${port}`);
      for (const [name, value] of Object.entries({ transactionId, passed: 'Y', subCode: '200', callbackToken: sim.params.CallbackToken! })) {
        callback.searchParams.set(name, value);
      }
      const sentAt = performance.now();
      assert.equal((await fetch(callback)).status, 200);
      const answer = await waiting;
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, 'verifying');
      assert.ok(answer.at - sentAt < 3000, `answered ${(answer.at - sentAt).toFixed(0)} ms after the callback`);
    } finally {
      await other.close();
    }
  });

  test('a master lost: /readyz 503 once the cluster says it is down, and starts fail closed', async () => {
    assert.ok(stack, 'runs after the flow test');
    const api = clientFor(stack);
    const initializes = async () => (await api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;
    const before = await initializes();
    await servers!.kill(servers!.ports[0]!);
    // The other masters mark it failed after cluster-node-timeout (1 s): every slot is then refused.
    const down = await waitFor(
      'readiness to fail',
      async () => {
        const r = await fetch(`${stack!.appUrl}/readyz`);
        return r.status === 503 ? ((await r.json()) as { checks: { redis: string } }) : undefined;
      },
      15_000,
    );
    assert.notEqual(down.checks.redis, 'ok');
    const refused = await api.start(await signToken(randomId('u')), { metaInfo: META_INFO });
    assert.deepEqual([refused.status, refused.body.code], [503, 'BUDGET_UNAVAILABLE']);
    assert.equal(await initializes(), before, 'fail closed: no unmetered call');
  });
});
