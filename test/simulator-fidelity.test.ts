/**
 * The simulator against Alibaba's documentation: the CallbackUrl reachability check, the
 * callback's spellings, the single-use TransactionUrl, the account-wide QPS limit, CheckResult's
 * fields, eKYC_PRO and the MetaInfo shapes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { buildSimulator, type CallbackSpelling, type Simulator } from '../src/simulator/index.js';
import { WEB_META_INFO } from './helpers/stack.js';
import {
  AK_ID,
  AK_SECRET,
  callApi,
  control,
  expectApiError,
  hostPortOf,
  initializeQuery,
  makeClient,
  startCallbackReceiver,
  startServer,
  type AnyError,
  useSimulator,
} from './helpers/sim-client.js';

async function initialize(ctx: { client: unknown }, overrides: Record<string, string | undefined> = {}) {
  const response = await callApi(ctx.client, 'Initialize', initializeQuery(overrides));
  assert.equal(response.body.Code, 'Success');
  return response.body.Result as { TransactionId: string; TransactionUrl: string };
}

// ---------------------------------------------------------------- 1. CallbackUrl probe

describe('CallbackUrl reachability check at Initialize', () => {
  const ctx = useSimulator();
  /** What the merchant's endpoint does with the next requests. */
  let behaviour: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  let merchant: Awaited<ReturnType<typeof startServer>>;
  const seen: string[] = [];
  before(async () => {
    merchant = await startServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      behaviour(req, res);
    });
  });
  after(() => merchant.close());

  const transactions = () => ctx.sim.store.list().length;
  const lastProbe = () => ctx.sim.probes.list().at(-1);

  async function refused(callbackUrl: string) {
    const before = transactions();
    const err = await expectApiError(
      callApi(ctx.client, 'Initialize', initializeQuery({ CallbackUrl: callbackUrl })),
      { name: 'ClientError', code: 'InvalidParameter', statusCode: 400 },
    );
    assert.match(err.data.Message, /"CallbackUrl".*not accessible/);
    assert.equal(transactions(), before, 'nothing created');
    return err;
  }

  test('a 2xx answer: Initialize succeeds; the probe was a GET of the URL exactly as registered', async () => {
    behaviour = (_req, res) => res.writeHead(204).end();
    seen.length = 0;
    const callbackUrl = `${merchant.url}/kyc/callback?merchantBizId=abc&sig=a%2Bb`;
    const result = await initialize(ctx, { CallbackUrl: callbackUrl, CallbackToken: 'tok-1' });
    assert.deepEqual(seen, ['GET /kyc/callback?merchantBizId=abc&sig=a%2Bb'], 'no fields added, query untouched');

    const probe = lastProbe();
    assert.ok(probe);
    assert.equal(probe.url, callbackUrl);
    assert.equal(probe.status, 204);
    assert.equal(probe.ok, true);
    assert.ok(probe.durationMs >= 0 && probe.durationMs < 3000);
    const view = await control(ctx.baseUrl, 'GET', `/__sim/transactions/${result.TransactionId}`);
    assert.equal(view.body.callbackProbe.status, 204);
    const probes = await control(ctx.baseUrl, 'GET', '/__sim/probes');
    assert.equal(probes.body.at(-1).url, callbackUrl);
  });

  for (const status of [400, 404, 500]) {
    test(`an HTTP ${status} answer: InvalidParameter, nothing created`, async () => {
      behaviour = (_req, res) => res.writeHead(status).end('no');
      const err = await refused(`${merchant.url}/kyc/callback`);
      assert.match(err.data.Message, new RegExp(`HTTP ${status}`));
      assert.equal(lastProbe()?.status, status);
      assert.equal(lastProbe()?.ok, false);
    });
  }

  test('a redirect is not followed: InvalidParameter', async () => {
    behaviour = (req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: '/ok' }).end();
      else res.writeHead(200).end();
    };
    seen.length = 0;
    await refused(`${merchant.url}/moved`);
    assert.deepEqual(seen, ['GET /moved']);
    assert.equal(lastProbe()?.status, 302);
  });

  test('a refused connection: InvalidParameter', async () => {
    const closed = await startServer(() => {});
    const url = `${closed.url}/kyc/callback`;
    await closed.close();
    await refused(url);
    assert.match(lastProbe()?.error ?? '', /ECONNREFUSED/);
  });

  test('no answer within 3 s: InvalidParameter after the timeout', async () => {
    behaviour = () => {}; // never answers
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 0 });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      const started = performance.now();
      const err = await expectApiError(
        callApi(client, 'Initialize', initializeQuery({ CallbackUrl: `${merchant.url}/slow` }), { readTimeout: 10_000, connectTimeout: 10_000 }),
        { name: 'ClientError', code: 'InvalidParameter', statusCode: 400 },
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 2900 && elapsed < 8000, `answered after ${Math.round(elapsed)} ms`);
      assert.match(err.data.Message, /"CallbackUrl".*not accessible.*timed out/);
      assert.deepEqual(sim.store.list(), [], 'nothing created');
      const [probe] = sim.probes.list();
      assert.equal(probe?.status, undefined);
      assert.match(probe?.error ?? '', /TimeoutError/);
    } finally {
      await sim.close();
    }
  });

  test('a call refused at its probe still counted against the QPS limit (on arrival)', async () => {
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 1 });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      behaviour = (_req, res) => res.writeHead(500).end();
      await expectApiError(callApi(client, 'Initialize', initializeQuery({ CallbackUrl: `${merchant.url}/cb` })), {
        code: 'InvalidParameter',
      });
      await expectApiError(callApi(client, 'Initialize', initializeQuery()), { code: 'Throttling.Api' });
    } finally {
      await sim.close();
    }
  });

  test('no CallbackUrl, or a request refused for another reason: no probe', async () => {
    behaviour = (_req, res) => res.writeHead(200).end();
    seen.length = 0;
    const probes = ctx.sim.probes.list().length;
    await initialize(ctx);
    await expectApiError(callApi(ctx.client, 'Initialize', initializeQuery({ CallbackUrl: `${merchant.url}/cb`, DocType: 'bad' })), {
      code: 'InvalidParameter',
    });
    assert.deepEqual(seen, []);
    assert.equal(ctx.sim.probes.list().length, probes);
  });

  test('probeCallbackUrl: false sends no probe (an unreachable CallbackUrl is accepted)', async () => {
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 0, probeCallbackUrl: false });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      seen.length = 0;
      const ok = await callApi(client, 'Initialize', initializeQuery({ CallbackUrl: `${merchant.url}/cb` }));
      assert.equal(ok.body.Code, 'Success');
      const unreachable = await callApi(client, 'Initialize', initializeQuery({ CallbackUrl: 'https://merchant.invalid/cb' }));
      assert.equal(unreachable.body.Code, 'Success');
      assert.deepEqual(seen, []);
      assert.deepEqual(sim.probes.list(), []);
    } finally {
      await sim.close();
    }
  });
});

