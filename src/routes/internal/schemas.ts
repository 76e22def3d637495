import { z } from 'zod';
import { EVENT_STATES, EVENT_TYPES } from '../../events/repository.js';
import { PUBLIC_STATUSES } from '../../sessions/status.js';

/** Listings answer at most this many items per page. */
export const MAX_PAGE = 100;
export const limitSchema = z.coerce.number().int().min(1).max(MAX_PAGE).default(50).describe(`Items per page (1-${MAX_PAGE}).`);

/**
 * An opaque page cursor (base64url JSON) of the given shape: what the previous page's nextCursor
 * said. Anything else is refused (400 VALIDATION_ERROR).
 */
export const cursorSchema = <T extends z.ZodType>(shape: T) =>
  z
    .string()
    .max(256)
    .transform((s, ctx) => {
      try {
        return JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'cursor must be a nextCursor this service gave' });
        return z.NEVER;
      }
    })
    .pipe(shape)
    .describe("The previous page's nextCursor.");

export const encodeCursor = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

export const sinceSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

const upstreamDeletionSchema = z
  .object({
    state: z
      .enum(['none', 'pending', 'deleted', 'absent', 'rejected', 'failed'])
      .describe('none: no TransactionId; pending: to be asked (again); deleted: DeleteResult Y; absent: N, nothing left; rejected: Alibaba refused; failed: gave up (DELETE again to retry).'),
    attempts: z.number().int(),
    lastError: z.string().nullable().describe("The last failure: Alibaba's code, Deadline, QPS_BUDGET_EXHAUSTED…"),
    at: z.iso.datetime().nullable().describe('When it reached its final state.'),
  })
  .nullable()
  .describe("Its data's deletion at Alibaba (DeleteVerifyResult, DeleteType=All), once the session's erasure began.");

export const transactionSchema = z
  .object({
    attempt: z.number().int().describe('1 for the start, then one more per resume.'),
    transactionId: z.string().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    errorCode: z.string().nullable().describe('Why its Initialize failed, when it did.'),
    callbackPassed: z.string().nullable(),
    callbackSubCode: z.string().nullable(),
    callbackAt: z.iso.datetime().nullable(),
    passed: z.string().nullable().describe("CheckResult's verdict for this transaction."),
    subCode: z.string().nullable(),
    checkedAt: z.iso.datetime().nullable(),
    upstreamDeletion: upstreamDeletionSchema,
  })
  .describe('BackOfficeTransaction');

export const erasureSchema = z
  .object({
    requestedAt: z.iso.datetime().describe('When the erasure was asked for (back office or retention).'),
    redactedAt: z.iso.datetime().nullable().describe('When the personal data here was removed (null: not yet).'),
    completedAt: z.iso.datetime().nullable().describe("When every transaction's deletion at Alibaba reached its final state (kyc.session.redacted was then recorded)."),
  })
  .nullable()
  .describe('ErasureProgress');

export const sessionSchema = z
  .object({
    id: z.uuid().describe("The session's own id (in its CallbackUrls, jobs and events)."),
    merchantBizId: z.string(),
    userId: z.string().nullable().describe("The person: the caller's JWT `sub` as your identity provider issued it (null for sessions from before it was kept, and once erased)."),
    status: z.enum(PUBLIC_STATUSES),
    transactionId: z.string().nullable().describe('The newest transaction.'),
    decidedTransactionId: z.string().nullable().describe('The transaction whose CheckResult decided the session.'),
    passed: z.string().nullable(),
    subCode: z.string().nullable(),
    errorCode: z.string().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    checkedAt: z.iso.datetime().nullable(),
    detailsPurgedAt: z.iso.datetime().nullable(),
    erasure: erasureSchema,
    transactions: z.array(transactionSchema),
  })
  .describe('BackOfficeSessionSummary');

export const erasureAcceptedSchema = z
  .object({
    sessions: z.array(
      z.object({ id: z.uuid(), merchantBizId: z.string(), erasure: erasureSchema.unwrap() }).describe('ErasureRequested'),
    ),
  })
  .describe('ErasureAccepted');

export const eventDataSchema = z
  .object({
    id: z.uuid().describe("The session's id."),
    merchantBizId: z.string(),
    transactionId: z.string().nullable(),
    status: z.string(),
    passed: z.string().optional(),
    subCode: z.string().optional(),
    redactedAt: z.string().optional(),
    upstreamDeletions: z.record(z.string(), z.number()).optional(),
  })
  .describe("The event's data as recorded (sent with `userId` added, except in redacted events).");

export const deliverySchema = z
  .object({
    at: z.iso.datetime(),
    trigger: z.enum(['auto', 'redeliver']),
    httpStatus: z.number().int().nullable().describe("The receiver's answer."),
    error: z.string().nullable().describe('Why no answer came (TimeoutError, ECONNREFUSED…).'),
    latencyMs: z.number().int(),
  })
  .describe('EventDelivery');

export const eventSchema = z
  .object({
    id: z.string(),
    type: z.enum(EVENT_TYPES),
    sessionId: z.uuid(),
    sequence: z.number().int(),
    createdAt: z.iso.datetime(),
    state: z.enum(EVENT_STATES),
    attempts: z.number().int().describe('Automatic attempts (MERCHANT_WEBHOOK_MAX_ATTEMPTS at most; redeliveries are not counted).'),
    lastAttemptAt: z.iso.datetime().nullable(),
    deliveredAt: z.iso.datetime().nullable().describe('The latest successful delivery.'),
    data: eventDataSchema,
    deliveries: z.array(deliverySchema).describe('Every attempt, oldest first.'),
  })
  .describe('BackOfficeEvent');

export const iso = (d: Date | null) => d?.toISOString() ?? null;
