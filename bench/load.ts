/**
 * `npm run bench`: what the service adds to a verification, what a callback flood costs it, and
 * whether it holds steady for a minute. Prints a table; asserts nothing.
 *
 * One service instance (built, `node dist/server.js`), the simulator as upstream with a fixed
 * 50 ms latency, real PostgreSQL (a schema of its own, dropped at the end) and Redis:
 *  1. POST /kyc/start, open loop at 90 % of the budget (the 40-ms margin makes N / 1.04 the
 *     sustainable rate, so driving at exactly N builds a queue and measures waiting, not work):
 *     the service's own time per request = its duration − the upstream call − the budget wait,
 *     from its request log joined by request id; and what the client saw.
 *  2. GET /kyc/callback flooded by autocannon: redelivered valid callbacks, forged tokens, and a
 *     bare Fastify route in its own process (bench/lib/bare-route.mjs) as the ceiling; forged and
 *     bare run as BENCH_FLOOD_PAIRS adjacent pairs, and the median pair's ratio is reported.
 *  3. A mixed soak: starts, status reads, completions with their callbacks and CheckResults,
 *     redeliveries, forged callbacks, health checks. 5xx count, RSS and event-loop delay p99 sampled
 *     every 5 s. It runs before the floods: a flood grows V8's heap, which says nothing about steady use.
 * Knobs: BENCH_QPS (10), BENCH_START_SECONDS (60), BENCH_FLOOD_SECONDS (10), BENCH_SOAK_SECONDS (60),
 * BENCH_CONNECTIONS (50), BENCH_FLOOD_PAIRS (3), BENCH_NODE_FLAGS and MALLOC_ARENA_MAX (the service's; default: the Docker image's).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { percentile, rssMb, serviceNodeFlags, startNode, startService, type Child } from './lib/processes.js';
import { BENCH_DATABASE_URL, benchDatabase, imageMemorySettings, paced } from './lib/runs.js';

const N = Number(process.env.BENCH_QPS ?? 10);
const START_SECONDS = Number(process.env.BENCH_START_SECONDS ?? 60);
const FLOOD_SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 10);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const FLOOD_PAIRS = Number(process.env.BENCH_FLOOD_PAIRS ?? 3);
const UPSTREAM_LATENCY_MS = 50;
const SIM_PORT = 18091;
const APP_PORT = 13100;
const BARE_PORT = 13101;
const APP = `http://127.0.0.1:${APP_PORT}`;
const SIM = `http://127.0.0.1:${SIM_PORT}`;
const JWT_KEY = randomBytes(24).toString('hex');
const SIM_KEY = { id: 'bench-key-id', secret: 'bench-key-secret' };
const META_INFO = JSON.stringify({ zimVer: '3.0.0', deviceType: 'h5', appName: 'bench' });
/** Only the log lines of requests this bench tagged are parsed (x-request-id: bench-…). */
const TAG = 'bench-';

interface Started {
  merchantBizId: string;
  transactionId: string;
  token: string;
}

const tokenFor = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('30m').sign(new TextEncoder().encode(JWT_KEY));