// ---------------------------------------------------------------- 2. spellings

describe('callback spelling presets', () => {
  const expected: Record<CallbackSpelling, string[]> = {
    camel: ['transactionId', 'passed', 'subCode', 'callbackToken'],
    pascal: ['TransactionId', 'Passed', 'SubCode', 'CallbackToken'],
    docs: ['transactionId', 'passed', 'subcode', 'CallbackToken'],
  };
  const cases: Array<[string, CallbackSpelling | undefined, string[]]> = [
    ['the default', undefined, expected.camel],
    ...(Object.entries(expected) as Array<[CallbackSpelling, string[]]>).map(([name, keys]): [string, CallbackSpelling, string[]] => [name, name, keys]),
  ];
  for (const [label, spelling, keys] of cases) {
    test(`${label}: the callback adds ${keys.join(', ')}`, async () => {
      const receiver = await startCallbackReceiver();
      const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 0, ...(spelling ? { callbackSpelling: spelling } : {}) });
      try {
        const baseUrl = await sim.listen();
        const client = makeClient(hostPortOf(baseUrl));
        const init = await callApi(client, 'Initialize', initializeQuery({ CallbackUrl: `${receiver.url}/cb?shop=1`, CallbackToken: 'tok-9' }));
        const id = init.body.Result.TransactionId;
        const done = await control(baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'N', subCode: '205' });
        assert.equal(done.body.delivery.status, 200);

        const called = new URL(receiver.received.at(-1) ?? '', receiver.url);
        assert.deepEqual([...called.searchParams.keys()], ['shop', ...keys]);
        assert.deepEqual([...called.searchParams.values()], ['1', id, 'N', '205', 'tok-9']);
      } finally {
        await sim.close();
        await receiver.close();
      }
    });
  }
});

