/**
 * `npm run bench:status`: what the status route costs, held open as a long poll and read plainly.
 * Prints numbers; asserts nothing.
 *
 * The service runs built (`node dist/server.js`) as the Docker image runs it, on real PostgreSQL
 * (a schema of its own, dropped at the end) and Redis; sessions are written straight into the
 * database (no Initialize: nothing here needs Alibaba; job workers are off).
 * Each part runs on fresh instances.
 *  1. Long polls: BENCH_WAITERS (5,000) clients, each with a session of its own, wait on one
 *     instance (`?wait=30&status=pending`; opened at BENCH_WAITER_RATE per second, so their first
 *     reads do not queue past the pool's timeout). With all of them waiting: the instance's RSS and
 *     its CPU over BENCH_IDLE_SECONDS. Then BENCH_WRITES decisive writes, paced over
 *     BENCH_WRITE_SECONDS: Alibaba's callback for one waiter's session, sent to a second instance
 *     (which records it and publishes the change), and the time from sending it to that waiter's
 *     answer (`verifying`). The clients live in this process (one socket each): the bench raises
 *     its open-files limit first (`ulimit -n`), or says how.
 *  2. Plain reads: autocannon on `GET /kyc/sessions/:merchantBizId`, each request a different
 *     user's own session with that user's JWT, next to a bare Fastify route answering the same JSON
 *     from memory (bench/lib/bare-route.mjs, its own process), in BENCH_READ_PAIRS adjacent pairs
 *     (the machine's speed drifts over minutes; the median pair is reported). Also each server's
 *     CPU time per request (from /proc), which does not depend on how fast the load generator is.
 * Knobs: BENCH_WAITERS (5000), BENCH_WAITER_RATE (1000), BENCH_IDLE_SECONDS (8), BENCH_WRITES (400),
 * BENCH_WRITE_SECONDS (8), BENCH_READ_SECONDS (10), BENCH_READ_PAIRS (3), BENCH_CONNECTIONS (50),
 * BENCH_USERS (200), BENCH_PARTS (waiters,reads), BENCH_NODE_FLAGS and MALLOC_ARENA_MAX (the
 * service's; default: the Docker image's), BENCH_SERVICE_ENV (JSON: more service variables).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import pg from 'pg';
import { userRef } from '../src/auth/user-ref.js';
import { CallbackTokens } from '../src/sessions/callback-token.js';
import { cpuMs, percentile, rssMb, serviceNodeFlags, startNode, startService, type Child } from './lib/processes.js';
import { BENCH_DATABASE_URL, benchDatabase, paced } from './lib/runs.js';

const WAITERS = Number(process.env.BENCH_WAITERS ?? 5000);
const WAITER_RATE = Number(process.env.BENCH_WAITER_RATE ?? 1000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 8);
const WRITES = Number(process.env.BENCH_WRITES ?? 400);
const WRITE_SECONDS = Number(process.env.BENCH_WRITE_SECONDS ?? 8);
const WAIT_S = 30;
const PARTS = new Set((process.env.BENCH_PARTS ?? 'waiters,reads').split(','));
const READ_SECONDS = Number(process.env.BENCH_READ_SECONDS ?? 10);
const READ_PAIRS = Number(process.env.BENCH_READ_PAIRS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const USERS = Number(process.env.BENCH_USERS ?? 200);
const APP_PORT = 13300;
const BARE_PORT = 13301;
const WRITER_PORT = 13302;
const APP = `http://127.0.0.1:${APP_PORT}`;
const WRITER = `http://127.0.0.1:${WRITER_PORT}`;
const BARE = `http://127.0.0.1:${BARE_PORT}`;
const JWT_KEY = randomBytes(24).toString('hex');
const USER_ID_HASH_SECRET = `bench-status-${randomBytes(16).toString('hex')}`;

interface Seeded {
  id: string;
  merchantBizId: string;
  token: string;
  transactionId: string;
  /** The CallbackToken Alibaba would present for its transaction. */
  callbackToken: string;
}

