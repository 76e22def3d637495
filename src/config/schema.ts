import { z } from 'zod';
import { internalApiKeys, namedSecrets } from './named-secrets.js';
import { productionProblems } from './production.js';
import { trustProxy } from './trust-proxy.js';

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

/** host:port (IPv6 in brackets: [::1]:6379), as ioredis takes Sentinel and Cluster addresses. */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'each address must be host:port')
  .transform((s) => {
    const at = s.lastIndexOf(':');
    return { host: s.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(at + 1)) };
  })
  .refine((a) => a.port >= 1 && a.port <= 65535, 'each port must be 1-65535');

/** `name:secret` in a comma list: the name says which (the audit trail's actor; nothing on the wire). */
const namedSecret = (what: string) =>
  z.string().regex(/^[A-Za-z0-9_.-]{1,32}:.{32,}$/, `each entry must be name:${what} (a name of up to 32 of A-Z a-z 0-9 _ . -, a ${what} of at least 32 characters)`);

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
    TRUST_PROXY: trustProxy.describe(
      "Which proxies' X-Forwarded-* to trust (the client address of rate limits and logs), as Fastify's trustProxy: `false`, the proxies' addresses/CIDRs (comma list, e.g. `10.0.0.0/8`), a hop count (Fastify ignores it: warned), or `true`: every hop, so a client can pick its own address (refused in production).",
    ),
    CORS_ORIGINS: csv(origin).describe('Comma-separated browser origins allowed to call the API (empty: CORS off).'),
    DOCS_ENABLED: flag.transform((v) => v === 'true' || v === '1').optional().describe('Serve OpenAPI at /docs (default: on unless production).'),

    METRICS_TOKEN: secret('METRICS_TOKEN').optional().describe('Bearer token required by GET /metrics; unset: /metrics is open (keep it off the public network; required in production).'),
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1000).describe('Answer 503 OVERLOADED while the mean event-loop delay (sampled each second) is above this (ms; 0: off).'),
    OVERLOAD_MAX_EVENT_LOOP_UTILIZATION: z.coerce.number().min(0).max(1).default(0).describe('Answer 503 OVERLOADED while event-loop utilization (over each second) is above this (0-1; 0: off).'),
    OVERLOAD_MAX_HEAP_USED_BYTES: z.coerce.number().int().min(0).default(0).describe('Answer 503 OVERLOADED while the V8 heap in use is above this (bytes; 0: off).'),
    OVERLOAD_MAX_RSS_BYTES: z.coerce.number().int().min(0).default(0).describe('Answer 503 OVERLOADED while the resident set size is above this (bytes; 0: off).'),
    OVERLOAD_RETRY_AFTER_S: z.coerce.number().int().min(1).max(3600).default(5).describe('Retry-After of 503 OVERLOADED (s).'),

    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL').describe('PostgreSQL connection URL.'),
    DATABASE_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(800).describe('Bound on connecting to PostgreSQL and on each query (ms); beyond it: 503 DB_UNAVAILABLE.'),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// URL')
      .optional()
      .describe('Redis connection URL (QPS budget, rate limits), password included. One of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required.'),
    REDIS_SENTINELS: csv(hostPort).describe('Sentinel form: comma-separated host:port of the Sentinels (needs REDIS_SENTINEL_NAME).'),
    REDIS_SENTINEL_NAME: z.string().min(1).optional().describe('Sentinel form: name of the monitored master group.'),
    REDIS_SENTINEL_PASSWORD: z.string().min(1).optional().describe('Sentinel form: password of the Sentinels themselves (their requirepass), when they have one.'),
    REDIS_CLUSTER_NODES: csv(hostPort).describe('Cluster form: comma-separated host:port of some Redis Cluster nodes (the rest are discovered).'),
    REDIS_PASSWORD: z.string().min(1).optional().describe('Sentinel and Cluster forms: password of the Redis servers (REDIS_URL carries its own).'),

    ALIBABA_CLOUD_ACCESS_KEY_ID: z.string().min(1).describe('AccessKey id of the RAM user calling cloudauth-intl.'),
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: z.string().min(1).describe('AccessKey secret (never logged).'),
    CLOUDAUTH_ENDPOINT: z
      .url({ protocol: /^https?$/ })
      .default('https://cloudauth-intl.cn-hongkong.aliyuncs.com')
      .describe('cloudauth-intl endpoint URL; http://127.0.0.1:PORT points at the simulator.'),
    CLOUDAUTH_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000).describe('Overall deadline of one upstream call (ms).'),
    CLOUDAUTH_ACCOUNT: z
      .string()
      .min(1)
      .optional()
      .describe("The Alibaba Cloud account (its UID) whose QPS budget is shared: all RAM users under one account share its QPS limit, so every instance and key of the account must name the same one. Required in production; elsewhere it defaults to the AccessKey id."),
    CLOUDAUTH_QPS: z.coerce.number().int().min(1).default(10).describe('Exclusive QPS per server API for the account.'),
    CLOUDAUTH_QPS_INITIALIZE: z.coerce.number().int().min(1).optional().describe('Override of CLOUDAUTH_QPS for Initialize.'),
    CLOUDAUTH_QPS_CHECKRESULT: z.coerce.number().int().min(1).optional().describe('Override of CLOUDAUTH_QPS for CheckResult.'),
    CLOUDAUTH_QPS_DELETEVERIFYRESULT: z.coerce.number().int().min(1).optional().describe('Override of CLOUDAUTH_QPS for DeleteVerifyResult.'),
    CLOUDAUTH_BUDGET_WAIT_MS: z.coerce.number().int().min(0).max(30_000).default(2000).describe('How long a call may queue for a QPS slot before 429.'),
    CLOUDAUTH_BUDGET_MARGIN_MS: z.coerce.number().int().min(0).max(500).default(40).describe("Network allowance (ms): jitter between a call leaving this service and its arrival at Alibaba. Each call's slot holds the 1-s window longer by this plus the dispatch delay its instance measured (kyc_budget_margin_seconds), so N+1 calls never arrive in one second."),
    CLOUDAUTH_BUDGET_MAX_DISPATCH_MS: z.coerce.number().int().min(1).max(1000).default(200).describe('Most dispatch delay (budget slot → request written) a call may be promised (ms): a busier instance gives its slots back and queues again (429 after 3 tries) rather than widen its margin further.'),

    RATE_LIMIT_PER_USER: z.coerce.number().int().min(1).default(20).describe('POST /kyc/start requests per minute per user (JWT sub).'),
    RATE_LIMIT_PER_IP: z.coerce.number().int().min(1).default(120).describe('POST /kyc/start requests per minute per client IP from authenticated callers (failed authentications count in RATE_LIMIT_AUTH_FAILURES_PER_IP instead).'),
    RATE_LIMIT_AUTH_FAILURES_PER_IP: z.coerce.number().int().min(1).default(120).describe('Failed caller authentications (no or a rejected Bearer JWT on /kyc/start and /kyc/sessions) per minute per client IP; beyond it those failures get 429, while valid callers from the same IP are still served.'),
    RATE_LIMIT_STATUS_PER_USER: z.coerce.number().int().min(1).default(300).describe('GET /kyc/sessions/:merchantBizId requests per minute per user (JWT sub); polling once a second uses 60.'),
    RATE_LIMIT_CALLBACK_PER_IP: z.coerce.number().int().min(1).default(1200).describe('GET /kyc/callback requests per minute per IP.'),
    RATE_LIMIT_INTERNAL_PER_IP: z.coerce.number().int().min(1).default(600).describe('/internal/* requests per minute per client IP (whatever their x-api-key).'),
    RATE_LIMIT_INTERNAL_KEY_FAILURES_PER_IP: z.coerce.number().int().min(1).default(10).describe('Wrong x-api-key values per minute per client IP on /internal/*; an IP that used them up gets 429 on /internal/* until its minute ends, before its key is even compared.'),

    PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).describe('Base URL Alibaba can reach; the callback is PUBLIC_BASE_URL/kyc/callback (https in production).'),

    AUTH_JWT_SECRET: secret('AUTH_JWT_SECRET').optional().describe('HS256 secret for caller JWTs.'),
    AUTH_JWT_PUBLIC_KEY: z.string().includes('-----BEGIN PUBLIC KEY-----', { message: 'must be a PEM (SPKI) public key' }).optional().describe('PEM public key for RS256/ES256 caller JWTs.'),
    AUTH_JWT_PUBLIC_KEY_ALG: z.enum(['RS256', 'ES256']).default('RS256').describe('Algorithm of AUTH_JWT_PUBLIC_KEY.'),
    AUTH_JWT_ISSUER: z.string().min(1).optional().describe('Required `iss` of caller JWTs.'),
    AUTH_JWT_AUDIENCE: z.string().min(1).optional().describe('Required `aud` of caller JWTs (required in production with AUTH_JWT_PUBLIC_KEY).'),
    AUTH_JWT_MAX_AGE_S: z.coerce.number().int().min(60).max(7 * 86_400).default(3600).describe('Longest remaining lifetime a caller JWT may have (s): a token whose `exp` is further from now is refused (401 INVALID_TOKEN).'),

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
    KYC_MAX_TRANSACTIONS_PER_SESSION: z.coerce.number().int().min(1).max(100).default(3).describe('Initialize calls per session: its start and its resumes (Alibaba bills each); beyond: 429 ATTEMPTS_EXHAUSTED.'),
    KYC_MAX_STARTS_PER_USER_PER_DAY: z.coerce.number().int().min(1).max(10_000).default(10).describe('Initialize calls (starts and resumes) per user in any 24 hours; beyond: 429 ATTEMPTS_EXHAUSTED with Retry-After.'),

    KYC_CHECKRESULT_RETURN_IMAGE: z.enum(['Y', 'N']).default('N').describe('Ask CheckResult for images (IsReturnImage).'),
    KYC_STORE_RESULT_DETAILS: bool('false').describe("Store CheckResult's Ext* personal data, encrypted (needs KYC_DETAILS_KEYS)."),
    KYC_DETAILS_KEYS: csv(z.string().regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]{43,44}$/, 'each key must be id:base64 of 32 bytes'))
      .describe('Comma-separated id:base64key (32-byte AES-256 keys) that seal personal data at rest (user ids, result details); old ids stay readable after rotation. Without them user ids are sealed with a key derived from USER_ID_HASH_SECRET.'),
    KYC_DETAILS_KEY_ID: z.string().min(1).optional().describe('Id of the key new user ids and details are sealed with (default: the first key).'),
    KYC_RESULT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30).describe('Stored details are purged after this many days.'),
    KYC_SESSION_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).optional().describe('Sessions older than this many days are erased as the back office erases them (a tombstone stays; DeleteVerifyResult at Alibaba); unset: kept.'),

    INTERNAL_API_KEY: secret('INTERNAL_API_KEY').optional().describe('API key of /internal/* (back office), named `default` in the audit trail; with INTERNAL_API_KEYS unset too, those routes are off.'),
    INTERNAL_API_KEYS: csv(namedSecret('key')).describe('Comma-separated name:key API keys of /internal/* (the audit trail names who acted by the key\'s name); beside INTERNAL_API_KEY.'),
    AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional().describe('Audit rows older than this many days are deleted (hourly); unset: kept.'),
    MERCHANT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional().describe('Where session events are POSTed (signed); unset: events are recorded (GET /internal/kyc/events) but not sent.'),
    MERCHANT_WEBHOOK_SECRET: secret('MERCHANT_WEBHOOK_SECRET').optional().describe('HMAC-SHA256 key of the x-kyc-signature header (the one-secret form of MERCHANT_WEBHOOK_SECRETS).'),
    MERCHANT_WEBHOOK_SECRETS: csv(namedSecret('secret')).describe('Comma-separated name:secret HMAC-SHA256 keys: x-kyc-signature carries one v1= per secret, so secrets rotate without a failed verification (README → Back office).'),
    MERCHANT_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(12).describe('Delivery attempts of an event (CHECK_RESULT_RETRY_DELAY_S, doubling, between them) before it is `failed`.'),
    MERCHANT_WEBHOOK_REDELIVERY_PER_S: z.coerce.number().int().min(1).max(1000).default(10).describe('Pace of bulk redeliveries (POST /internal/kyc/events/redeliver): events per second, across requests.'),

    JOBS_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('pgboss').describe('PostgreSQL schema of the job queue (pg-boss).'),
    JOBS_WORKERS: bool('true').describe('Run job workers in this process (CheckResult, reconciliation, event deliveries, erasures).'),
    JOBS_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(10).describe('CheckResult and webhook jobs run at once per process.'),
    JOBS_POLL_INTERVAL_S: z.coerce.number().min(0.5).max(60).default(2).describe('How often idle workers look for jobs (s).'),
    JOBS_MAINTENANCE_INTERVAL_S: z.coerce.number().int().min(1).max(3600).default(120).describe('How often the job queue retries jobs that outlived their timeout (their process died mid-job) and archives finished ones (s).'),
    CHECK_RESULT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10).describe('CheckResult attempts per session before it is `error`.'),
    CHECK_RESULT_RETRY_DELAY_S: z.coerce.number().int().min(1).max(3600).default(5).describe('First retry delay of CheckResult, event deliveries and erasures (s), doubling.'),
    CHECK_RESULT_JOB_TIMEOUT_S: z.coerce.number().int().min(1).max(3600).default(120).describe('A CheckResult job still running after this long counts as failed and is retried (e.g. its process was killed mid-call); above CLOUDAUTH_TIMEOUT_MS + 2 × DATABASE_TIMEOUT_MS (s).'),
    RECONCILE_CRON: z.string().default('* * * * *').describe('When to look for expired sessions without a callback, and for events and erasures whose job was lost (cron).'),
});

