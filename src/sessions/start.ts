import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/schema.js';
import { CloudAuthError, upstreamHttpError } from '../cloudauth/errors.js';
import type { CloudAuthApi, InitializeRequest } from '../cloudauth/types.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { DbUnavailableError } from '../db/errors.js';
import { HttpError } from '../errors/http-error.js';
import type { StartBody } from '../routes/kyc/schemas.js';
import type { CallbackTokens } from './callback-token.js';
import type { Session, SessionRepository } from './repository.js';
import { allowedReturnUrl } from './return-url.js';
import { publicStatus, TRANSACTION_TTL_MS } from './status.js';

export interface StartDeps {
  config: Config;
  sessions: SessionRepository;
  callbackTokens: CallbackTokens;
  /**
   * The QPS budget's look-ahead for this start (budget.check, already sent): rejects when the
   * budget is full, so an overloaded start is refused before it writes anything.
   */
  lookAhead: Promise<void>;
  cloudauth: CloudAuthApi;
  log: FastifyBaseLogger;
  /** See CallOptions: the route notes Alibaba's RequestId for its request log line. */
  onUpstreamRequestId?: (requestId: string) => void;
}

export interface StartedSession {
  merchantBizId: string;
  transactionId: string;
  transactionUrl: string;
  protocol: string | null;
  expiresAt: string;
  /** false when an earlier start with the same merchantBizId was returned (no new Initialize). */
  created: boolean;
}

const flag = (v: boolean | undefined) => (v === undefined ? undefined : v ? '1' : '0');

/**
 * POST /kyc/start: reserve the session row first (so a successful Initialize always has a row),
 * call Initialize with merchant policy, then store the transaction on the row.
 */
export async function startSession(
  deps: StartDeps,
  userRef: string,
  body: StartBody,
  signal?: AbortSignal,
): Promise<StartedSession> {
  const { config, sessions, cloudauth, log } = deps;
  const docType = body.docType ?? config.KYC_DEFAULT_DOC_TYPE;
  if (!config.KYC_DOC_TYPES.includes(docType)) {
    throw new HttpError(400, 'DOC_TYPE_NOT_ALLOWED', `docType ${docType} is not accepted by this merchant`);
  }
  const returnUrl = body.returnUrl === undefined ? undefined : allowedReturnUrl(config, body.returnUrl);

  const merchantBizId = body.merchantBizId ?? randomUUID().replaceAll('-', '');
  // Under overload most starts cannot get a slot: refuse those before the database sees them
  // (a repeated start of an existing session needs no slot: it still gets its session).
  try {
    await deps.lookAhead;
  } catch (err) {
    const existing = body.merchantBizId ? await sessions.findByMerchantBizId(merchantBizId) : null;
    if (!existing) throw err;
    return existingSession(existing, merchantBizId, userRef, config);
  }
  const callbackToken = deps.callbackTokens.issue();
  const reserved = await sessions.reserve({
    merchantBizId,
    userRef,
    docType,
    callbackTokenHash: callbackToken.hash,
    // Upper bound until Initialize answers, so an interrupted start still expires.
    expiresAt: new Date(Date.now() + TRANSACTION_TTL_MS),
  });
  if (!reserved) return existingSession(await sessions.findByMerchantBizId(merchantBizId), merchantBizId, userRef, config);

  const callbackUrl = new URL(`${config.PUBLIC_BASE_URL}/kyc/callback`);
  callbackUrl.searchParams.set('merchantBizId', merchantBizId);
  const request: InitializeRequest = {
    // Merchant policy: never taken from the request body.
    ProductCode: config.KYC_PRODUCT_CODE,
    SecurityLevel: config.KYC_SECURITY_LEVEL,
    Model: config.KYC_MODEL,
    IdSpoof: config.KYC_ID_SPOOF,
    Authorize: config.KYC_AUTHORIZE,
    IdThreshold: config.KYC_ID_THRESHOLD,
    AppQualityCheck: config.KYC_APP_QUALITY_CHECK,
    DocVideo: config.KYC_DOC_VIDEO,
    CallbackUrl: callbackUrl.toString(),
    CallbackToken: callbackToken.token,
    // The caller's part.
    MerchantBizId: merchantBizId,
    MerchantUserId: userRef,
    MetaInfo: body.metaInfo,
    DocType: docType,
    ReturnUrl: returnUrl,
    SceneCode: body.sceneCode,
    LanguageConfig: body.languageConfig,
    StyleConfig: body.styleConfig,
    ShowOcrResult: flag(body.showOcrResult),
    ShowGuidePage: flag(body.showGuidePage),
    ShowAlbumIcon: flag(body.showAlbumIcon),
    EditOcrResult: flag(body.editOcrResult),
    ProcedurePriority: body.procedurePriority,
  };

  let result;
  try {
    result = await cloudauth.initialize(request, { log, signal, onUpstreamRequestId: deps.onUpstreamRequestId });
  } catch (err) {
    if (err instanceof CloudAuthError) {
      const httpError = upstreamHttpError(err);
      log.warn({ merchantBizId, upstream: err.toLog(), code: httpError.code }, 'Initialize failed');
      // The caller learns what Alibaba said even if the database cannot take the note.
      await sessions.markError(merchantBizId, httpError.code, err.details.requestId ?? null).catch(logUnrecorded(log, merchantBizId));
      throw httpError;
    }
    // Nothing reached Alibaba (no budget slot, caller gone): free the id for a retry.
    await sessions.release(merchantBizId).catch(logUnrecorded(log, merchantBizId));
    throw err;
  }

  const issuedAt = Date.now();
  const transaction = {
    transactionId: result.transactionId,
    transactionUrl: result.transactionUrl,
    protocol: result.protocol ?? null,
    expiresAt: new Date(issuedAt + TRANSACTION_TTL_MS),
    upstreamRequestId: result.requestId ?? null,
  };
  const stored = await storeTransaction(sessions, merchantBizId, transaction, log);
  log.info({ merchantBizId, upstreamRequestId: result.requestId, stored }, 'verification started');
  return {
    merchantBizId,
    transactionId: transaction.transactionId,
    transactionUrl: transaction.transactionUrl,
    protocol: transaction.protocol,
    expiresAt: transaction.expiresAt.toISOString(),
    created: true,
  };
}

