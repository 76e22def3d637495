/**
 * DeleteVerifyResult: the simulator's action (through the real client) and the service's client
 * for it (through the app, its QPS budget and the simulator).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCloudAuthClient } from '../src/cloudauth/client.js';
import { CloudAuthError } from '../src/cloudauth/errors.js';
import { buildSimulator } from '../src/simulator/index.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import {
  AK_ID,
  AK_SECRET,
  callApi,
  control,
  expectApiError,
  hostPortOf,
  initializeQuery,
  makeClient,
  useSimulator,
} from './helpers/sim-client.js';
import { SIM_KEY_ID, SIM_KEY_SECRET, WEB_META_INFO, startStack, testConfig, waitFor, type Stack } from './helpers/stack.js';

type Result = Record<string, string | undefined>;
const json = (text: string | undefined) => JSON.parse(text ?? 'null') as Record<string, unknown> | null;

describe('DeleteVerifyResult in the simulator', () => {
  const ctx = useSimulator({
    accessKeys: { [AK_ID]: AK_SECRET, 'other-ak': { secret: 'other-secret', account: 'other-account' } },
    probeCallbackUrl: false,
  });

  let seq = 0;
  /** A transaction, completed unless told otherwise. */
  async function transaction(complete = true) {
    const merchantBizId = `del${++seq}`;
    const init = await callApi(ctx.client, 'Initialize', initializeQuery({ MerchantBizId: merchantBizId }));
    const id = init.body.Result.TransactionId as string;
    if (complete) await control(ctx.baseUrl, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'Y' });
    const check = async (isReturnImage: 'Y' | 'N' = 'Y') =>
      (await callApi(ctx.client, 'CheckResult', { MerchantBizId: merchantBizId, TransactionId: id, IsReturnImage: isReturnImage })).body
        .Result as Result;
    const remove = async (deleteType: string, deleteAfterQuery?: 'Y' | 'N') => {
      const response = await callApi(ctx.client, 'DeleteVerifyResult', {
        TransactionId: id,
        DeleteType: deleteType,
        ...(deleteAfterQuery ? { DeleteAfterQuery: deleteAfterQuery } : {}),
      });
      assert.equal(response.body.Code, 'Success');
      assert.equal(response.body.Result.TransactionId, id);
      return response.body.Result.DeleteResult as string;
    };
    return { id, check, remove };
  }

  test('parameters: TransactionId and DeleteType required, the enumerations checked, an unknown transaction refused', async () => {
    const { id } = await transaction();
    const cases: Array<[Record<string, string>, string, string]> = [
      [{ DeleteType: 'All' }, 'MissingParameter', 'TransactionId'],
      [{ TransactionId: id }, 'MissingParameter', 'DeleteType'],
      [{ TransactionId: id, DeleteType: 'Everything' }, 'InvalidParameter', 'DeleteType'],
      [{ TransactionId: id, DeleteType: 'All', DeleteAfterQuery: 'yes' }, 'InvalidParameter', 'DeleteAfterQuery'],
      [{ TransactionId: 'hksbnope', DeleteType: 'All' }, 'InvalidParameter', 'TransactionId'],
    ];
    for (const [query, code, name] of cases) {
      const err = await expectApiError(callApi(ctx.client, 'DeleteVerifyResult', query), { code, statusCode: 400 });
      assert.match(err.data.Message, new RegExp(`"${name}"`));
    }
    // Another account's transaction is as unknown as a made-up one.
    const other = makeClient(hostPortOf(ctx.baseUrl), { id: 'other-ak', secret: 'other-secret' });
    await expectApiError(callApi(other, 'DeleteVerifyResult', { TransactionId: id, DeleteType: 'All' }), { code: 'InvalidParameter' });
  });

  test('Img removes the images only; Text then removes the data, keeping the verdict; a repeat deletes nothing', async () => {
    const t = await transaction();
    const before = await t.check();
    assert.ok(json(before.ExtIdInfo)?.idImage && json(before.ExtFaceInfo)?.faceImg);

    assert.equal(await t.remove('Img'), 'Y');
    const noImages = await t.check();
    assert.equal(json(noImages.ExtIdInfo)?.idImage, undefined);
    assert.equal(json(noImages.ExtFaceInfo)?.faceImg, undefined);
    assert.deepEqual(json(noImages.ExtIdInfo)?.ocrIdInfo, json(before.ExtIdInfo)?.ocrIdInfo);
    assert.equal(noImages.ExtBasicInfo, before.ExtBasicInfo);
    assert.equal(await t.remove('Img'), 'N', 'nothing left to delete');

    assert.equal(await t.remove('Text'), 'Y');
    const emptied = await t.check();
    assert.deepEqual(emptied, { Passed: 'Y', SubCode: '200' });
    assert.equal(await t.remove('All'), 'N');

    const view = await control(ctx.baseUrl, 'GET', `/__sim/transactions/${t.id}`);
    assert.deepEqual(
      view.body.deletions.map((d: { deleteType: string; deleted: boolean; failReason?: string }) => [d.deleteType, d.deleted, d.failReason]),
      [['Img', true, undefined], ['Img', false, 'NOT_DELETE_REPEATEDLY'], ['Text', true, undefined], ['All', false, 'NOT_DELETE_REPEATEDLY']],
    );
    assert.equal(typeof view.body.deleted.img, 'number');
    assert.equal(typeof view.body.deleted.text, 'number');
  });

  test('Text alone leaves the images; All removes everything but Passed and SubCode', async () => {
    const textOnly = await transaction();
    assert.equal(await textOnly.remove('Text'), 'Y');
    const images = await textOnly.check('Y');
    assert.deepEqual(Object.keys(json(images.ExtIdInfo) ?? {}), ['idImage']);
    assert.deepEqual(Object.keys(json(images.ExtFaceInfo) ?? {}), ['faceImg']);
    for (const field of ['EkycResult', 'ExtBasicInfo', 'ExtRiskInfo', 'ExtInfo']) assert.equal(images[field], undefined, field);
    assert.deepEqual(await textOnly.check('N'), { Passed: 'Y', SubCode: '200' });

    const all = await transaction();
    assert.equal(await all.remove('All'), 'Y');
    assert.deepEqual(await all.check('Y'), { Passed: 'Y', SubCode: '200' });
  });

  test('DeleteAfterQuery=Y deletes only once CheckResult has answered the outcome; nothing to delete before completion', async () => {
    const pending = await transaction(false);
    assert.equal(await pending.remove('All'), 'N');
    assert.equal(ctx.sim.store.get(pending.id)?.deletions[0]?.failReason, 'NOT_COMPLETED');

    const t = await transaction();
    assert.equal(await t.remove('All', 'Y'), 'N');
    assert.equal(ctx.sim.store.get(t.id)?.deletions[0]?.failReason, 'NEED_QUERY_VERIFY_RESULT');
    await t.check();
    assert.equal(await t.remove('All', 'Y'), 'Y');

    const withoutQuery = await transaction();
    assert.equal(await withoutQuery.remove('All', 'N'), 'Y', 'N: no CheckResult needed');
  });

  test('QPS limits and scripted faults apply to it like to the other actions', async () => {
    const { id } = await transaction();
    const sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 1, qpsByAction: { DeleteVerifyResult: 1 } });
    try {
      const client = makeClient(hostPortOf(await sim.listen()));
      const query = { TransactionId: id, DeleteType: 'All' };
      // Another simulator: the transaction is unknown there, but the call is admitted first.
      await expectApiError(callApi(client, 'DeleteVerifyResult', query), { code: 'InvalidParameter' });
      await expectApiError(callApi(client, 'DeleteVerifyResult', query), { name: 'ThrottlingError', code: 'Throttling.Api' });
    } finally {
      await sim.close();
    }
    await control(ctx.baseUrl, 'POST', '/__sim/faults', { action: 'DeleteVerifyResult', status: 500, code: 'InternalError' });
    await expectApiError(callApi(ctx.client, 'DeleteVerifyResult', { TransactionId: id, DeleteType: 'All' }), {
      name: 'ServerError',
      code: 'InternalError',
    });
    assert.deepEqual(ctx.sim.store.get(id)?.deletions, [], 'the faulted call deleted nothing');
  });
});

