import { z } from 'zod';
import { DOC_TYPES } from '../../config/schema.js';
import type { CallbackInput } from '../../sessions/callback.js';
import { PUBLIC_STATUSES } from '../../sessions/status.js';
import { CALLBACK_FIELDS, RESULT_FIELD_NAMES, spellingsPresent, type CallbackField } from './callback-fields.js';

export const META_INFO_MAX_BYTES = 8 * 1024;
const CONFIG_JSON_MAX_BYTES = 16 * 1024;

/** A lone UTF-16 surrogate: not encodable as UTF-8, so the upstream client cannot send it. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Control characters: never in Alibaba's ids or codes, and PostgreSQL text cannot hold NUL. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * A JSON object sent either as the JSON text the SDK produced (kept byte for byte) or as an object
 * (serialized once). Either way the result must parse as a JSON object within `maxBytes`.
 */
const jsonObjectText = (field: string, maxBytes: number) =>
  z
    .union([z.string(), z.record(z.string(), z.unknown())])
    .transform((value, ctx) => {
      let text: string;
      try {
        text = typeof value === 'string' ? value : JSON.stringify(value);
      } catch {
        // JSON.stringify throws RangeError on an object nested deeper than the stack allows.
        ctx.addIssue({ code: 'custom', message: `${field} is nested too deeply` });
        return z.NEVER;
      }
      if (LONE_SURROGATE.test(text)) {
        ctx.addIssue({ code: 'custom', message: `${field} must be well-formed Unicode` });
        return z.NEVER;
      }
      if (Buffer.byteLength(text, 'utf8') > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `${field} must be at most ${maxBytes} bytes` });
        return z.NEVER;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: `${field} must be valid JSON` });
        return z.NEVER;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        ctx.addIssue({ code: 'custom', message: `${field} must be a JSON object` });
        return z.NEVER;
      }
      return text;
    });

export const merchantBizIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9]{1,32}$/, 'merchantBizId must be 1-32 letters or digits')
  .describe('Your unique business id for this verification (1-32 letters/digits).');

/**
 * The body of POST /kyc/start. Strict: fields that decide security (ProductCode, SecurityLevel,
 * Model, IdSpoof, CallbackUrl, CallbackToken, ...) are merchant policy from config, so a body
 * that tries to set them is refused rather than silently ignored.
 */
export const startBodySchema = z
  .strictObject({
    metaInfo: jsonObjectText('metaInfo', META_INFO_MAX_BYTES).describe(
      'MetaInfo from the Alibaba client SDK (getMetaInfo()): the JSON text as returned (sent on unchanged) or the object.',
    ),
    merchantBizId: merchantBizIdSchema.optional(),
    docType: z.enum(DOC_TYPES).optional().describe('Document type (8-digit code); must be allowed by policy.'),
    // Not z.url(): it checks with the WHATWG parser alone and hands on a trimmed text. The policy
    // (sessions/return-url.ts) parses the text as sent, refuses what other parsers read another way
    // with RETURN_URL_NOT_ALLOWED and forwards WHATWG's href; here only its shape is checked.
    returnUrl: z
      .string()
      .max(2048)
      .regex(/^https?:/i, 'returnUrl must be an http(s) URL')
      .refine((u) => !LONE_SURROGATE.test(u), 'returnUrl must be well-formed Unicode')
      .meta({ format: 'uri' })
      .optional()
      .describe('Where the user returns after verification: on an origin allowed by policy, with no user info (@), backslash or percent-escaped host; https in production. Forwarded in its normalized form.'),
    sceneCode: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,10}$/, 'sceneCode must be 1-10 letters, digits or underscores')
      .optional(),
    languageConfig: jsonObjectText('languageConfig', CONFIG_JSON_MAX_BYTES).optional(),
    styleConfig: jsonObjectText('styleConfig', CONFIG_JSON_MAX_BYTES).optional(),
    showOcrResult: z.boolean().optional(),
    showGuidePage: z.boolean().optional(),
    showAlbumIcon: z.boolean().optional(),
    editOcrResult: z.boolean().optional(),
    procedurePriority: z.enum(['url', 'keep']).optional(),
  })
  .describe('StartVerification');
export type StartBody = z.output<typeof startBodySchema>;

export const startResponseSchema = z
  .object({
    merchantBizId: z.string(),
    transactionId: z.string(),
    transactionUrl: z.string().describe('Open this URL (single use) to run the verification.'),
    protocol: z.string().nullable().describe('For iframe integration.'),
    expiresAt: z.iso.datetime().describe('The transaction expires 30 minutes after issue.'),
    attempt: z.number().int().min(1).describe("Which transaction of the session this is: 1 for the start, one more per resume (KYC_MAX_TRANSACTIONS_PER_SESSION)."),
  })
  .describe('StartedVerification');

const callbackText = (name: string, max: number) =>
  z.string().min(1).max(max).refine((v) => !CONTROL_CHARS.test(v), `${name} must not contain control characters`);

