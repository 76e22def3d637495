/**
 * GET /kyc/sessions/:merchantBizId?wait=S&status=X: a long poll that answers when the status
 * differs from X, as soon as it changes (a change through any instance), or after S seconds; no
 * query while it waits; shutdown answers it at once; one request counts once against the limit.
 * And the status cache behind plain reads: a change through another instance shows at once.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../src/app.js';
import { userRef } from '../src/auth/user-ref.js';
import { signToken } from './helpers/jwt.js';
import { clientFor } from './helpers/client.js';
import { DATABASE_URL, freePort, LogCapture, META_INFO, randomId, REDIS_URL, startStack, waitFor, type Stack } from './helpers/stack.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { useStack } from './helpers/use-stack.js';

const STATUS_LIMIT = 5;
const ctx = useStack({ env: { RATE_LIMIT_STATUS_PER_USER: String(STATUS_LIMIT) } });

/** A second instance of the service on the same database, Redis and account, without job workers. */
async function secondInstance(): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({ ...ctx.stack.config, JOBS_WORKERS: false }, { logStream: new LogCapture() });
  const port = await freePort();
  await app.listen({ port, host: '127.0.0.1' });
  return { app, url: `http://127.0.0.1:${port}` };
}

/** The other instance (made once, on first use: the stack is up by then). */
let other: Promise<{ app: FastifyInstance; url: string }> | undefined;
const otherUrl = async () => (await (other ??= secondInstance())).url;
after(async () => {
  if (other) await (await other).app.close();
});

/** A started verification: its caller's token, its merchantBizId, and the callback Alibaba would send. */
async function started() {
  const token = await signToken(randomId('waiter-'));
  const res = await ctx.api.start(token, { metaInfo: META_INFO });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const merchantBizId = String(res.body.merchantBizId);
  const transactionId = String(res.body.transactionId);
  const sim = (await ctx.api.sim.transaction(transactionId)).body;
  /** The callback Alibaba sends, to the instance at `base`. */
  const callback = (base: string) => {
    const url = new URL(sim.callbackUrl!);
    const target = new URL(`${url.pathname}${url.search}`, base);
    target.searchParams.set('transactionId', transactionId);
    target.searchParams.set('passed', 'Y');
    target.searchParams.set('subCode', '200');
    target.searchParams.set('callbackToken', sim.params.CallbackToken!);
    return fetch(target);
  };
  return { token, merchantBizId, transactionId, callback };
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  /** When it arrived (performance.now()). */
  at: number;
  ms: number;
}

