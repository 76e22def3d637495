import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { metricsTable, SESSIONS_COLLECT_TIMEOUT_MS } from '../src/metrics/metrics.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { DATABASE_URL, META_INFO, randomId, startStack, waitFor, type Stack } from './helpers/stack.js';

const METRICS_TOKEN = 'metrics-token-0123456789-abcdefghijklmn';

/** Prometheus text format → `name{a="1",b="2"}` (labels sorted) → value. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort();
    series.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return series;
}
const key = (name: string, labels: Record<string, string> = {}) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',')}}`;

let stack: Stack;
let api: ReturnType<typeof clientFor>;
before(async () => {
  // Initialize: one call per second, no queueing, so concurrent starts are refused (429).
  stack = await startStack({ env: { METRICS_TOKEN, CLOUDAUTH_QPS_INITIALIZE: '1', CLOUDAUTH_BUDGET_WAIT_MS: '0' } });
  api = clientFor(stack);
});
after(() => stack.close());

const scrapeRaw = (token: string | null = METRICS_TOKEN) =>
  fetch(`${stack.appUrl}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
async function scrape(): Promise<Map<string, number>> {
  const res = await scrapeRaw();
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}
const delta = (before: Map<string, number>, after: Map<string, number>, k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('/metrics', () => {
  test('a verification moves the counters: start → complete in the simulator → passed', async () => {
    const before = await scrape();
    const token = await signToken(randomId('user-'));
    const started = await api.start(token, { metaInfo: META_INFO });
    assert.equal(started.status, 201);
    const merchantBizId = String(started.body.merchantBizId);
    const transactionId = String(started.body.transactionId);
    await api.sim.complete(transactionId, 'Y', '200');
    await waitFor('passed', async () => ((await api.session(token, merchantBizId)).body.status === 'passed' ? true : undefined));
    // Redelivered (duplicate), forged, rejected (a token of ours, another transaction's) and contradicting (conflict) callbacks.
    await api.sim.redeliver(transactionId);
    const callbackToken = (await api.sim.transaction(transactionId)).body.params.CallbackToken!;
    assert.equal((await api.callback({ transactionId, passed: 'Y', callbackToken: 'forged' })).status, 403);
    assert.equal((await api.callback({ transactionId, passed: 'Y', callbackToken: stack.app.callbackTokens.issue().token })).status, 403);
    assert.equal((await api.callback({ transactionId, passed: 'N', subCode: '200', callbackToken })).status, 409);
    const after = await scrape();

    const httpCount = (route: string, status: string, method = 'GET') =>
      delta(before, after, key('kyc_http_request_duration_seconds_count', { method, route, status_code: status }));
    assert.equal(httpCount('/kyc/start', '201', 'POST'), 1);
    // The route label is the pattern, never the URL.
    assert.ok(httpCount('/kyc/sessions/:merchantBizId', '200') >= 1);
    assert.equal(httpCount('/kyc/callback', '403'), 2);
    for (const k of after.keys()) assert.ok(!k.includes(merchantBizId) && !k.includes(transactionId), `a label holds an id: ${k}`);

    assert.equal(delta(before, after, key('kyc_upstream_calls_total', { api: 'Initialize', result: 'Success' })), 1);
    assert.ok(delta(before, after, key('kyc_upstream_calls_total', { api: 'CheckResult', result: 'Success' })) >= 1);
    assert.equal(delta(before, after, key('kyc_upstream_call_duration_seconds_count', { api: 'Initialize', result: 'Success' })), 1);
    assert.equal(delta(before, after, key('kyc_budget_wait_seconds_count', { api: 'Initialize', outcome: 'granted' })), 1);
    assert.equal(delta(before, after, key('kyc_callbacks_total', { outcome: 'accepted' })), 1);
    assert.equal(delta(before, after, key('kyc_callbacks_total', { outcome: 'duplicate' })), 1);
    assert.equal(delta(before, after, key('kyc_callbacks_total', { outcome: 'forged' })), 1);
    assert.equal(delta(before, after, key('kyc_callbacks_total', { outcome: 'rejected' })), 1);
    assert.equal(delta(before, after, key('kyc_callbacks_total', { outcome: 'conflict' })), 1);
    assert.equal(delta(before, after, key('kyc_check_result_jobs_total', { outcome: 'passed' })), 1);
    assert.equal(after.get(key('kyc_sessions', { status: 'passed' })), (before.get(key('kyc_sessions', { status: 'passed' })) ?? 0) + 1);
    assert.ok(after.has(key('kyc_sessions', { status: 'error' })), 'every status has a series, 0 included');
    assert.equal(after.get(key('kyc_budget_queue_depth', { api: 'Initialize' })), 0);
    // Node's default process metrics, in this app's registry.
    assert.ok(after.has(key('process_cpu_user_seconds_total')));
    assert.ok([...after.keys()].some((k) => k.startsWith('nodejs_eventloop_lag_seconds')));
  });

  test('upstream failures are counted by Alibaba code, budget refusals by reason', async () => {
    await sleep(1100); // a fresh Initialize second
    const before = await scrape();
    const token = await signToken(randomId('user-'));
    await api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'x' });
    assert.equal((await api.start(token)).status, 502);
    // The budget allows one Initialize per second and queues nobody: of three at once, two are refused.
    await sleep(1100);
    const statuses = (await Promise.all([1, 2, 3].map(() => api.start(token)))).map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 429, 429]);
    const after = await scrape();
    assert.equal(delta(before, after, key('kyc_upstream_calls_total', { api: 'Initialize', result: 'InvalidParameter' })), 1);
    assert.equal(delta(before, after, key('kyc_budget_rejections_total', { api: 'Initialize', reason: 'exhausted' })), 2);
    assert.equal(delta(before, after, key('kyc_budget_wait_seconds_count', { api: 'Initialize', outcome: 'exhausted' })), 2);
    assert.equal(delta(before, after, key('kyc_http_request_duration_seconds_count', { method: 'POST', route: '/kyc/start', status_code: '429' })), 2);
  });

  test('the queue depth counts the callers of this process waiting for a slot', async () => {
    await sleep(1100);
    await stack.app.budget.acquire('Initialize'); // takes this second's only slot
    const waiting = stack.app.budget.acquire('Initialize', { maxWaitMs: 3000 }); // queues for the next
    const during = await scrape();
    await waiting;
    const afterwards = await scrape();
    assert.equal(during.get(key('kyc_budget_queue_depth', { api: 'Initialize' })), 1);
    assert.equal(afterwards.get(key('kyc_budget_queue_depth', { api: 'Initialize' })), 0);
  });

  test('a slow database cannot hang the scrape: the sessions count is left out', async () => {
    const schema = new URL(stack.config.DATABASE_URL).searchParams.get('schema') ?? 'public';
    const locker = new pg.Client({ connectionString: DATABASE_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema}".kyc_session IN ACCESS EXCLUSIVE MODE`);
      const before = Date.now();
      const res = await scrapeRaw();
      const took = Date.now() - before;
      assert.equal(res.status, 200);
      assert.ok(took < SESSIONS_COLLECT_TIMEOUT_MS + 500, `the scrape took ${took} ms`);
      const series = parseExposition(await res.text());
      assert.ok(![...series.keys()].some((k) => k.startsWith('kyc_sessions{')), 'kyc_sessions is left out');
      assert.ok((series.get(key('kyc_sessions_collect_failures_total')) ?? 0) >= 1);
      assert.ok(series.has(key('process_cpu_user_seconds_total')), 'the rest is there');
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    await waitFor('the sessions count to come back', async () => ((await scrape()).has(key('kyc_sessions', { status: 'passed' })) ? true : undefined));
  });

  test('METRICS_TOKEN protects the endpoint', async () => {
    const missing = await scrapeRaw(null);
    assert.equal(missing.status, 401);
    assert.equal(((await missing.json()) as { code: string }).code, 'UNAUTHENTICATED');
    const wrong = await scrapeRaw(`${METRICS_TOKEN}x`);
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { code: string }).code, 'INVALID_TOKEN');
    const basic = await fetch(`${stack.appUrl}/metrics`, { headers: { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    assert.equal((await scrapeRaw()).status, 200);
  });

  test('README.md lists the metrics (npx tsx src/dev/tables.ts metrics)', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(metricsTable()), 'README.md is out of date: paste the output of `npx tsx src/dev/tables.ts metrics`');
  });
});