export const configSchema = envSchema
  .superRefine((c, ctx) => {
    const redisForms = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((k) =>
      k === 'REDIS_URL' ? c.REDIS_URL !== undefined : c[k].length > 0,
    );
    if (redisForms.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'is required (or REDIS_SENTINELS with REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES)' });
    } else if (redisForms.length > 1) {
      ctx.addIssue({ code: 'custom', path: [redisForms[1]!], message: `set only one of ${redisForms.join(', ')}: each names a whole Redis deployment` });
    }
    const sentinel = c.REDIS_SENTINELS.length > 0;
    if (sentinel && !c.REDIS_SENTINEL_NAME) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_SENTINEL_NAME'], message: 'is required with REDIS_SENTINELS' });
    }
    for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const) {
      if (!sentinel && c[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'is only used with REDIS_SENTINELS' });
    }
    if (c.REDIS_URL !== undefined && c.REDIS_PASSWORD) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_PASSWORD'], message: 'put the password in REDIS_URL (redis://:password@host:port)' });
    }
    if (!c.AUTH_JWT_SECRET && !c.AUTH_JWT_PUBLIC_KEY) {
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWT_SECRET'], message: 'set AUTH_JWT_SECRET and/or AUTH_JWT_PUBLIC_KEY' });
    }
    if (c.NODE_ENV === 'production') {
      // Secrets, https, proxies, the account… (production.ts; outside production they are warnings).
      for (const p of productionProblems(c)) ctx.addIssue({ code: 'custom', path: [p.variable], message: p.message });
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
    if (c.MERCHANT_WEBHOOK_SECRET && c.MERCHANT_WEBHOOK_SECRETS.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['MERCHANT_WEBHOOK_SECRETS'], message: 'set MERCHANT_WEBHOOK_SECRETS or MERCHANT_WEBHOOK_SECRET, not both' });
    }
    if (c.MERCHANT_WEBHOOK_URL && !c.MERCHANT_WEBHOOK_SECRET && c.MERCHANT_WEBHOOK_SECRETS.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['MERCHANT_WEBHOOK_SECRET'], message: 'is required with MERCHANT_WEBHOOK_URL (or MERCHANT_WEBHOOK_SECRETS)' });
    }
    // INTERNAL_API_KEY is the key named `default`: a second key of that name would make the audit trail ambiguous.
    for (const [variable, keys] of [['MERCHANT_WEBHOOK_SECRETS', namedSecrets(c.MERCHANT_WEBHOOK_SECRETS)], ['INTERNAL_API_KEYS', internalApiKeys(c)]] as const) {
      const names = keys.map((k) => k.name);
      const secrets = keys.map((k) => k.secret);
      if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: [variable], message: 'names an entry twice (INTERNAL_API_KEY is the key named `default`)' });
      if (new Set(secrets).size !== secrets.length) ctx.addIssue({ code: 'custom', path: [variable], message: 'lists the same secret twice' });
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