/** GET the status with `query`, timing the answer. */
async function statusRead(token: string, merchantBizId: string, query = '', base = ctx.stack.appUrl): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${base}/kyc/sessions/${merchantBizId}${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as Record<string, unknown>;
  const at = performance.now();
  return { status: res.status, body, headers: res.headers, at, ms: at - t0 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statements of the status read on `app`'s pool, by time, from now on (stop() restores the pool). */
function countStatusQueries(app: FastifyInstance) {
  const pool = app.pgPool;
  const original = pool.query;
  const at: number[] = [];
  pool.query = function (this: pg.Pool, ...args: unknown[]) {
    const config = args[0] as { name?: string } | string;
    if (typeof config === 'object' && config?.name === 'kyc-status-of') at.push(performance.now());
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pool.query;
  return {
    at,
    between: (from: number, to: number) => at.filter((t) => t >= from && t <= to).length,
    stop: () => {
      pool.query = original;
    },
  };
}

/** Changes a session behind the service's back: no change is published (a lost publish). */
async function writeUnannounced(sql: string, merchantBizId: string): Promise<void> {
  const schema = new URL(ctx.stack.config.DATABASE_URL).searchParams.get('schema')!;
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    await db.query(`SET search_path = "${schema}"`);
    const { rowCount } = await db.query(`${sql} WHERE merchant_biz_id = $1`, [merchantBizId]);
    assert.equal(rowCount, 1);
  } finally {
    await db.end();
  }
}

describe('long poll: GET /kyc/sessions/:merchantBizId?wait=S&status=X', () => {
  test('answers at once when the status differs from X', async () => {
    const s = await started();
    const answer = await statusRead(s.token, s.merchantBizId, '?wait=20&status=verifying');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'pending');
    assert.ok(answer.ms < 2000, `answered after ${answer.ms.toFixed(0)} ms`);
  });

  test('a change made through another instance wakes a waiter at once, with no query while it waits', async () => {
    const s = await started();
    const queries = countStatusQueries(ctx.stack.app);
    try {
      const waiting = statusRead(s.token, s.merchantBizId, '?wait=20&status=pending');
      await sleep(1500);
      const sentAt = performance.now();
      // Alibaba's callback reaches the other instance: it records the change and publishes it.
      const res = await s.callback(await otherUrl());
      assert.equal(res.status, 200, await res.text());
      const answer = await waiting;
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, 'verifying');
      assert.ok(answer.at - sentAt < 2000, `answered ${(answer.at - sentAt).toFixed(0)} ms after the callback`);
      // A read before waiting, then one after the wake-up: none in the 1.5 s of waiting.
      assert.equal(queries.between(sentAt - 1200, sentAt), 0, 'no status query while waiting');
      assert.equal(queries.between(sentAt, answer.at), 1, 'one read after the wake-up');
    } finally {
      queries.stop();
    }
  });

  test('times out after S with the status unchanged, read afresh then', async () => {
    const s = await started();
    const queries = countStatusQueries(ctx.stack.app);
    try {
      const answer = await statusRead(s.token, s.merchantBizId, '?wait=1.5&status=pending');
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, 'pending');
      assert.ok(answer.ms >= 1450 && answer.ms < 5000, `answered after ${answer.ms.toFixed(0)} ms`);
      assert.equal(queries.between(answer.at - answer.ms + 200, answer.at - 200), 0, 'no status query while waiting');
      assert.equal(queries.between(answer.at - 200, answer.at), 1, 'one read at the end');
    } finally {
      queries.stop();
    }
  });

  test('a change the feed never carried (a lost publish) is still answered, at the timeout, from a fresh read', async () => {
    const s = await started();
    const waiting = statusRead(s.token, s.merchantBizId, '?wait=2&status=pending');
    await sleep(500);
    await writeUnannounced(`UPDATE kyc_session SET status = 'verifying'`, s.merchantBizId);
    const answer = await waiting;
    assert.equal(answer.body.status, 'verifying');
    assert.ok(answer.ms >= 1900, `answered after ${answer.ms.toFixed(0)} ms: at the timeout`);
  });

  test('a pending session that reaches its expiry while waited on is answered expired then', async () => {
    const s = await started();
    await writeUnannounced(`UPDATE kyc_session SET expires_at = now() + interval '1500 milliseconds'`, s.merchantBizId);
    const answer = await statusRead(s.token, s.merchantBizId, '?wait=20&status=pending');
    assert.equal(answer.body.status, 'expired');
    assert.ok(answer.ms < 5000, `answered after ${answer.ms.toFixed(0)} ms`);
  });

  test('a wait outside 0-30 s, or a status that is none of the statuses, is refused with 400', async () => {
    const s = await started();
    for (const query of ['?wait=31&status=pending', '?wait=-1&status=pending', '?wait=abc&status=pending', '?wait=5&status=done', '?status=PENDING']) {
      const answer = await fetch(`${ctx.stack.appUrl}/kyc/sessions/${s.merchantBizId}${query}`, { headers: { authorization: `Bearer ${s.token}` } });
      const body = (await answer.json()) as { code?: string };
      assert.equal(answer.status, 400, query);
      assert.equal(body.code, 'VALIDATION_ERROR', query);
    }
    // 30 s is the most, without status it answers at once.
    const answer = await statusRead(s.token, s.merchantBizId, '?wait=30');
    assert.equal(answer.status, 200);
    assert.ok(answer.ms < 2000);
  });

  test('someone else waiting on the merchantBizId gets 404, at once', async () => {
    const s = await started();
    const answer = await statusRead(await signToken(randomId('mallory-')), s.merchantBizId, '?wait=10&status=pending');
    assert.equal(answer.status, 404);
    assert.ok(answer.ms < 2000);
  });

  test('a long poll counts once against the per-user limit, however long it waits', async () => {
    const s = await started();
    const first = await statusRead(s.token, s.merchantBizId, '?wait=2.5&status=pending');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-remaining'), String(STATUS_LIMIT - 1));
    const statuses: number[] = [];
    for (let i = 1; i <= STATUS_LIMIT; i++) statuses.push((await statusRead(s.token, s.merchantBizId)).status);
    assert.deepEqual(statuses, [...Array(STATUS_LIMIT - 1).fill(200), 429]);
  });
});