const tokenFor = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('50m').sign(new TextEncoder().encode(JWT_KEY));

/** `count` pending sessions, one per user, with their transactions (one statement each). */
async function seed(databaseUrl: string, count: number, prefix: string): Promise<Seeded[]> {
  const tokens = new CallbackTokens(USER_ID_HASH_SECRET);
  const sessions: Array<Seeded & { ref: string; callbackTokenHash: string }> = [];
  for (let i = 0; i < count; i++) {
    const sub = `${prefix}-${i}`;
    const callback = tokens.issue();
    sessions.push({
      id: randomUUID(),
      merchantBizId: `${prefix}${i}`,
      token: await tokenFor(sub),
      transactionId: `hksb${randomBytes(16).toString('hex')}`,
      callbackToken: callback.token,
      callbackTokenHash: callback.hash,
      ref: userRef(USER_ID_HASH_SECRET, sub),
    });
  }
  const schema = new URL(databaseUrl).searchParams.get('schema')!;
  const db = new pg.Client({ connectionString: BENCH_DATABASE_URL });
  await db.connect();
  const column = <K extends keyof (typeof sessions)[number]>(key: K) => sessions.map((s) => s[key]);
  try {
    await db.query(`SET search_path = "${schema}"`);
    await db.query(
      `INSERT INTO kyc_session (id, merchant_biz_id, user_ref, doc_type, transaction_id, expires_at, updated_at)
       SELECT id, biz, ref, '01000000', tx, now() + interval '50 minutes', now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS s(id, biz, ref, tx)`,
      [column('id'), column('merchantBizId'), column('ref'), column('transactionId')],
    );
    await db.query(
      `INSERT INTO kyc_transaction (session_id, seq, transaction_id, callback_token_hash, expires_at, updated_at)
       SELECT id, 1, tx, hash, now() + interval '50 minutes', now()
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, tx, hash)`,
      [column('id'), column('transactionId'), column('callbackTokenHash')],
    );
  } finally {
    await db.end();
  }
  return sessions.map(({ id, merchantBizId, token, transactionId, callbackToken }) => ({ id, merchantBizId, token, transactionId, callbackToken }));
}

interface Flood {
  reqPerS: number;
  p99: number;
  cpuUsPerRequest: number;
  statuses: string;
}

/** One flood of `seconds` on `url`, with the server process's CPU time per request. */
async function flood(server: Child, url: string, requests: autocannon.Request[], seconds: number): Promise<Flood> {
  const before = cpuMs(server.process.pid!);
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, requests });
  const cpu = cpuMs(server.process.pid!) - before;
  return {
    reqPerS: result.requests.average,
    p99: result.latency.p99,
    cpuUsPerRequest: (cpu * 1000) / Math.max(1, result.requests.total),
    statuses: `2xx ${result['2xx']}, other ${result.non2xx}, errors ${result.errors + result.timeouts}`,
  };
}

/** 1. Plain reads next to the bare route, in adjacent pairs. */
async function plainReads(app: Child, bare: Child, sessions: Seeded[]) {
  const requests = sessions.map((s) => ({
    method: 'GET' as const,
    path: `/kyc/sessions/${s.merchantBizId}`,
    headers: { authorization: `Bearer ${s.token}` },
  }));
  // Warm-up (JIT, pools, caches) on both.
  await flood(bare, BARE, requests, 2);
  await flood(app, APP, requests, 2);
  const pairs: Array<{ bare: Flood; service: Flood; ratio: number }> = [];
  for (let round = 0; round < READ_PAIRS; round++) {
    const b = await flood(bare, BARE, requests, READ_SECONDS);
    const s = await flood(app, APP, requests, READ_SECONDS);
    pairs.push({ bare: b, service: s, ratio: s.reqPerS / b.reqPerS });
    console.error(`  pair ${round + 1}: bare ${b.reqPerS.toFixed(0)} req/s, service ${s.reqPerS.toFixed(0)} req/s (${((100 * s.reqPerS) / b.reqPerS).toFixed(1)} %)`);
  }
  const median = [...pairs].sort((a, b) => a.ratio - b.ratio)[Math.floor(pairs.length / 2)]!;
  return { pairs, median };
}

