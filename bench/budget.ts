/**
 * `npm run bench:budget`: does the fleet keep Alibaba's QPS limit where Alibaba counts — on the
 * wire — and use it?
 *
 * The simulator runs in a process of its own and never throttles (SIMULATOR_QPS=0); what Alibaba
 * would throttle is computed from the arrival times. Those come from the kernel: tcpdump on the
 * loopback interface stamps the first packet of every request to the simulator (bench/lib/wire.ts);
 * the simulator's own stamps (taken when it has parsed the headers) are printed beside them.
 *
 * Each run starts 4 service instances sharing one Redis, warms them up within the budget, then
 * drives 10× the budget at POST /kyc/start from many users for BENCH_SECONDS; then the same with
 * the naive fixed-window limiter (bench/lib/baseline-service.ts) in place of the QPS budget.
 * BENCH_RUNS runs on the machine as it is ("quiet"), then BENCH_RUNS with both cores kept busy by
 * two CPU burners of our own ("busy"). Per run and limiter it prints:
 *   - the tightest span of N + 1 consecutive Initialize arrivals (goal ≥ 1000 ms: then no sliding
 *     second holds more than N) and the peak count in any sliding second, on the wire and as the
 *     simulator stamped them;
 *   - the calls Alibaba would have throttled (a sliding-window limit of N over the wire times);
 *   - utilisation = calls Alibaba would accept ÷ (N × (S + 1)), the most any limiter keeping N per
 *     sliding second fits between a first and a last arrival S seconds apart (goal ≥ 0.95);
 *   - the instances' own view: dispatch delay (slot → request written) and margin, from their logs;
 *     queue wait of granted calls; answers.
 * Prints numbers; asserts nothing. Knobs: BENCH_RUNS (5), BENCH_BUSY_RUNS (BENCH_RUNS),
 * BENCH_SECONDS (12), BENCH_QPS (10), BENCH_INSTANCES (4), BENCH_MARGIN_MS (the network allowance
 * CLOUDAUTH_BUDGET_MARGIN_MS; see DEFAULT_ALLOWANCE_MS). BENCH_DEBUG=1 also prints, per run, each
 * call's dispatch delay as the kernel saw it against its reservation's promise, the calls of the
 * tightest N + 1, the late wakes and any answer other than 201/429.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { peakInWindow } from '../src/simulator/peak-window.js';
import { SlidingWindowLimiter } from '../src/simulator/rate-limiter.js';
import { percentile, startNode, type Child } from './lib/processes.js';
import { BENCH_DATABASE_URL, benchDatabase, paced } from './lib/runs.js';
import { captureRequests } from './lib/wire.js';

/**
 * On loopback there is no network jitter to allow for: the allowance only has to cover what the
 * instances' own measurement misses, a process preempted in the µs between its check and its write,
 * for as long as the CPU's other tasks run (a scheduler slice, longer under heavy load: the kernel
 * stamps caught a 16-ms slip). The service's default, 40 ms, is for a real network.
 */
const DEFAULT_ALLOWANCE_MS = '20';
const N = Number(process.env.BENCH_QPS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 12);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BUSY_RUNS = Number(process.env.BENCH_BUSY_RUNS ?? RUNS);
const ALLOWANCE_MS = process.env.BENCH_MARGIN_MS ?? DEFAULT_ALLOWANCE_MS;
const OVERLOAD = 10;
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 4);
const WARMUP_SECONDS = 2;
const SIM_PORT = 18090;
const BASE_PORT = 13000;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JWT_SECRET = randomBytes(24).toString('hex');
const SIM_KEY = { id: 'bench-key-id', secret: 'bench-key-secret' };

type Limiter = 'sliding-log' | 'fixed-window';
type Load = 'quiet' | 'busy';

interface Arrivals {
  /** Tightest span of N + 1 consecutive arrivals (ms). */
  tightestMs: number;
  /** Most arrivals in any sliding second. */
  peak: number;
}

interface Row {
  run: number;
  load: Load;
  limiter: Limiter;
  wire: Arrivals;
  sim: Arrivals;
  /** Arrivals a sliding-window limit of N would refuse (Throttling.Api). */
  throttled: number;
  utilisation: number;
  /** Packets tcpdump reported dropped (the wire figures are incomplete if not 0). */
  dropped: number;
  /** Wire arrivals ÷ simulator records (1 when every request was captured). */
  captured: string;
  created: number;
  rejected429: number;
  other: number;
  waitP50: number;
  waitP99: number;
  dispatch: { p50: number; p99: number; max: number };
  margin: { min: number; max: number };
  /** Slots given back by callers later than their promise (the whole run, warm-up included). */
  late: number;
}

