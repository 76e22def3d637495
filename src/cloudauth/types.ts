import type { FastifyBaseLogger } from 'fastify';

/**
 * Request and response shapes of the cloudauth-intl 2022-08-09 operations this service calls.
 * Parameter names are the wire names of Alibaba's generated SDK.
 */

export type ApiName = 'Initialize' | 'CheckResult' | 'DeleteVerifyResult';

export interface InitializeRequest {
  ProductCode: string;
  MerchantBizId: string;
  MetaInfo: string;
  MerchantUserId: string;
  DocType: string;
  ReturnUrl?: string;
  SceneCode?: string;
  IdSpoof?: 'Y' | 'N';
  Authorize?: 'T' | 'F';
  LanguageConfig?: string;
  SecurityLevel?: '01' | '02';
  StyleConfig?: string;
  IdThreshold?: string;
  Model?: string;
  DocVideo?: 'Y' | 'N';
  ShowAlbumIcon?: '0' | '1';
  ShowOcrResult?: '0' | '1';
  ShowGuidePage?: '0' | '1';
  ProcedurePriority?: 'url' | 'keep';
  CallbackUrl?: string;
  CallbackToken?: string;
  AppQualityCheck?: 'Y' | 'N';
  EditOcrResult?: '0' | '1';
}

export interface InitializeResult {
  requestId: string | undefined;
  transactionId: string;
  transactionUrl: string;
  protocol: string | undefined;
}

export interface CheckResultRequest {
  MerchantBizId: string;
  TransactionId: string;
  IsReturnImage?: 'Y' | 'N';
  ReturnFiveCategorySpoofResult?: 'Y' | 'N';
}

/** CheckResult's fields that carry the verification's data (JSON text as Alibaba sends it), by their names here. */
export const CHECK_RESULT_DETAIL_FIELDS = {
  extBasicInfo: 'ExtBasicInfo',
  extIdInfo: 'ExtIdInfo',
  extFaceInfo: 'ExtFaceInfo',
  extRiskInfo: 'ExtRiskInfo',
  extInfo: 'ExtInfo',
  extSourceInfo: 'ExtSourceInfo',
  ekycResult: 'EkycResult',
} as const;
export type CheckResultDetail = keyof typeof CHECK_RESULT_DETAIL_FIELDS;

export interface CheckResultResult {
  requestId: string | undefined;
  /** Y passed, N failed, P still in progress (some products). */
  passed: string;
  subCode: string | undefined;
  /** Personal data (JSON text), each field Alibaba returned. Never log these. */
  details: Partial<Record<CheckResultDetail, string>>;
}

export interface DeleteVerifyResultRequest {
  TransactionId: string;
  /** Img: the images; Text: the rest of the result data; All: both. */
  DeleteType: 'Img' | 'Text' | 'All';
  /** Y: delete only if CheckResult has already fetched the result (else DeleteResult N). Alibaba's default: N. */
  DeleteAfterQuery?: 'Y' | 'N';
}

export interface DeleteVerifyResultResult {
  requestId: string | undefined;
  /** Y deleted, N not deleted (e.g. nothing left to delete, or not yet queried with DeleteAfterQuery=Y). */
  deleteResult: string;
  transactionId: string | undefined;
}

export interface CallOptions {
  /** Aborts the call (e.g. the caller went away). */
  signal?: AbortSignal;
  /** Epoch ms by which the call must be answered, retries included (default: now + the client's timeout). */
  deadlineAt?: number;
  /** Where to log the call (a request's logger carries its request id). */
  log?: FastifyBaseLogger;
  /** Told Alibaba's RequestId of every answer, failures included (a request logs the last one). */
  onUpstreamRequestId?: (requestId: string) => void;
  /**
   * Puts the request on the wire. Called once it is signed and its connection is open; calls
   * `send` at the moment the call may start (the QPS budget's slot) and resolves, or rejects
   * without calling it (the rejection then propagates as it is). Default: send at once.
   */
  dispatch?: (send: () => Promise<number>) => Promise<void>;
}

/** What the rest of the service needs from cloudauth-intl. */
export interface CloudAuthApi {
  initialize(request: InitializeRequest, options?: CallOptions): Promise<InitializeResult>;
  checkResult(request: CheckResultRequest, options?: CallOptions): Promise<CheckResultResult>;
  /** Erases a verification's images and/or data at Alibaba (before their 30 days). */
  deleteVerifyResult(request: DeleteVerifyResultRequest, options?: CallOptions): Promise<DeleteVerifyResultResult>;
}
