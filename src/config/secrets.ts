import type { z } from 'zod';
import { namedSecrets } from './named-secrets.js';
import { isPublishedSecret } from './published-secrets.js';
import type { envSchema } from './schema.js';

/** The environment as the schema parsed it (before the defaults derived from other variables). */
export type Env = z.output<typeof envSchema>;

/** One secret as the checks see it: the text configured and the bytes that key the HMAC or cipher. */
export interface SecretValue {
  /** Which part of the variable it is, as messages name it (`entry "k1"`, `its password`); absent for the whole value. */
  label?: string;
  text: string;
  bytes: Uint8Array;
  /** What the messages count: characters of a text secret, bytes of a decoded key. */
  unit: 'characters' | 'bytes';
}

/** Why the secret fails a check, or undefined. Never quotes the secret. */
export type SecretCheck = (secret: SecretValue) => string | undefined;

/** The checks a kind of secret must pass, and what they require (the README's production checklist). */
export interface SecretPolicy {
  requires: string;
  checks: readonly SecretCheck[];
}

/** Shorter repetitions than this many units count as a pattern. */
const MAX_PATTERN = 16;
/** Fewer distinct units than this (in ≥ 32) is no random secret: 32 random hex digits show ~15. */
const MIN_DISTINCT = 8;

/** The smallest p ≤ MAX_PATTERN with b[i] = b[i − p] throughout (the text is one pattern repeated). */
function shortPeriod(b: Uint8Array): number | undefined {
  for (let p = 1; p <= Math.min(MAX_PATTERN, Math.floor(b.length / 2)); p++) {
    if (b.every((x, i) => i < p || x === b[i - p])) return p;
  }
  return undefined;
}

/** Why `b` is obviously not random, or undefined. A filter for mistakes, not an entropy estimate. */
export function lowEntropyReason(b: Uint8Array, unit: SecretValue['unit'] = 'characters'): string | undefined {
  const one = unit === 'bytes' ? 'byte' : 'character';
  const distinct = new Set(b).size;
  if (distinct <= 1) return `is one ${one} repeated`;
  const period = shortPeriod(b);
  if (period) return `repeats a pattern of ${period} ${unit}`;
  // Steps between neighbours (mod 256): abcdef…, 0x00 0x01 0x02…, 02468… step regularly.
  if (shortPeriod(b.subarray(1).map((x, i) => x - b[i]!))) return `is a regular sequence (like abcdef…)`;
  if (distinct < MIN_DISTINCT) return `has only ${distinct} distinct ${unit}`;
  return undefined;
}

export const notPublished: SecretCheck = (s) =>
  isPublishedSecret(s.text) ? "is published in this repository (.env.example, a compose file, README or the simulator's defaults)" : undefined;

export const atLeast32Bytes: SecretCheck = (s) => (s.bytes.length < 32 ? `is shorter than 32 bytes (${s.bytes.length})` : undefined);

export const notLowEntropy: SecretCheck = (s) => lowEntropyReason(s.bytes, s.unit);

export const notPlaceholder: SecretCheck = (s) =>
  /change[-_ ]?me|replace[-_ ]?me|dev[-_ ]?only|insecure|placeholder|example/i.test(s.text) ? 'looks like a placeholder' : undefined;

/** Text secrets that key an HMAC or guard an endpoint. */
export const STRONG: SecretPolicy = {
  requires:
    'a strong secret: at least 32 bytes, not published in this repository, not low-entropy, no placeholder (e.g. `openssl rand -base64 48`)',
  checks: [notPublished, atLeast32Bytes, notLowEntropy, notPlaceholder],
};
/** Keys given as base64 (their decoded bytes are judged; the schema fixes their length). */
export const KEY_BYTES: SecretPolicy = {
  requires: 'keys not published in this repository, whose decoded 32 bytes are not low-entropy (e.g. `k1:$(openssl rand -base64 32)`)',
  checks: [notPublished, atLeast32Bytes, notLowEntropy],
};
/** Secrets whose form someone else decides: an Alibaba AccessKey secret has 30 characters. */
export const PUBLISHED_ONLY: SecretPolicy = { requires: 'not a value published in this repository', checks: [notPublished] };
/** Connection URLs: only a published password is refused (the database decides the rest). */
export const URL_PASSWORD: SecretPolicy = { requires: 'no password published in this repository', checks: [notPublished] };

