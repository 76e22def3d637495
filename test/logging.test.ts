import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { META_INFO, startStack, type Stack } from './helpers/stack.js';

let stack: Stack;
before(async () => {
  stack = await startStack({ env: { LOG_LEVEL: 'trace' } });
});
after(() => stack.close());

test('a full flow logs JSON lines without tokens, secrets, MetaInfo or user ids', async () => {
  const api = clientFor(stack);
  const sub = 'carol.user-id-42@example.com';
  const jwt = await signToken(sub);
  const res = await api.start(jwt, { metaInfo: META_INFO });
  assert.equal(res.status, 201);
  const transactionId = String(res.body.transactionId);
  const callbackToken = (await api.sim.transaction(transactionId)).body.params.CallbackToken!;
  await api.sim.complete(transactionId, 'Y', '200');
  await api.callback({ transactionId, passed: 'N', callbackToken }); // tamper attempt, logged
  await api.session(jwt, String(res.body.merchantBizId));
  await api.start(jwt, { metaInfo: META_INFO, ProductCode: 'x' }); // validation failure
  await api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'x' });
  await api.start(jwt, { metaInfo: META_INFO }); // upstream failure

  const lines = stack.logs.lines;
  assert.ok(lines.length > 10);
  for (const line of lines) JSON.parse(line); // every line is JSON
  const text = stack.logs.text;
  for (const secret of [jwt, sub, callbackToken, stack.config.ALIBABA_CLOUD_ACCESS_KEY_SECRET, stack.config.AUTH_JWT_SECRET!, stack.config.USER_ID_HASH_SECRET, 'zimVer', 'bioMetaInfo']) {
    assert.ok(!text.includes(secret), `logs contain ${secret.slice(0, 12)}…`);
  }
  assert.ok(text.includes('/kyc/callback'), 'requests are logged (by path)');
});

test('a forged callback is logged at debug (a flood must not flood the logs); a refused genuine one at info', async () => {
  const lineOf = (requestId: string) =>
    stack.logs.lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string; level?: number }).find((l) => l.reqId === requestId && l.msg === 'request completed');
  const call = (requestId: string, callbackToken: string) =>
    fetch(`${stack.appUrl}/kyc/callback?${new URLSearchParams({ transactionId: 'hksbnone', passed: 'Y', callbackToken })}`, { headers: { 'x-request-id': requestId } });
  assert.equal((await call('forged-callback-1', 'A'.repeat(43))).status, 403);
  assert.equal((await call('genuine-callback-1', stack.app.callbackTokens.issue().token)).status, 403);
  assert.equal(lineOf('forged-callback-1')?.level, 20);
  assert.equal(lineOf('genuine-callback-1')?.level, 30);
});
