/**
 * `npm run bench:budget`: does the fleet keep Alibaba's QPS limit, and use it?
 *
 * Starts the simulator (enforcing N QPS like Alibaba, recording every arrival) and 4 service
 * instances sharing one Redis, drives 10× the budget at POST /kyc/start from many users, then
 * prints, per limiter: the peak number of Initialize arrivals in any sliding 1-s window ÷ N
 * (goal ≤ 1.00), utilisation = successful calls ÷ (N × (S + 1)), the most any limiter keeping N per
 * sliding second fits between the first and last arrival S seconds apart (goal ≥ 0.95), Throttling.Api
 * answers (goal 0), the queue wait of granted calls (p50/p99) and 429s. Then the same with the
 * naive fixed-window limiter in its place. Each run starts after a 2-s warm-up within the budget.
 * "peak sends" is the same peak counted where the instances put calls on the wire (from their
 * logs), which separates the limiter from transport and simulator scheduling. Prints numbers;
 * asserts nothing. Knobs: BENCH_QPS, BENCH_SECONDS, BENCH_INSTANCES, BENCH_MARGIN_MS.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { peakInWindow } from '../src/simulator/peak-window.js';
import { percentile, startNode, type Child } from './lib/processes.js';
import { benchDatabase, paced } from './lib/runs.js';

const N = Number(process.env.BENCH_QPS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 12);
const OVERLOAD = 10;
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 4);
const WARMUP_SECONDS = 2;
const SIM_PORT = 18090;
const BASE_PORT = 13000;
const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JWT_SECRET = randomBytes(24).toString('hex');
const SIM_KEY = { id: 'bench-key-id', secret: 'bench-key-secret' };

interface Row {
  algorithm: string;
  offered: number;
  created: number;
  rejected429: number;
  other: number;
  peakRatio: number;
  sentPeakRatio: number;
  utilisation: number;
  throttled: number;
  waitP50: number;
  waitP99: number;
}

async function run(algorithm: 'sliding-log' | 'fixed-window', simUrl: string, database: { url: string; jobsSchema: string }): Promise<Row> {
  const account = `bench-${algorithm}-${randomBytes(4).toString('hex')}`;
  const instances: Child[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const port = BASE_PORT + i;
    instances.push(
      await startNode('dist/server.js', {
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: database.url,
        REDIS_URL,
        ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY.id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY.secret,
        CLOUDAUTH_ENDPOINT: simUrl,
        CLOUDAUTH_ACCOUNT: account,
        JOBS_SCHEMA: database.jobsSchema,
        CLOUDAUTH_QPS: String(N),
        CLOUDAUTH_BUDGET_ALGORITHM: algorithm,
        CLOUDAUTH_BUDGET_MARGIN_MS: process.env.BENCH_MARGIN_MS ?? '40',
        PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        AUTH_JWT_SECRET: JWT_SECRET,
        USER_ID_HASH_SECRET: 'bench-user-id-hash-secret-0123456789',
        RATE_LIMIT_PER_USER: '100000',
        RATE_LIMIT_PER_IP: '100000',
      }, `http://127.0.0.1:${port}/healthz`),
    );
  }
  const key = new TextEncoder().encode(JWT_SECRET);
  const metaInfo = JSON.stringify({ zimVer: '3.0.0', deviceType: 'h5', appName: 'bench' });
  const statuses: number[] = [];
  /** Tokens signed first, so signing does not disturb the pacing. */
  const drive = async (users: string, count: number, rate: number, sink: number[]) => {
    const tokens = await Promise.all(
      Array.from({ length: count }, (_, i) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`${users}-${i}`).setExpirationTime('10m').sign(key)),
    );
    await paced(rate, count / rate, (i) =>
      fetch(`http://127.0.0.1:${BASE_PORT + (i % INSTANCES)}/kyc/start`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ metaInfo }),
      }).then(
        async (res) => {
          await res.arrayBuffer();
          sink.push(res.status);
        },
        () => {
          sink.push(0);
        },
      ),
    );
  };

  // Warm-up within the budget (JIT, connection pools, keep-alive sockets), then let every window
  // empty: a process's first calls stall on compilation, which is start-up, not the limiter.
  await drive('bench-warmup', WARMUP_SECONDS * N, N, []);
  await sleep(1500);
  await fetch(`${simUrl}/__sim/calls`, { method: 'DELETE' });
  const measureFrom = Date.now();
  await drive('bench-user', N * OVERLOAD * SECONDS, N * OVERLOAD, statuses);
  const calls = (await (await fetch(`${simUrl}/__sim/calls`)).json()) as Array<{ action: string; arrivedAt: number; code?: string }>;
  const upstreamLogs = instances.flatMap((c) =>
    c.logs.filter((l) => (l.msg === 'upstream call' || l.msg === 'upstream call failed') && l.api === 'Initialize' && Number(l.time) >= measureFrom),
  );
  // When each instance put the call on the wire (its clock = the simulator's: same host).
  const sends = upstreamLogs.map((l) => Number(l.time) - Number(l.upstreamMs)).filter((t) => t >= measureFrom);
  const waits = upstreamLogs.filter((l) => l.msg === 'upstream call').map((l) => Number(l.budgetWaitMs));
  for (const c of instances) await c.stop();

  const initialize = calls.filter((c) => c.action === 'Initialize');
  const ok = initialize.filter((c) => c.code === 'Success');
  const first = Math.min(...initialize.map((c) => c.arrivedAt));
  const last = Math.max(...initialize.map((c) => c.arrivedAt));
  const spanSeconds = (last - first) / 1000;
  return {
    algorithm,
    offered: N * OVERLOAD * SECONDS,
    created: statuses.filter((s) => s === 201).length,
    rejected429: statuses.filter((s) => s === 429).length,
    other: statuses.filter((s) => s !== 201 && s !== 429).length,
    peakRatio: peakInWindow(initialize.map((c) => c.arrivedAt), 1000) / N,
    sentPeakRatio: peakInWindow(sends, 1000) / N,
    // N per sliding second fits at most N × (S + 1) calls into a closed span of S seconds.
    utilisation: ok.length / (N * (spanSeconds + 1)),
    throttled: initialize.filter((c) => c.code?.startsWith('Throttling')).length,
    waitP50: percentile(waits, 50),
    waitP99: percentile(waits, 99),
  };
}

