import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Redis, type RedisOptions } from 'ioredis';
import {
  BudgetExhaustedError,
  BudgetUnavailableError,
  DispatchDelays,
  QpsBudget,
  type DispatchObservation,
} from '../src/budget/index.js';
import { RESERVE_LUA, reservationMember } from '../src/budget/script.js';
import { failFastRedisOptions } from '../src/redis/options.js';
import { FixedWindowLimiter } from '../bench/lib/fixed-window.js';
import { peakInWindow } from '../src/simulator/peak-window.js';
import { assertExactUnderOverload } from './helpers/budget-exactness.js';
import { startRedis, stop } from './helpers/redis-server.js';
import { freePort } from './helpers/stack.js';

const MAIN_PORT = 6379;
const clients: Redis[] = [];

function client(port = MAIN_PORT, extra: RedisOptions = {}): Redis {
  const redis = new Redis({ host: '127.0.0.1', port, ...failFastRedisOptions, ...extra });
  redis.on('error', () => {}); // connection errors are expected in the fail-closed test
  clients.push(redis);
  return redis;
}

async function ready(redis: Redis): Promise<Redis> {
  if (redis.status !== 'ready') await once(redis, 'ready');
  return redis;
}

const prefix = (): string => `test:budget:${randomUUID()}`;
const nowMs = (): number => performance.timeOrigin + performance.now();

async function redisTimeMs(redis: Redis): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Number(usec) / 1000;
}


/**
 * These tests are about queueing, not about the dispatch bound: a busy shared machine wakes timers
 * late, so their budgets promise 50 ms (a caller later than that would give its slot back).
 */
const patient = { dispatchDelay: { initialMs: 50, minMs: 50 } };

const isExhausted = (err: unknown): boolean => err instanceof BudgetExhaustedError;
const isUnavailable = (err: unknown): boolean => err instanceof BudgetUnavailableError;

after(() => {
  for (const redis of clients) redis.disconnect();
});