describe("the service's client: cloudauth.deleteVerifyResult", () => {
  let stack: Stack;
  before(async () => {
    // One DeleteVerifyResult per second through the service's budget.
    stack = await startStack({ env: { CLOUDAUTH_QPS_DELETEVERIFYRESULT: '1' } });
  });
  after(() => stack.close());

  test('the override is read from the environment', () => {
    assert.equal(testConfig({ CLOUDAUTH_QPS_DELETEVERIFYRESULT: '3' }).CLOUDAUTH_QPS_DELETEVERIFYRESULT, 3);
    assert.equal(testConfig().CLOUDAUTH_QPS_DELETEVERIFYRESULT, undefined);
  });

  test('deletes a finished verification at the simulator, answers Y then N, through the QPS budget', async () => {
    const api = clientFor(stack);
    const token = await signToken('delete-user');
    // The web SDK's MetaInfo shape goes through the service and the simulator.
    const started = await api.start(token, { metaInfo: WEB_META_INFO });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const transactionId = String(started.body.transactionId);
    const merchantBizId = String(started.body.merchantBizId);
    assert.equal(stack.sim.store.get(transactionId)?.params.MetaInfo, WEB_META_INFO);

    await api.sim.complete(transactionId, 'Y');
    // The service's CheckResult after the callback is what DeleteAfterQuery=Y waits for.
    await waitFor('the session to pass', async () => ((await api.session(token, merchantBizId)).body.status === 'passed' ? true : undefined));
    assert.ok(stack.sim.store.get(transactionId)?.resultQueriedAt);

    const request = { TransactionId: transactionId, DeleteType: 'All', DeleteAfterQuery: 'Y' } as const;
    const [first, second] = await Promise.all([
      stack.app.cloudauth.deleteVerifyResult(request),
      stack.app.cloudauth.deleteVerifyResult(request),
    ]);
    assert.deepEqual([first.deleteResult, second.deleteResult].sort(), ['N', 'Y']);
    for (const r of [first, second]) {
      assert.equal(r.transactionId, transactionId);
      assert.match(r.requestId ?? '', /^[0-9A-F-]{36}$/);
    }
    // CLOUDAUTH_QPS_DELETEVERIFYRESULT=1: the budget spaced the two calls a second apart.
    const arrivals = stack.sim.calls.list().filter((c) => c.action === 'DeleteVerifyResult').map((c) => c.arrivedAt);
    assert.equal(arrivals.length, 2);
    assert.ok(Math.abs((arrivals[1] as number) - (arrivals[0] as number)) >= 900, `arrivals ${arrivals.join(', ')}`);

    const result = await stack.app.cloudauth.checkResult({ MerchantBizId: merchantBizId, TransactionId: transactionId });
    assert.equal(result.passed, 'Y');
    assert.deepEqual(result.details, {}, 'the data is gone at Alibaba');
  });

  test('an unknown transaction is a rejected call (InvalidParameter)', async () => {
    await assert.rejects(
      stack.app.cloudauth.deleteVerifyResult({ TransactionId: 'hksb0000', DeleteType: 'Img' }),
      (err: unknown) => err instanceof CloudAuthError && err.failure === 'rejected' && err.upstreamCode === 'InvalidParameter',
    );
  });
});

