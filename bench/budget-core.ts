/**
 * Micro-check for the QpsBudget's dispatch bound, without HTTP.
 *
 *   node --import tsx bench/budget-core.ts [allowanceMs=0] [processes=4] [seconds=6] [N=10] [busyMs=3]
 *
 * Forks `processes` workers (own process, own Redis connection) that offer ~8×N
 * req/s in total for `seconds`. After each grant a worker records
 *   lateness = actual local start − reserved slot (Redis clock; same host clock),
 * then burns `busyMs` of CPU to simulate request handling (event-loop lag).
 * A reservation holds the window for 1 s + the dispatch delay its process promises
 * + the network allowance, and a caller later than its promise gives the slot back,
 * so a real 1000 ms window holds at most N starts even with allowanceMs=0.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { QpsBudget, BudgetExhaustedError } from '../src/budget/index.js';
import { failFastRedisOptions } from '../src/redis/options.js';

interface Sample {
  slot: number;
  start: number;
}

const isWorker = process.argv[2] === 'worker';
const args = process.argv.slice(isWorker ? 4 : 2);
const [allowanceMs = 0, processes = 4, seconds = 6, N = 10, busyMs = 3] = args.map(Number);

async function worker(keyPrefix: string): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, ...failFastRedisOptions });
  await new Promise((r) => redis.once('ready', r));
  const budget = new QpsBudget({ redis, keyPrefix, account: 'bench', limits: N, maxWaitMs: 2000, networkAllowanceMs: allowanceMs });
  const samples: Sample[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const interval = 1000 / ((8 * N) / processes);
  while (performance.now() - t0 < seconds * 1000) {
    pending.push(
      budget.acquireSlot('Initialize').then(
        (grant) => {
          samples.push({ slot: grant.slotAtMs, start: performance.timeOrigin + performance.now() });
          const until = performance.now() + busyMs;
          while (performance.now() < until); // simulated handler work
        },
        (err: unknown) => {
          if (!(err instanceof BudgetExhaustedError)) throw err;
        },
      ),
    );
    await sleep(interval * (0.5 + Math.random()));
  }
  await Promise.all(pending);
  process.send!(samples);
  redis.disconnect();
}

function maxInWindow(starts: number[], windowMs: number): number {
  const s = [...starts].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (j < s.length && s[j]! < s[i]! + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

async function main(): Promise<void> {
  const keyPrefix = `bench:budget:${randomUUID()}`;
  const self = fileURLToPath(import.meta.url);
  const results = await Promise.all(
    Array.from({ length: processes }, () => {
      const child = fork(self, ['worker', keyPrefix, ...args], { execArgv: ['--import', 'tsx'] });
      return new Promise<Sample[]>((resolve, reject) => {
        child.once('message', (m) => resolve(m as Sample[]));
        child.once('error', reject);
      });
    }),
  );
  const samples = results.flat();
  const lateness = samples.map((s) => s.start - s.slot).sort((a, b) => a - b);
  const starts = samples.map((s) => s.start);
  // Throughput while the offered load saturates the budget (skip the last second).
  const first = Math.min(...starts);
  const steadyMs = (seconds - 1) * 1000;
  const steady = starts.filter((s) => s - first < steadyMs).length;
  console.log(
    JSON.stringify({
      allowanceMs, processes, seconds, N, busyMs,
      granted: samples.length,
      steadyRatePerSec: +(steady / (steadyMs / 1000)).toFixed(2),
      latenessMs: {
        min: +lateness[0]!.toFixed(2), p50: +pct(lateness, 0.5).toFixed(2), p99: +pct(lateness, 0.99).toFixed(2),
        max: +lateness[lateness.length - 1]!.toFixed(2),
        spread: +(lateness[lateness.length - 1]! - lateness[0]!).toFixed(2),
      },
      maxStartsIn1000ms: maxInWindow(starts, 1000),
    }),
  );
}

if (isWorker) await worker(process.argv[3]!);
else await main();