describe('security headers', () => {
  test("status answers carry helmet's headers, exactly as the other routes' answers", async () => {
    const s = await started();
    const helmetHeaders = (res: Response) =>
      Object.fromEntries([...res.headers].filter(([name]) => !/^(date|content-length|content-type|connection|keep-alive|x-request-id|x-ratelimit-.*|retry-after|www-authenticate|vary)$/.test(name)));
    const reference = helmetHeaders(await fetch(`${ctx.stack.appUrl}/healthz`));
    assert.ok(Object.keys(reference).length >= 8, JSON.stringify(reference));
    const read = (token: string | undefined, query = '') =>
      fetch(`${ctx.stack.appUrl}/kyc/sessions/${s.merchantBizId}${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (const [what, res] of [
      ['200', await read(s.token)],
      ['long poll 200', await read(s.token, '?wait=0.2&status=pending')],
      ['400', await read(s.token, '?wait=99')],
      ['401', await read(undefined)],
      ['404', await read(await signToken(randomId('nobody-')))],
    ] as const) {
      assert.deepEqual(helmetHeaders(res), reference, what);
    }
  });
});

describe('the per-user status limit across instances', () => {
  test(`reads alternating between two instances: no more than ${STATUS_LIMIT} pass in the minute, the rest get 429`, async () => {
    const s = await started();
    const bases = [ctx.stack.appUrl, await otherUrl()];
    const statuses: number[] = [];
    for (let i = 0; i < 3 * STATUS_LIMIT; i++) statuses.push((await statusRead(s.token, s.merchantBizId, '', bases[i % 2])).status);
    const passed = statuses.filter((status) => status === 200).length;
    assert.ok(passed <= STATUS_LIMIT && passed >= STATUS_LIMIT - 2, statuses.join(','));
    assert.deepEqual(new Set(statuses.slice(statuses.lastIndexOf(200) + 1)), new Set([429]), statuses.join(','));
  });
});

describe('status reads from the cache', () => {
  test('a change made through another instance shows in the next plain read', async () => {
    const s = await started();
    // Read twice: the second comes from the cache.
    assert.equal((await statusRead(s.token, s.merchantBizId)).body.status, 'pending');
    assert.equal((await statusRead(s.token, s.merchantBizId)).body.status, 'pending');
    const res = await s.callback(await otherUrl());
    assert.equal(res.status, 200);
    // The publish reaches this instance within milliseconds; a stale cache would answer pending for 5 s.
    await sleep(300);
    assert.equal((await statusRead(s.token, s.merchantBizId)).body.status, 'verifying');
  });

  test('a change the feed never carried shows once the cached status expires (5 s)', async () => {
    const s = await started();
    assert.equal((await statusRead(s.token, s.merchantBizId)).body.status, 'pending');
    await writeUnannounced(`UPDATE kyc_session SET status = 'verifying'`, s.merchantBizId);
    await sleep(5200);
    assert.equal((await statusRead(s.token, s.merchantBizId)).body.status, 'verifying');
  });
});

describe('shutdown', () => {
  test('closing an instance answers its waiting requests at once, with the current status', async () => {
    const s = await started();
    const closing = await secondInstance();
    const waiting = statusRead(s.token, s.merchantBizId, '?wait=30&status=pending', closing.url);
    await sleep(1000);
    const t0 = performance.now();
    await closing.app.close();
    const closedMs = performance.now() - t0;
    const answer = await waiting;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'pending');
    assert.ok(answer.at - t0 < 3000, `answered ${(answer.at - t0).toFixed(0)} ms after close began`);
    assert.ok(closedMs < 5000, `close took ${closedMs.toFixed(0)} ms`);
  });
});

describe('a caller that goes away', () => {
  test('ends its wait: the watch is dropped, nothing is logged as an error', async () => {
    const s = await started();
    const gauge = async () => {
      const text = await (await fetch(`${ctx.stack.appUrl}/metrics`)).text();
      return Number(/^kyc_status_waiters (\S+)/m.exec(text)?.[1]);
    };
    const abort = new AbortController();
    const waiting = fetch(`${ctx.stack.appUrl}/kyc/sessions/${s.merchantBizId}?wait=20&status=pending`, {
      headers: { authorization: `Bearer ${s.token}` },
      signal: abort.signal,
    }).catch((err: Error) => err);
    await sleep(700);
    assert.equal(await gauge(), 1);
    const logged = ctx.stack.logs.lines.length;
    abort.abort();
    assert.ok((await waiting) instanceof Error);
    await sleep(300);
    assert.equal(await gauge(), 0);
    const errors = ctx.stack.logs.lines.slice(logged).filter((line) => /"level":(50|60)/.test(line));
    assert.deepEqual(errors, []);
  });
});

describe('Redis unreachable, then back', () => {
  test('the feed goes not live (reads skip the cache), changes are counted as unpublished, and it comes back by itself', async () => {
    const redis = new URL(REDIS_URL);
    const proxy = new TcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    const port = await proxy.listen();
    let stack: Stack | undefined;
    let writer: FastifyInstance | undefined;
    try {
      stack = await startStack({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
      const metrics = async () => (await fetch(`${stack!.appUrl}/metrics`)).text();
      const sample = async (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(await metrics())?.[1]);
      await waitFor('the feed to be live', async () => ((await sample('kyc_session_changes_live')) === 1 ? true : undefined));
      const api = clientFor(stack);
      const token = await signToken(randomId('cut-'));
      const res = await api.start(token, { metaInfo: META_INFO });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const merchantBizId = String(res.body.merchantBizId);
      const read = async () => (await api.session(token, merchantBizId)).body.status;
      assert.equal(await read(), 'pending');
      assert.equal(await read(), 'pending'); // cached

      proxy.cut();
      await waitFor('the feed to be lost', async () => ((await sample('kyc_session_changes_live')) === 0 ? true : undefined), 8000);
      // Not live: a change the feed cannot carry shows in the next read (no cache).
      const schema = new URL(stack.config.DATABASE_URL).searchParams.get('schema')!;
      const db = new pg.Client({ connectionString: DATABASE_URL });
      await db.connect();
      await db.query(`UPDATE "${schema}".kyc_session SET status = 'verifying' WHERE merchant_biz_id = $1`, [merchantBizId]);
      await db.end();
      assert.equal(await read(), 'verifying');
      // A change made here meanwhile cannot be published: counted.
      const sim = (await api.sim.complete(String(res.body.transactionId), 'Y')).body;
      assert.equal(sim.delivery.status, 200);
      assert.ok((await sample('kyc_session_change_publish_failures_total')) >= 1);

      proxy.restore();
      await waitFor('the feed to be live again', async () => ((await sample('kyc_session_changes_live')) === 1 ? true : undefined), 10_000);
      // Subscribed again: a change published by another instance (straight to Redis) wakes a waiter here.
      writer = await buildApp({ ...stack.config, REDIS_URL, JOBS_WORKERS: false }, { logStream: new LogCapture() });
      const sub = randomId('back-');
      const token2 = await signToken(sub);
      const second = await api.start(token2, { metaInfo: META_INFO });
      assert.equal(second.status, 201);
      const { id } = (await writer.sessions.statusOf(userRef(stack.config.USER_ID_HASH_SECRET, sub), String(second.body.merchantBizId)))!;
      const waiting = statusRead(token2, String(second.body.merchantBizId), '?wait=20&status=pending', stack.appUrl);
      await sleep(800);
      const sentAt = performance.now();
      assert.equal(await writer.sessions.markUnresolved(id, 'TEST_UNRESOLVED'), true);
      const answer = await waiting;
      assert.equal(answer.body.status, 'error');
      assert.ok(answer.at - sentAt < 3000, `answered ${(answer.at - sentAt).toFixed(0)} ms after the change`);
    } finally {
      await writer?.close();
      await stack?.close();
      await proxy.close();
    }
  });
});