function arrivals(times: readonly number[]): Arrivals {
  const sorted = [...times].sort((a, b) => a - b);
  let tightestMs = Infinity;
  for (let i = 0; i + N < sorted.length; i++) tightestMs = Math.min(tightestMs, sorted[i + N]! - sorted[i]!);
  return { tightestMs, peak: peakInWindow(sorted, 1000) };
}

/** The instances, with the QPS budget (the built service) or with the baseline injected; one after the other (each migrates the job queue). */
async function startInstances(limiter: Limiter, env: Record<string, string>): Promise<Child[]> {
  const instances: Child[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const port = BASE_PORT + i;
    const script = limiter === 'sliding-log' ? 'dist/server.js' : 'bench/lib/baseline-service.ts';
    instances.push(
      await startNode(script, { ...env, PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}` }, `http://127.0.0.1:${port}/healthz`, {
        keepLine: (line) =>
          line.includes('"msg":"upstream call') || line.includes('"msg":"budget slot given back') || (line.includes('"msg":"request completed"') && line.includes('"statusCode":201')),
        ...(limiter === 'fixed-window' ? { nodeArgs: ['--import', 'tsx'] } : {}),
      }),
    );
  }
  return instances;
}

async function run(runNo: number, load: Load, limiter: Limiter, simUrl: string, database: { url: string; jobsSchema: string }): Promise<Row> {
  const account = `bench-${limiter}-${randomBytes(4).toString('hex')}`;
  const instances = await startInstances(limiter, {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    REDIS_URL,
    ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY.id,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY.secret,
    CLOUDAUTH_ENDPOINT: simUrl,
    CLOUDAUTH_ACCOUNT: account,
    JOBS_SCHEMA: database.jobsSchema,
    CLOUDAUTH_QPS: String(N),
    CLOUDAUTH_BUDGET_MARGIN_MS: ALLOWANCE_MS,
    AUTH_JWT_SECRET: JWT_SECRET,
    USER_ID_HASH_SECRET: 'bench-user-id-hash-secret-0123456789',
    RATE_LIMIT_PER_USER: '100000',
    RATE_LIMIT_PER_IP: '100000',
  });
  const key = new TextEncoder().encode(JWT_SECRET);
  const metaInfo = JSON.stringify({ zimVer: '3.0.0', deviceType: 'h5', appName: 'bench' });
  const statuses: number[] = [];
  /** Tokens signed first, so signing does not disturb the pacing. */
  const tag = randomBytes(3).toString('hex');
  const drive = async (users: string, count: number, rate: number, sink: number[]) => {
    const tokens = await Promise.all(
      Array.from({ length: count }, (_, i) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`${users}-${i}`).setExpirationTime('10m').sign(key)),
    );
    await paced(rate, count / rate, (i) =>
      fetch(`http://127.0.0.1:${BASE_PORT + (i % INSTANCES)}/kyc/start`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' },
        // The id names the call on the wire (MerchantBizId) and in the instance's request log.
        body: JSON.stringify({ metaInfo, merchantBizId: `${users.replace(/[^A-Za-z0-9]/g, '')}${i}` }),
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
  await drive(`w${tag}`, WARMUP_SECONDS * N, N, []);
  await sleep(1500);
  await fetch(`${simUrl}/__sim/calls`, { method: 'DELETE' });
  const capture = await captureRequests(SIM_PORT);
  const measureFrom = Date.now();
  await drive(`u${tag}`, N * OVERLOAD * SECONDS, N * OVERLOAD, statuses);
  const wire = await capture.stop();
  const calls = (await (await fetch(`${simUrl}/__sim/calls`)).json()) as Array<{ action: string; arrivedAt: number }>;
  const upstreamLogs = instances.flatMap((c) =>
    c.logs.filter((l) => (l.msg === 'upstream call' || l.msg === 'upstream call failed') && l.api === 'Initialize' && Number(l.time) >= measureFrom),
  );
  const granted = upstreamLogs.filter((l) => l.msg === 'upstream call');
  const waits = granted.map((l) => Number(l.budgetWaitMs));
  const dispatches = granted.map((l) => Number(l.dispatchMs)).filter(Number.isFinite);
  const margins = granted.map((l) => Number(l.marginMs)).filter(Number.isFinite);
  // Callers that woke later than their reservation promised and gave the slot back.
  const late = limiter === 'sliding-log' ? (await Promise.all(instances.map((_, i) => lateWakes(BASE_PORT + i)))).reduce((a, b) => a + b, 0) : NaN;
  if (process.env.BENCH_DEBUG && limiter === 'sliding-log') explain(wire.requests, instances);
  if (process.env.BENCH_DEBUG) {
    const lates = instances.flatMap((c) => c.logs.filter((l) => l.msg === 'budget slot given back: woke later than promised').map((l) => `${l.lateMs}/${l.marginMs}`));
    console.error(`late wakes (late ms / margin ms): ${lates.join(' ')}`);
    const others = statuses.filter((s) => s !== 201 && s !== 429);
    console.error(`other answers: ${JSON.stringify(Object.fromEntries([...new Set(others)].map((s) => [s, others.filter((o) => o === s).length])))}`);
  }
  await Promise.all(instances.map((c) => c.stop()));

  const onWire = wire.requests.filter((r) => r.action === 'Initialize').map((r) => r.at).sort((a, b) => a - b);
  const stamped = calls.filter((c) => c.action === 'Initialize').map((c) => c.arrivedAt);
  // What Alibaba would do with these arrivals: a sliding-window limit of N per second.
  const alibaba = new SlidingWindowLimiter(1000);
  const accepted = onWire.filter((at) => alibaba.tryAdmit('Initialize', N, at).admitted).length;
  const spanSeconds = onWire.length > 0 ? (onWire.at(-1)! - onWire[0]!) / 1000 : 0;
  return {
    run: runNo,
    load,
    limiter,
    wire: arrivals(onWire),
    sim: arrivals(stamped),
    throttled: onWire.length - accepted,
    // N per sliding second fits at most N × (S + 1) calls into a closed span of S seconds.
    utilisation: accepted / (N * (spanSeconds + 1)),
    dropped: wire.dropped,
    captured: `${onWire.length}/${stamped.length}`,
    created: statuses.filter((s) => s === 201).length,
    rejected429: statuses.filter((s) => s === 429).length,
    other: statuses.filter((s) => s !== 201 && s !== 429).length,
    waitP50: percentile(waits, 50),
    waitP99: percentile(waits, 99),
    dispatch: { p50: percentile(dispatches, 50), p99: percentile(dispatches, 99), max: Math.max(...dispatches) },
    late,
    margin: { min: Math.min(...margins), max: Math.max(...margins) },
  };
}

/**
 * BENCH_DEBUG: each call's dispatch delay as the kernel saw it (its first packet − its slot, both
 * on this host's clock), against what its reservation promised (margin − allowance), and the
 * calls of the tightest N + 1.
 */
function explain(requests: readonly { at: number; action: string | undefined; merchantBizId: string | undefined }[], instances: Child[]) {
  const reqIdOf = new Map<string, string>();
  const calls = new Map<string, Record<string, unknown>>();
  for (const c of instances) {
    for (const l of c.logs) {
      if (l.msg === 'request completed' && typeof l.merchantBizId === 'string') reqIdOf.set(l.merchantBizId, `${c.process.pid}:${l.reqId}`);
      if (l.msg === 'upstream call') calls.set(`${c.process.pid}:${l.reqId}`, { ...l, pid: c.process.pid });
    }
  }
  const rows = requests
    .filter((r) => r.action === 'Initialize' && r.merchantBizId)
    .map((r) => ({ at: r.at, call: calls.get(reqIdOf.get(r.merchantBizId!) ?? '') }))
    .filter((r) => r.call)
    .map((r) => {
      const slot = Number(r.call!.slotAtMs);
      const promised = Number(r.call!.marginMs) - Number(ALLOWANCE_MS);
      return { at: r.at, slot, pid: r.call!.pid, kernel: r.at - slot, promised, logged: Number(r.call!.dispatchMs) };
    })
    .sort((a, b) => a.at - b.at);
  const over = rows.filter((r) => r.kernel > r.promised);
  const worst = Math.max(...rows.map((r) => r.kernel - r.promised));
  console.error(`kernel dispatch (packet − slot): p50 ${percentile(rows.map((r) => r.kernel), 50).toFixed(1)} max ${Math.max(...rows.map((r) => r.kernel)).toFixed(1)} ms; over the promise: ${over.length}/${rows.length}, worst by ${worst.toFixed(1)} ms; early (packet before slot): ${rows.filter((r) => r.kernel < 0).length}`);
  for (const r of over) console.error(`  over: kernel dispatch ${r.kernel.toFixed(1)}, logged ${r.logged}, promised ${r.promised.toFixed(1)} (pid ${r.pid})`);
  let tight = 0;
  for (let i = 0; i + N < rows.length; i++) if (rows[i + N]!.at - rows[i]!.at < rows[tight + N]!.at - rows[tight]!.at) tight = i;
  const t0 = rows[tight]?.at ?? 0;
  for (const r of rows.slice(tight, tight + N + 1)) {
    console.error(`  +${(r.at - t0).toFixed(1)} ms: slot +${(r.slot - t0).toFixed(1)}, kernel dispatch ${r.kernel.toFixed(1)}, logged ${r.logged}, promised ${r.promised.toFixed(1)} (pid ${r.pid})`);
  }
}

/** The count of `late` dispatch observations an instance reports at /metrics. */
async function lateWakes(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  if (process.env.BENCH_DEBUG) console.error(text.split('\n').filter((l) => l.startsWith('kyc_budget_dispatch') || l.startsWith('kyc_budget_margin')).join('\n'));
  const m = /^kyc_budget_dispatch_delay_seconds_count\{api="Initialize",outcome="late"\} (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
}

/** Two busy loops of our own: both cores busy while a "busy" run goes on. */
function startBurners(): ChildProcess[] {
  return [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const HEADER = [
  '| run | load | limiter | tightest N+1 span on the wire, ms (≥ 1000) | peak / s on the wire (≤ N) | tightest span, simulator stamps, ms | peak / s, simulator | would be throttled (0) | utilisation (≥ 0.95) | captured (wire/sim), drops | dispatch delay p50 / p99 / max ms | margin ms | late wakes | queue wait p50 / p99 ms | 201 / 429 / other |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
const line = (r: Row) =>
  `| ${r.run} | ${r.load} | ${r.limiter} | ${fmt(r.wire.tightestMs, 1)} | ${r.wire.peak} | ${fmt(r.sim.tightestMs, 1)} | ${r.sim.peak} | ${r.throttled} | ${fmt(r.utilisation, 3)} | ${r.captured}, ${r.dropped} | ${fmt(r.dispatch.p50, 1)} / ${fmt(r.dispatch.p99, 1)} / ${fmt(r.dispatch.max, 1)} | ${fmt(r.margin.min, 1)}–${fmt(r.margin.max, 1)} | ${fmt(r.late)} | ${fmt(r.waitP50)} / ${fmt(r.waitP99)} | ${r.created} / ${r.rejected429} / ${r.other} |`;

async function main() {
  const database = await benchDatabase(BENCH_DATABASE_URL);
  const simUrl = `http://127.0.0.1:${SIM_PORT}`;
  const sim = await startNode('dist/simulator/main.js', {
    SIMULATOR_PORT: String(SIM_PORT),
    SIMULATOR_HOST: '127.0.0.1',
    SIMULATOR_ACCESS_KEY_ID: SIM_KEY.id,
    SIMULATOR_ACCESS_KEY_SECRET: SIM_KEY.secret,
    SIMULATOR_QPS: '0', // never throttles: the bench computes what Alibaba would
    SIMULATOR_LATENCY_MS: '50',
    // No CallbackUrl check: it would send each instance a request per Initialize, load beside the budget this measures.
    SIMULATOR_PROBE_CALLBACK: 'false',
    LOG_LEVEL: 'warn',
  }, `${simUrl}/__sim/health`);
  const rows: Row[] = [];
  const loads: Load[] = [...Array<Load>(RUNS).fill('quiet'), ...Array<Load>(BUSY_RUNS).fill('busy')];
  console.log(`QPS budget on the wire: N=${N}, ${INSTANCES} instances, ${N * OVERLOAD} req/s offered for ${SECONDS} s, upstream latency 50 ms, network allowance ${ALLOWANCE_MS} ms; ${new Date().toISOString()}`);
  console.log(HEADER.join('\n'));
  let burners: ChildProcess[] = [];
  try {
    for (const [i, load] of loads.entries()) {
      burners = load === 'busy' ? startBurners() : [];
      for (const limiter of ['sliding-log', 'fixed-window'] as const) {
        console.error(`run ${i + 1}/${loads.length} (${load}), ${limiter}: ${N * OVERLOAD} req/s for ${SECONDS} s over ${INSTANCES} instances…`);
        const row = await run(i + 1, load, limiter, simUrl, database);
        rows.push(row);
        console.log(line(row));
      }
      for (const b of burners) b.kill('SIGKILL');
      burners = [];
    }
  } finally {
    for (const b of burners) b.kill('SIGKILL');
    await sim.stop();
    await database.drop();
  }

  console.log('\nSummary (per limiter and load: worst tightest span on the wire, utilisation range, runs with a span < 1000 ms):');
  for (const limiter of ['sliding-log', 'fixed-window'] as const) {
    for (const load of ['quiet', 'busy'] as const) {
      const rs = rows.filter((r) => r.limiter === limiter && r.load === load);
      if (rs.length === 0) continue;
      const worst = Math.min(...rs.map((r) => r.wire.tightestMs));
      const u = rs.map((r) => r.utilisation);
      const short = rs.filter((r) => r.wire.tightestMs < 1000).length;
      console.log(`  ${limiter}, ${load}: tightest ${fmt(worst, 1)} ms; utilisation ${fmt(Math.min(...u), 3)}–${fmt(Math.max(...u), 3)}; ${short}/${rs.length} runs under 1000 ms; peak / s ${Math.max(...rs.map((r) => r.wire.peak))}`);
    }
  }
}

await main();
