/** The cloudauth-intl actions: Initialize, CheckResult and DeleteVerifyResult. */
import { randomBytes } from 'node:crypto';
import {
  checkHttpUrl,
  checkJsonObject,
  checkOneOf,
  checkPattern,
  optionalParam,
  requireParam,
} from './params.js';
import { probeFailure, type ProbeRecord } from './probe.js';
import { apiErrors } from './protocol.js';
import { buildCheckResult } from './results.js';
import type { QueryParams } from './signature.js';
import type { DeleteType, Transaction, TransactionStore } from './store.js';

export interface ActionContext {
  accessKeyId: string;
  /** The caller's Alibaba Cloud account: transactions are visible within it only. */
  account: string;
  store: TransactionStore;
  /** Base URL users' browsers reach the simulator at (for TransactionUrl). */
  publicUrl: string;
  requireHttpsCallback: boolean;
  /** Checks that a CallbackUrl is accessible (and records the check); absent: no check. */
  probeCallbackUrl: ((url: string) => Promise<ProbeRecord>) | undefined;
}

export type ActionHandler = (params: QueryParams, context: ActionContext) => Promise<Record<string, unknown>>;

/**
 * The product codes Alibaba documents for Initialize. Only eKYC is simulated: eKYC_PRO adds
 * certificate-code checks (per document type) that the simulator does not model, so it is refused.
 */
export const PRODUCT_CODES = ['eKYC'] as const;
export const DOC_TYPES = [
  '01000000', '00000006', '00000008', '00000007', '00000009', '000000011', '000000012', '00000001',
] as const;

/** Optional Initialize parameters with a fixed set of values. */
const OPTIONAL_CHOICES: Readonly<Record<string, readonly string[]>> = {
  SecurityLevel: ['01', '02'],
  Model: ['LIVENESS', 'PHOTINUS_LIVENESS', 'SILENT'],
  IdSpoof: ['Y', 'N'],
  Authorize: ['T', 'F'],
  IdThreshold: ['0', '1', '2', '3'],
  DocVideo: ['Y', 'N'],
  ShowAlbumIcon: ['0', '1'],
  ShowOcrResult: ['0', '1'],
  ShowGuidePage: ['0', '1'],
  ProcedurePriority: ['url', 'keep'],
  AppQualityCheck: ['Y', 'N'],
  EditOcrResult: ['0', '1'],
};
const OPTIONAL_JSON = ['LanguageConfig', 'StyleConfig'];

async function initialize(params: QueryParams, context: ActionContext): Promise<Record<string, unknown>> {
  const productCode = requireParam(params, 'ProductCode');
  const merchantBizId = requireParam(params, 'MerchantBizId');
  const metaInfo = requireParam(params, 'MetaInfo');
  const merchantUserId = requireParam(params, 'MerchantUserId');
  const docType = requireParam(params, 'DocType');

  if (productCode === 'eKYC_PRO') {
    throw apiErrors.invalidParameter('ProductCode', 'eKYC_PRO is not supported by this simulator (only eKYC)');
  }
  checkOneOf('ProductCode', productCode, PRODUCT_CODES);
  checkPattern('MerchantBizId', merchantBizId, /^[A-Za-z0-9]{1,32}$/, 'must be 1-32 letters or digits');
  // Any JSON object: the app SDKs' shape ({zimVer, deviceType: "ios", …}) and the web SDK's
  // ({bioMetaInfo, deviceType: "web", ua}) alike.
  checkJsonObject('MetaInfo', metaInfo);
  checkOneOf('DocType', docType, DOC_TYPES);
  checkOptionalParams(params, context.requireHttpsCallback);

  // Checked last, as Alibaba checks it "before the API operation is called": a request refused
  // for another reason never reaches the merchant's server.
  const callbackUrl = optionalParam(params, 'CallbackUrl');
  const callbackProbe = callbackUrl && context.probeCallbackUrl ? await context.probeCallbackUrl(callbackUrl) : undefined;
  if (callbackProbe && !callbackProbe.ok) {
    throw apiErrors.invalidParameter('CallbackUrl', `it is not accessible (${probeFailure(callbackProbe)})`);
  }

  const transaction = context.store.create({
    accessKeyId: context.accessKeyId,
    account: context.account,
    productCode,
    merchantBizId,
    merchantUserId,
    docType,
    callbackUrl,
    callbackToken: optionalParam(params, 'CallbackToken'),
    returnUrl: optionalParam(params, 'ReturnUrl'),
    params: Object.fromEntries(params),
    ...(callbackProbe ? { callbackProbe } : {}),
  });
  return {
    TransactionId: transaction.transactionId,
    TransactionUrl: `${context.publicUrl}/verify/${transaction.transactionId}`,
    Protocol: transaction.protocol,
    ClientCfg: randomBytes(24).toString('base64url'),
  };
}