async function startSession(sub: string, requestId: string): Promise<{ status: number; ms: number; body: Record<string, unknown> }> {
  const token = await tokenFor(sub);
  const t0 = performance.now();
  try {
    const res = await fetch(`${APP}/kyc/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ metaInfo: META_INFO }),
    });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, ms: performance.now() - t0, body: { ...body, token } };
  } catch {
    return { status: 0, ms: performance.now() - t0, body: {} };
  }
}

/** 1. The service's own time on POST /kyc/start at 90 % of the budget. */
async function startLatency(app: Child) {
  const rate = 0.9 * N;
  const results = await paced(rate, START_SECONDS, (i) => startSession(`start-${i}`, `${TAG}start-${i}`));
  const byRequest = new Map<string, { durationMs?: number; upstreamMs: number; waitMs: number }>();
  for (const line of app.logs) {
    const id = String(line.reqId ?? '');
    if (!id.startsWith(`${TAG}start-`)) continue;
    const entry = byRequest.get(id) ?? { upstreamMs: 0, waitMs: 0 };
    if (line.msg === 'request completed') entry.durationMs = Number(line.durationMs);
    if (line.msg === 'upstream call' || line.msg === 'upstream call failed') {
      // Opening (or taking) the connection happens before the slot now: it is upstream time too.
      entry.upstreamMs += (Number(line.upstreamMs) || 0) + (Number(line.connectMs) || 0);
      entry.waitMs += Number(line.budgetWaitMs) || 0;
    }
    byRequest.set(id, entry);
  }
  const joined = [...byRequest.values()].filter((e) => e.durationMs !== undefined);
  const own = joined.map((e) => e.durationMs! - e.upstreamMs - e.waitMs);
  const sessions: Started[] = results
    .filter((r) => r.status === 201)
    .map((r) => ({ merchantBizId: String(r.body.merchantBizId), transactionId: String(r.body.transactionId), token: String(r.body.token) }));
  return {
    rate,
    sent: results.length,
    created: sessions.length,
    other: results.length - sessions.length,
    ownP50: percentile(own, 50),
    ownP99: percentile(own, 99),
    ownMax: percentile(own, 100),
    waitP99: percentile(joined.map((e) => e.waitMs), 99),
    upstreamP50: percentile(joined.map((e) => e.upstreamMs), 50),
    clientP50: percentile(results.map((r) => r.ms), 50),
    clientP99: percentile(results.map((r) => r.ms), 99),
    sessions,
  };
}

interface SimTransaction {
  transactionId: string;
  callbackUrl?: string;
  callbackToken?: string;
  outcome?: { passed: string; subCode: string };
}

/** Completes sessions in the simulator (which delivers their callbacks); returns their callback paths. */
async function complete(sessions: Started[]): Promise<string[]> {
  const paths: string[] = [];
  for (const s of sessions) {
    const res = await fetch(`${SIM}/__sim/transactions/${s.transactionId}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ passed: 'Y' }),
    });
    const { transaction } = (await res.json()) as { transaction: SimTransaction };
    paths.push(callbackPath(transaction, transaction.callbackToken!));
  }
  return paths;
}

function callbackPath(t: SimTransaction, token: string): string {
  const url = new URL(t.callbackUrl!);
  url.searchParams.set('transactionId', t.transactionId);
  url.searchParams.set('passed', t.outcome?.passed ?? 'Y');
  url.searchParams.set('subCode', t.outcome?.subCode ?? '200');
  url.searchParams.set('callbackToken', token);
  return `${url.pathname}${url.search}`;
}

const forge = (path: string, i: number) => {
  const url = new URL(path, APP);
  url.searchParams.set('callbackToken', randomBytes(32).toString('base64url'));
  // Every other one names a transaction that does not exist at all.
  if (i % 2 === 1) url.searchParams.set('transactionId', `sim${randomBytes(12).toString('hex')}`);
  return `${url.pathname}${url.search}`;
};

async function cannon(url: string, paths: string[], seconds: number, extra: Partial<autocannon.Options> = {}) {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: paths.map((path) => ({ method: 'GET', path })),
    ...extra,
  });
  return result;
}

async function waitForChecks(count: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const calls = (await (await fetch(`${SIM}/__sim/calls`)).json()) as Array<{ action: string; code?: string }>;
    if (calls.filter((c) => c.action === 'CheckResult' && c.code === 'Success').length >= count) return;
    await sleep(250);
  }
  throw new Error('CheckResults did not finish');
}

/** prom-client samples the event loop with a timer every 10 ms (its default precision). */
const LOOP_SAMPLING_MS = 10;

/**
 * The event loop's delay p99 since the last scrape: prom-client's histogram holds the time between
 * its timer's runs (an idle process reads ~10 ms), so the delay is that minus the sampling interval.
 */
async function eventLoopP99Ms(): Promise<number> {
  const text = await (await fetch(`${APP}/metrics`)).text();
  return Number(/^nodejs_eventloop_lag_p99_seconds (\S+)/m.exec(text)?.[1] ?? NaN) * 1000 - LOOP_SAMPLING_MS;
}

/**
 * What a start's hops cost at the least on this machine, with nothing of the service in the way,
 * paced like the start run (200 times): its three Redis round trips (IP limit; user limit with the
 * budget's look-ahead; the budget slot) and its two committed writes (node-postgres, into an
 * ordinary table, so each commit waits for the WAL flush as the service's do; a TEMP table's would
 * not), in the service's order, with an idle 50-ms gap where the upstream call would be. Reports
 * each kind of hop and the whole sequence (gap excluded). The table is dropped at the end.
 */