describe('the client and the success Code "200"', () => {
  test('DeleteVerifyResult answering Code "200" (the SDK example) succeeds; another action answering "200" does not', async () => {
    const sim = await buildSimulator({ accessKeys: { [SIM_KEY_ID]: SIM_KEY_SECRET }, qps: 0, deleteVerifyResultCode: '200' });
    try {
      const endpoint = await sim.listen();
      const raw = makeClient(hostPortOf(endpoint), { id: SIM_KEY_ID, secret: SIM_KEY_SECRET });
      const init = await callApi(raw, 'Initialize', initializeQuery({ MerchantBizId: 'code200' }));
      const id = init.body.Result.TransactionId as string;
      await control(endpoint, 'POST', `/__sim/transactions/${id}/complete`, { passed: 'N' });
      const direct = await callApi(raw, 'DeleteVerifyResult', { TransactionId: id, DeleteType: 'Img' });
      assert.equal(direct.body.Code, '200');

      const client = createCloudAuthClient({ endpoint, accessKeyId: SIM_KEY_ID, accessKeySecret: SIM_KEY_SECRET, timeoutMs: 3000 });
      const deleted = await client.deleteVerifyResult({ TransactionId: id, DeleteType: 'Text' });
      assert.equal(deleted.deleteResult, 'Y');

      await control(endpoint, 'POST', '/__sim/faults', { action: 'CheckResult', status: 200, code: '200' });
      await assert.rejects(client.checkResult({ MerchantBizId: 'code200', TransactionId: id }), (err: unknown) => err instanceof CloudAuthError && err.upstreamCode === '200');
    } finally {
      await sim.close();
    }
  });
});
