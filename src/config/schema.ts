import { z } from 'zod';

/** The document types Alibaba documents for Initialize (initialize-api.txt, "Document type list"). */
export const DOC_TYPES = [
  '01000000', // global passport
  '00000006', // Hong Kong identity card (2003)
  '00000008', // Hong Kong identity card (2018)
  '00000007', // Exit-Entry Permit for Travelling to and from Hong Kong and Macao
  '00000009', // Mainland Travel Permit for Hong Kong and Macao Residents
  '000000011', // Macao identity card
  '000000012', // Mainland Travel Permit for Taiwan Residents
  '00000001', // second-generation resident ID card of the Chinese mainland
] as const;
export type DocType = (typeof DOC_TYPES)[number];

const csv = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));

const flag = z.enum(['true', 'false', '1', '0']);
const bool = (fallback: 'true' | 'false') => flag.default(fallback).transform((v) => v === 'true' || v === '1');
const secret = (what: string) => z.string().min(32, `${what} must be at least 32 characters`);
const origin = z.url().transform((u, ctx) => {
  const parsed = new URL(u);
  if (!['http:', 'https:'].includes(parsed.protocol)) {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) origin' });
    return z.NEVER;
  }
  return parsed.origin;
});

/**
 * Every environment variable the service reads. This schema is the single source of truth:
 * start-up validates against it and the README's configuration table is written from it.
 */
