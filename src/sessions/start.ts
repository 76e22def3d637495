import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { CloudAuthError, upstreamHttpError } from '../cloudauth/errors.js';
import type { CloudAuthApi, InitializeRequest } from '../cloudauth/types.js';
import { DbUnavailableError } from '../db/errors.js';
import { HttpError } from '../errors/http-error.js';
import type { Sealer } from '../privacy/cipher.js';
import { callbackUrlFor } from './callback-url.js';
import type { CallbackTokens } from './callback-token.js';
import type { Caps, IssuedTransaction, Reserved, Session, SessionRepository, Transaction } from './repository.js';
import { allowedReturnUrl } from './return-url.js';
import { publicStatus, TRANSACTION_TTL_MS } from './status.js';

/** Who is starting: the caller's JWT `sub` (sealed before it is stored) and its keyed hash. */
export interface Caller {
  ref: string;
  sub: string;
}

/**
 * What a frontend sends to start (or resume) a verification: the caller's part of Initialize. Its
 * HTTP shape (zod, OpenAPI) is in routes/kyc/schemas.ts and produces exactly this.
 */
export interface StartRequest {
  metaInfo: string;
  merchantBizId?: string | undefined;
  docType?: string | undefined;
  returnUrl?: string | undefined;
  sceneCode?: string | undefined;
  languageConfig?: string | undefined;
  styleConfig?: string | undefined;
  showOcrResult?: boolean | undefined;
  showGuidePage?: boolean | undefined;
  showAlbumIcon?: boolean | undefined;
  editOcrResult?: boolean | undefined;
  procedurePriority?: 'url' | 'keep' | undefined;
}

export interface StartDeps {
  config: Config;
  sessions: SessionRepository;
  callbackTokens: CallbackTokens;
  sealer: Sealer;
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
  /** Which Initialize of the session this is: 1 for the start, then one more per resume. */
  attempt: number;
  /** false when an earlier start with the same merchantBizId was returned (no new Initialize). */
  created: boolean;
}

const flag = (v: boolean | undefined) => (v === undefined ? undefined : v ? '1' : '0');
const capsOf = (config: Config): Caps => ({
  perSession: config.KYC_MAX_TRANSACTIONS_PER_SESSION,
  perUserPerDay: config.KYC_MAX_STARTS_PER_USER_PER_DAY,
});

/**
 * POST /kyc/start: reserve the session row and its first transaction (so a successful Initialize
 * always has a row), call Initialize with merchant policy, then store the transaction. The same
 * caller repeating a live merchantBizId gets the same transaction back: no second Initialize.
 */
export async function startSession(deps: StartDeps, caller: Caller, body: StartRequest, signal?: AbortSignal): Promise<StartedSession> {
  const { config, sessions } = deps;
  const docType = allowedDocType(config, body.docType);
  const returnUrl = body.returnUrl === undefined ? undefined : allowedReturnUrl(config, body.returnUrl);

  const merchantBizId = body.merchantBizId ?? randomUUID().replaceAll('-', '');
  // Under overload most starts cannot get a slot: refuse those before the database sees them
  // (a repeated start of an existing session needs no slot: it still gets its session).
  try {
    await deps.lookAhead;
  } catch (err) {
    const existing = body.merchantBizId ? await sessions.findOwn(caller.ref, merchantBizId) : null;
    if (!existing) throw err;
    return existingSession(deps, existing);
  }

  const id = randomUUID();
  const callbackToken = deps.callbackTokens.issue();
  const reserved = await sessions.reserveSession(
    {
      id,
      merchantBizId,
      userRef: caller.ref,
      userId: deps.sealer.seal(caller.sub, id),
      docType,
      callbackTokenHash: callbackToken.hash,
      expiresAt: new Date(Date.now() + TRANSACTION_TTL_MS),
    },
    capsOf(config),
  );
  if (reserved.kind === 'exists') {
    const existing = await sessions.findOwn(caller.ref, merchantBizId);
    if (!existing) throw stillStarting();
    return existingSession(deps, existing);
  }
  const { seq, quotaStamp } = reservedOrThrow(reserved);
  return initialize(deps, { id, merchantBizId, docType, userRef: caller.ref }, { seq, quotaStamp, token: callbackToken.token }, body, returnUrl, signal);
}

/**
 * POST /kyc/sessions/:merchantBizId/resume: a new transaction for the caller's session (Alibaba's
 * TransactionUrl works once: a reload, a lost tab or a broken camera needs a new one). Same
 * MerchantBizId, a new CallbackToken, the same policy; refused once the session has an outcome
 * (or a callback is being verified), while another start of it runs, and past the caps.
 */