// ---------------------------------------------------------------- 3. single-use TransactionUrl

describe('the TransactionUrl can be used only once', () => {
  const ctx = useSimulator({ probeCallbackUrl: false });

  test('the first GET shows the page; later GETs an error page, even before completion; the form still completes', async () => {
    const { TransactionId: id, TransactionUrl: url } = await initialize(ctx, { MerchantBizId: 'once1' });
    const first = await fetch(url);
    assert.equal(first.status, 200);
    assert.match(await first.text(), />Pass</);

    const second = await fetch(url);
    assert.equal(second.status, 409);
    const html = await second.text();
    assert.match(html, /Verification exception/);
    assert.match(html, /already used/);
    assert.doesNotMatch(html, /<form/);

    const view = await control(ctx.baseUrl, 'GET', `/__sim/transactions/${id}`);
    assert.equal(view.body.opens, 2);
    assert.equal(typeof view.body.openedAt, 'number');
    assert.equal(view.body.state, 'pending');

    const form = { method: 'POST', body: new URLSearchParams({ passed: 'Y' }), redirect: 'manual' } as const;
    const submitted = await fetch(`${ctx.baseUrl}/verify/${id}/complete`, form);
    assert.equal(submitted.status, 200);
    assert.equal((await control(ctx.baseUrl, 'GET', `/__sim/transactions/${id}`)).body.state, 'completed');
    assert.equal((await fetch(url)).status, 409);
  });

  test('the form of a page never opened is refused; the control API completes without an open', async () => {
    const { TransactionId: id, TransactionUrl: url } = await initialize(ctx, { MerchantBizId: 'once2' });
    const form = { method: 'POST', body: new URLSearchParams({ passed: 'Y' }), redirect: 'manual' } as const;
    const unopened = await fetch(`${ctx.baseUrl}/verify/${id}/complete`, form);
    assert.equal(unopened.status, 409);
    assert.match(await unopened.text(), /not started from its link/);
    assert.equal((await control(ctx.baseUrl, 'GET', `/__sim/transactions/${id}`)).body.state, 'pending');

    const done = await control(ctx.baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'Y' });
    assert.equal(done.status, 200);
    assert.equal(done.body.transaction.opens, 0);
    assert.equal(done.body.transaction.openedAt, undefined);
    // Opened only now, once completed: the page has nothing to offer.
    const late = await fetch(url);
    assert.equal(late.status, 409);
    assert.match(await late.text(), /Already completed/);
  });
});

// ---------------------------------------------------------------- 4. the account's QPS limit