export const envSchema = z.object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development').describe('Runtime mode.'),
    HOST: z.string().default('127.0.0.1').describe('Interface to listen on (0.0.0.0 in containers).'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000).describe('HTTP port.'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level.'),
    TRUST_PROXY: bool('false').describe('Trust X-Forwarded-* (set when behind a load balancer).'),
    CORS_ORIGINS: csv(origin).describe('Comma-separated browser origins allowed to call the API (empty: CORS off).'),
    DOCS_ENABLED: flag.transform((v) => v === 'true' || v === '1').optional().describe('Serve OpenAPI at /docs (default: on unless production).'),

    METRICS_TOKEN: secret('METRICS_TOKEN').optional().describe('Bearer token required by GET /metrics; unset: /metrics is open (keep it off the public network).'),
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1000).describe('Answer 503 OVERLOADED while the mean event-loop delay (sampled each second) is above this (ms; 0: off).'),
    OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: z.coerce.number().min(0).max(1).default(0).describe('Answer 503 OVERLOADED while event-loop utilization (over each second) is above this (0-1; 0: off).'),
    OVERLOAD_MAX_HEAP_USED_BYTES: z.coerce.number().int().min(0).default(0).describe('Answer 503 OVERLOADED while the V8 heap in use is above this (bytes; 0: off).'),
    OVERLOAD_MAX_RSS_BYTES: z.coerce.number().int().min(0).default(0).describe('Answer 503 OVERLOADED while the resident set size is above this (bytes; 0: off).'),
    OVERLOAD_RETRY_AFTER_S: z.coerce.number().int().min(1).max(3600).default(5).describe('Retry-After of 503 OVERLOADED (s).'),

    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL').describe('PostgreSQL connection URL.'),
    DATABASE_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(800).describe('Bound on connecting to PostgreSQL and on each query (ms); beyond it: 503 DB_UNAVAILABLE.'),
    REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').describe('Redis connection URL (QPS budget, rate limits).'),

    ALIBABA_CLOUD_ACCESS_KEY_ID: z.string().min(1).describe('AccessKey id of the RAM user calling cloudauth-intl.'),
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: z.string().min(1).describe('AccessKey secret (never logged).'),
    CLOUDAUTH_ENDPOINT: z
      .url({ protocol: /^https?$/ })
      .default('https://cloudauth-intl.cn-hongkong.aliyuncs.com')
      .describe('cloudauth-intl endpoint URL; http://127.0.0.1:PORT points at the simulator.'),
    CLOUDAUTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000).describe('Overall deadline of one upstream call (ms).'),
    CLOUDAUTH_ACCOUNT: z.string().min(1).optional().describe('Name of the Alibaba Cloud account whose QPS budget is shared (default: the AccessKey id).'),
    CLOUDAUTH_QPS: z.coerce.number().int().min(1).default(10).describe('Exclusive QPS per server API for the account.'),
    CLOUDAUTH_QPS_INITIALIZE: z.coerce.number().int().min(1).optional().describe('Override of CLOUDAUTH_QPS for Initialize.'),
    CLOUDAUTH_QPS_CHECKRESULT: z.coerce.number().int().min(1).optional().describe('Override of CLOUDAUTH_QPS for CheckResult.'),
    CLOUDAUTH_BUDGET_WAIT_MS: z.coerce.number().int().min(0).max(30_000).default(2000).describe('How long a call may queue for a QPS slot before 429.'),
    CLOUDAUTH_BUDGET_MARGIN_MS: z.coerce.number().int().min(0).max(500).default(40).describe("Network allowance (ms): jitter between a call leaving this service and its arrival at Alibaba. Each call's slot holds the 1-s window longer by this plus the dispatch delay its instance measured (kyc_budget_margin_seconds), so N+1 calls never arrive in one second."),
    CLOUDAUTH_BUDGET_MAX_DISPATCH_MS: z.coerce.number().int().min(1).max(1000).default(200).describe('Most dispatch delay (budget slot → request written) a call may be promised (ms): a busier instance gives its slots back and queues again (429 after 3 tries) rather than widen its margin further.'),

    RATE_LIMIT_PER_USER: z.coerce.number().int().min(1).default(20).describe('POST /kyc/start requests per minute per user (JWT sub).'),
    RATE_LIMIT_PER_IP: z.coerce.number().int().min(1).default(120).describe('POST /kyc/start requests per minute per client IP.'),
    RATE_LIMIT_CALLBACK_PER_IP: z.coerce.number().int().min(1).default(1200).describe('GET /kyc/callback requests per minute per IP.'),

    PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).describe('Base URL Alibaba can reach; the callback is PUBLIC_BASE_URL/kyc/callback (https in production).'),

    AUTH_JWT_SECRET: secret('AUTH_JWT_SECRET').optional().describe('HS256 secret for caller JWTs.'),
    AUTH_JWT_PUBLIC_KEY: z.string().includes('-----BEGIN PUBLIC KEY-----', { message: 'must be a PEM (SPKI) public key' }).optional().describe('PEM public key for RS256/ES256 caller JWTs.'),
    AUTH_JWT_PUBLIC_KEY_ALG: z.enum(['RS256', 'ES256']).default('RS256').describe('Algorithm of AUTH_JWT_PUBLIC_KEY.'),
    AUTH_JWT_ISSUER: z.string().min(1).optional().describe('Required `iss` of caller JWTs.'),
    AUTH_JWT_AUDIENCE: z.string().min(1).optional().describe('Required `aud` of caller JWTs.'),

    USER_ID_HASH_SECRET: secret('USER_ID_HASH_SECRET').describe('HMAC key that desensitizes user ids before they are stored or sent to Alibaba; the callback tokens\' MAC key is derived from it.'),

    KYC_PRODUCT_CODE: z.enum(['eKYC']).default('eKYC').describe('Alibaba product solution.'),
    KYC_DOC_TYPES: csv(z.enum(DOC_TYPES)).describe('Document types callers may choose (default: all).'),
    KYC_DEFAULT_DOC_TYPE: z.enum(DOC_TYPES).default('01000000').describe('Document type when the caller sends none.'),
    KYC_SECURITY_LEVEL: z.enum(['01', '02']).default('02').describe('01 standard, 02 safe mode (recommended).'),
    KYC_MODEL: z.enum(['LIVENESS', 'PHOTINUS_LIVENESS', 'SILENT']).default('LIVENESS').describe('Liveness detection type.'),
    KYC_ID_SPOOF: z.enum(['Y', 'N']).default('Y').describe('Document anti-spoofing.'),
    KYC_AUTHORIZE: z.enum(['T', 'F']).default('F').describe('Check against the official database (mainland ID cards only).'),
    KYC_ID_THRESHOLD: z.enum(['0', '1', '2', '3']).optional().describe('OCR quality threshold mode (Alibaba default 3: off).'),
    KYC_APP_QUALITY_CHECK: z.enum(['Y', 'N']).optional().describe('Strict face quality detection (Alibaba default Y).'),
    KYC_DOC_VIDEO: z.enum(['Y', 'N']).default('N').describe('Record a short face video.'),
    KYC_RETURN_URL_ORIGINS: csv(origin).describe('Origins a returnUrl may point at (empty: returnUrl refused).'),

    KYC_CHECKRESULT_RETURN_IMAGE: z.enum(['Y', 'N']).default('N').describe('Ask CheckResult for images (IsReturnImage).'),
    KYC_STORE_RESULT_DETAILS: bool('false').describe("Store CheckResult's Ext* personal data, encrypted (needs KYC_DETAILS_KEYS)."),
    KYC_DETAILS_KEYS: csv(z.string().regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]{43,44}$/, 'each key must be id:base64 of 32 bytes'))
      .describe('Comma-separated id:base64key (32-byte AES-256 keys); old ids stay readable after rotation.'),
    KYC_DETAILS_KEY_ID: z.string().min(1).optional().describe('Id of the key new details are encrypted with (default: the first key).'),
    KYC_RESULT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30).describe('Stored details are purged after this many days.'),

    INTERNAL_API_KEY: secret('INTERNAL_API_KEY').optional().describe('API key of /internal/* (back office); unset: those routes are off.'),
    MERCHANT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional().describe('Where final session events are POSTed (signed); unset: no events.'),
    MERCHANT_WEBHOOK_SECRET: secret('MERCHANT_WEBHOOK_SECRET').optional().describe('HMAC-SHA256 key of the x-kyc-signature header.'),

    JOBS_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('pgboss').describe('PostgreSQL schema of the job queue (pg-boss).'),
    JOBS_WORKERS: bool('true').describe('Run job workers in this process (CheckResult, reconciliation, webhooks).'),
    JOBS_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(10).describe('CheckResult and webhook jobs run at once per process.'),
    JOBS_POLL_INTERVAL_S: z.coerce.number().min(0.5).max(60).default(2).describe('How often idle workers look for jobs (s).'),
    JOBS_MAINTENANCE_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(120).describe('How often the job queue retries jobs that outlived their timeout (their process died mid-job) and archives finished ones (s).'),
    CHECK_RESULT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10).describe('CheckResult attempts per session before it is `error`.'),
    CHECK_RESULT_RETRY_DELAY_S: z.coerce.number().int().min(1).max(3600).default(5).describe('First retry delay of CheckResult and webhooks (s), doubling.'),
    CHECK_RESULT_JOB_TIMEOUT_S: z.coerce.number().int().min(1).max(3600).default(120).describe('A CheckResult job still running after this long counts as failed and is retried (e.g. its process was killed mid-call); above CLOUDAUTH_TIMEOUT_MS + 2 × DATABASE_TIMEOUT_MS (s).'),
    RECONCILE_CRON: z.string().default('* * * * *').describe('When to look for expired sessions without a callback (cron).'),
});

