/**
 * Alibaba checks the CallbackUrl before Initialize (a 400 when it is "not accessible"), and spells
 * its callback's fields more than one way. The service answers the check at once and accepts every
 * spelling; the simulator does both as configured, so a regression fails here.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, waitFor, withStack } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack();
const probesCounted = async (method: string) => {
  const text = await ctx.stack.app.metrics.registry.metrics();
  return Number(new RegExp(`kyc_callback_probes_total\\{method="${method}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};

describe('the CallbackUrl reachability probe', () => {
  test('GET and HEAD without result fields, with or without our own parameters: 200 at once, nothing written, counted, not a rejection', async () => {
    const token = await signToken(randomId('user-'));
    const started = await ctx.api.start(token, { metaInfo: META_INFO });
    const row = await rowsOf(ctx.stack.app).session(String(started.body.merchantBizId));
    const before = JSON.stringify(row);
    const [gets, heads] = [await probesCounted('GET'), await probesCounted('HEAD')];
    const logLines = ctx.stack.logs.lines.length;

    for (const query of ['', `?sessionId=${row.id}&attempt=1`, '?sessionId=not-a-uuid&attempt=x', '?merchantBizId=abc']) {
      const get = await fetch(`${ctx.stack.appUrl}/kyc/callback${query}`);
      assert.equal(get.status, 200, query);
      assert.deepEqual(await get.json(), { result: 'reachable' });
      const head = await fetch(`${ctx.stack.appUrl}/kyc/callback${query}`, { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${query}`);
    }
    assert.equal(await probesCounted('GET'), gets + 4);
    assert.equal(await probesCounted('HEAD'), heads + 4);
    assert.equal(JSON.stringify(await rowsOf(ctx.stack.app).session(String(started.body.merchantBizId))), before, 'nothing written');
    const lines = ctx.stack.logs.lines.slice(logLines);
    assert.ok(!lines.some((l) => l.includes('callback rejected') || l.includes('"level":40') || l.includes('"level":50')), lines.join('\n'));
  });

  test('some but not all of the result fields: refused as before (400)', async () => {
    for (const query of ['transactionId=hksb1', 'passed=Y', 'subCode=200', 'Passed=Y&SubCode=200', 'transactionId=hksb1&passed=Y']) {
      const res = await ctx.api.callback(Object.fromEntries(new URLSearchParams(query)));
      assert.deepEqual([res.status, res.body.code], [400, 'VALIDATION_ERROR'], query);
    }
    // A token this service never made is refused first, whatever else is missing (as before).
    const forged = await ctx.api.callback({ CallbackToken: 'x' });
    assert.deepEqual([forged.status, forged.body.code], [403, 'CALLBACK_REJECTED']);
  });

  test('the simulator probes every Initialize (GET, as registered): the service answers, so starts go through', async () => {
    await fetch(`${ctx.stack.simUrl}/__sim/probes`, { method: 'DELETE' });
    const res = await ctx.api.start(await signToken(randomId('user-')), { metaInfo: META_INFO });
    assert.equal(res.status, 201);
    const probes = (await (await fetch(`${ctx.stack.simUrl}/__sim/probes`)).json()) as Array<{ url: string; status?: number }>;
    const sessionId = (await rowsOf(ctx.stack.app).session(String(res.body.merchantBizId))).id;
    assert.deepEqual(probes.map((p) => [p.url, p.status]), [[`${ctx.stack.appUrl}/kyc/callback?sessionId=${sessionId}&attempt=1`, 200]]);
  });

  test('a broken callback route makes starts fail: the simulator refuses Initialize (InvalidParameter), the start answers 502', async () => {
    // A public base URL whose /kyc/callback answers 404, as a misrouted proxy would.
    const broken = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    try {
      const publicBase = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
      await withStack({ env: { PUBLIC_BASE_URL: publicBase } }, async (stack) => {
        const api = clientFor(stack);
        const merchantBizId = randomId('broken');
        const res = await api.start(await signToken(randomId('user-')), { metaInfo: META_INFO, merchantBizId });
        assert.deepEqual([res.status, res.body.code], [502, 'UPSTREAM_REJECTED']);
        const calls = (await api.sim.calls()).body;
        assert.deepEqual(calls.map((c) => [c.action, c.code]), [['Initialize', 'InvalidParameter']]);
        assert.equal((await rowsOf(stack.app).session(merchantBizId)).status, 'error');
        assert.ok(stack.logs.lines.some((l) => l.includes('Initialize failed') && l.includes('InvalidParameter')));
      });
    } finally {
      broken.close();
    }
  });
});

describe("every spelling of Alibaba's callback fields", () => {
  for (const spelling of ['pascal', 'docs'] as const) {
    test(`a simulator spelling them ${spelling}: the verification completes`, async () => {
      await withStack({ simCallbackSpelling: spelling }, async (stack) => {
        const api = clientFor(stack);
        const token = await signToken(randomId('user-'));
        const res = await api.start(token, { metaInfo: META_INFO });
        const done = await api.sim.complete(String(res.body.transactionId), 'Y', '200');
        assert.equal(done.body.delivery.status, 200);
        const names = [...new URL(done.body.delivery.url).searchParams.keys()];
        assert.ok(names.includes('CallbackToken'), `the ${spelling} spelling names the token CallbackToken: ${names.join(',')}`);
        const merchantBizId = String(res.body.merchantBizId);
        await waitFor('passed', async () => ((await api.session(token, merchantBizId)).body.status === 'passed' ? true : undefined));
        const tx = await rowsOf(stack.app).transaction(merchantBizId);
        assert.deepEqual([tx.callbackPassed, tx.callbackSubCode], ['Y', '200']);
      });
    });
  }

  test('each field under each spelling is accepted; a field under two spellings is refused', async () => {
    const token = await signToken(randomId('user-'));
    const start = async () => {
      const res = await ctx.api.start(token, { metaInfo: META_INFO });
      const transactionId = String(res.body.transactionId);
      return { transactionId, callbackToken: (await ctx.api.sim.transaction(transactionId)).body.params.CallbackToken! };
    };
    const a = await start();
    const mixed = await ctx.api.callback({ TransactionId: a.transactionId, Passed: 'N', subcode: '201', CallbackToken: a.callbackToken });
    assert.deepEqual([mixed.status, mixed.body.result], [200, 'recorded']);
    const again = await ctx.api.callback({ transactionId: a.transactionId, passed: 'N', SubCode: '201', callbackToken: a.callbackToken });
    assert.deepEqual([again.status, again.body.result], [200, 'duplicate'], 'the same callback under other spellings is a redelivery');

    const b = await start();
    const base = { transactionId: b.transactionId, passed: 'Y', callbackToken: b.callbackToken };
    for (const [name, extra] of [
      ['token twice', { CallbackToken: b.callbackToken }],
      ['transactionId twice', { TransactionId: b.transactionId }],
      ['passed twice', { Passed: 'Y' }],
      ['subCode twice', { subCode: '200', subcode: '200' }],
    ] as const) {
      const res = await ctx.api.callback({ ...base, ...extra });
      assert.deepEqual([res.status, res.body.code], [400, 'VALIDATION_ERROR'], name);
      assert.match(JSON.stringify(res.body), /given twice/, name);
    }
    assert.equal((await rowsOf(ctx.stack.app).transaction((await ctx.stack.app.prisma.kycTransaction.findFirstOrThrow({ where: { transactionId: b.transactionId }, include: { session: true } })).session.merchantBizId)).callbackPassed, null);
  });
});