describe('QpsBudget on the shared Redis', () => {
  test('no sliding 1 s window holds more than N starts across 3 instances, throughput ≈ N/s', async (t) => {
    const N = 10;
    const keyPrefix = prefix();
    const budgets = await Promise.all(
      [0, 1, 2].map(async () => {
        const redis = await ready(client());
        return new QpsBudget({ redis, keyPrefix, account: 'acct', limits: { Initialize: N }, maxWaitMs: 1500, ...patient });
      }),
    );
    await assertExactUnderOverload(t, budgets, N);
  });

  test('fixed-window baseline bursts 2N across a boundary, QpsBudget does not', async (t) => {
    const N = 5;
    const redis = await ready(client());

    /** N calls 150 ms before a whole second (Redis clock) and N calls 30 ms after it. */
    async function straddleBoundary(acquire: () => Promise<void>): Promise<number[]> {
      const now = await redisTimeMs(redis);
      let boundary = Math.ceil(now / 1000) * 1000;
      if (boundary - now < 300) boundary += 1000;
      const starts: number[] = [];
      const burst = (): Promise<void>[] =>
        Array.from({ length: N }, () => acquire().then(() => void starts.push(nowMs())));
      await sleep(boundary - 150 - now);
      const first = burst();
      await sleep(boundary + 30 - nowMs());
      await Promise.all([...first, ...burst()]);
      return starts;
    }

    const fixed = new FixedWindowLimiter({ redis, keyPrefix: prefix(), account: 'acct', limits: N, maxWaitMs: 3000, ...patient });
    const fixedStarts = await straddleBoundary(() => fixed.acquire('Initialize'));
    assert.ok(peakInWindow(fixedStarts, 1000) > N, `baseline max in 1 s: ${peakInWindow(fixedStarts, 1000)}`);

    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: N, maxWaitMs: 3000, ...patient });
    const budgetStarts = await straddleBoundary(() => budget.acquire('Initialize'));
    assert.equal(budgetStarts.length, 2 * N);
    t.diagnostic(`max starts in 1 s: fixed window ${peakInWindow(fixedStarts, 1000)}, QpsBudget ${peakInWindow(budgetStarts, 1000)} (N=${N})`);
    assert.ok(peakInWindow(budgetStarts, 1000) <= N, `budget max in 1 s: ${peakInWindow(budgetStarts, 1000)}`);
  });

  test('slots are granted in arrival order across instances (FIFO)', async () => {
    const keyPrefix = prefix();
    const budgets = await Promise.all(
      [0, 1, 2].map(async () => {
        const redis = await ready(client());
        return new QpsBudget({ redis, keyPrefix, account: 'acct', limits: 1, maxWaitMs: 5000, windowMs: 200, ...patient });
      }),
    );
    const order: number[] = [];
    const starts: number[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) {
      all.push(
        budgets[i % 3]!.acquire('Initialize').then(() => {
          order.push(i);
          starts.push(performance.now());
        }),
      );
      await sleep(10); // let request i reach Redis before request i + 1 is sent
    }
    await Promise.all(all);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    // Limit 1: each request has its own slot ≈ 290 ms after the previous one
    // (loose bound: timer jitter on a busy CI box must not make this flaky).
    for (let i = 1; i < starts.length; i++) {
      assert.ok(starts[i]! - starts[i - 1]! >= 150, `starts ${i - 1} and ${i} only ${starts[i]! - starts[i - 1]!} ms apart`);
    }
  });

  test('maxWaitMs: excess requests reject at once with a usable retryAfterMs', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: 2, maxWaitMs: 300, ...patient });
    await Promise.all([budget.acquire('Initialize'), budget.acquire('Initialize')]);

    const t = performance.now();
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => budget.acquire('Initialize')));
    const elapsed = performance.now() - t;
    assert.ok(elapsed < 100, `rejections took ${elapsed} ms`);
    const retryAfters = results.map((r) => {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason as BudgetExhaustedError;
      assert.ok(err instanceof BudgetExhaustedError);
      assert.equal(err.code, 'QPS_BUDGET_EXHAUSTED');
      assert.ok(err.retryAfterMs > 0 && err.retryAfterMs <= 1025, `retryAfterMs ${err.retryAfterMs}`);
      return err.retryAfterMs;
    });
    assert.equal(await redis.zcard(budget.keyFor('Initialize')), 2, 'rejected requests must not reserve');

    // Too early (100 ms before retryAfter) is still rejected ...
    const retryAfter = retryAfters[0]!;
    await sleep(retryAfter - 100);
    await assert.rejects(budget.acquire('Initialize'), isExhausted);
    // ... at retryAfter a slot is available within maxWait.
    await sleep(110);
    const r = performance.now();
    await budget.acquire('Initialize');
    assert.ok(performance.now() - r <= 320);
  });

  test('check() answers what an acquire now would get, and reserves nothing', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: 2, maxWaitMs: 300, ...patient });
    for (let i = 0; i < 10; i++) await budget.check('Initialize');
    assert.equal(await redis.zcard(budget.keyFor('Initialize')), 0, 'looking takes no slot');
    await Promise.all([budget.acquire('Initialize'), budget.acquire('Initialize')]);
    // Both slots of this second are taken and the next is ~1 s away, beyond the 300-ms wait.
    await assert.rejects(budget.check('Initialize'), (err: unknown) => isExhausted(err) && (err as BudgetExhaustedError).retryAfterMs > 0);
    await budget.check('Initialize', { maxWaitMs: 2000 });
    assert.equal(await redis.zcard(budget.keyFor('Initialize')), 2);
  });

  test('abort while queued rejects promptly and gives the slot to a later request', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({
      redis, keyPrefix: prefix(), account: 'acct', limits: 1, maxWaitMs: 5000, windowMs: 200, networkAllowanceMs: 5, ...patient,
    });
    const key = budget.keyFor('Initialize');
    const t0 = performance.now();
    const since = (): number => performance.now() - t0;

    // Already aborted: rejects without touching Redis.
    const pre = AbortSignal.abort(new Error('pre-aborted'));
    await assert.rejects(budget.acquire('Initialize', { signal: pre }), /pre-aborted/);
    assert.equal(await redis.zcard(key), 0);

    // Each slot holds 200 + 50 + 5 = 255 ms.
    const a = budget.acquire('Initialize'); // slot ≈ 0
    const ac = new AbortController();
    const b = budget.acquire('Initialize', { signal: ac.signal }); // slot ≈ 255
    let cStart = 0;
    const c = budget.acquire('Initialize').then(() => void (cStart = since())); // slot ≈ 510
    await a;
    await sleep(50);
    const reason = new Error('client went away');
    const abortedAt = performance.now();
    ac.abort(reason);
    await assert.rejects(b, (err) => err === reason);
    assert.ok(performance.now() - abortedAt < 20, 'abort must reject promptly');
    await sleep(10);
    // Without the abort, d would get slot ≈ 765; with it, it takes b's slot ≈ 255.
    await budget.acquire('Initialize');
    const dStart = since();
    await c;
    assert.ok(dStart >= 240 && dStart < 450, `d started at ${dStart} ms`);
    assert.ok(cStart >= 500, `c started at ${cStart} ms`);
  });

  test('a caller that wakes too late for its slot queues again instead of starting late', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: 10, maxWaitMs: 2000, ...patient });
    const onTime = await budget.acquireSlot('Initialize');
    assert.equal(onTime.attempts, 1);

    const pending = budget.acquireSlot('Initialize');
    await new Promise((resolve) => setImmediate(resolve)); // the reservation is on its way to Redis
    const blockedUntil = performance.now() + 150; // an overloaded process: the reply waits 150 ms
    while (performance.now() < blockedUntil) {
      // busy
    }
    const late = await pending;
    assert.equal(late.attempts, 2, 'the first slot was given back and a new one taken');
    // The abandoned reservation is gone: only the live ones remain in the log.
    assert.equal(await redis.zcard(budget.keyFor('Initialize')), 2);
  });

  test('per-API keys are independent', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({
      redis, keyPrefix: prefix(), account: 'acct', limits: { Initialize: 1, CheckResult: 3 }, maxWaitMs: 0, ...patient,
    });
    await budget.acquire('Initialize');
    await assert.rejects(budget.acquire('Initialize'), isExhausted);
    await Promise.all([1, 2, 3].map(() => budget.acquire('CheckResult')));
    await assert.rejects(budget.acquire('CheckResult'), isExhausted);
    assert.equal(await redis.zcard(budget.keyFor('Initialize')), 1);
    assert.equal(await redis.zcard(budget.keyFor('CheckResult')), 3);
    await assert.rejects(budget.acquire('Unknown'), /no QPS limit/);
  });
});

