import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { buildSimulator, peakInWindow, type Simulator } from '../src/simulator/index.js';
import { canonicalQueryString, percentEncode } from '../src/simulator/signature.js';
import {
  AK_ID,
  AK_SECRET,
  META_INFO,
  callApi,
  control,
  expectApiError,
  hostPortOf,
  initializeQuery,
  makeClient,
  startCallbackReceiver,
  startServer,
  type AnyError,
  type ApiResponse,
} from './helpers/sim-client.js';

// ---------------------------------------------------------------- helpers

const MINUTE = 60_000;

/** Lets the real client sign a request, without sending it anywhere that would use it up. */
async function captureSignedRequest(action: string, query: Record<string, string>) {
  let captured: { url: string; headers: http.IncomingHttpHeaders } | undefined;
  const capture = await startServer((req, res) => {
    captured = { url: req.url ?? '', headers: req.headers };
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  try {
    await callApi(makeClient(hostPortOf(capture.url)), action, query);
  } finally {
    await capture.close();
  }
  assert.ok(captured);
  return captured;
}

/** Sends a request with exactly these headers (fetch would replace Host). */
function rawRequest(
  baseUrl: string,
  path: string,
  headers: http.IncomingHttpHeaders,
  body = '',
): Promise<ApiResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          statusCode: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------- pure parts

describe('signature helpers', () => {
  test('percentEncode follows RFC 3986 (space %20, *!\'() escaped, ~ kept)', () => {
    assert.equal(percentEncode("a b*!'()~ü+"), 'a%20b%2A%21%27%28%29~%C3%BC%2B');
  });

  test('canonical query sorts names and encodes values', () => {
    const query = new Map([['b', 'x y'], ['a', '*'], ['C', '']]);
    assert.equal(canonicalQueryString(query), 'C=&a=%2A&b=x%20y');
  });
});

describe('peakInWindow', () => {
  test('counts the most timestamps in any half-open window', () => {
    assert.equal(peakInWindow([], 1000), 0);
    assert.equal(peakInWindow([1500, 0, 999, 1000], 1000), 3);
    assert.equal(peakInWindow([0, 1000, 2000, 3000], 1000), 1);
    assert.equal(peakInWindow([5, 5, 5], 1000), 3);
  });
});

// ---------------------------------------------------------------- the API through the real client

describe('simulator API with the real @alicloud/openapi-core client', () => {
  let sim: Simulator;
  let baseUrl: string;
  let client: ReturnType<typeof makeClient>;
  let clockOffset = 0;

  before(async () => {
    sim = await buildSimulator({
      accessKeys: { [AK_ID]: AK_SECRET },
      qps: 0,
      now: () => Date.now() + clockOffset,
    });
    baseUrl = await sim.listen();
    client = makeClient(hostPortOf(baseUrl));
  });
  after(() => sim.close());
  afterEach(() => {
    clockOffset = 0;
    sim.faults.clear();
  });

  test('a signed Initialize succeeds and stores the params as sent', async () => {
    const response = await callApi(client, 'Initialize', initializeQuery({ SceneCode: 'scene_1', Model: 'SILENT' }));
    assert.equal(response.statusCode, 200);
    const { body } = response;
    assert.equal(body.Code, 'Success');
    assert.equal(body.Message, 'success');
    assert.match(body.RequestId, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    assert.match(body.Result.TransactionId, /^hksb[0-9a-f]{28}$/);
    assert.equal(body.Result.TransactionUrl, `${baseUrl}/verify/${body.Result.TransactionId}`);
    assert.ok(body.Result.Protocol.length > 10);
    assert.equal(response.headers['x-acs-request-id'], body.RequestId);

    const stored = await control(baseUrl, 'GET', `/__sim/transactions/${body.Result.TransactionId}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.params.MetaInfo, META_INFO);
    assert.equal(stored.body.params.SceneCode, 'scene_1');
    assert.equal(stored.body.state, 'pending');
  });

  test('a tampered query or body is refused; the untouched request passes once, then its nonce is spent', async () => {
    const signed = await captureSignedRequest('Initialize', initializeQuery({ MerchantBizId: 'original1' }));
    assert.match(signed.url, /MerchantBizId=original1/);

    const tamperedUrl = signed.url.replace('MerchantBizId=original1', 'MerchantBizId=tampered1');
    const tampered = await rawRequest(baseUrl, tamperedUrl, signed.headers);
    assert.equal(tampered.statusCode, 400);
    assert.equal(tampered.body.Code, 'SignatureDoesNotMatch');

    const withBody = await rawRequest(baseUrl, signed.url, signed.headers, 'MerchantBizId=x');
    assert.equal(withBody.statusCode, 400);
    assert.equal(withBody.body.Code, 'SignatureDoesNotMatch');

    const original = await rawRequest(baseUrl, signed.url, signed.headers);
    assert.equal(original.statusCode, 200, JSON.stringify(original.body));
    assert.equal(original.body.Code, 'Success');

    const replay = await rawRequest(baseUrl, signed.url, signed.headers);
    assert.equal(replay.statusCode, 400);
    assert.equal(replay.body.Code, 'SignatureNonceUsed');
  });

  test('a request without signature headers is IncompleteSignature', async () => {
    const signed = await captureSignedRequest('Initialize', initializeQuery());
    const { authorization: _auth, ...unsigned } = signed.headers;
    const response = await rawRequest(baseUrl, signed.url, unsigned);
    assert.equal(response.statusCode, 400);
    assert.equal(response.body.Code, 'IncompleteSignature');
  });

  test('a wrong secret is SignatureDoesNotMatch, an unknown AccessKey is InvalidAccessKeyId.NotFound', async () => {
    const wrongSecret = makeClient(hostPortOf(baseUrl), { id: AK_ID, secret: 'not-the-secret' });
    await expectApiError(callApi(wrongSecret, 'Initialize', initializeQuery()), {
      name: 'ClientError',
      code: 'SignatureDoesNotMatch',
      statusCode: 400,
    });
    const unknownKey = makeClient(hostPortOf(baseUrl), { id: 'nobody', secret: AK_SECRET });
    await expectApiError(callApi(unknownKey, 'Initialize', initializeQuery()), {
      name: 'ClientError',
      code: 'InvalidAccessKeyId.NotFound',
      statusCode: 404,
    });
  });

  test('x-acs-date more than 15 minutes off is InvalidTimeStamp.Expired', async () => {
    clockOffset = 14 * MINUTE;
    const ok = await callApi(client, 'Initialize', initializeQuery());
    assert.equal(ok.body.Code, 'Success');
    clockOffset = 16 * MINUTE;
    await expectApiError(callApi(client, 'Initialize', initializeQuery()), {
      code: 'InvalidTimeStamp.Expired',
      statusCode: 400,
    });
  });

  test('a wrong version is InvalidVersion, an unknown action InvalidAction.NotFound', async () => {
    await expectApiError(callApi(client, 'Initialize', initializeQuery(), { version: '2019-03-07' }), {
      code: 'InvalidVersion',
      statusCode: 400,
    });
    await expectApiError(callApi(client, 'DescribeNothing', {}), {
      code: 'InvalidAction.NotFound',
      statusCode: 404,
    });
  });

  for (const name of ['ProductCode', 'MerchantBizId', 'MetaInfo', 'MerchantUserId', 'DocType']) {
    test(`Initialize without ${name} is MissingParameter naming it`, async () => {
      const err = await expectApiError(callApi(client, 'Initialize', initializeQuery({ [name]: undefined })), {
        name: 'ClientError',
        code: 'MissingParameter',
        statusCode: 400,
      });
      assert.match(err.data.Message, new RegExp(`"${name}"`));
    });
  }

  const invalidCases: Array<[string, string]> = [
    ['DocType', '12345678'],
    ['ProductCode', 'ID_PRO'],
    ['MerchantBizId', 'has-dash'],
    ['MerchantBizId', 'a'.repeat(33)],
    ['MetaInfo', 'not json'],
    ['MetaInfo', '[1,2]'],
    ['CallbackUrl', '/relative/path'],
    ['CallbackUrl', 'ftp://example.com/cb'],
    ['SecurityLevel', '03'],
  ];
  for (const [name, value] of invalidCases) {
    test(`Initialize with ${name}=${value.slice(0, 12)} is InvalidParameter`, async () => {
      const err = await expectApiError(callApi(client, 'Initialize', initializeQuery({ [name]: value })), {
        code: 'InvalidParameter',
        statusCode: 400,
      });
      assert.match(err.data.Message, new RegExp(`"${name}"`));
    });
  }

  test('CheckResult refuses an unknown transaction or a mismatched MerchantBizId', async () => {
    const init = await callApi(client, 'Initialize', initializeQuery({ MerchantBizId: 'owner1' }));
    const transactionId = init.body.Result.TransactionId;
    const pending = await callApi(client, 'CheckResult', { MerchantBizId: 'owner1', TransactionId: transactionId });
    assert.equal(pending.body.Result.Passed, 'P');
    await expectApiError(callApi(client, 'CheckResult', { MerchantBizId: 'other1', TransactionId: transactionId }), {
      code: 'InvalidParameter',
    });
    await expectApiError(callApi(client, 'CheckResult', { MerchantBizId: 'owner1', TransactionId: 'hksbnope' }), {
      code: 'InvalidParameter',
    });
    await expectApiError(callApi(client, 'CheckResult', { MerchantBizId: 'owner1' }), { code: 'MissingParameter' });
  });

  test('completing fires the callback with the token and CheckResult then answers the result', async () => {
    const receiver = await startCallbackReceiver();
    try {
      const callbackUrl = `${receiver.url}/alibaba/callback?shop=1&sig=a%2Bb`;
      const init = await callApi(client, 'Initialize', initializeQuery({
        MerchantBizId: 'cb0001',
        CallbackUrl: callbackUrl,
        CallbackToken: 'token-123',
      }));
      const id = init.body.Result.TransactionId;

      // Initialize first checked the CallbackUrl: a GET of it exactly as registered.
      assert.deepEqual(receiver.received, ['/alibaba/callback?shop=1&sig=a%2Bb']);

      const done = await control(baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'Y' });
      assert.equal(done.status, 200);
      assert.equal(done.body.delivery.status, 200);
      assert.equal(receiver.received.length, 2);
      const raw = receiver.received[1] ?? '';
      assert.ok(raw.startsWith('/alibaba/callback?shop=1&sig=a%2Bb&'), raw); // existing query kept as is
      const query = new URL(raw, receiver.url).searchParams;
      assert.equal(query.get('transactionId'), id);
      assert.equal(query.get('passed'), 'Y');
      assert.equal(query.get('subCode'), '200');
      assert.equal(query.get('callbackToken'), 'token-123');

      const result = await callApi(client, 'CheckResult', { MerchantBizId: 'cb0001', TransactionId: id });
      assert.equal(result.body.Code, 'Success');
      assert.equal(result.body.Result.Passed, 'Y');
      assert.equal(result.body.Result.SubCode, '200');
      assert.equal(typeof result.body.Result.ExtIdInfo, 'string');
      assert.equal(JSON.parse(result.body.Result.ExtIdInfo).ocrIdInfo.surname, 'CHAN'); // a passport (01000000)
      assert.equal(typeof JSON.parse(result.body.Result.ExtFaceInfo), 'object');

      const again = await control(baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'N' });
      assert.equal(again.status, 409);

      const redelivered = await control(baseUrl, 'POST', `/__sim/transactions/${id}/redeliver`);
      assert.equal(redelivered.status, 200);
      assert.equal(receiver.received.length, 3);
      assert.equal(receiver.received[2], raw);

      const stored = await control(baseUrl, 'GET', `/__sim/transactions/${id}`);
      assert.equal(stored.body.deliveries.length, 2);
    } finally {
      await receiver.close();
    }
  });

  test('without CallbackToken the callback carries no callbackToken; an unreachable callback is recorded', async () => {
    const receiver = await startCallbackReceiver();
    const init = await callApi(client, 'Initialize', initializeQuery({ CallbackUrl: `${receiver.url}/cb` }));
    const id = init.body.Result.TransactionId;
    await control(baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'N', subCode: '205' });
    const query = new URL(receiver.received[1] ?? '', receiver.url).searchParams;
    assert.equal(query.get('passed'), 'N');
    assert.equal(query.get('subCode'), '205');
    assert.equal(query.has('callbackToken'), false);

    await receiver.close();
    const redelivered = await control(baseUrl, 'POST', `/__sim/transactions/${id}/redeliver`);
    assert.equal(redelivered.body.delivery.status, undefined);
    assert.match(redelivered.body.delivery.error, /ECONNREFUSED|fetch failed/);
  });

  test('the control API can override what CheckResult answers', async () => {
    const init = await callApi(client, 'Initialize', initializeQuery({ MerchantBizId: 'ovr1' }));
    const id = init.body.Result.TransactionId;
    const put = await control(baseUrl, 'PUT', `/__sim/transactions/${id}/result`, { Passed: 'N', SubCode: '212', ExtIdInfo: '{}' });
    assert.equal(put.status, 200);
    const result = await callApi(client, 'CheckResult', { MerchantBizId: 'ovr1', TransactionId: id });
    assert.equal(result.body.Result.Passed, 'N');
    assert.equal(result.body.Result.SubCode, '212');
    assert.equal(result.body.Result.ExtIdInfo, '{}');
  });

  test('faults: errors, 200 with an error Code, non-JSON, delays, and counts', async () => {
    const addFault = (fault: object) => control(baseUrl, 'POST', '/__sim/faults', fault);

    assert.equal((await addFault({ action: 'Initialize', status: 500, code: 'InternalError', count: 2 })).status, 201);
    await expectApiError(callApi(client, 'Initialize', initializeQuery()), { name: 'ServerError', code: 'InternalError', statusCode: 500 });
    await expectApiError(callApi(client, 'Initialize', initializeQuery()), { name: 'ServerError', code: 'InternalError' });
    assert.equal((await callApi(client, 'Initialize', initializeQuery())).body.Code, 'Success');

    await addFault({ action: 'Initialize', status: 403, code: 'Forbidden.AccountAccessDenied' });
    await expectApiError(callApi(client, 'Initialize', initializeQuery()), {
      name: 'ClientError',
      code: 'Forbidden.AccountAccessDenied',
      statusCode: 403,
    });

    await addFault({ action: 'Initialize', status: 200, code: 'InvalidParameter' });
    const soft = await callApi(client, 'Initialize', initializeQuery());
    assert.equal(soft.statusCode, 200);
    assert.equal(soft.body.Code, 'InvalidParameter');
    assert.equal(soft.body.Result, undefined);

    await addFault({ action: 'CheckResult', status: 502, code: 'NON_JSON' });
    await assert.rejects(callApi(client, 'CheckResult', { MerchantBizId: 'a', TransactionId: 'b' }), SyntaxError);

    await addFault({ action: 'Initialize', status: 403, code: 'Throttling.Api', retryAfterMs: 250 });
    const throttled = await expectApiError(callApi(client, 'Initialize', initializeQuery()), { name: 'ThrottlingError', code: 'Throttling.Api' });
    assert.equal(throttled.retryAfter, 250);

    await addFault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 300 });
    const started = performance.now();
    const late = await callApi(client, 'Initialize', initializeQuery());
    assert.ok(performance.now() - started >= 290);
    assert.equal(late.body.Code, 'Success');

    await addFault({ action: 'Initialize', status: 200, code: 'Success', delayMs: 1000 });
    const before = sim.store.list().length;
    await assert.rejects(callApi(client, 'Initialize', initializeQuery(), { readTimeout: 200 }), { name: 'RequestTimeoutError' });
    assert.equal(sim.store.list().length, before + 1, 'the timed-out Initialize still created a transaction');

    await addFault({ action: 'Initialize', status: 200, code: 'CONNECTION_RESET' });
    await assert.rejects(callApi(client, 'Initialize', initializeQuery()), { code: 'ECONNRESET' });
    assert.equal((await callApi(client, 'Initialize', initializeQuery())).body.Code, 'Success');

    const badFault = await addFault({ action: 'Initialize', code: 'X', status: 42 });
    assert.equal(badFault.status, 400);
  });

  test('the call log records action, AccessKey and outcome without parameters', async () => {
    await control(baseUrl, 'DELETE', '/__sim/calls');
    await callApi(client, 'Initialize', initializeQuery({ MerchantUserId: 'secret-user-42' }));
    await callApi(client, 'Initialize', initializeQuery({ DocType: 'bad' })).catch(() => undefined);
    const calls = await control(baseUrl, 'GET', '/__sim/calls');
    assert.equal(calls.body.length, 2);
    assert.deepEqual(calls.body.map((c: { code: string }) => c.code), ['Success', 'InvalidParameter']);
    assert.equal(calls.body[0].action, 'Initialize');
    assert.equal(calls.body[0].accessKeyId, AK_ID);
    assert.equal(typeof calls.body[0].arrivedAt, 'number');
    const text = JSON.stringify(calls.body);
    assert.ok(!text.includes('secret-user-42') && !text.includes(AK_SECRET) && !text.includes('zimVer'));
  });

  test('the verification page renders, completes once, redirects to ReturnUrl and fires the callback', async () => {
    const receiver = await startCallbackReceiver();
    try {
      const init = await callApi(client, 'Initialize', initializeQuery({
        MerchantBizId: 'page1',
        CallbackUrl: `${receiver.url}/cb`,
        CallbackToken: 'tok',
        ReturnUrl: 'https://merchant.example/done?step=2',
      }));
      const { TransactionId: id, TransactionUrl: url } = init.body.Result;

      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      const html = await page.text();
      assert.ok(html.includes(id));
      assert.match(html, /<form method="post" action="\/verify\/[0-9a-z]+\/complete">.*value="Y".*>Pass</s);
      assert.match(html, />Fail</);
      assert.ok(!/<(script|link|img)\b/i.test(html), 'no external assets');

      const form = { method: 'POST', body: new URLSearchParams({ passed: 'N' }), redirect: 'manual' } as const;
      const submitted = await fetch(`${baseUrl}/verify/${id}/complete`, form);
      assert.equal(submitted.status, 303);
      assert.equal(submitted.headers.get('location'), `https://merchant.example/done?step=2&transactionId=${id}`);
      const query = new URL(receiver.received[1] ?? '', receiver.url).searchParams;
      assert.equal(query.get('passed'), 'N');
      assert.equal(query.get('subCode'), '201');
      assert.equal(query.get('callbackToken'), 'tok');

      const result = await callApi(client, 'CheckResult', { MerchantBizId: 'page1', TransactionId: id });
      assert.equal(result.body.Result.Passed, 'N');

      assert.equal((await fetch(`${baseUrl}/verify/${id}/complete`, form)).status, 409);
      assert.equal((await fetch(url)).status, 409);
      assert.equal((await fetch(`${baseUrl}/verify/hksb0000`)).status, 404);
    } finally {
      await receiver.close();
    }
  });

  test('a transaction expires after 30 minutes', async () => {
    const init = await callApi(client, 'Initialize', initializeQuery({ MerchantBizId: 'exp1' }));
    const { TransactionId: id, TransactionUrl: url } = init.body.Result;
    clockOffset = 31 * MINUTE;
    assert.equal((await fetch(url)).status, 410);
    assert.equal((await control(baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'Y' })).status, 410);
    clockOffset = 0; // keep x-acs-date in range for the call below
    const stored = sim.store.get(id);
    assert.ok(stored);
    stored.expiresAt = Date.now() - 1;
    const result = await callApi(client, 'CheckResult', { MerchantBizId: 'exp1', TransactionId: id });
    assert.equal(result.body.Result.Passed, 'N');
  });
});

// ---------------------------------------------------------------- options

describe('simulator options', () => {
  test('QPS: 2×qps concurrent calls give exactly qps successes, the rest ThrottlingError with retryAfter', async () => {
    const qps = 4;
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      const outcomes = await Promise.allSettled(
        Array.from({ length: 2 * qps }, () => callApi(client, 'Initialize', initializeQuery())),
      );
      const ok = outcomes.filter((o) => o.status === 'fulfilled');
      const throttled = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as AnyError] : []));
      assert.equal(ok.length, qps);
      assert.equal(throttled.length, qps);
      for (const err of throttled) {
        assert.equal(err.name, 'ThrottlingError');
        assert.equal(err.code, 'Throttling.Api');
        assert.equal(err.statusCode, 403);
        assert.ok(err.retryAfter > 0 && err.retryAfter <= 1000, String(err.retryAfter));
      }

      // The limit is per action: CheckResult still has its own budget.
      await expectApiError(callApi(client, 'CheckResult', { MerchantBizId: 'x1', TransactionId: 'hksbx' }), {
        code: 'InvalidParameter',
      });

      const admitted = sim.calls.list().filter((c) => c.action === 'Initialize' && c.code === 'Success');
      assert.equal(peakInWindow(admitted.map((c) => c.arrivedAt), 1000), qps);

      const wait = Math.max(...throttled.map((e) => e.retryAfter as number));
      await new Promise((resolve) => setTimeout(resolve, wait + 20));
      assert.equal((await callApi(client, 'Initialize', initializeQuery())).body.Code, 'Success');
    } finally {
      await sim.close();
    }
  });

  test('latencyMs delays every answer', async () => {
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, latencyMs: 200 });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      const started = performance.now();
      await callApi(client, 'Initialize', initializeQuery());
      assert.ok(performance.now() - started >= 190);
    } finally {
      await sim.close();
    }
  });

  test('requireHttpsCallback refuses http CallbackUrl; publicUrl shapes TransactionUrl', async () => {
    const sim = await buildSimulator({
      accessKeys: { [AK_ID]: AK_SECRET },
      requireHttpsCallback: true,
      probeCallbackUrl: false, // merchant.example is not reachable from here
      publicUrl: 'https://sim.example/',
    });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      await expectApiError(callApi(client, 'Initialize', initializeQuery({ CallbackUrl: 'http://merchant.example/cb' })), {
        code: 'InvalidParameter',
      });
      const ok = await callApi(client, 'Initialize', initializeQuery({ CallbackUrl: 'https://merchant.example/cb' }));
      assert.equal(ok.body.Result.TransactionUrl, `https://sim.example/verify/${ok.body.Result.TransactionId}`);
    } finally {
      await sim.close();
    }
  });
});