function checkOptionalParams(params: QueryParams, requireHttpsCallback: boolean): void {
  for (const [name, allowed] of Object.entries(OPTIONAL_CHOICES)) {
    const value = optionalParam(params, name);
    if (value !== undefined) checkOneOf(name, value, allowed);
  }
  for (const name of OPTIONAL_JSON) {
    const value = optionalParam(params, name);
    if (value !== undefined) checkJsonObject(name, value);
  }
  const sceneCode = optionalParam(params, 'SceneCode');
  if (sceneCode !== undefined) {
    checkPattern('SceneCode', sceneCode, /^\w{1,10}$/, 'must be 1-10 letters, digits or underscores');
  }
  const callbackUrl = optionalParam(params, 'CallbackUrl');
  if (callbackUrl !== undefined) checkHttpUrl('CallbackUrl', callbackUrl, requireHttpsCallback);
  const returnUrl = optionalParam(params, 'ReturnUrl');
  if (returnUrl !== undefined) checkHttpUrl('ReturnUrl', returnUrl, false);
}

/** A transaction of the caller's account (another account's is as unknown as a made-up id). */
function ownTransaction(context: ActionContext, transactionId: string): Transaction | undefined {
  const transaction = context.store.get(transactionId);
  return transaction && transaction.account === context.account ? transaction : undefined;
}

async function checkResult(params: QueryParams, context: ActionContext): Promise<Record<string, unknown>> {
  const merchantBizId = requireParam(params, 'MerchantBizId');
  const transactionId = requireParam(params, 'TransactionId');
  const isReturnImage = optionalParam(params, 'IsReturnImage');
  if (isReturnImage !== undefined) checkOneOf('IsReturnImage', isReturnImage, ['Y', 'N']);

  const transaction = ownTransaction(context, transactionId);
  if (!transaction || transaction.merchantBizId !== merchantBizId) {
    throw apiErrors.invalidParameter('TransactionId', 'no such transaction for this MerchantBizId');
  }
  context.store.recordResultQueried(transaction);
  return buildCheckResult(transaction, context.store.stateOf(transaction), { returnImage: isReturnImage === 'Y' });
}

/**
 * DeleteVerifyResult. The doc marks all three parameters required but gives DeleteAfterQuery a
 * default (N), so only TransactionId and DeleteType are required here. DeleteAfterQuery=Y means
 * "delete only once the result was fetched": the deletion succeeds only after a CheckResult
 * answered the outcome (DeleteResult=N before, as the sibling DeleteFaceVerifyResult documents).
 */
async function deleteVerifyResult(params: QueryParams, context: ActionContext): Promise<Record<string, unknown>> {
  const transactionId = requireParam(params, 'TransactionId');
  const deleteType = requireParam(params, 'DeleteType');
  checkOneOf('DeleteType', deleteType, ['Img', 'Text', 'All']);
  const deleteAfterQuery = optionalParam(params, 'DeleteAfterQuery') ?? 'N';
  checkOneOf('DeleteAfterQuery', deleteAfterQuery, ['Y', 'N']);

  const transaction = ownTransaction(context, transactionId);
  if (!transaction) throw apiErrors.invalidParameter('TransactionId', 'no such transaction');
  const deletion = context.store.deleteData(transaction, deleteType as DeleteType, deleteAfterQuery === 'Y');
  return { DeleteResult: deletion.deleted ? 'Y' : 'N', TransactionId: transactionId };
}

const ACTIONS: Readonly<Record<string, ActionHandler>> = {
  Initialize: initialize,
  CheckResult: checkResult,
  DeleteVerifyResult: deleteVerifyResult,
};

export function findAction(name: string): ActionHandler | undefined {
  return Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined;
}