/**
 * Makes sure this process may open `needed` files (a socket per waiter): when its soft limit is
 * lower and the hard one allows, runs the bench again under `ulimit -n` (the services it starts
 * inherit the limit); otherwise says how to raise it.
 */
function ensureOpenFiles(needed: number): void {
  const limits = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const value = (v: string | undefined) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v ?? 1024));
  const soft = value(limits?.[1]);
  const hard = value(limits?.[2]);
  if (soft >= needed) return;
  if (process.env.BENCH_OPEN_FILES_RAISED || hard < needed) {
    console.error(`bench:status needs ${needed} open files (a socket per waiter) and may open ${soft} (hard limit ${hard}): raise the limit (ulimit -n ${needed}; in a container, its nofile limit) or lower BENCH_WAITERS.`);
    process.exit(1);
  }
  console.error(`open files: ${soft} → ${Math.min(hard, 65536)} (ulimit -n), running again`);
  const rerun = spawnSync('sh', ['-c', `ulimit -n ${Math.min(hard, 65536)} && exec "$@"`, 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_OPEN_FILES_RAISED: '1' },
  });
  process.exit(rerun.status ?? 1);
}

/** One frontend on the verification page: long polls until its session is no longer pending. */
interface Frontend {
  session: Seeded;
  /** performance.now() when the answer that its session changed arrived. */
  changedAt?: number;
  status?: string;
  polls: number;
  errors: number;
}

/** Keep-alive sockets, as many as there are frontends (one request each at a time). */
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

