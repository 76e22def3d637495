import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { userRef } from '../src/auth/user-ref.js';
import { hashCallbackToken } from '../src/sessions/callback-token.js';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId } from './helpers/stack.js';
import { rowsOf } from './helpers/rows.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack();

const newUser = () => randomId('user-');
const tokenFor = (sub = newUser()) => signToken(sub);
const rows = () => rowsOf(ctx.stack.app);
const initializeCalls = async () => (await ctx.api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;

describe('POST /kyc/start', () => {
  test('starts a verification: 201 with the transaction, stored in Postgres with a 30-minute expiry', async () => {
    const sub = newUser();
    const before = Date.now();
    const res = await ctx.api.start(await signToken(sub), { metaInfo: META_INFO, merchantBizId: randomId('biz') });
    assert.equal(res.status, 201);
    const b = res.body as Record<string, string>;
    assert.match(b.transactionId!, /^hksb[0-9a-f]+$/);
    assert.ok(b.transactionUrl!.includes(b.transactionId!));
    assert.ok(b.protocol);
    const expiresAt = Date.parse(b.expiresAt!);
    assert.ok(expiresAt >= before + 30 * 60_000 - 1000 && expiresAt <= Date.now() + 30 * 60_000 + 1000);

    const row = await rows().session(b.merchantBizId!);
    assert.equal(row.transactionId, b.transactionId);
    assert.equal(row.transactions.length, 1);
    assert.equal(row.transactions[0]!.transactionUrl, b.transactionUrl);
    assert.equal(row.transactions[0]!.transactionId, b.transactionId);
    assert.equal(row.status, 'pending');
    assert.equal(row.userRef, userRef(ctx.stack.config.USER_ID_HASH_SECRET, sub));
    assert.equal(row.expiresAt.toISOString(), b.expiresAt);
  });

  test('generates a merchantBizId (32 letters/digits) when none is given', async () => {
    const res = await ctx.api.start(await tokenFor());
    assert.equal(res.status, 201);
    assert.match(String(res.body.merchantBizId), /^[A-Za-z0-9]{32}$/);
  });

  test('sends MetaInfo byte for byte, a hashed MerchantUserId, policy and a per-transaction CallbackToken', async () => {
    const sub = 'alice@example.com';
    const metaInfo = '{ "zimVer":"3.0.0",  "deviceType":"h5", "note":"spaces & ünïcode *!()~\'" }';
    const res = await ctx.api.start(await signToken(sub), { metaInfo, docType: '00000008', showOcrResult: false, showAlbumIcon: true, sceneCode: 'signup_1' });
    assert.equal(res.status, 201);
    const tx = (await ctx.api.sim.transaction(String(res.body.transactionId))).body;
    const p = tx.params;
    assert.equal(p.MetaInfo, metaInfo);
    assert.equal(p.MerchantUserId, userRef(ctx.stack.config.USER_ID_HASH_SECRET, sub));
    assert.ok(!JSON.stringify(p).includes(sub), 'the raw user id never reaches Alibaba');
    assert.equal(p.ProductCode, 'eKYC');
    assert.equal(p.SecurityLevel, '02');
    assert.equal(p.Model, 'LIVENESS');
    assert.equal(p.IdSpoof, 'Y');
    assert.equal(p.DocType, '00000008');
    assert.equal(p.ShowOcrResult, '0');
    assert.equal(p.ShowAlbumIcon, '1');
    assert.equal(p.SceneCode, 'signup_1');
    const row = await rows().session(String(res.body.merchantBizId));
    assert.equal(p.CallbackUrl, `${ctx.stack.appUrl}/kyc/callback?sessionId=${row.id}&attempt=1`);
    assert.match(p.CallbackToken!, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');

    assert.equal(row.transactions[0]!.callbackTokenHash, hashCallbackToken(p.CallbackToken!));
    assert.ok(!JSON.stringify(row).includes(p.CallbackToken!), 'only the hash is stored');
  });

  test('accepts metaInfo as an object and sends it as JSON text', async () => {
    const res = await ctx.api.start(await tokenFor(), { metaInfo: { zimVer: '3.0.0', deviceType: 'h5' } });
    assert.equal(res.status, 201);
    const tx = (await ctx.api.sim.transaction(String(res.body.transactionId))).body;
    assert.deepEqual(JSON.parse(tx.params.MetaInfo!), { zimVer: '3.0.0', deviceType: 'h5' });
  });

  test('two starts get different callback tokens', async () => {
    const token = await tokenFor();
    const a = await ctx.api.start(token);
    const b = await ctx.api.start(token);
    const ta = (await ctx.api.sim.transaction(String(a.body.transactionId))).body.params.CallbackToken;
    const tb = (await ctx.api.sim.transaction(String(b.body.transactionId))).body.params.CallbackToken;
    assert.ok(ta && tb && ta !== tb);
  });
});

describe('POST /kyc/start validation', () => {
  const invalid: Array<[string, unknown, string]> = [
    ['metaInfo missing', {}, 'metaInfo'],
    ['metaInfo not JSON', { metaInfo: '{not json' }, 'metaInfo'],
    ['metaInfo a JSON array', { metaInfo: '[1,2]' }, 'metaInfo'],
    ['metaInfo a JSON string', { metaInfo: '"x"' }, 'metaInfo'],
    ['metaInfo null', { metaInfo: null }, 'metaInfo'],
    ['metaInfo over 8 KB', { metaInfo: JSON.stringify({ a: 'x'.repeat(8200) }) }, 'metaInfo'],
    ['merchantBizId with a dash', { metaInfo: META_INFO, merchantBizId: 'abc-123' }, 'merchantBizId'],
    ['merchantBizId of 33 characters', { metaInfo: META_INFO, merchantBizId: 'a'.repeat(33) }, 'merchantBizId'],
    ['merchantBizId empty', { metaInfo: META_INFO, merchantBizId: '' }, 'merchantBizId'],
    ['docType unknown', { metaInfo: META_INFO, docType: '12345678' }, 'docType'],
    ['returnUrl not a URL', { metaInfo: META_INFO, returnUrl: 'shop' }, 'returnUrl'],
    ['returnUrl javascript:', { metaInfo: META_INFO, returnUrl: 'javascript:alert(1)' }, 'returnUrl'],
    ['sceneCode of 11 characters', { metaInfo: META_INFO, sceneCode: 'a'.repeat(11) }, 'sceneCode'],
    ['sceneCode with a dash', { metaInfo: META_INFO, sceneCode: 'a-b' }, 'sceneCode'],
    ['languageConfig not JSON', { metaInfo: META_INFO, languageConfig: 'x' }, 'languageConfig'],
    ['showOcrResult not boolean', { metaInfo: META_INFO, showOcrResult: '1' }, 'showOcrResult'],
    ['procedurePriority unknown', { metaInfo: META_INFO, procedurePriority: 'fast' }, 'procedurePriority'],
  ];
  for (const [name, body, field] of invalid) {
    test(`400 VALIDATION_ERROR: ${name}`, async () => {
      const calls = await initializeCalls();
      const res = await ctx.api.start(await tokenFor(), body);
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'VALIDATION_ERROR');
      assert.ok(JSON.stringify(res.body.details).includes(field), `details name ${field}: ${JSON.stringify(res.body)}`);
      assert.equal(await initializeCalls(), calls, 'nothing reached Alibaba');
    });
  }

  const policyFields = ['ProductCode', 'productCode', 'SecurityLevel', 'securityLevel', 'Model', 'model', 'IdSpoof', 'idSpoof', 'Authorize',
    'IdThreshold', 'AppQualityCheck', 'DocVideo', 'CallbackUrl', 'callbackUrl', 'CallbackToken', 'callbackToken', 'MerchantUserId'];
  for (const field of policyFields) {
    test(`400: policy field ${field} in the body is refused and never reaches Alibaba`, async () => {
      const calls = await initializeCalls();
      const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, [field]: 'attacker' });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, 'VALIDATION_ERROR');
      assert.ok(JSON.stringify(res.body).includes(field));
      assert.equal(await initializeCalls(), calls);
    });
  }

  test('400 DOC_TYPE_NOT_ALLOWED for a documented doc type the merchant does not accept', async () => {
    const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, docType: '00000001' });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'DOC_TYPE_NOT_ALLOWED');
  });

  test('returnUrl must be on an allowed origin', async () => {
    const bad = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, returnUrl: 'https://evil.example/done' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'RETURN_URL_NOT_ALLOWED');
    const lookalike = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, returnUrl: 'https://shop.example.evil.example/' });
    assert.equal(lookalike.body.code, 'RETURN_URL_NOT_ALLOWED');
    const good = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, returnUrl: 'https://shop.example/kyc/done?x=1' });
    assert.equal(good.status, 201);
    const tx = (await ctx.api.sim.transaction(String(good.body.transactionId))).body;
    assert.equal(tx.params.ReturnUrl, 'https://shop.example/kyc/done?x=1');
  });

  test('a body that is not JSON → 400 with a code; a huge body → 413', async () => {
    const notJson = await ctx.api.start(await tokenFor(), '{"metaInfo":');
    assert.equal(notJson.status, 400);
    assert.equal(typeof notJson.body.code, 'string');
    const huge = await ctx.api.start(await tokenFor(), JSON.stringify({ metaInfo: META_INFO, pad: 'x'.repeat(100_000) }));
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, 'BODY_TOO_LARGE');
  });
});

