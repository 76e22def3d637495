import { z } from 'zod';
import { DOC_TYPES } from '../../config/schema.js';
import { PUBLIC_STATUSES } from '../../sessions/status.js';

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
  })
  .describe('StartedVerification');

export const callbackQuerySchema = z
  .object({
    transactionId: z.string().min(1).max(64).refine((v) => !CONTROL_CHARS.test(v), 'transactionId must not contain control characters'),
    passed: z.enum(['Y', 'N']),
    subCode: z.string().max(32).refine((v) => !CONTROL_CHARS.test(v), 'subCode must not contain control characters').optional(),
    subcode: z.string().max(32).refine((v) => !CONTROL_CHARS.test(v), 'subcode must not contain control characters').optional(),
    callbackToken: z.string().min(1).max(512),
    merchantBizId: merchantBizIdSchema.optional(),
  })
  .describe('AlibabaCallback');

export const callbackResponseSchema = z.object({
  result: z.enum(['recorded', 'duplicate']).describe('recorded: first delivery; duplicate: exact redelivery, nothing changed.'),
});

export const sessionParamsSchema = z.object({ merchantBizId: merchantBizIdSchema });

export const sessionResponseSchema = z
  .object({
    merchantBizId: z.string(),
    status: z.enum(PUBLIC_STATUSES),
    transactionId: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    passed: z.enum(['Y', 'N']).optional(),
    subCode: z.string().optional(),
    updatedAt: z.iso.datetime(),
  })
  .describe('VerificationSession');