describe('the dispatch bound (DispatchDelays)', () => {
  const delays = (opts: Partial<ConstructorParameters<typeof DispatchDelays>[0]> = {}) =>
    new DispatchDelays({ samples: 64, initialMs: 20, minMs: 1, maxMs: 200, windowMs: 1000, ...opts });

  test('promises the initial bound before anything was measured, then what was measured', () => {
    const d = delays();
    assert.equal(d.boundMs(), 20);
    for (let i = 0; i < 10; i++) d.record(3 + (i % 3)); // 3, 4, 5 ms
    assert.equal(d.boundMs(), 5, 'alike delays: the largest of them');
  });

  test('a late dispatch widens the bound at once; it narrows again once it has left the history', () => {
    const d = delays({ samples: 16 });
    for (let i = 0; i < 4; i++) d.record(2);
    d.record(80);
    assert.equal(d.boundMs(), 80, 'one late call among few: covering it wastes less than giving slots back');
    for (let i = 0; i < 16; i++) d.record(2);
    assert.equal(d.boundMs(), 2);
  });

  test('a rare spike far above the bulk does not widen every margin; frequent slow calls do', () => {
    const rare = delays();
    for (let i = 0; i < 63; i++) rare.record(3);
    rare.record(150);
    // 150 ms more on every call costs more than a 1-in-65 chance of wasting a 1-s slot.
    assert.equal(rare.boundMs(), 3);

    const frequent = delays();
    for (let i = 0; i < 64; i++) frequent.record(i % 8 === 0 ? 40 : 3);
    assert.equal(frequent.boundMs(), 40, 'one call in eight at 40 ms: promise 40');
  });

  test('the bounds hold: never below minMs, never above maxMs', () => {
    const low = delays({ minMs: 5 });
    for (let i = 0; i < 64; i++) low.record(0.2);
    assert.equal(low.boundMs(), 5);
    const high = delays({ maxMs: 200 });
    for (let i = 0; i < 64; i++) high.record(900);
    assert.equal(high.boundMs(), 200);
    assert.throws(() => delays({ minMs: 10, maxMs: 5 }), /minMs/);
  });
});

