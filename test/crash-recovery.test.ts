import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { QUEUES } from '../src/results/plugin.js';
import { buildSimulator, type Simulator } from '../src/simulator/server.js';
import { signToken, TEST_JWT_SECRET } from './helpers/jwt.js';
import {
  DATABASE_URL,
  dropSchemas,
  freePort,
  freshDatabaseUrl,
  LogCapture,
  META_INFO,
  randomId,
  REDIS_URL,
  SIM_KEY_ID,
  SIM_KEY_SECRET,
  testConfig,
  waitFor,
} from './helpers/stack.js';

/**
 * The promise: a process killed with SIGKILL mid-flow leaves no session stuck once a new process
 * runs on the same database and job queue. The service runs as a real child process (dist/, so
 * `npm run build` first) against the simulator, on real PostgreSQL and Redis; the first process is
 * SIGKILLed while a CheckResult and an Initialize are in flight, the second must finish the work.
 */

/** Alibaba holds the two calls the kill interrupts this long: they are still unanswered at the kill. */
const HELD_MS = 2500;
/**
 * Short job timings so that recovery takes seconds: a CheckResult job whose process died is retried
 * CHECK_RESULT_JOB_TIMEOUT_S after it started, at the next maintenance run (defaults: 120 s each).
 */
const JOB_TIMEOUT_S = 5;
const MAINTENANCE_S = 1;

/** The variables every configuration needs. */
const minimalEnv = {
  DATABASE_URL,
  REDIS_URL,
  ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY_ID,
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY_SECRET,
  PUBLIC_BASE_URL: 'https://kyc.shop.example',
  AUTH_JWT_SECRET: TEST_JWT_SECRET,
  USER_ID_HASH_SECRET: 'test-user-id-hash-secret-0123456789',
};

let sim: Simulator;
let simUrl: string;
let base: string;
let env: Record<string, string>;
let config: Config;
let tables: string;
let db: pg.Pool;
let proc: ChildProcess | undefined;

/** Starts `node dist/server.js` and waits until it is ready. */
async function startService(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['dist/server.js'], {
    env,
    stdio: ['ignore', process.env.CRASH_DEBUG ? 'inherit' : 'ignore', 'inherit'],
  });
  for (let i = 0; ; i++) {
    assert.equal(child.exitCode, null, 'the service exited while starting');
    if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) return child;
    assert.ok(i < 300, 'the service did not become ready');
    await sleep(50);
  }
}

const post = (token: string, body: Record<string, unknown>) =>
  fetch(`${base}/kyc/start`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ metaInfo: META_INFO, ...body }),
  });