describe('POST /kyc/start idempotency', () => {
  test('the same user repeating a live merchantBizId gets the same transaction without a new Initialize', async () => {
    const token = await tokenFor();
    const merchantBizId = randomId('idem');
    const first = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.equal(first.status, 201);
    const calls = await initializeCalls();
    const again = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    assert.equal(await initializeCalls(), calls, 'no second Initialize (no double billing)');
  });

  test('concurrent starts with one merchantBizId make one Initialize', async () => {
    const token = await tokenFor();
    const merchantBizId = randomId('conc');
    const calls = await initializeCalls();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => ctx.api.start(token, { metaInfo: META_INFO, merchantBizId })));
    assert.equal(results.filter((r) => r.status === 201).length, 1);
    for (const r of results.filter((r) => r.status !== 201)) {
      assert.ok(r.status === 200 || (r.status === 409 && r.body.code === 'SESSION_STARTING'), JSON.stringify(r.body));
    }
    assert.equal((await initializeCalls()) - calls, 1);
  });

  test("another user's merchantBizId is theirs: each user gets a session and a transaction of their own", async () => {
    const merchantBizId = randomId('shared');
    const [alice, bob] = [newUser(), newUser()];
    const a = await ctx.api.start(await signToken(alice), { metaInfo: META_INFO, merchantBizId });
    const b = await ctx.api.start(await signToken(bob), { metaInfo: META_INFO, merchantBizId });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201, 'the second user is not told the id exists');
    assert.notEqual(a.body.transactionId, b.body.transactionId);
    const sessions = await ctx.stack.app.prisma.kycSession.findMany({ where: { merchantBizId } });
    assert.equal(sessions.length, 2);
    assert.notEqual(sessions[0]!.id, sessions[1]!.id);
    const secret = ctx.stack.config.USER_ID_HASH_SECRET;
    assert.deepEqual(new Set(sessions.map((s) => s.userRef)), new Set([userRef(secret, alice), userRef(secret, bob)]));
    // Each reads only their own; a repeat by either returns their own transaction.
    assert.equal((await ctx.api.session(await signToken(alice), merchantBizId)).body.transactionId, a.body.transactionId);
    assert.equal((await ctx.api.session(await signToken(bob), merchantBizId)).body.transactionId, b.body.transactionId);
    assert.equal((await ctx.api.start(await signToken(bob), { metaInfo: META_INFO, merchantBizId })).body.transactionId, b.body.transactionId);
  });

  test('an expired merchantBizId → 409 SESSION_EXPIRED', async () => {
    const token = await tokenFor();
    const merchantBizId = randomId('exp');
    assert.equal((await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId })).status, 201);
    await rows().expire(merchantBizId);
    const res = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'SESSION_EXPIRED');
  });

  test('a failed merchantBizId → 409 SESSION_FAILED', async () => {
    const token = await tokenFor();
    const merchantBizId = randomId('fail');
    await ctx.api.sim.fault({ action: 'Initialize', status: 500, code: 'InternalError' });
    assert.equal((await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId })).status, 502);
    const res = await ctx.api.start(token, { metaInfo: META_INFO, merchantBizId });
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'SESSION_FAILED');
  });
});