describe('the reservation script on the shared Redis', () => {
  /** Reservations of one key: start (µs) and hold (µs), by start. */
  async function reservations(redis: Redis, key: string): Promise<Array<{ s: number; h: number }>> {
    const raw = await redis.zrange(key, '0', '-1', 'WITHSCORES');
    const out: Array<{ s: number; h: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ s: Number(raw[i + 1]), h: Number(/^h(\d+):/.exec(raw[i]!)![1]) });
    return out;
  }

  /** The invariant: fewer than `limit` other reservations start within any reservation's own hold. */
  function violations(rs: Array<{ s: number; h: number }>, limit: number): string[] {
    return rs.flatMap((l, i) => {
      const others = rs.filter((o, j) => j !== i && o.s >= l.s && o.s < l.s + l.h).length;
      return others > limit - 1 ? [`${others} others within the hold of the reservation at ${l.s} (hold ${l.h})`] : [];
    });
  }

  test('with reservations of different holds and slots given back, every reservation keeps its own hold (property)', async () => {
    const redis = await ready(client());
    redis.defineCommand('budgetReserveUnderTest', { numberOfKeys: 1, lua: RESERVE_LUA });
    const reserve = (key: string, limit: number, holdUs: number, member: string) =>
      (redis as unknown as Record<string, (...a: unknown[]) => Promise<number[]>>).budgetReserveUnderTest!(key, limit, holdUs, 60_000_000, member);
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('reserve' as const), extraUs: fc.integer({ min: 0, max: 300_000 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(op, { minLength: 1, maxLength: 30 }), async (limit, ops) => {
        const key = `${prefix()}:Initialize`;
        const members: string[] = [];
        for (const [n, o] of ops.entries()) {
          if (o.kind === 'release') {
            if (members.length > 0) await redis.zrem(key, members.splice(o.pick % members.length, 1)[0]!);
            continue;
          }
          const holdUs = 1_000_000 + o.extraUs;
          const member = reservationMember(holdUs, `m${n}`);
          const [granted] = await reserve(key, limit, holdUs, member);
          assert.equal(granted, 1);
          members.push(member);
          assert.deepEqual(violations(await reservations(redis, key), limit), []);
        }
        await redis.del(key);
      }),
      { numRuns: 40 },
    );
  });

  test('with equal holds it is FIFO: a reservation starts one hold after the one N places before it', async () => {
    const redis = await ready(client());
    redis.defineCommand('budgetReserveUnderTest2', { numberOfKeys: 1, lua: RESERVE_LUA });
    const key = `${prefix()}:Initialize`;
    const holdUs = 1_050_000;
    const starts: number[] = [];
    for (let i = 0; i < 9; i++) {
      const [, delayUs, nowUs] = await (redis as unknown as Record<string, (...a: unknown[]) => Promise<number[]>>).budgetReserveUnderTest2!(key, 3, holdUs, 60_000_000, reservationMember(holdUs, `m${i}`));
      starts.push(nowUs! + delayUs!);
    }
    for (let i = 3; i < 9; i++) assert.equal(starts[i]! - starts[i - 3]!, holdUs, `reservation ${i}`);
    await redis.del(key);
  });
});