async function floors(databaseUrl: string) {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const table = `bench_floor_${randomBytes(4).toString('hex')}`;
  const commits: number[] = [];
  const pings: number[] = [];
  const sequences: number[] = [];
  const timed = async (into: number[], hop: () => Promise<unknown>) => {
    const t0 = performance.now();
    await hop();
    const ms = performance.now() - t0;
    into.push(ms);
    return ms;
  };
  try {
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, v text)`);
    for (let i = 0; i < 200; i++) {
      const id = `s${i}`;
      let total = 0;
      total += await timed(pings, () => redis.ping());
      total += await timed(pings, () => redis.ping());
      total += await timed(commits, () => db.query(`INSERT INTO ${table} (id) VALUES ($1)`, [id]));
      total += await timed(pings, () => redis.ping());
      await sleep(UPSTREAM_LATENCY_MS);
      total += await timed(commits, () => db.query(`UPDATE ${table} SET v = $2 WHERE id = $1`, [id, 'x']));
      sequences.push(total);
      await sleep(Math.max(0, 1000 / (0.9 * N) - UPSTREAM_LATENCY_MS));
    }
    return {
      commitP50: percentile(commits, 50),
      commitP99: percentile(commits, 99),
      pingP50: percentile(pings, 50),
      pingP99: percentile(pings, 99),
      sequenceP50: percentile(sequences, 50),
      sequenceP99: percentile(sequences, 99),
    };
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    redis.disconnect();
  }
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return num / den;
}

/** 3. Everything at once for SOAK_SECONDS. */
async function soak(app: Child, sessions: Started[], valid: string[], forged: string[]) {
  const pid = app.process.pid!;
  await eventLoopP99Ms(); // prom-client restarts its event-loop histogram on every scrape
  const samples: Array<{ t: number; rss: number; loopP99: number }> = [];
  const t0 = Date.now();
  samples.push({ t: 0, rss: rssMb(pid), loopP99: NaN });
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(5000);
      if (!sampling) break;
      samples.push({ t: (Date.now() - t0) / 1000, rss: rssMb(pid), loopP99: await eventLoopP99Ms() });
    }
  })();

  const toComplete = sessions.splice(0, Math.floor(SOAK_SECONDS * 2));
  const reads = sessions.slice(0, 200).map((s) => ({
    method: 'GET' as const,
    path: `/kyc/sessions/${s.merchantBizId}`,
    headers: { authorization: `Bearer ${s.token}` },
  }));
  const mixed = [
    ...reads,
    ...valid.map((path) => ({ method: 'GET' as const, path })),
    ...forged.map((path) => ({ method: 'GET' as const, path })),
    { method: 'GET' as const, path: '/healthz' },
  ].sort(() => Math.random() - 0.5);

  const [starts, completions, mixedResult] = await Promise.all([
    paced(N / 2, SOAK_SECONDS, (i) => startSession(`soak-${i}`, `${TAG}soak-${i}`)),
    paced(2, SOAK_SECONDS, async (i) => {
      const s = toComplete[i];
      if (!s) return undefined; // a short run has fewer sessions to complete than the soak has seconds × 2
      const res = await fetch(`${SIM}/__sim/transactions/${s.transactionId}/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ passed: i % 5 === 0 ? 'N' : 'Y' }),
      });
      const { delivery } = (await res.json()) as { delivery?: { status?: number } };
      return delivery?.status ?? 0;
    }),
    autocannon({ url: APP, connections: 20, duration: SOAK_SECONDS, overallRate: 400, requests: mixed }),
  ]);
  const delivered = completions.filter((status) => status !== undefined);
  sampling = false;
  await sampler;
  samples.push({ t: (Date.now() - t0) / 1000, rss: rssMb(pid), loopP99: await eventLoopP99Ms() });

  const later = samples.filter((s) => s.t >= SOAK_SECONDS / 2);
  return {
    requests: starts.length + delivered.length + mixedResult.requests.total,
    fivexx: starts.filter((s) => s.status >= 500 || s.status === 0).length + delivered.filter((s) => s >= 500 || s === 0).length + mixedResult['5xx'],
    errors: mixedResult.errors + mixedResult.timeouts,
    rssStart: samples[0]!.rss,
    rssEnd: samples[samples.length - 1]!.rss,
    rssMax: Math.max(...samples.map((s) => s.rss)),
    rssSlopeMbPerMin: slope(later.map((s) => [s.t / 60, s.rss])),
    loopP99Max: Math.max(...samples.filter((s) => Number.isFinite(s.loopP99)).map((s) => s.loopP99)),
    rssSeries: samples.map((s) => s.rss.toFixed(0)).join(' '),
  };
}