export async function resumeSession(
  deps: StartDeps,
  caller: Caller,
  merchantBizId: string,
  body: StartRequest,
  signal?: AbortSignal,
): Promise<StartedSession> {
  const { config, sessions } = deps;
  if (body.merchantBizId !== undefined && body.merchantBizId !== merchantBizId) {
    throw new HttpError(400, 'VALIDATION_ERROR', 'merchantBizId in the body must be absent or the one in the path');
  }
  const session = await sessions.findOwn(caller.ref, merchantBizId);
  if (!session) throw notFound();
  const docType = allowedDocType(config, body.docType ?? session.docType);
  const returnUrl = body.returnUrl === undefined ? undefined : allowedReturnUrl(config, body.returnUrl);
  refuseUnresumable(session, await sessions.transactionsOf(session.id), config);
  await deps.lookAhead;

  const callbackToken = deps.callbackTokens.issue();
  const reserved = await sessions.reserveTransaction(
    { sessionId: session.id, userRef: caller.ref, callbackTokenHash: callbackToken.hash, expiresAt: new Date(Date.now() + TRANSACTION_TTL_MS) },
    capsOf(config),
  );
  const { seq, quotaStamp } = reservedOrThrow(reserved);
  return initialize(deps, { id: session.id, merchantBizId, docType, userRef: caller.ref }, { seq, quotaStamp, token: callbackToken.token }, body, returnUrl, signal);
}

export const notFound = () => new HttpError(404, 'SESSION_NOT_FOUND', 'No such verification');
const stillStarting = () => new HttpError(409, 'SESSION_STARTING', 'This verification is still being started; retry shortly', { 'retry-after': '1' });

function allowedDocType(config: Config, docType: string | undefined): string {
  const chosen = docType ?? config.KYC_DEFAULT_DOC_TYPE;
  if (!(config.KYC_DOC_TYPES as readonly string[]).includes(chosen)) {
    throw new HttpError(400, 'DOC_TYPE_NOT_ALLOWED', `docType ${chosen} is not accepted by this merchant`);
  }
  return chosen;
}

function reservedOrThrow(reserved: Reserved): { seq: number; quotaStamp: string } {
  switch (reserved.kind) {
    case 'reserved':
      return reserved;
    case 'session-cap':
      // Waiting does not help: no Retry-After.
      throw new HttpError(429, 'ATTEMPTS_EXHAUSTED', 'This verification has used all its attempts; start a new one with a new merchantBizId');
    case 'day-cap':
      throw new HttpError(429, 'ATTEMPTS_EXHAUSTED', `Too many verifications started today; retry in ${reserved.retryAfterS} s`, {
        'retry-after': String(reserved.retryAfterS),
      });
    case 'busy':
    case 'exists':
      throw stillStarting();
  }
}

interface SessionRef {
  id: string;
  merchantBizId: string;
  docType: string;
  userRef: string;
}

/** Calls Initialize for a reserved transaction and stores what it returned. */
async function initialize(
  deps: StartDeps,
  session: SessionRef,
  attempt: { seq: number; quotaStamp: string; token: string },
  body: StartRequest,
  returnUrl: string | undefined,
  signal: AbortSignal | undefined,
): Promise<StartedSession> {
  const { config, sessions, cloudauth, log } = deps;
  const { id, merchantBizId } = session;
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
    CallbackUrl: callbackUrlFor(config.PUBLIC_BASE_URL, id, attempt.seq),
    CallbackToken: attempt.token,
    // The caller's part.
    MerchantBizId: merchantBizId,
    MerchantUserId: session.userRef,
    MetaInfo: body.metaInfo,
    DocType: session.docType,
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
      log.warn({ merchantBizId, sessionId: id, attempt: attempt.seq, upstream: err.toLog(), code: httpError.code }, 'Initialize failed');
      // The caller learns what Alibaba said even if the database cannot take the note.
      await sessions
        .markStartFailed(id, attempt.seq, httpError.code, err.details.requestId ?? null)
        .catch(logUnrecorded(log, id));
      throw httpError;
    }
    // Nothing reached Alibaba (no budget slot, caller gone): free the attempt for a retry.
    await sessions.releaseTransaction(id, attempt.seq, session.userRef, attempt.quotaStamp).catch(logUnrecorded(log, id));
    throw err;
  }

  const transaction: IssuedTransaction = {
    transactionId: result.transactionId,
    transactionUrl: result.transactionUrl,
    protocol: result.protocol ?? null,
    expiresAt: new Date(Date.now() + TRANSACTION_TTL_MS),
    upstreamRequestId: result.requestId ?? null,
  };
  const stored = await storeTransaction(sessions, id, attempt.seq, transaction, log);
  log.info({ merchantBizId, sessionId: id, attempt: attempt.seq, upstreamRequestId: result.requestId, stored }, 'verification started');
  return {
    merchantBizId,
    transactionId: transaction.transactionId,
    transactionUrl: transaction.transactionUrl,
    protocol: transaction.protocol,
    expiresAt: transaction.expiresAt.toISOString(),
    attempt: attempt.seq,
    created: true,
  };
}

