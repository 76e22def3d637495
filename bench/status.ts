/**
 * `npm run bench:status`: what the status route costs, read plainly and held open as a long poll.
 * Prints numbers; asserts nothing.
 *
 * One service instance (built, `node dist/server.js`, run as the Docker image runs it), real
 * PostgreSQL (a schema of its own, dropped at the end) and Redis; sessions are written straight
 * into the database (no Initialize: nothing here needs Alibaba, and job workers are off).
 *  1. Plain reads: autocannon on `GET /kyc/sessions/:merchantBizId`, each request a different
 *     user's own session with that user's JWT, next to a bare Fastify route answering the same JSON
 *     from memory (bench/lib/bare-route.mjs, its own process), in BENCH_READ_PAIRS adjacent pairs
 *     (the machine's speed drifts over minutes; the median pair is reported). Also each server's
 *     CPU time per request (from /proc), which does not depend on how fast the load generator is.
 * Knobs: BENCH_READ_SECONDS (10), BENCH_READ_PAIRS (3), BENCH_CONNECTIONS (50), BENCH_USERS (200),
 * BENCH_NODE_FLAGS and MALLOC_ARENA_MAX (the service's; default: the Docker image's).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import pg from 'pg';
import { userRef } from '../src/auth/user-ref.js';
import { cpuMs, serviceNodeFlags, startNode, startService, type Child } from './lib/processes.js';
import { benchDatabase } from './lib/runs.js';

const READ_SECONDS = Number(process.env.BENCH_READ_SECONDS ?? 10);
const READ_PAIRS = Number(process.env.BENCH_READ_PAIRS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const USERS = Number(process.env.BENCH_USERS ?? 200);
const APP_PORT = 13300;
const BARE_PORT = 13301;
const APP = `http://127.0.0.1:${APP_PORT}`;
const BARE = `http://127.0.0.1:${BARE_PORT}`;
const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const JWT_KEY = randomBytes(24).toString('hex');
const USER_ID_HASH_SECRET = `bench-status-${randomBytes(16).toString('hex')}`;

interface Seeded {
  id: string;
  merchantBizId: string;
  token: string;
}

const tokenFor = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('50m').sign(new TextEncoder().encode(JWT_KEY));

/** `count` pending sessions, one per user, written in one statement each for sessions and transactions. */
async function seed(databaseUrl: string, count: number, prefix: string): Promise<Seeded[]> {
  const sessions: Seeded[] = [];
  for (let i = 0; i < count; i++) {
    const sub = `${prefix}-${i}`;
    sessions.push({ id: randomUUID(), merchantBizId: `${prefix}${i}`, token: await tokenFor(sub) });
  }
  const schema = new URL(databaseUrl).searchParams.get('schema')!;
  const db = new pg.Client({ connectionString: BASE_DATABASE_URL });
  await db.connect();
  try {
    await db.query(`SET search_path = "${schema}"`);
    await db.query(
      `INSERT INTO kyc_session (id, merchant_biz_id, user_ref, doc_type, transaction_id, expires_at, updated_at)
       SELECT id, biz, ref, '01000000', 'hksb' || replace(id::text, '-', ''), now() + interval '50 minutes', now()
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(id, biz, ref)`,
      [sessions.map((s) => s.id), sessions.map((s) => s.merchantBizId), sessions.map((_, i) => userRef(USER_ID_HASH_SECRET, `${prefix}-${i}`))],
    );
    await db.query(
      `INSERT INTO kyc_transaction (session_id, seq, transaction_id, callback_token_hash, expires_at, updated_at)
       SELECT id, 1, transaction_id, repeat('0', 64), expires_at, now() FROM kyc_session WHERE id = ANY($1::uuid[])`,
      [sessions.map((s) => s.id)],
    );
  } finally {
    await db.end();
  }
  return sessions;
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

/** kyc_status_reads_total by source, from the service's /metrics. */
async function statusReadSources(): Promise<{ cache: number; shared: number; database: number }> {
  const text = await (await fetch(`${APP}/metrics`)).text();
  const count = (source: string) => Number(new RegExp(`^kyc_status_reads_total\\{source="${source}"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { cache: count('cache'), shared: count('shared'), database: count('database') };
}

async function main() {
  const database = await benchDatabase(BASE_DATABASE_URL);
  const children: Child[] = [];
  try {
    const readers = await seed(database.url, USERS, 'reader');
    const app = await startService(APP_PORT, {
      DATABASE_URL: database.url,
      ALIBABA_CLOUD_ACCESS_KEY_ID: 'bench-key-id',
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'bench-key-secret',
      CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9',
      CLOUDAUTH_ACCOUNT: `bench-status-${randomBytes(4).toString('hex')}`,
      JOBS_SCHEMA: database.jobsSchema,
      JOBS_WORKERS: 'false',
      PUBLIC_BASE_URL: APP,
      AUTH_JWT_SECRET: JWT_KEY,
      USER_ID_HASH_SECRET,
      // One client IP plays every user: the per-user limit still runs (Redis), but high.
      RATE_LIMIT_STATUS_PER_USER: '1000000000',
      ...(JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}') as Record<string, string>),
    }, { keepLine: (line) => line.includes('change feed') });
    children.push(app);
    const bare = await startNode('bench/lib/bare-route.mjs', { BARE_PORT: String(BARE_PORT) }, `${BARE}/healthz`);
    children.push(bare);

    console.error(`1/1 plain reads, ${CONNECTIONS} connections, ${READ_PAIRS} pairs of ${READ_SECONDS} s…`);
    const reads = await plainReads(app, bare, readers);
    const readSources = await statusReadSources();
    console.error(app.logs.map((l) => `${l.time} ${l.msg}`).join("\n"));

    const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
    const { median } = reads;
    console.log(`\nStatus reads: one instance (node ${serviceNodeFlags()}), ${CONNECTIONS} connections, ${USERS} users`);
    console.log('| scenario | measure | result | goal |');
    console.log('| --- | --- | --- | --- |');
    console.log(`| 1. plain reads, ${READ_SECONDS} s each | bare Fastify route (own process), in the median pair | ${fmt(median.bare.reqPerS, 0)} req/s, p99 ${median.bare.p99} ms, ${fmt(median.bare.cpuUsPerRequest)} µs CPU per request (${median.bare.statuses}) | |`);
    console.log(`| | GET /kyc/sessions/:merchantBizId, in the median pair | ${fmt(median.service.reqPerS, 0)} req/s = ${fmt(100 * median.ratio)} % of bare, p99 ${median.service.p99} ms, ${fmt(median.service.cpuUsPerRequest)} µs CPU per request (${median.service.statuses}) | ≥ 25 % of bare |`);
    console.log(`| | service ÷ bare in each of the ${READ_PAIRS} adjacent pairs | ${reads.pairs.map((p) => `${fmt(100 * p.ratio)} %`).join(', ')} | |`);
    console.log(`| | status lookups from the cache / sharing a query under way / the database (whole run) | ${readSources.cache} / ${readSources.shared} / ${readSources.database} | |`);
  } finally {
    for (const child of children.reverse()) await child.stop();
    await database.drop();
  }
}

await main();