/** The entries of a comma list, whether still a string or already split by the schema. */
function entries(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : [];
  return list.filter((e): e is string => typeof e === 'string').map((e) => e.trim()).filter(Boolean);
}

const text = (value: string, label?: string): SecretValue => ({
  ...(label === undefined ? {} : { label }),
  text: value,
  bytes: Buffer.from(value, 'utf8'),
  unit: 'characters',
});

/** How to read a variable's secrets out of its parsed value. */
export type SecretReader = (value: unknown) => SecretValue[];

/** One secret. */
export const one: SecretReader = (value) => (typeof value === 'string' && value !== '' ? [text(value)] : []);

/** A comma list of `name:secret` (e.g. MERCHANT_WEBHOOK_SECRETS, INTERNAL_API_KEYS). */
export const namedList: SecretReader = (value) => namedSecrets(entries(value)).map((k) => text(k.secret, `entry "${k.name}"`));

/** A comma list of `id:base64` keys (KYC_DETAILS_KEYS), judged on the decoded bytes. */
export const base64Keys: SecretReader = (value) =>
  namedSecrets(entries(value)).map((k) => ({ label: `entry "${k.name}"`, text: k.secret, bytes: Buffer.from(k.secret, 'base64'), unit: 'bytes' }));

/** The password of a connection URL. */
export const urlPassword: SecretReader = (value) => {
  if (typeof value !== 'string') return [];
  try {
    const password = decodeURIComponent(new URL(value).password);
    return password ? [text(password, 'its password')] : [];
  } catch {
    return [];
  }
};

export interface SecretVariable {
  variable: keyof Env;
  read: SecretReader;
  policy: SecretPolicy;
}

/**
 * Every variable that holds secrets, with how to read them and what each must pass in production.
 * A new secret variable is one line; a comma list of `name:secret` is read with `namedList`.
 */
export const SECRET_VARIABLES: readonly SecretVariable[] = [
  { variable: 'AUTH_JWT_SECRET', read: one, policy: STRONG },
  { variable: 'USER_ID_HASH_SECRET', read: one, policy: STRONG },
  { variable: 'MERCHANT_WEBHOOK_SECRET', read: one, policy: STRONG },
  { variable: 'INTERNAL_API_KEY', read: one, policy: STRONG },
  { variable: 'MERCHANT_WEBHOOK_SECRETS', read: namedList, policy: STRONG },
  { variable: 'INTERNAL_API_KEYS', read: namedList, policy: STRONG },
  { variable: 'METRICS_TOKEN', read: one, policy: STRONG },
  { variable: 'KYC_DETAILS_KEYS', read: base64Keys, policy: KEY_BYTES },
  { variable: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET', read: one, policy: PUBLISHED_ONLY },
  { variable: 'DATABASE_URL', read: urlPassword, policy: URL_PASSWORD },
  { variable: 'REDIS_URL', read: urlPassword, policy: URL_PASSWORD },
];

/** Why the variable's secrets fail their policy: one message per failing secret (never the secret). */
export function secretProblems({ variable, read, policy }: Pick<SecretVariable, 'variable' | 'read' | 'policy'>, env: Record<string, unknown>): string[] {
  return read(env[variable]).flatMap((secret) => {
    const reasons = policy.checks.map((check) => check(secret)).filter((r): r is string => r !== undefined);
    if (reasons.length === 0) return [];
    return [`${secret.label === undefined ? '' : `${secret.label} `}${reasons.join('; ')}`];
  });
}