/** Every spelling of one of Alibaba's callback fields (callback-fields.ts), each optional. */
const spellings = <T extends z.ZodType>(field: CallbackField, schema: T) =>
  Object.fromEntries(CALLBACK_FIELDS[field].map((name) => [name, schema.optional()])) as Record<string, z.ZodOptional<T>>;

/** What the callback route acts on: a reachability probe, or a transaction's result (the shape acceptCallback takes). */
export type CallbackQuery = { kind: 'probe' } | ({ kind: 'result' } & CallbackInput);

/**
 * GET /kyc/callback's query: Alibaba's fields under any of their spellings (two spellings of one
 * field are refused), and the parameters this service registered in the CallbackUrl. With none of
 * the result fields it is Alibaba's reachability probe of the CallbackUrl (answered 200); with some
 * but not all it is refused.
 */
export const callbackQuerySchema = z
  .object({
    ...spellings('transactionId', callbackText('transactionId', 64)),
    ...spellings('passed', z.enum(['Y', 'N'])),
    ...spellings('subCode', z.string().max(32).refine((v) => !CONTROL_CHARS.test(v), 'subCode must not contain control characters')),
    ...spellings('callbackToken', z.string().min(1).max(512)),
    sessionId: z.string().max(64).optional().describe('Registered by this service in the CallbackUrl: the session.'),
    attempt: z.string().max(8).optional().describe('Registered by this service in the CallbackUrl: which transaction of the session.'),
    merchantBizId: z.string().max(64).optional().describe('Registered in CallbackUrls before sessions had ids of their own; ignored.'),
  })
  .transform((q, ctx): CallbackQuery => {
    const query = q as Record<string, unknown>;
    if (RESULT_FIELD_NAMES.every((name) => query[name] === undefined)) return { kind: 'probe' };
    const value = <T>(field: CallbackField, required: boolean): T | undefined => {
      const present = spellingsPresent(query, field);
      if (present.length > 1) {
        ctx.addIssue({ code: 'custom', path: [present[1]!], message: `${field} is given twice (${present.join(' and ')}): send one spelling` });
      } else if (present.length === 0 && required) {
        ctx.addIssue({ code: 'custom', path: [field], message: `${field} is required in a callback (transactionId, passed and callbackToken come together)` });
      }
      return present.length === 1 ? (query[present[0]!] as T) : undefined;
    };
    const transactionId = value<string>('transactionId', true);
    const passed = value<'Y' | 'N'>('passed', true);
    const subCode = value<string>('subCode', false);
    const callbackToken = value<string>('callbackToken', true);
    const sessionId = q.sessionId !== undefined && UUID.test(q.sessionId) ? q.sessionId : undefined;
    const attempt = q.attempt !== undefined && /^[1-9][0-9]{0,3}$/.test(q.attempt) ? Number(q.attempt) : undefined;
    if (!transactionId || !passed || !callbackToken) return z.NEVER;
    return { kind: 'result', transactionId, passed, subCode, callbackToken, sessionId, attempt };
  })
  .describe('AlibabaCallback');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const callbackResponseSchema = z.object({
  result: z
    .enum(['recorded', 'duplicate', 'ignored', 'reachable'])
    .describe('recorded: first delivery; duplicate: exact redelivery, nothing changed; ignored: the session was erased, nothing changed; reachable: a probe of the CallbackUrl (no result fields), nothing written.'),
});

export const sessionParamsSchema = z.object({ merchantBizId: merchantBizIdSchema });

/** The longest a status read may wait (s): below the idle timeouts of common proxies and load balancers (60 s). */
export const MAX_STATUS_WAIT_S = 30;

export const sessionQuerySchema = z.object({
  wait: z.coerce
    .number()
    .min(0)
    .max(MAX_STATUS_WAIT_S)
    .optional()
    .describe(
      `Long poll, with \`status\`: when the session's status is still \`status\`, wait up to this many seconds (0-${MAX_STATUS_WAIT_S}) ` +
        'for it to change and answer as soon as it does (a change on any instance), or at the end with the status unchanged (200). Counts as one request against the rate limit. Without `status`, the read answers at once.',
    ),
  status: z
    .enum(PUBLIC_STATUSES)
    .optional()
    .describe("The status the caller already has (the last answer's `status`): with `wait`, the answer comes at once when the session's status differs from it."),
});

export const sessionResponseSchema = z
  .object({
    merchantBizId: z.string(),
    status: z.enum(PUBLIC_STATUSES),
    transactionId: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    passed: z.enum(['Y', 'N']).optional(),
    subCode: z.string().optional(),
    attempts: z.number().int().min(0).describe('Transactions started for this session (its start and each resume).'),
    maxAttempts: z.number().int().min(1).describe('How many it may have (KYC_MAX_TRANSACTIONS_PER_SESSION).'),
    updatedAt: z.iso.datetime(),
  })
  .describe('VerificationSession');