export const configSchema = envSchema
  .superRefine((c, ctx) => {
    if (!c.AUTH_JWT_SECRET && !c.AUTH_JWT_PUBLIC_KEY) {
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWT_SECRET'], message: 'set AUTH_JWT_SECRET and/or AUTH_JWT_PUBLIC_KEY' });
    }
    if (c.NODE_ENV === 'production' && !c.PUBLIC_BASE_URL.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['PUBLIC_BASE_URL'], message: 'must be https in production (Alibaba only calls https callbacks)' });
    }
    const keyIds = c.KYC_DETAILS_KEYS.map((k) => k.split(':')[0]);
    if (c.KYC_STORE_RESULT_DETAILS && keyIds.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['KYC_DETAILS_KEYS'], message: 'is required when KYC_STORE_RESULT_DETAILS is on' });
    }
    if (c.KYC_DETAILS_KEY_ID && !keyIds.includes(c.KYC_DETAILS_KEY_ID)) {
      ctx.addIssue({ code: 'custom', path: ['KYC_DETAILS_KEY_ID'], message: 'must name one of KYC_DETAILS_KEYS' });
    }
    if (c.KYC_DETAILS_KEYS.some((k) => Buffer.from(k.split(':')[1] ?? '', 'base64').length !== 32)) {
      ctx.addIssue({ code: 'custom', path: ['KYC_DETAILS_KEYS'], message: 'each key must be 32 bytes (base64)' });
    }
    if (c.MERCHANT_WEBHOOK_URL && !c.MERCHANT_WEBHOOK_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['MERCHANT_WEBHOOK_SECRET'], message: 'is required with MERCHANT_WEBHOOK_URL' });
    }
    if (c.CHECK_RESULT_JOB_TIMEOUT_S * 1000 <= c.CLOUDAUTH_TIMEOUT_MS + 2 * c.DATABASE_TIMEOUT_MS) {
      // A job runs one CheckResult (within CLOUDAUTH_TIMEOUT_MS) and two queries: a shorter timeout would retry it while it still runs.
      ctx.addIssue({ code: 'custom', path: ['CHECK_RESULT_JOB_TIMEOUT_S'], message: 'must exceed CLOUDAUTH_TIMEOUT_MS + 2 × DATABASE_TIMEOUT_MS' });
    }
    if (c.KYC_DOC_TYPES.length > 0 && !c.KYC_DOC_TYPES.includes(c.KYC_DEFAULT_DOC_TYPE)) {
      ctx.addIssue({ code: 'custom', path: ['KYC_DEFAULT_DOC_TYPE'], message: 'must be one of KYC_DOC_TYPES' });
    }
  })
  .transform((c) => ({
    ...c,
    KYC_DOC_TYPES: c.KYC_DOC_TYPES.length > 0 ? c.KYC_DOC_TYPES : [...DOC_TYPES],
    DOCS_ENABLED: c.DOCS_ENABLED ?? c.NODE_ENV !== 'production',
    CLOUDAUTH_ACCOUNT: c.CLOUDAUTH_ACCOUNT ?? c.ALIBABA_CLOUD_ACCESS_KEY_ID,
    PUBLIC_BASE_URL: c.PUBLIC_BASE_URL.replace(/\/+$/, ''),
  }));

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