const logUnrecorded = (log: FastifyBaseLogger, sessionId: string) => (err: unknown) =>
  log.error({ sessionId, err: { message: (err as Error).message } }, 'could not record the failed start');

/** Waits before each further attempt to store a transaction Alibaba already created. */
const STORE_RETRY_DELAYS_MS = [100, 300, 900];

/**
 * A transaction Alibaba created is billed and live, so a database hiccup must not lose it: the
 * write is retried, and if the database stays away the caller still gets the transaction. The
 * reserved row then lacks its TransactionId; the callback finds it by the session id and attempt
 * carried in the CallbackUrl and completes it.
 */
async function storeTransaction(
  sessions: SessionRepository,
  sessionId: string,
  seq: number,
  transaction: IssuedTransaction,
  log: FastifyBaseLogger,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await sessions.attachTransaction(sessionId, seq, transaction);
      return true;
    } catch (err) {
      const delay = STORE_RETRY_DELAYS_MS[attempt];
      if (!(err instanceof DbUnavailableError) || delay === undefined) {
        log.error(
          { sessionId, transactionId: transaction.transactionId, err: { message: (err as Error).message } },
          'could not store the transaction; its callback will complete the session by its session id',
        );
        return false;
      }
      await sleep(delay);
    }
  }
}

/**
 * The longest a start can run: the upstream deadline (budget wait included), the reservation,
 * and the write of the transaction with its retries. A transaction still without its id after
 * that was left by a process that died mid-start.
 */
export function longestStartMs(config: Pick<Config, 'CLOUDAUTH_TIMEOUT_MS' | 'DATABASE_TIMEOUT_MS'>): number {
  const writes = 2 + STORE_RETRY_DELAYS_MS.length;
  return config.CLOUDAUTH_TIMEOUT_MS + writes * config.DATABASE_TIMEOUT_MS + STORE_RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
}

/** An Initialize still running: reserved, no answer yet, younger than the longest start. */
function inFlight(transactions: Transaction[], config: Config, now = Date.now()): boolean {
  return transactions.some((t) => !t.transactionId && !t.errorCode && now - t.createdAt.getTime() <= longestStartMs(config));
}

/** Why a session cannot get another transaction now, if it cannot. */
function refuseUnresumable(session: Session, transactions: Transaction[], config: Config): void {
  const status = publicStatus(session);
  if (status === 'passed' || status === 'failed' || status === 'verifying' || transactions.some((t) => t.callbackPassed !== null)) {
    throw new HttpError(409, 'SESSION_COMPLETED', 'This verification already has its outcome (or it is being verified)');
  }
  if (inFlight(transactions, config)) {
    throw stillStarting();
  }
}

/** A repeated start of the caller's own session: its current transaction, or why there is none. */
async function existingSession(deps: StartDeps, session: Session): Promise<StartedSession> {
  const { config } = deps;
  switch (publicStatus(session)) {
    case 'expired':
      throw new HttpError(409, 'SESSION_EXPIRED', 'This verification expired; resume it for a new link (POST /kyc/sessions/{merchantBizId}/resume)');
    case 'error':
      throw new HttpError(409, 'SESSION_FAILED', 'This verification could not be started; resume it (POST /kyc/sessions/{merchantBizId}/resume)');
    case 'verifying':
    case 'passed':
    case 'failed':
      throw new HttpError(409, 'SESSION_COMPLETED', 'This verification is already complete');
    case 'pending': {
      const transactions = await deps.sessions.transactionsOf(session.id);
      // The newest transaction Initialize answered is the session's current one (read after the
      // session row, it also covers a start that stored its transaction in between).
      const current = transactions.findLast((t) => t.transactionId !== null && t.transactionUrl !== null);
      if (current) return { ...view(session, current), created: false };
      if (inFlight(transactions, config)) {
        throw stillStarting();
      }
      // Alibaba may hold its transaction; the callback or the sweep settles the row. A retry cannot.
      throw new HttpError(409, 'SESSION_INTERRUPTED', "This verification's start was interrupted; resume it (POST /kyc/sessions/{merchantBizId}/resume) or wait for its expiry");
    }
  }
}

function view(session: Session, t: Transaction): Omit<StartedSession, 'created'> {
  return {
    merchantBizId: session.merchantBizId,
    transactionId: t.transactionId ?? '',
    transactionUrl: t.transactionUrl ?? '',
    protocol: t.protocol,
    expiresAt: t.expiresAt.toISOString(),
    attempt: t.seq,
  };
}