describe("the QPS limit is the account's, shared by its AccessKeys", () => {
  const QPS = 10;
  const ctx = {} as { sim: Simulator; a1: unknown; a2: unknown; b: unknown };
  before(async () => {
    ctx.sim = await buildSimulator({
      accessKeys: {
        'key-a1': { secret: 'secret-a1', account: 'account-a' },
        'key-a2': { secret: 'secret-a2', account: 'account-a' },
        'key-b': 'secret-b', // a plain secret: an account of its own
      },
      qps: QPS,
      probeCallbackUrl: false,
    });
    const hostPort = hostPortOf(await ctx.sim.listen());
    ctx.a1 = makeClient(hostPort, { id: 'key-a1', secret: 'secret-a1' });
    ctx.a2 = makeClient(hostPort, { id: 'key-a2', secret: 'secret-a2' });
    ctx.b = makeClient(hostPort, { id: 'key-b', secret: 'secret-b' });
  });
  after(() => ctx.sim.close());

  test(`two keys of one account share ${QPS} QPS: the 11th call within a second is Throttling.Api, whichever key; another account's key is not limited`, async () => {
    const burst = await Promise.all(
      Array.from({ length: QPS }, (_, i) => callApi(i % 2 === 0 ? ctx.a1 : ctx.a2, 'Initialize', initializeQuery())),
    );
    assert.deepEqual(burst.map((r) => r.body.Code), Array(QPS).fill('Success'));
    const byA1 = await expectApiError(callApi(ctx.a1, 'Initialize', initializeQuery()), { name: 'ThrottlingError', code: 'Throttling.Api' });
    const byA2 = await expectApiError(callApi(ctx.a2, 'Initialize', initializeQuery()), { name: 'ThrottlingError', code: 'Throttling.Api' });
    for (const err of [byA1, byA2]) assert.ok(err.retryAfter > 0 && err.retryAfter <= 1000);
    assert.equal((await callApi(ctx.b, 'Initialize', initializeQuery())).body.Code, 'Success');

    const calls = ctx.sim.calls.list();
    // The burst and the two refusals arrived within one second, or the test proves nothing.
    const arrivals = calls.filter((c) => c.account === 'account-a').map((c) => c.arrivedAt);
    assert.ok(Math.max(...arrivals) - Math.min(...arrivals) < 1000);
    assert.deepEqual(new Set(calls.map((c) => `${c.accessKeyId}→${c.account}`)), new Set(['key-a1→account-a', 'key-a2→account-a', 'key-b→key-b']));
  });

  test("a transaction is visible to its account's keys only", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a fresh second of QPS
    const init = await callApi(ctx.a1, 'Initialize', initializeQuery({ MerchantBizId: 'acct1' }));
    const id = init.body.Result.TransactionId;
    const sameAccount = await callApi(ctx.a2, 'CheckResult', { MerchantBizId: 'acct1', TransactionId: id });
    assert.equal(sameAccount.body.Result.Passed, 'P');
    await expectApiError(callApi(ctx.b, 'CheckResult', { MerchantBizId: 'acct1', TransactionId: id }), { code: 'InvalidParameter' });
  });
});

// ---------------------------------------------------------------- 5. fidelity of the answers