describe('POST /kyc/start persistence and upstream errors', () => {
  test('the session row exists before Initialize is answered', async () => {
    const merchantBizId = randomId('order');
    await ctx.api.sim.fault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 800 });
    const pending = ctx.api.start(await tokenFor(), { metaInfo: META_INFO, merchantBizId });
    await new Promise((r) => setTimeout(r, 400));
    const row = await rows().sessionOrNull(merchantBizId);
    assert.ok(row, 'reserved before the upstream call returned');
    assert.equal(row.status, 'pending');
    assert.equal(row.transactionId, null);
    const res = await pending;
    assert.equal(res.status, 201);
    const done = await rows().session(merchantBizId);
    assert.equal(done.transactionId, res.body.transactionId);
  });

  const mappings: Array<{ name: string; fault: { status: number; code: string; message?: string; retryAfterMs?: number; count?: number }; status: number; code: string }> = [
    { name: 'InvalidParameter (our request) → 502', fault: { status: 400, code: 'InvalidParameter', message: 'DocType is invalid' }, status: 502, code: 'UPSTREAM_REJECTED' },
    { name: 'MissingParameter → 502', fault: { status: 400, code: 'MissingParameter', message: 'MerchantUserId is mandatory' }, status: 502, code: 'UPSTREAM_REJECTED' },
    { name: 'InvalidParameter naming MetaInfo (the caller\'s input) → 400', fault: { status: 400, code: 'InvalidParameter', message: 'MetaInfo is invalid' }, status: 400, code: 'INVALID_META_INFO' },
    { name: 'HTTP 200 with Code InvalidParameter is an error', fault: { status: 200, code: 'InvalidParameter' }, status: 502, code: 'UPSTREAM_REJECTED' },
    { name: 'Forbidden.AccountAccessDenied → 503', fault: { status: 403, code: 'Forbidden.AccountAccessDenied' }, status: 503, code: 'UPSTREAM_ACCESS_DENIED' },
    { name: 'Forbidden.RAMUserAccessDenied → 503', fault: { status: 403, code: 'Forbidden.RAMUserAccessDenied' }, status: 503, code: 'UPSTREAM_ACCESS_DENIED' },
    { name: 'Throttling.Api beyond the deadline → 503 with Retry-After', fault: { status: 403, code: 'Throttling.Api', retryAfterMs: 2500, count: 2 }, status: 503, code: 'UPSTREAM_THROTTLED' },
    { name: 'InternalError → 502', fault: { status: 500, code: 'InternalError' }, status: 502, code: 'UPSTREAM_ERROR' },
    { name: 'a body that is not JSON → 502', fault: { status: 502, code: 'NON_JSON' }, status: 502, code: 'UPSTREAM_ERROR' },
    { name: 'a dropped connection → 504 (outcome unknown)', fault: { status: 500, code: 'CONNECTION_RESET' }, status: 504, code: 'UPSTREAM_TIMEOUT' },
  ];
  for (const m of mappings) {
    test(`upstream ${m.name}; the session records the failure`, async () => {
      const merchantBizId = randomId('map');
      await ctx.api.sim.fault({ action: 'Initialize', ...m.fault });
      const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, merchantBizId });
      assert.equal(res.status, m.status, JSON.stringify(res.body));
      assert.equal(res.body.code, m.code);
      assert.equal(typeof res.body.message, 'string');
      if (m.code === 'UPSTREAM_THROTTLED') assert.equal(res.headers.get('retry-after'), '3');
      const row = await rows().session(merchantBizId);
      assert.equal(row.status, 'error');
      assert.equal(row.errorCode, m.code);
    });
  }

  test('Throttling.Api from Alibaba (another system on the account) is retried after x-acs-retry-after', async () => {
    const before = (await ctx.api.sim.calls()).body.length;
    await ctx.api.sim.fault({ action: 'Initialize', status: 403, code: 'Throttling.Api', retryAfterMs: 300, count: 2 });
    const t0 = Date.now();
    const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO });
    assert.equal(res.status, 201);
    assert.ok(Date.now() - t0 >= 600, 'waited what Alibaba asked, twice');
    const calls = (await ctx.api.sim.calls()).body.slice(before).filter((c) => c.action === 'Initialize');
    assert.deepEqual(calls.map((c) => c.code), ['Throttling.Api', 'Throttling.Api', 'Success']);
  });

  test('a timeout is never retried (Initialize may have created a transaction)', async () => {
    const before = (await ctx.api.sim.calls()).body.length;
    await ctx.api.sim.fault({ action: 'Initialize', status: 500, code: 'CONNECTION_RESET' });
    const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO });
    assert.equal(res.status, 504);
    const calls = (await ctx.api.sim.calls()).body.slice(before).filter((c) => c.action === 'Initialize');
    assert.equal(calls.length, 1);
  });

  test('an upstream that hangs past the deadline → 504 UPSTREAM_TIMEOUT in time', async () => {
    const merchantBizId = randomId('hang');
    await ctx.api.sim.fault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 6000 });
    const t0 = Date.now();
    const res = await ctx.api.start(await tokenFor(), { metaInfo: META_INFO, merchantBizId });
    const took = Date.now() - t0;
    assert.equal(res.status, 504);
    assert.equal(res.body.code, 'UPSTREAM_TIMEOUT');
    assert.ok(took < ctx.stack.config.CLOUDAUTH_TIMEOUT_MS + 1000, `answered after ${took} ms`);
  });

  test('upstream errors log the RequestId but never the query string', async () => {
    await ctx.api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'DocType is invalid' });
    await ctx.api.start(await tokenFor(), { metaInfo: META_INFO });
    const line = ctx.stack.logs.lines.map((l) => JSON.parse(l) as Record<string, any>).findLast((l) => l.msg === 'Initialize failed');
    assert.ok(line, 'a log line for the failure');
    assert.match(String(line.upstream.requestId), /[0-9A-F-]{8,}/);
    assert.ok(!ctx.stack.logs.text.includes('zimVer'), 'MetaInfo never logged');
  });
});
