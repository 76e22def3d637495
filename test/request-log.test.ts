import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rowsOf } from './helpers/rows.js';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

interface Line {
  msg: string;
  reqId?: string;
  level: number;
  req?: { method: string; url: string };
  route?: string;
  statusCode?: number;
  durationMs?: number;
  merchantBizId?: string;
  upstreamRequestId?: string;
}

const ctx = useStack();

const lines = () => ctx.stack.logs.lines.map((l) => JSON.parse(l) as Line);
/** The completion line of one request; fails unless there is exactly one. */
async function completionOf(reqId: string): Promise<Line> {
  await new Promise((r) => setTimeout(r, 20)); // logged once the response has finished
  const found = lines().filter((l) => l.reqId === reqId && /^request (completed|errored)$/.test(l.msg));
  assert.equal(found.length, 1, `${found.length} completion lines for ${reqId}`);
  return found[0]!;
}

describe('one log line per request', () => {
  test('start: request id from x-request-id (echoed), route, status, duration, merchantBizId, upstream RequestId', async () => {
    const token = await signToken(randomId('user-'));
    const merchantBizId = randomId('rl');
    const res = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId }, { 'x-request-id': 'trace-4bf92f35_00f067aa.1' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-request-id'), 'trace-4bf92f35_00f067aa.1');
    const line = await completionOf('trace-4bf92f35_00f067aa.1');
    const row = await rowsOf(ctx.stack.app).session(merchantBizId);
    assert.ok(row.upstreamRequestId);
    assert.equal(line.msg, 'request completed');
    assert.deepEqual(
      { method: line.req?.method, url: line.req?.url, route: line.route, statusCode: line.statusCode, merchantBizId: line.merchantBizId, upstreamRequestId: line.upstreamRequestId },
      { method: 'POST', url: '/kyc/start', route: '/kyc/start', statusCode: 201, merchantBizId, upstreamRequestId: row.upstreamRequestId },
    );
    assert.equal(typeof line.durationMs, 'number');
    assert.ok(!lines().some((l) => l.msg === 'incoming request'), 'no separate arrival line');
  });

  test('a failed upstream call still names its RequestId; a route with a path parameter logs its pattern', async () => {
    const token = await signToken(randomId('user-'));
    await ctx.api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'x' });
    const failed = await ctx.api.start(token, { metaInfo: META_INFO });
    assert.equal(failed.status, 502);
    const line = await completionOf(failed.headers.get('x-request-id')!);
    assert.equal(line.statusCode, 502);
    assert.match(line.upstreamRequestId ?? '', /\S/);
    assert.equal(line.level, 40, '5xx completion lines are warnings');

    const merchantBizId = randomId('rl');
    const read = await ctx.api.session(token, merchantBizId);
    const readLine = await completionOf(read.headers.get('x-request-id')!);
    assert.deepEqual(
      { route: readLine.route, url: readLine.req?.url, statusCode: readLine.statusCode, merchantBizId: readLine.merchantBizId, upstream: readLine.upstreamRequestId },
      { route: '/kyc/sessions/:merchantBizId', url: `/kyc/sessions/${merchantBizId}`, statusCode: 404, merchantBizId, upstream: undefined },
    );
  });

  test('a request id that is not sane is replaced by a new one (and that one is echoed)', async () => {
    for (const bad of ['has space', 'x'.repeat(65), 'a:b', 'a/b', 'a=b+c', '<script>', 'ünïcode', '']) {
      const res = await fetch(`${ctx.stack.appUrl}/healthz`, { headers: { 'x-request-id': bad } });
      const id = res.headers.get('x-request-id') ?? '';
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `for ${JSON.stringify(bad.slice(0, 20))}`);
      const line = await completionOf(id);
      assert.equal(line.route, '/healthz');
    }
    // Without the header: a fresh id per request.
    const a = (await fetch(`${ctx.stack.appUrl}/healthz`)).headers.get('x-request-id');
    const b = (await fetch(`${ctx.stack.appUrl}/healthz`)).headers.get('x-request-id');
    assert.ok(a && b && a !== b);
  });

  test('errors and unknown routes get one line too; a merchantBizId that is not valid is not logged', async () => {
    const token = await signToken(randomId('user-'));
    const invalid = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId: 'not valid!' }, { 'x-request-id': 'invalid-1' });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.headers.get('x-request-id'), 'invalid-1');
    const line = await completionOf('invalid-1');
    assert.equal(line.statusCode, 400);
    assert.equal(line.merchantBizId, undefined);

    const missing = await fetch(`${ctx.stack.appUrl}/no/such/route?token=secret`, { headers: { 'x-request-id': 'missing-1' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-request-id'), 'missing-1');
    const missingLine = await completionOf('missing-1');
    assert.equal(missingLine.route, undefined);
    assert.equal(missingLine.req?.url, '/no/such/route');
  });
});