const startOk = async (token: string) => {
  const res = await post(token, {});
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { merchantBizId: string; transactionId: string };
};
const publicStatus = async (token: string, merchantBizId: string) => {
  const res = await fetch(`${base}/kyc/sessions/${merchantBizId}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { status: string }).status;
};
const simPost = async (path: string, body: unknown) => {
  const res = await fetch(`${simUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(res.ok, `${path}: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
};

interface Row {
  status: string;
  transaction_id: string | null;
  passed: string | null;
}
const row = async (merchantBizId: string): Promise<Row | undefined> =>
  (await db.query<Row>(`SELECT status, transaction_id, passed FROM "${tables}".kyc_session WHERE merchant_biz_id = $1`, [merchantBizId])).rows[0];
/** "Time passes": the session's expiry (30 min after Initialize) is now behind us. */
const expire = async (merchantBizId: string) => {
  await db.query(`UPDATE "${tables}".kyc_session SET expires_at = now() - interval '1 second' WHERE merchant_biz_id = $1`, [merchantBizId]);
  await db.query(
    `UPDATE "${tables}".kyc_transaction t SET expires_at = now() - interval '1 second' FROM "${tables}".kyc_session s WHERE s.id = t.session_id AND s.merchant_biz_id = $1`,
    [merchantBizId],
  );
};
/** Moves when the session's Initialize began (its transaction's reservation) to `at` (SQL). */
const startedAt = (merchantBizId: string, at: string) =>
  db.query(
    `UPDATE "${tables}".kyc_transaction t SET created_at = ${at} FROM "${tables}".kyc_session s WHERE s.id = t.session_id AND s.merchant_biz_id = $1`,
    [merchantBizId],
  );
const until = (merchantBizId: string, status: string, timeoutMs = 15_000) =>
  waitFor(`${merchantBizId} to be stored as ${status}`, async () => ((await row(merchantBizId))?.status === status ? true : undefined), timeoutMs);

/**
 * One tick of RECONCILE_CRON, now: a job on the reconciliation queue, as pg-boss's scheduler sends
 * it every minute. The restarted service's worker runs the sweep (there is no HTTP trigger).
 */
async function sweepNow(): Promise<void> {
  const boss = new PgBoss({ connectionString: DATABASE_URL, schema: config.JOBS_SCHEMA, max: 1, migrate: false, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  try {
    assert.ok(await boss.send(QUEUES.reconcile, {}));
  } finally {
    await boss.stop({ graceful: false });
  }
}

const inFlight = (action: string) => sim.calls.list().filter((c) => c.action === action && c.code === undefined);
const calls = (action: string) => sim.calls.list().filter((c) => c.action === action).length;

/** The sessions left behind by the killed process, and their users. */
const s = {} as Record<'unfinished' | 'finishedWhileDown' | 'checking' | 'starting', { token: string; merchantBizId: string; transactionId?: string }>;
let startingRequest: Promise<Response | Error>;
/** CheckResult calls Alibaba had received when the first process died. */
let checkResultsAtKill: number;

describe('SIGKILL mid-flow, then a restart on the same database and job queue', () => {
  before(async () => {
    // No CallbackUrl check: the service is killed while Initialize is in flight, and a check that
    // reached it after the kill would refuse the very Initialize this test needs Alibaba to hold.
    sim = await buildSimulator({ accessKeys: { [SIM_KEY_ID]: SIM_KEY_SECRET }, qps: 0, probeCallbackUrl: false });
    simUrl = await sim.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${await freePort()}`;
    const databaseUrl = await freshDatabaseUrl();
    tables = new URL(databaseUrl).searchParams.get('schema')!;
    env = {
      ...minimalEnv,
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.CRASH_DEBUG ? 'info' : 'warn',
      HOST: '127.0.0.1',
      PORT: new URL(base).port,
      DATABASE_URL: databaseUrl,
      CLOUDAUTH_ENDPOINT: simUrl,
      CLOUDAUTH_ACCOUNT: randomId('acct'),
      CLOUDAUTH_TIMEOUT_MS: '3000',
      PUBLIC_BASE_URL: base,
      JOBS_SCHEMA: `jobs_${randomId()}`.toLowerCase(),
      JOBS_POLL_INTERVAL_S: '0.5',
      CHECK_RESULT_RETRY_DELAY_S: '1',
      CHECK_RESULT_JOB_TIMEOUT_S: String(JOB_TIMEOUT_S),
      JOBS_MAINTENANCE_INTERVAL_S: String(MAINTENANCE_S),
    };
    config = parseConfig(env);
    db = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });

    // The first process: three sessions reach the states a kill can catch them in.
    proc = await startService();
    for (const key of ['unfinished', 'finishedWhileDown', 'checking', 'starting'] as const) {
      s[key] = { token: await signToken(randomId(`${key}-`)), merchantBizId: '' };
    }
    for (const key of ['unfinished', 'finishedWhileDown', 'checking'] as const) {
      const started = await startOk(s[key].token);
      Object.assign(s[key], started);
    }

    // The user finishes `checking`: the callback is taken (verifying) and CheckResult is asked, slowly.
    await simPost('/__sim/faults', { action: 'CheckResult', code: 'Success', delayMs: HELD_MS });
    const completed = await simPost(`/__sim/transactions/${s.checking.transactionId}/complete`, { passed: 'Y', subCode: '200' });
    assert.equal((completed.delivery as { status?: number }).status, 200, 'the callback was taken');
    await waitFor('CheckResult in flight', async () => (inFlight('CheckResult').length === 1 ? true : undefined));

    // A start whose Initialize Alibaba is still answering.
    s.starting.merchantBizId = randomId('starting');
    await simPost('/__sim/faults', { action: 'Initialize', code: 'Success', delayMs: HELD_MS });
    startingRequest = post(s.starting.token, { merchantBizId: s.starting.merchantBizId }).catch((err: Error) => err);
    await waitFor('Initialize in flight', async () => (inFlight('Initialize').length === 1 && (await row(s.starting.merchantBizId)) ? true : undefined));

    // SIGKILL with both calls unanswered.
    assert.equal(inFlight('CheckResult').length + inFlight('Initialize').length, 2);
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    checkResultsAtKill = calls('CheckResult');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    proc = undefined;

    // What the kill left behind.
    assert.ok((await startingRequest) instanceof Error, 'the interrupted /kyc/start got no answer');
    assert.ok(
      sim.store.list().some((t) => t.merchantBizId === s.starting.merchantBizId),
      'Alibaba created the interrupted start’s transaction',
    );
    assert.deepEqual(await row(s.starting.merchantBizId), { status: 'pending', transaction_id: null, passed: null });
    assert.deepEqual(await row(s.checking.merchantBizId), { status: 'verifying', transaction_id: s.checking.transactionId, passed: null });
    for (const key of ['unfinished', 'finishedWhileDown'] as const) {
      assert.deepEqual(await row(s[key].merchantBizId), { status: 'pending', transaction_id: s[key].transactionId, passed: null });
    }

    // While no process runs, a user finishes: Alibaba's callback finds nobody.
    const lost = await simPost(`/__sim/transactions/${s.finishedWhileDown.transactionId}/complete`, { passed: 'Y', subCode: '200' });
    assert.notEqual((lost.delivery as { status?: number }).status, 200, 'the callback was lost');

    // The restart, on the same database and job queue.
    proc = await startService();
  });

  after(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    }
    await sim?.close();
    await db?.end();
    if (config) await dropSchemas(config);
  });

  test('a CheckResult in flight at the kill is asked again and decides the session, with no manual action', async () => {
    // The killed job counts as failed CHECK_RESULT_JOB_TIMEOUT_S after it started, then retries after ~1-2 s.
    await until(s.checking.merchantBizId, 'passed', (JOB_TIMEOUT_S + 10) * 1000);
    assert.equal((await row(s.checking.merchantBizId))?.passed, 'Y');
    assert.ok(calls('CheckResult') > checkResultsAtKill, 'decided by a CheckResult made after the restart');
    assert.equal(await publicStatus(s.checking.token, s.checking.merchantBizId), 'passed');
  });

  test('pending sessions past their expiry are resolved by the sweep: unfinished → expired, finished while down → passed', async () => {
    await expire(s.unfinished.merchantBizId);
    await expire(s.finishedWhileDown.merchantBizId);
    await sweepNow();
    await until(s.unfinished.merchantBizId, 'expired');
    await until(s.finishedWhileDown.merchantBizId, 'passed');
    assert.equal((await row(s.finishedWhileDown.merchantBizId))?.passed, 'Y');
    assert.equal(await publicStatus(s.unfinished.token, s.unfinished.merchantBizId), 'expired');
    assert.equal(await publicStatus(s.finishedWhileDown.token, s.finishedWhileDown.merchantBizId), 'passed');
  });

  test('a start interrupted during Initialize: no second Initialize, its retry learns it was interrupted, the user can start anew, the row expires', async () => {
    const { token, merchantBizId } = s.starting;
    const initializeCalls = calls('Initialize');

    // Within the longest a start can take, its retry is told the start is still in progress: no second
    // (billed) Initialize. (The kill was seconds ago; pin "just now" so a slow machine cannot outrun it.)
    await startedAt(merchantBizId, 'now()');
    const retry = await post(token, { merchantBizId });
    assert.equal(retry.status, 409);
    assert.equal(((await retry.json()) as { code: string }).code, 'SESSION_STARTING');
    assert.ok(retry.headers.get('retry-after'));
    assert.equal(calls('Initialize'), initializeCalls);
    assert.equal(await publicStatus(token, merchantBizId), 'pending');

    // Once longer ago than any start can take, the retry is told the start died, not to keep retrying.
    await startedAt(merchantBizId, "now() - interval '1 minute'");
    const interrupted = await post(token, { merchantBizId });
    assert.equal(interrupted.status, 409);
    assert.equal(((await interrupted.json()) as { code: string }).code, 'SESSION_INTERRUPTED');
    assert.equal(interrupted.headers.get('retry-after'), null);
    assert.equal(calls('Initialize'), initializeCalls);

    // The same user is not blocked: a new verification starts at once.
    await startOk(token);

    // Once past the expiry it reserved, the sweep ends it and the retry learns it for good.
    await expire(merchantBizId);
    await sweepNow();
    await until(merchantBizId, 'expired');
    assert.equal(await publicStatus(token, merchantBizId), 'expired');
    const late = await post(token, { merchantBizId });
    assert.equal(late.status, 409);
    assert.equal(((await late.json()) as { code: string }).code, 'SESSION_EXPIRED');
  });
});

describe('job timings', () => {
  test('a restart with another CHECK_RESULT_JOB_TIMEOUT_S applies it to the existing job queue', async () => {
    const first = testConfig({ DATABASE_URL: await freshDatabaseUrl(), JOBS_WORKERS: 'false' });
    const timeoutOf = async (c: Config) => {
      const app = await buildApp(c, { logStream: new LogCapture() });
      try {
        await app.ready();
        return (await app.jobs.getQueue(QUEUES.check))?.expireInSeconds;
      } finally {
        await app.close();
      }
    };
    try {
      assert.equal(await timeoutOf(first), 120);
      assert.equal(await timeoutOf({ ...first, CHECK_RESULT_JOB_TIMEOUT_S: 30 }), 30);
    } finally {
      await dropSchemas(first);
    }
  });
});