describe("CheckResult's fields, eKYC_PRO and MetaInfo", () => {
  const ctx = useSimulator({ probeCallbackUrl: false });

  async function completed(overrides: Record<string, string>, passed: 'Y' | 'N' = 'Y') {
    const merchantBizId = overrides.MerchantBizId ?? 'res1';
    const { TransactionId: id } = await initialize(ctx, { MerchantBizId: merchantBizId, ...overrides });
    await control(ctx.baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed });
    const check = async (isReturnImage?: 'Y' | 'N') =>
      (await callApi(ctx.client, 'CheckResult', { MerchantBizId: merchantBizId, TransactionId: id, ...(isReturnImage ? { IsReturnImage: isReturnImage } : {}) })).body
        .Result as Record<string, string>;
    return { id, check };
  }
  const json = (text: string | undefined) => JSON.parse(text ?? 'null') as Record<string, any>;

  test('a passed passport: the documented field names, deterministic, images only on request', async () => {
    const { check } = await completed({ MerchantBizId: 'pass1', DocType: '01000000', IdSpoof: 'Y' });
    const result = await check();
    assert.equal(result.Passed, 'Y');
    assert.equal(result.SubCode, '200');
    assert.equal(result.EkycResult, 'Success');
    assert.deepEqual(Object.keys(json(result.ExtBasicInfo)).sort(), ['certName', 'certNo', 'certType']);
    assert.equal(json(result.ExtBasicInfo).certType, '01000000');

    const idInfo = json(result.ExtIdInfo);
    assert.deepEqual(Object.keys(idInfo).sort(), ['ocrIdInfo', 'ocrIdPassed', 'spoofInfo']);
    assert.deepEqual(
      Object.keys(idInfo.ocrIdInfo).sort(),
      ['birthDate', 'countryCode', 'expiryDate', 'givenname', 'issueDate', 'nationality', 'passportNo', 'sex', 'surname'],
    );
    assert.match(idInfo.ocrIdInfo.birthDate, /^\d{4}\/\d{2}\/\d{2}$/);
    assert.equal(idInfo.ocrIdPassed, 'Y');
    assert.deepEqual(idInfo.spoofInfo, { spoofResult: 'N', spoofType: [] });

    const faceInfo = json(result.ExtFaceInfo);
    assert.deepEqual(Object.keys(faceInfo).sort(), ['faceAttack', 'faceComparisonScore', 'faceOcclusion', 'facePassed', 'faceQualityScore']);
    assert.equal(faceInfo.facePassed, 'Y');
    assert.equal(faceInfo.faceAttack, 'N');
    assert.equal(typeof faceInfo.faceComparisonScore, 'number');
    assert.deepEqual(json(result.ExtInfo), {});
    assert.equal(typeof json(result.ExtRiskInfo), 'object');

    assert.deepEqual(await check(), result, 'the same answer every time');
    const withImages = await check('Y');
    assert.match(json(withImages.ExtIdInfo).idImage, /^[A-Za-z0-9+/]+=*$/);
    assert.match(json(withImages.ExtFaceInfo).faceImg, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(json(withImages.ExtIdInfo).ocrIdInfo, idInfo.ocrIdInfo);
  });

  test('a failed Hong Kong ID card: card fields, spoofing and face attack flagged', async () => {
    const { check } = await completed({ MerchantBizId: 'fail1', DocType: '00000008', IdSpoof: 'Y' }, 'N');
    const result = await check();
    assert.equal(result.Passed, 'N');
    assert.equal(result.EkycResult, 'Failure');
    const idInfo = json(result.ExtIdInfo);
    for (const field of ['name', 'idNumber', 'sex', 'birthDate', 'expiryDate']) assert.ok(idInfo.ocrIdInfo[field], field);
    assert.equal(idInfo.ocrIdPassed, 'N');
    assert.equal(idInfo.spoofInfo.spoofResult, 'Y');
    assert.equal(json(result.ExtFaceInfo).faceAttack, 'Y');
  });

  test('spoofInfo only with IdSpoof=Y; authorityComparisonScore only with Authorize=T', async () => {
    const plain = await (await completed({ MerchantBizId: 'plain1', IdSpoof: 'N' })).check();
    assert.equal(json(plain.ExtIdInfo).spoofInfo, undefined);
    assert.equal(json(plain.ExtFaceInfo).authorityComparisonScore, undefined);
    const authorized = await (await completed({ MerchantBizId: 'auth1', DocType: '00000001', Authorize: 'T' })).check();
    assert.equal(typeof json(authorized.ExtFaceInfo).authorityComparisonScore, 'number');
  });

  test('ProductCode=eKYC_PRO is refused as unsupported', async () => {
    const err = await expectApiError(callApi(ctx.client, 'Initialize', initializeQuery({ ProductCode: 'eKYC_PRO' })), {
      code: 'InvalidParameter',
      statusCode: 400,
    });
    assert.match(err.data.Message, /"ProductCode".*not supported/);
  });

  test("both MetaInfo shapes are accepted and stored as sent: the app SDKs' and the web SDK's", async () => {
    const app = JSON.stringify({ zimVer: '3.0.0', appVersion: '1', bioMetaInfo: '4.1.0:1150****,0', deviceType: 'ios', osVersion: 'iOS 10.3.2' });
    for (const metaInfo of [app, WEB_META_INFO]) {
      const { TransactionId: id } = await initialize(ctx, { MetaInfo: metaInfo });
      assert.equal(ctx.sim.store.get(id)?.params.MetaInfo, metaInfo);
    }
    const err: AnyError = await expectApiError(callApi(ctx.client, 'Initialize', initializeQuery({ MetaInfo: '"web"' })), {
      code: 'InvalidParameter',
    });
    assert.match(err.data.Message, /"MetaInfo"/);
  });
});