describe('QpsBudget: margins sized from the measured dispatch delay', () => {
  test('a late dispatch widens the next reservations\' margin: the call N later is spaced by the earlier call\'s hold', async () => {
    const redis = await ready(client());
    const observed: DispatchObservation[] = [];
    const budget = new QpsBudget({
      redis, keyPrefix: prefix(), account: 'acct', limits: 1, maxWaitMs: 5000, windowMs: 200, networkAllowanceMs: 5,
      dispatchDelay: { initialMs: 20, minMs: 1 },
      onDispatch: (o) => observed.push(o),
    });
    assert.equal(budget.marginMs(), 25);
    // The first call's request reaches the socket 80 ms after its slot (a send that reports it so).
    const first = await budget.acquireSlot('Initialize', { send: async () => performance.now() + 80 });
    assert.equal(first.marginMs, 25);
    await sleep(0);
    assert.equal(observed.length, 1);
    assert.equal(observed[0]!.outcome, 'sent');
    assert.ok(observed[0]!.delayMs >= 80, `observed ${observed[0]!.delayMs} ms`);
    const margin = budget.marginMs();
    assert.ok(margin >= 85 && margin < 100, `margin after the late dispatch: ${margin}`);

    // Two more at once: the second is spaced by the first's hold (200 + 25), the third by the
    // second's, which promised the late delay (200 + ~85).
    const [second, third] = await Promise.all([budget.acquireSlot('Initialize'), budget.acquireSlot('Initialize')]);
    assert.ok(Math.abs(second!.slotAtMs - first.slotAtMs - 225) < 0.01, `second − first: ${second!.slotAtMs - first.slotAtMs} ms`);
    assert.ok(Math.abs(third!.slotAtMs - second!.slotAtMs - (200 + second!.marginMs)) < 0.01, `third − second: ${third!.slotAtMs - second!.slotAtMs} ms`);
    assert.ok(second!.marginMs >= 85);
  });

  test('instances with different dispatch delays share one log: the spacing after a call covers that call\'s own delay', async () => {
    const keyPrefix = prefix();
    const common = { keyPrefix, account: 'acct', limits: 2, maxWaitMs: 5000, windowMs: 300, networkAllowanceMs: 0 } as const;
    const slow = new QpsBudget({ ...common, redis: await ready(client()), dispatchDelay: { initialMs: 150, minMs: 150 } });
    const fast = new QpsBudget({ ...common, redis: await ready(client()), dispatchDelay: { initialMs: 5, minMs: 5, maxMs: 5 } });
    const a = await slow.acquireSlot('Initialize'); // holds 450 ms
    const [b, c] = await Promise.all([fast.acquireSlot('Initialize'), fast.acquireSlot('Initialize')]); // hold 305 ms each
    // b fits beside a (limit 2); c would be a's second other within a's 450 ms.
    assert.ok(b.slotAtMs - a.slotAtMs < 100, `b − a: ${b.slotAtMs - a.slotAtMs} ms`);
    assert.ok(c.slotAtMs - a.slotAtMs >= 450 - 0.01, `c − a: ${c.slotAtMs - a.slotAtMs} ms (a's hold is 450)`);
  });

  test('the bounds hold: a dispatch later than the cap widens the margin only to the cap', async () => {
    const redis = await ready(client());
    const budget = new QpsBudget({
      redis, keyPrefix: prefix(), account: 'acct', limits: 5, maxWaitMs: 1000, networkAllowanceMs: 40,
      dispatchDelay: { initialMs: 20, minMs: 5, maxMs: 100 },
    });
    await budget.acquireSlot('Initialize', { send: async () => performance.now() + 10_000 });
    await sleep(0);
    assert.equal(budget.marginMs(), 140);
  });

  test('a caller that wakes later than its promise gives the slot back and reports how late it was', async () => {
    const redis = await ready(client());
    const observed: DispatchObservation[] = [];
    const budget = new QpsBudget({
      redis, keyPrefix: prefix(), account: 'acct', limits: 10, maxWaitMs: 2000, networkAllowanceMs: 10,
      dispatchDelay: { initialMs: 20, minMs: 20 },
      onDispatch: (o) => observed.push(o),
    });
    let sent = 0;
    const pending = budget.acquireSlot('Initialize', { send: async () => (sent++, performance.now()) });
    await new Promise((resolve) => setImmediate(resolve)); // the reservation is on its way to Redis
    const blockedUntil = performance.now() + 150;
    while (performance.now() < blockedUntil) {
      // busy: the reply waits 150 ms
    }
    const grant = await pending;
    assert.equal(grant.attempts, 2);
    assert.equal(sent, 1, 'sent once, on the second slot');
    const late = observed.filter((o) => o.outcome === 'late');
    assert.equal(late.length, 1);
    assert.ok(late[0]!.delayMs >= 140, `late by ${late[0]!.delayMs} ms`);
    assert.ok(grant.marginMs >= 150, 'the second reservation promised what the first could not keep');
  });
});

