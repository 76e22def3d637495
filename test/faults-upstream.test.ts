import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { META_INFO, startStack, type Stack } from './helpers/stack.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CALLS = 1000;
const CONCURRENCY = 20;
const DEADLINE_MS = 300;

// "Alibaba" behind a proxy that accepts every connection and never answers.
let proxy: TcpProxy;
let upstream: Stack; // only its simulator is used: the real upstream behind the proxy
let stack: Stack;
before(async () => {
  upstream = await startStack();
  const sim = new URL(upstream.simUrl);
  proxy = new TcpProxy({ host: sim.hostname, port: Number(sim.port) });
  await proxy.listen();
  proxy.blackhole();
  stack = await startStack({
    env: { CLOUDAUTH_ENDPOINT: `http://127.0.0.1:${proxy.port}`, CLOUDAUTH_TIMEOUT_MS: String(DEADLINE_MS), CLOUDAUTH_QPS: '100000', CLOUDAUTH_BUDGET_MAX_DISPATCH_MS: '1000', LOG_LEVEL: 'warn' },
  });
});
after(async () => {
  await stack.close();
  await proxy.close();
  await upstream.close();
});

test(`Alibaba hanging: ${CALLS} calls each answer 504 within the deadline, and leave no sockets or memory behind`, async (t) => {
  const api = clientFor(stack);
  const token = await signToken('hanging-user');
  gc();
  const heapBefore = process.memoryUsage().heapUsed;

  let next = 0;
  const durations: number[] = [];
  const statuses = new Map<number, number>();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < CALLS) {
        next++;
        const t0 = Date.now();
        const res = await api.start(token, { metaInfo: META_INFO });
        durations.push(Date.now() - t0);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }),
  );
  assert.deepEqual([...statuses], [[504, CALLS]]);
  durations.sort((a, b) => a - b);
  const p99 = durations[Math.floor(durations.length * 0.99)]!;
  const slowest = durations.at(-1)!;
  // The deadline covers the upstream call; the rest is queueing on a busy 2-core machine (20 calls at once,
  // client and service in one process): fresh-clone runs measured p99 490–620 ms, and once 1,162 ms. A
  // deadline that did not hold would never answer here (the upstream never does): the bounds need only be finite.
  assert.ok(p99 <= DEADLINE_MS + 1500, `p99 ${p99} ms`);
  assert.ok(slowest <= DEADLINE_MS + 3000, `slowest ${slowest} ms`);

  // Abandoned calls must not keep their sockets until Alibaba answers.
  let open = proxy.openConnections;
  for (let i = 0; i < 40 && open > 5; i++) {
    await sleep(100);
    open = proxy.openConnections;
  }
  gc();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  t.diagnostic(`p99 ${p99} ms, slowest ${slowest} ms, sockets still open at the upstream: ${open}, heap growth ${heapGrowthMb.toFixed(1)} MB`);
  assert.ok(open <= 5, `${open} sockets to the upstream are still open`);
  assert.ok(heapGrowthMb < 50, `heap grew by ${heapGrowthMb.toFixed(1)} MB`);
});

test('Alibaba hanging on connections the client reuses (keep-alive): sockets are still released', async () => {
  const api = clientFor(stack);
  proxy.restore();
  // Warm the client's keep-alive pool with answered calls, then hang every connection, old and new.
  const warm = await Promise.all(Array.from({ length: 20 }, async (_, i) => api.start(await signToken(`warm-${i}`), { metaInfo: META_INFO })));
  assert.ok(warm.every((r) => r.status === 201), JSON.stringify(warm.map((r) => r.status)));
  proxy.stall();
  const hung = await Promise.all(Array.from({ length: 100 }, async (_, i) => api.start(await signToken(`hung-${i}`), { metaInfo: META_INFO })));
  // Each answers 504 once the hung call's deadline passes. A start whose budget slot came while the event loop was
  // busy with the other 99 may instead give its slot back, three times, and answer 429 with nothing sent: the
  // budget never sends late (seen for 8 of 100 in one run of ten). Either way no socket may be left open.
  const answered = hung.map((r) => `${r.status} ${String(r.body.code ?? '')}`);
  const counts = JSON.stringify(Object.fromEntries(new Map(answered.map((a) => [a, answered.filter((b) => b === a).length]))));
  assert.ok(answered.every((a) => a === '504 UPSTREAM_TIMEOUT' || a === '429 QPS_BUDGET_EXHAUSTED'), counts);
  assert.ok(answered.filter((a) => a === '504 UPSTREAM_TIMEOUT').length >= 80, counts);
  let open = proxy.openConnections;
  for (let i = 0; i < 40 && open > 0; i++) {
    await sleep(100);
    open = proxy.openConnections;
  }
  assert.equal(open, 0, `${open} sockets to the upstream are still open`);
  proxy.blackhole();
});