const logUnrecorded = (log: FastifyBaseLogger, merchantBizId: string) => (err: unknown) =>
  log.error({ merchantBizId, err: { message: (err as Error).message } }, 'could not record the failed start');

/** Waits before each further attempt to store a transaction Alibaba already created. */
const STORE_RETRY_DELAYS_MS = [100, 300, 900];

/**
 * A transaction Alibaba created is billed and live, so a database hiccup must not lose it: the
 * write is retried, and if the database stays away the caller still gets the transaction. The
 * reserved row then lacks its TransactionId; the callback finds it by the merchantBizId carried
 * in the CallbackUrl and completes it.
 */
async function storeTransaction(
  sessions: SessionRepository,
  merchantBizId: string,
  transaction: Parameters<SessionRepository['attachTransaction']>[1],
  log: FastifyBaseLogger,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await sessions.attachTransaction(merchantBizId, transaction);
      return true;
    } catch (err) {
      const delay = STORE_RETRY_DELAYS_MS[attempt];
      if (!(err instanceof DbUnavailableError) || delay === undefined) {
        log.error(
          { merchantBizId, transactionId: transaction.transactionId, err: { message: (err as Error).message } },
          'could not store the transaction; its callback will complete the session by merchantBizId',
        );
        return false;
      }
      await sleep(delay);
    }
  }
}

/**
 * The longest a start can run: the upstream deadline (budget wait included), the reservation,
 * and the write of the transaction with its retries. A row still without its transaction after
 * that was left by a process that died mid-start.
 */
export function longestStartMs(config: Pick<Config, 'CLOUDAUTH_TIMEOUT_MS' | 'DATABASE_TIMEOUT_MS'>): number {
  const writes = 2 + STORE_RETRY_DELAYS_MS.length;
  return config.CLOUDAUTH_TIMEOUT_MS + writes * config.DATABASE_TIMEOUT_MS + STORE_RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
}

function existingSession(session: Session | null, merchantBizId: string, userRef: string, config: Config): StartedSession {
  if (!session || session.userRef !== userRef) {
    throw new HttpError(409, 'MERCHANT_BIZ_ID_TAKEN', `merchantBizId ${merchantBizId} is already in use`);
  }
  switch (publicStatus(session)) {
    case 'expired':
      throw new HttpError(409, 'SESSION_EXPIRED', 'This verification expired; start a new one with a new merchantBizId');
    case 'error':
      throw new HttpError(409, 'SESSION_FAILED', 'This verification could not be started; use a new merchantBizId');
    case 'verifying':
    case 'passed':
    case 'failed':
      throw new HttpError(409, 'SESSION_COMPLETED', 'This verification is already complete');
    case 'pending':
      if (!session.transactionId && Date.now() - session.createdAt.getTime() > longestStartMs(config)) {
        // Alibaba may hold its transaction; the callback or the sweep settles the row. A retry cannot.
        throw new HttpError(409, 'SESSION_INTERRUPTED', 'This verification\'s start was interrupted; it ends by itself at its expiry; start a new one with a new merchantBizId');
      }
      if (!session.transactionId) {
        throw new HttpError(409, 'SESSION_STARTING', 'This verification is still being started; retry shortly', { 'retry-after': '1' });
      }
      return { ...view(session), created: false };
  }
}

function view(session: Session): Omit<StartedSession, 'created'> {
  return {
    merchantBizId: session.merchantBizId,
    transactionId: session.transactionId ?? '',
    transactionUrl: session.transactionUrl ?? '',
    protocol: session.protocol,
    expiresAt: session.expiresAt.toISOString(),
  };
}