function longPoll(s: Seeded, known: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const path = `/kyc/sessions/${s.merchantBizId}?wait=${WAIT_S}&status=${known}`;
    http
      .get({ host: '127.0.0.1', port: APP_PORT, path, headers: { authorization: `Bearer ${s.token}` }, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function frontend(f: Frontend, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    f.polls++;
    try {
      const res = await longPoll(f.session, 'pending');
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const { status } = JSON.parse(res.body) as { status: string };
      if (status !== 'pending') {
        f.changedAt = performance.now();
        f.status = status;
        return;
      }
    } catch {
      if (stop.aborted) return;
      f.errors++;
      await sleep(200);
    }
  }
}

/** A number from the service's /metrics (the first sample of `name`). */
async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  console.error(`  (gave up waiting for ${what})`);
  return false;
}

/** 1. Long polls: WAITERS frontends waiting on one instance, then decisive writes through another. */
async function longPolls(app: Child, sessions: Seeded[]) {
  const pid = app.process.pid!;
  const rssBefore = rssMb(pid);
  const heapBefore = (await metric(APP, 'nodejs_heap_size_used_bytes')) / 2 ** 20;
  const frontends: Frontend[] = sessions.map((session) => ({ session, polls: 0, errors: 0 }));
  const stop = new AbortController();
  const running: Array<Promise<void>> = [];
  const openedAt = performance.now();
  await paced(WAITER_RATE, WAITERS / WAITER_RATE, async (i) => {
    running.push(frontend(frontends[i]!, stop.signal));
  });
  await until(`${WAITERS} waiters`, async () => (await metric(APP, 'kyc_status_waiters')) >= WAITERS, 20_000);
  const waiting = await metric(APP, 'kyc_status_waiters');
  const openedS = (performance.now() - openedAt) / 1000;
  await sleep(1000);
  const rssWaiting = rssMb(pid);
  const heapWaiting = (await metric(APP, 'nodejs_heap_size_used_bytes')) / 2 ** 20;

  const cpuBefore = cpuMs(pid);
  const idleStartedAt = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const cpuIdlePct = (100 * (cpuMs(pid) - cpuBefore)) / (performance.now() - idleStartedAt);

  // The decisive writes: Alibaba's callback for a waiter's session, to the other instance.
  const targets = frontends.slice(0, WRITES);
  const sentAt: number[] = [];
  const writeCpuBefore = cpuMs(pid);
  const writesStartedAt = performance.now();
  const callbacks = await paced(WRITES / WRITE_SECONDS, WRITE_SECONDS, async (i) => {
    const { session } = targets[i]!;
    const query = new URLSearchParams({ transactionId: session.transactionId, passed: 'Y', subCode: '200', callbackToken: session.callbackToken });
    sentAt[i] = performance.now();
    try {
      return (await fetch(`${WRITER}/kyc/callback?${query}`)).status;
    } catch {
      return 0;
    }
  });
  await until('the answers', () => targets.every((f) => f.changedAt !== undefined), 5000);
  const writeCpuPct = (100 * (cpuMs(pid) - writeCpuBefore)) / (performance.now() - writesStartedAt);
  const latencies = targets.flatMap((f, i) => (f.changedAt === undefined ? [] : [f.changedAt - sentAt[i]!]));
  const rssAfter = rssMb(pid);
  const answered = targets.filter((f) => f.status === 'verifying').length;
  const others = frontends.slice(WRITES);
  const result = {
    waiting,
    openedS,
    rssBefore,
    rssWaiting,
    heapBefore,
    heapWaiting,
    rssAfter,
    cpuIdlePct,
    writeCpuPct,
    callbacksOk: callbacks.filter((status) => status === 200).length,
    answered,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    errors: frontends.reduce((n, f) => n + f.errors, 0),
    // More than one poll for a frontend whose session did not change: a timeout (or an error) came first.
    repolled: others.filter((f) => f.polls > 1).length,
    stillWaiting: others.filter((f) => f.changedAt === undefined).length,
  };
  stop.abort();
  agent.destroy();
  await Promise.allSettled(running);
  return result;
}

/** kyc_status_reads_total by source, from the service's /metrics. */
async function statusReadSources(): Promise<{ cache: number; shared: number; database: number }> {
  const text = await (await fetch(`${APP}/metrics`)).text();
  const count = (source: string) => Number(new RegExp(`^kyc_status_reads_total\\{source="${source}"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { cache: count('cache'), shared: count('shared'), database: count('database') };
}

async function main() {
  if (PARTS.has('waiters')) ensureOpenFiles(WAITERS + 1024);
  const database = await benchDatabase(BENCH_DATABASE_URL);
  const children: Child[] = [];
  const account = `bench-status-${randomBytes(4).toString('hex')}`;
  const serviceEnv = (port: number) => ({
    DATABASE_URL: database.url,
    ALIBABA_CLOUD_ACCESS_KEY_ID: 'bench-key-id',
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'bench-key-secret',
    CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9',
    CLOUDAUTH_ACCOUNT: account,
    JOBS_SCHEMA: database.jobsSchema,
    JOBS_WORKERS: 'false',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    AUTH_JWT_SECRET: JWT_KEY,
    USER_ID_HASH_SECRET,
    // One client IP plays every user and Alibaba: the limits still run (Redis), but high.
    RATE_LIMIT_STATUS_PER_USER: '1000000000',
    RATE_LIMIT_CALLBACK_PER_IP: '1000000000',
    ...(JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}') as Record<string, string>),
  });
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const rows: string[] = [];
  try {
    const readers = PARTS.has('reads') ? await seed(database.url, USERS, 'reader') : [];
    const waiters = PARTS.has('waiters') ? await seed(database.url, WAITERS, 'waiter') : [];
    /** A fresh instance for each part: what one part leaves in memory does not weigh on the next. */
    const stop = async (child: Child) => {
      await child.stop();
      children.splice(children.indexOf(child), 1);
    };

    if (PARTS.has('waiters')) {
      const app = await startService(APP_PORT, serviceEnv(APP_PORT), { keepLine: () => false });
      children.push(app);
      const writer = await startService(WRITER_PORT, serviceEnv(WRITER_PORT), { keepLine: () => false });
      children.push(writer);
      console.error(`1/2 ${WAITERS} long polls on one instance, ${WRITES} decisive writes through another…`);
      const w = await longPolls(app, waiters);
      rows.push(
        `| 1. ${WAITERS} long polls on one instance (\`?wait=${WAIT_S}&status=pending\`), opened at ${WAITER_RATE}/s | waiting at once (kyc_status_waiters) | ${w.waiting}, all open after ${fmt(w.openedS)} s | ${WAITERS} |`,
        `| | RSS: before → with them waiting → after the writes | ${fmt(w.rssBefore, 0)} → ${fmt(w.rssWaiting, 0)} → ${fmt(w.rssAfter, 0)} MB | |`,
        `| | V8 heap in use: before → with them waiting (per waiter) | ${fmt(w.heapBefore, 0)} → ${fmt(w.heapWaiting, 0)} MB (${fmt((1024 * (w.heapWaiting - w.heapBefore)) / WAITERS)} KB) | |`,
        `| | CPU of the instance while they wait (${IDLE_SECONDS} s) | ${fmt(w.cpuIdlePct)} % of a core | |`,
        `| | ${WRITES} decisive writes over ${WRITE_SECONDS} s: Alibaba's callback to a second instance → the waiter's answer, p50 / p99 / max | ${fmt(w.p50)} / ${fmt(w.p99)} / ${fmt(w.max)} ms | p99 ≤ 200 ms |`,
        `| | callbacks 200 / waiters answered \`verifying\`; the instance's CPU meanwhile | ${w.callbacksOk} / ${w.answered}; ${fmt(w.writeCpuPct)} % of a core | all |`,
        `| | the other waiters: answered early (re-polled) / client errors / still waiting at the end | ${w.repolled} / ${w.errors} / ${w.stillWaiting} of ${WAITERS - WRITES} | 0 / 0 / all |`,
      );
      await stop(writer);
      await stop(app);
    }

    if (PARTS.has('reads')) {
      const app = await startService(APP_PORT, serviceEnv(APP_PORT), { keepLine: () => false });
      children.push(app);
      const bare = await startNode('bench/lib/bare-route.mjs', { BARE_PORT: String(BARE_PORT) }, `${BARE}/healthz`);
      children.push(bare);
      console.error(`2/2 plain reads, ${CONNECTIONS} connections, ${READ_PAIRS} pairs of ${READ_SECONDS} s…`);
      const before = await statusReadSources();
      const { pairs, median } = await plainReads(app, bare, readers);
      const after = await statusReadSources();
      rows.push(
        `| 2. plain reads, ${READ_SECONDS} s each, ${USERS} users | bare Fastify route (own process), in the median pair | ${fmt(median.bare.reqPerS, 0)} req/s, p99 ${median.bare.p99} ms, ${fmt(median.bare.cpuUsPerRequest)} µs CPU per request (${median.bare.statuses}) | |`,
        `| | GET /kyc/sessions/:merchantBizId, in the median pair | ${fmt(median.service.reqPerS, 0)} req/s = ${fmt(100 * median.ratio)} % of bare, p99 ${median.service.p99} ms, ${fmt(median.service.cpuUsPerRequest)} µs CPU per request (${median.service.statuses}) | ≥ 25 % of bare |`,
        `| | service ÷ bare in each of the ${READ_PAIRS} adjacent pairs | ${pairs.map((p) => `${fmt(100 * p.ratio)} %`).join(', ')} | |`,
        `| | status lookups during them (warm-ups included): from the cache / sharing a query under way / the database | ${after.cache - before.cache} / ${after.shared - before.shared} / ${after.database - before.database} | |`,
      );
    }

    console.log(`\nStatus route: one instance (node ${serviceNodeFlags()}), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (1/5/15 min) at the end`);
    console.log('| scenario | measure | result | goal |');
    console.log('| --- | --- | --- | --- |');
    for (const row of rows) console.log(row);
  } finally {
    for (const child of children.reverse()) await child.stop();
    await database.drop();
  }
}

await main();