async function main() {
  const database = await benchDatabase(BASE_DATABASE_URL);
  const simUrl = `http://127.0.0.1:${SIM_PORT}`;
  const sim = await startNode('dist/simulator/main.js', {
    SIMULATOR_PORT: String(SIM_PORT),
    SIMULATOR_HOST: '127.0.0.1',
    SIMULATOR_ACCESS_KEY_ID: SIM_KEY.id,
    SIMULATOR_ACCESS_KEY_SECRET: SIM_KEY.secret,
    SIMULATOR_QPS: String(N),
    SIMULATOR_LATENCY_MS: '50',
    // No CallbackUrl check: the service answers a bare GET /kyc/callback with 400 (for now).
    SIMULATOR_PROBE_CALLBACK: 'false',
    LOG_LEVEL: 'warn',
  }, `${simUrl}/__sim/health`);
  const rows: Row[] = [];
  try {
    for (const algorithm of ['sliding-log', 'fixed-window'] as const) {
      console.error(`running ${algorithm}: ${N * OVERLOAD} req/s for ${SECONDS} s over ${INSTANCES} instances…`);
      rows.push(await run(algorithm, simUrl, database));
    }
  } finally {
    await sim.stop();
    await database.drop();
  }

  const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  console.log(`\nQPS budget N=${N}, ${INSTANCES} instances, ${N * OVERLOAD} req/s offered for ${SECONDS} s, upstream latency 50 ms`);
  console.log('| limiter | peak arrivals in any 1 s ÷ N (≤ 1.00) | peak sends ÷ N | utilisation (≥ 0.95) | Throttling.Api (0) | wait p50 ms | wait p99 ms | 201 | 429 | other |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.algorithm} | ${fmt(r.peakRatio)} | ${fmt(r.sentPeakRatio)} | ${fmt(r.utilisation)} | ${r.throttled} | ${fmt(r.waitP50, 0)} | ${fmt(r.waitP99, 0)} | ${r.created} | ${r.rejected429} | ${r.other} |`);
  }
}

await main();
