/** The cloudauth-intl actions: Initialize and CheckResult. */
import { randomBytes } from 'node:crypto';
import {
  checkHttpUrl,
  checkJsonObject,
  checkOneOf,
  checkPattern,
  optionalParam,
  requireParam,
} from './params.js';
import { apiErrors } from './protocol.js';
import { buildCheckResult } from './results.js';
import type { QueryParams } from './signature.js';
import type { TransactionStore } from './store.js';

export interface ActionContext {
  accessKeyId: string;
  store: TransactionStore;
  /** Base URL users' browsers reach the simulator at (for TransactionUrl). */
  publicUrl: string;
  requireHttpsCallback: boolean;
}

export type ActionHandler = (params: QueryParams, context: ActionContext) => Record<string, unknown>;

export const PRODUCT_CODES = ['eKYC', 'eKYC_PRO'] as const;
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

function initialize(params: QueryParams, context: ActionContext): Record<string, unknown> {
  const productCode = requireParam(params, 'ProductCode');
  const merchantBizId = requireParam(params, 'MerchantBizId');
  const metaInfo = requireParam(params, 'MetaInfo');
  const merchantUserId = requireParam(params, 'MerchantUserId');
  const docType = requireParam(params, 'DocType');

  checkOneOf('ProductCode', productCode, PRODUCT_CODES);
  checkPattern('MerchantBizId', merchantBizId, /^[A-Za-z0-9]{1,32}$/, 'must be 1-32 letters or digits');
  checkJsonObject('MetaInfo', metaInfo);
  checkOneOf('DocType', docType, DOC_TYPES);
  checkOptionalParams(params, context.requireHttpsCallback);

  const transaction = context.store.create({
    accessKeyId: context.accessKeyId,
    productCode,
    merchantBizId,
    merchantUserId,
    docType,
    callbackUrl: optionalParam(params, 'CallbackUrl'),
    callbackToken: optionalParam(params, 'CallbackToken'),
    returnUrl: optionalParam(params, 'ReturnUrl'),
    params: Object.fromEntries(params),
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

function checkResult(params: QueryParams, context: ActionContext): Record<string, unknown> {
  const merchantBizId = requireParam(params, 'MerchantBizId');
  const transactionId = requireParam(params, 'TransactionId');
  const isReturnImage = optionalParam(params, 'IsReturnImage');
  if (isReturnImage !== undefined) checkOneOf('IsReturnImage', isReturnImage, ['Y', 'N']);

  const transaction = context.store.get(transactionId);
  if (!transaction || transaction.merchantBizId !== merchantBizId) {
    throw apiErrors.invalidParameter('TransactionId', 'no such transaction for this MerchantBizId');
  }
  return buildCheckResult(transaction, context.store.stateOf(transaction));
}

const ACTIONS: Readonly<Record<string, ActionHandler>> = {
  Initialize: initialize,
  CheckResult: checkResult,
};

export function findAction(name: string): ActionHandler | undefined {
  return Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined;
}
