/**
 * The callback gate (src/routes/kyc/callback-gate.ts) refuses forged callbacks at the HTTP server,
 * in front of Fastify. These tests go over real connections (app.inject() bypasses the server, so
 * it shows what the route itself answers). test/fuzz.test.ts compares the two on generated requests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack({ env: { LOG_LEVEL: 'debug' } });

const forgedQuery = () =>
  new URLSearchParams({ transactionId: `hksb${randomBytes(8).toString('hex')}`, passed: 'Y', callbackToken: randomBytes(32).toString('base64url') }).toString();

/** The value of a counter/histogram-count series of this app's registry. */
async function seriesValue(name: string, labels: Record<string, string>): Promise<number> {
  const metric = await ctx.stack.app.metrics.registry.getSingleMetric(name)!.get();
  const match = metric.values.find(
    (v) => (!('metricName' in v) || v.metricName === name || v.metricName === `${name}_count`) && Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val),
  );
  return match?.value ?? 0;
}

const HOP_HEADERS = new Set(['date', 'connection', 'keep-alive', 'x-request-id']);
const answerOf = async (res: Response) => ({
  status: res.status,
  body: await res.json(),
  headers: Object.fromEntries([...res.headers].filter(([name]) => !HOP_HEADERS.has(name))),
});

test('a forged callback over HTTP is refused at the gate with what the route answers: status, body, security headers', async () => {
  const { stack } = ctx;
  const query = forgedQuery();
  const viaServer = await fetch(`${stack.appUrl}/kyc/callback?${query}`, { headers: { 'x-request-id': 'gate-test-1' } });
  assert.equal(viaServer.headers.get('x-request-id'), 'gate-test-1');
  const viaRoute = await stack.app.inject({ method: 'GET', url: `/kyc/callback?${query}` });

  const gate = await answerOf(viaServer);
  assert.deepEqual(gate.body, { code: 'CALLBACK_REJECTED', message: 'Unknown transaction or invalid callback token' });
  assert.equal(gate.headers['x-content-type-options'], 'nosniff');
  const route = {
    status: viaRoute.statusCode,
    body: viaRoute.json(),
    headers: Object.fromEntries(Object.entries(viaRoute.headers).filter(([name]) => !HOP_HEADERS.has(name)).map(([k, v]) => [k, String(v)])),
  };
  assert.deepEqual(gate, route);

  // It was the gate: its log line says so (the route's does not).
  const lines = stack.logs.lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string; gate?: boolean; level?: number });
  const line = lines.find((l) => l.reqId === 'gate-test-1' && l.msg === 'request completed');
  assert.deepEqual([line?.gate, line?.level], [true, 20]);
});

test('refusals at the gate are counted like the route’s: forged callbacks, and 403s of the callback route', async () => {
  const { stack } = ctx;
  const forgedBefore = await seriesValue('kyc_callbacks_total', { outcome: 'forged' });
  const httpBefore = await seriesValue('kyc_http_request_duration_seconds', { route: '/kyc/callback', status_code: '403' });
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${stack.appUrl}/kyc/callback?${forgedQuery()}`)).status, 403);
  assert.equal((await seriesValue('kyc_callbacks_total', { outcome: 'forged' })) - forgedBefore, 3);
  assert.equal((await seriesValue('kyc_http_request_duration_seconds', { route: '/kyc/callback', status_code: '403' })) - httpBefore, 3);
});

test('what the gate does not judge goes to Fastify: a missing or repeated token, another method, a genuine token', async () => {
  const { stack } = ctx;
  const base = `${stack.appUrl}/kyc/callback?transactionId=hksb1&passed=Y`;
  const codeOf = async (res: Response) => [res.status, ((await res.json()) as { code: string }).code];
  assert.deepEqual(await codeOf(await fetch(base)), [400, 'VALIDATION_ERROR']);
  assert.deepEqual(await codeOf(await fetch(`${base}&callbackToken=a&callbackToken=b`)), [400, 'VALIDATION_ERROR']);
  assert.deepEqual(await codeOf(await fetch(`${base}&callbackToken=x`, { method: 'POST' })), [404, 'NOT_FOUND']);
  // Made by this service but for no stored transaction: past the gate, refused by the route after a lookup.
  const genuine = stack.app.callbackTokens.issue().token;
  const res = await fetch(`${base}&callbackToken=${genuine}`, { headers: { 'x-request-id': 'gate-test-genuine' } });
  assert.deepEqual(await codeOf(res), [403, 'CALLBACK_REJECTED']);
  const lines = stack.logs.lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string; gate?: boolean; level?: number });
  const line = lines.find((l) => l.reqId === 'gate-test-genuine' && l.msg === 'request completed');
  assert.deepEqual([line?.gate, line?.level], [undefined, 30]);
});

test('a request line over 16 KB gets the error envelope from the HTTP server (431 HEADERS_TOO_LARGE)', async () => {
  const res = await fetch(`${ctx.stack.appUrl}/kyc/callback?transactionId=${'A'.repeat(20_000)}`);
  assert.equal(res.status, 431);
  assert.deepEqual(await res.json(), { code: 'HEADERS_TOO_LARGE', message: 'The request line and headers exceed the size limit' });
});

test('a flood of forged callbacks on kept-alive connections does not hold up shutdown', async () => {
  const own = await startStack();
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const { port } = new URL(own.appUrl);
  const send = () =>
    new Promise<number>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: `/kyc/callback?${forgedQuery()}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(0));
      req.end();
    });
  let flooding = true;
  const statuses: number[] = [];
  // Four connections, each sending its next forged callback as soon as the last one is answered.
  const floods = Array.from({ length: 4 }, async () => {
    while (flooding) statuses.push(await send());
  });
  try {
    await sleep(300);
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 403));
    // The server is ours (serverFactory): on close, Fastify still ends its kept-alive connections between
    // two requests, so a flood that never lets a connection rest cannot keep the process alive.
    const closed = await Promise.race([own.app.close().then(() => 'closed'), sleep(5000).then(() => 'still open')]);
    assert.equal(closed, 'closed');
  } finally {
    flooding = false;
    await Promise.all(floods);
    agent.destroy();
    await own.close();
  }
});