async function main() {
  const database = await benchDatabase(BENCH_DATABASE_URL);
  const children: Child[] = [];
  try {
    children.push(
      await startNode('dist/simulator/main.js', {
        SIMULATOR_PORT: String(SIM_PORT),
        SIMULATOR_HOST: '127.0.0.1',
        SIMULATOR_ACCESS_KEY_ID: SIM_KEY.id,
        SIMULATOR_ACCESS_KEY_SECRET: SIM_KEY.secret,
        SIMULATOR_QPS: String(N),
        SIMULATOR_LATENCY_MS: String(UPSTREAM_LATENCY_MS),
        LOG_LEVEL: 'warn',
      }, `${SIM}/__sim/health`),
    );
    const app = await startService(APP_PORT, {
      DATABASE_URL: database.url,
      ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY.id,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY.secret,
      CLOUDAUTH_ENDPOINT: SIM,
      CLOUDAUTH_ACCOUNT: `bench-load-${randomBytes(4).toString('hex')}`,
      CLOUDAUTH_QPS: String(N),
      JOBS_SCHEMA: database.jobsSchema,
      PUBLIC_BASE_URL: APP,
      AUTH_JWT_SECRET: JWT_KEY,
      // One client IP plays every user and Alibaba: the inbound limits still run (Redis), but high.
      RATE_LIMIT_PER_USER: '1000000',
      RATE_LIMIT_PER_IP: '1000000',
      RATE_LIMIT_CALLBACK_PER_IP: '100000000',
    }, { keepLine: (line) => line.includes(`"${TAG}`) });
    children.push(app);
    children.push(await startNode('bench/lib/bare-route.mjs', { BARE_PORT: String(BARE_PORT) }, `http://127.0.0.1:${BARE_PORT}/healthz`));
    const rssIdle = rssMb(app.process.pid!);

    // Warm-up (JIT, pools), then let the budget's window empty.
    await paced(N / 2, 2, (i) => startSession(`warmup-${i}`, `warmup-${i}`));
    await sleep(1500);

    const floor = await floors(BENCH_DATABASE_URL);
    console.error(`1/3 POST /kyc/start at ${0.9 * N} req/s for ${START_SECONDS} s…`);
    await eventLoopP99Ms(); // restarts the histogram
    const start = await startLatency(app);
    const startLoopP99 = await eventLoopP99Ms();

    const sessions = [...start.sessions];
    const valid = await complete(sessions.splice(0, 20));
    await waitForChecks(valid.length);
    const forged = valid.map(forge);

    // The soak before the floods: a flood grows V8's heap, which says nothing about steady use.
    console.error(`2/3 mixed soak for ${SOAK_SECONDS} s…`);
    const soakResult = await soak(app, sessions, valid, forged);

    console.error(`3/3 callback floods, ${CONNECTIONS} connections, ${FLOOD_SECONDS} s each…`);
    const health = await cannon(APP, ['/healthz'], FLOOD_SECONDS);
    const validFlood = await cannon(APP, valid, FLOOD_SECONDS);
    // Forged vs bare in adjacent pairs: the machine's speed drifts by ±20 % over minutes, so a
    // ratio is only taken between floods run one right after the other.
    const pairs: Array<{ bare: autocannon.Result; forged: autocannon.Result; ratio: number }> = [];
    for (let round = 0; round < FLOOD_PAIRS; round++) {
      const bare = await cannon(`http://127.0.0.1:${BARE_PORT}`, forged, FLOOD_SECONDS);
      const forgedFlood = await cannon(APP, forged, FLOOD_SECONDS);
      pairs.push({ bare, forged: forgedFlood, ratio: forgedFlood.requests.average / bare.requests.average });
    }
    const byRatio = [...pairs].sort((a, b) => a.ratio - b.ratio);
    const { bare, forged: forgedFlood } = byRatio[Math.floor(byRatio.length / 2)]!; // the median pair
    const rssAfterFloods = rssMb(app.process.pid!);

    const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
    const statusMix = (r: autocannon.Result) => `2xx ${r['2xx']}, 4xx ${r['4xx']}, 5xx ${r['5xx']}, errors ${r.errors + r.timeouts}`;
    console.log(`\nLoad and soak: N=${N}, one instance (node ${serviceNodeFlags()}, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? imageMemorySettings().MALLOC_ARENA_MAX}), upstream latency ${UPSTREAM_LATENCY_MS} ms, ${CONNECTIONS} connections for floods`);
    console.log('| scenario | measure | result | goal |');
    console.log('| --- | --- | --- | --- |');
    console.log(`| 1. POST /kyc/start, ${start.rate} req/s for ${START_SECONDS} s | service's own time (duration − upstream − budget wait) p50 / p99 / max | ${fmt(start.ownP50)} / ${fmt(start.ownP99)} / ${fmt(start.ownMax)} ms | p99 ≤ 5 ms |`);
    console.log(`| | upstream call p50; budget wait p99 | ${fmt(start.upstreamP50)} ms; ${fmt(start.waitP99)} ms | |`);
    console.log(`| | client latency p50 / p99 | ${fmt(start.clientP50)} / ${fmt(start.clientP99)} ms | |`);
    console.log(`| | the service's event-loop delay p99 over the run | ${fmt(startLoopP99)} ms | |`);
    console.log(`| | 201 / other | ${start.created} / ${start.other} | all 201 |`);
    console.log(`| | floors, without the service: a durable PostgreSQL commit p50 / p99; a Redis round trip p50 / p99 | ${fmt(floor.commitP50, 2)} / ${fmt(floor.commitP99, 2)} ms; ${fmt(floor.pingP50, 2)} / ${fmt(floor.pingP99, 2)} ms | |`);
    console.log(`| | the same hops in sequence without the service (3 Redis round trips, a committed INSERT, a committed UPDATE) p50 / p99 | ${fmt(floor.sequenceP50, 2)} / ${fmt(floor.sequenceP99, 2)} ms | |`);
    console.log(`| 2. GET /kyc/callback flood, ${FLOOD_SECONDS} s each | bare Fastify route (own process), in the median pair | ${fmt(bare.requests.average, 0)} req/s (${statusMix(bare)}) | |`);
    console.log(`| | the service's own bare route (GET /healthz: same plugins, logged) | ${fmt(health.requests.average, 0)} req/s (${statusMix(health)}) | |`);
    console.log(`| | valid tokens (redeliveries) | ${fmt(validFlood.requests.average, 0)} req/s, p99 ${validFlood.latency.p99} ms (${statusMix(validFlood)}) | |`);
    console.log(`| | forged tokens (half unknown transactions), in the median pair | ${fmt(forgedFlood.requests.average, 0)} req/s = ${fmt((100 * forgedFlood.requests.average) / bare.requests.average, 0)} % of bare Fastify, ${fmt((100 * forgedFlood.requests.average) / health.requests.average, 0)} % of /healthz, p99 ${forgedFlood.latency.p99} ms (${statusMix(forgedFlood)}) | ≥ 50 % of bare |`);
    console.log(`| | forged ÷ bare in each of the ${FLOOD_PAIRS} adjacent pairs | ${pairs.map((p) => `${fmt(100 * p.ratio, 0)} %`).join(', ')} | |`);
    console.log(`| 3. mixed soak, ${SOAK_SECONDS} s, ${soakResult.requests} requests | 5xx / connection errors | ${soakResult.fivexx} / ${soakResult.errors} | 0 |`);
    console.log(`| | RSS idle → soak start → end (max) | ${fmt(rssIdle, 0)} → ${fmt(soakResult.rssStart, 0)} → ${fmt(soakResult.rssEnd, 0)} MB (${fmt(soakResult.rssMax, 0)}) | ≤ 150 MB |`);
    console.log(`| | RSS trend over the second half | ${fmt(soakResult.rssSlopeMbPerMin)} MB/min (samples every 5 s: ${soakResult.rssSeries}) | no growth |`);
    console.log(`| | event-loop delay p99 beyond the 10-ms sampling (worst 5-s sample) | ${fmt(soakResult.loopP99Max)} ms | |`);
    console.log(`| after the floods | RSS | ${fmt(rssAfterFloods, 0)} MB | |`);
  } finally {
    for (const child of children.reverse()) await child.stop();
    await database.drop();
  }
}

await main();