// ---------------------------------------------------------------------------

describe('QpsBudget on a spare redis-server', () => {
  let port = 0;
  let server: ChildProcess | undefined;

  before(async () => {
    port = await freePort();
    server = await startRedis(port);
  });
  after(async () => {
    await stop(server);
  });

  test('a queued acquire costs one Redis command, an aborted one two', async () => {
    const redis = await ready(client(port));
    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: 1, maxWaitMs: 5000, windowMs: 200, ...patient });
    await budget.acquire('Initialize'); // takes the slot; also loads the script on this connection

    const monitorClient = new Redis({ host: '127.0.0.1', port });
    monitorClient.on('error', () => {});
    clients.push(monitorClient);
    const monitor = await monitorClient.monitor();
    clients.push(monitor);
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(String(args[0]).toLowerCase());
    });

    const t = performance.now();
    await budget.acquire('Initialize'); // must wait ≈ 290 ms for its slot
    assert.ok(performance.now() - t >= 200, 'the request should have been queued');
    await sleep(50);
    assert.deepEqual(seen.splice(0), ['evalsha']);

    const ac = new AbortController();
    const queued = budget.acquire('Initialize', { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('gone')), 50);
    await assert.rejects(queued, /gone/);
    await sleep(50);
    assert.deepEqual(seen.splice(0), ['evalsha', 'zrem']);
    monitor.disconnect();
  });

  test('fails closed within 500 ms when Redis hangs or dies, recovers when it returns', async () => {
    // The recommended client options (commandTimeout 1000 ms): QpsBudget's own
    // 300 ms deadline must cut the hang short.
    const redis = await ready(client(port));
    const budget = new QpsBudget({ redis, keyPrefix: prefix(), account: 'acct', limits: 1, maxWaitMs: 0, windowMs: 200, ...patient });
    await budget.acquire('Initialize');
    await sleep(260); // the slot above is out of the window again

    // Hanging server (connection up, no replies).
    server!.kill('SIGSTOP');
    try {
      let t = performance.now();
      await assert.rejects(budget.acquire('Initialize', { maxWaitMs: 1000 }), isUnavailable);
      assert.ok(performance.now() - t < 500, `hang detected after ${performance.now() - t} ms`);
      // Abort while the reply is outstanding rejects with the abort reason.
      const ac = new AbortController();
      t = performance.now();
      const p = budget.acquire('Initialize', { signal: ac.signal, maxWaitMs: 1000 });
      setTimeout(() => ac.abort(new Error('aborted in flight')), 50);
      await assert.rejects(p, /aborted in flight/);
      assert.ok(performance.now() - t < 150);
    } finally {
      server!.kill('SIGCONT');
    }
    // Both requests above get executed late by Redis; their slots must be given
    // back, otherwise this maxWait=0 acquire (limit 1) would be rejected.
    await sleep(50);
    await budget.acquire('Initialize');

    // Dead server.
    await stop(server);
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await assert.rejects(budget.acquire('Initialize', { maxWaitMs: 1000 }), isUnavailable);
      assert.ok(performance.now() - t < 500, `outage detected after ${performance.now() - t} ms`);
      await sleep(100);
    }

    // Same port again: the same QpsBudget recovers on its own.
    server = await startRedis(port);
    const t = performance.now();
    let recovered = false;
    while (!recovered && performance.now() - t < 5000) {
      try {
        await budget.acquire('Initialize', { maxWaitMs: 1000 });
        recovered = true;
      } catch (err) {
        assert.ok(isUnavailable(err), String(err));
        await sleep(100);
      }
    }
    assert.ok(recovered, 'acquire did not recover within 5 s');
  });
});
