/**
 * Checks an API call the way Alibaba's gateway does: signature V3, timestamp skew and nonce reuse.
 * Answers who called (the AccessKey and its account) or throws an ApiError.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { apiErrors } from './protocol.js';
import {
  SIGNATURE_ALGORITHM,
  canonicalRequest,
  computeSignature,
  parseAuthorization,
  sha256Hex,
  signaturesEqual,
  stringToSign,
  type QueryParams,
} from './signature.js';

export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

/** Headers Alibaba insists on having covered by the signature. */
const REQUIRED_SIGNED_HEADERS = [
  'host',
  'x-acs-action',
  'x-acs-version',
  'x-acs-date',
  'x-acs-signature-nonce',
  'x-acs-content-sha256',
] as const;

const ACS_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export interface ApiRequestView {
  method: string;
  path: string;
  query: QueryParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An AccessKey as Alibaba knows it: a RAM user's key belongs to an Alibaba Cloud account. */
export interface AccessKey {
  secret: string;
  /** Keys of one account share its QPS limits and see its transactions. */
  account: string;
}

/** Who made a call that passed authentication. */
export interface Caller {
  accessKeyId: string;
  account: string;
}

/**
 * AccessKey id → secret, or → { secret, account }. A plain secret makes the key an account of
 * its own (named after the key id), which is how the simulator behaved before it knew accounts.
 */
export type AccessKeysOption = Record<string, string | AccessKey>;

export function accessKeyMap(keys: AccessKeysOption): Map<string, AccessKey> {
  return new Map(
    Object.entries(keys).map(([id, key]) => [id, typeof key === 'string' ? { secret: key, account: id } : key]),
  );
}

export interface AuthSettings {
  accessKeys: ReadonlyMap<string, AccessKey>;
  nonces: NonceCache;
  /** Wall clock, epoch ms. */
  now: () => number;
  maxClockSkewMs: number;
}

/** Remembers nonces for a while so a replayed request is refused. */
export class NonceCache {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly ttlMs: number = MAX_CLOCK_SKEW_MS) {}

  /** Records the nonce; false when it was already seen within the TTL. */
  use(nonce: string, now: number): boolean {
    this.prune(now);
    if (this.expiries.has(nonce)) return false;
    this.expiries.set(nonce, now + this.ttlMs);
    return true;
  }

  clear(): void {
    this.expiries.clear();
  }

  private prune(now: number): void {
    for (const [nonce, expiry] of this.expiries) {
      if (expiry > now) break; // insertion order is expiry order
      this.expiries.delete(nonce);
    }
  }
}

export function authenticate(request: ApiRequestView, settings: AuthSettings): Caller {
  const auth = parseAuthorization(single(request.headers.authorization));
  if (!auth) throw apiErrors.incompleteSignature('the Authorization header is missing or malformed');
  if (auth.algorithm !== SIGNATURE_ALGORITHM) {
    throw apiErrors.incompleteSignature(`unsupported signature algorithm "${auth.algorithm}"`);
  }
  for (const name of REQUIRED_SIGNED_HEADERS) {
    if (!auth.signedHeaders.includes(name) || single(request.headers[name]) === undefined) {
      throw apiErrors.incompleteSignature(`header "${name}" must be present and signed`);
    }
  }

  const payloadHash = single(request.headers['x-acs-content-sha256']) ?? '';
  if (payloadHash.toLowerCase() !== sha256Hex(request.body)) {
    throw apiErrors.signatureDoesNotMatch('x-acs-content-sha256 is not the SHA-256 of the request body.');
  }

  const key = settings.accessKeys.get(auth.accessKeyId);
  if (key === undefined) throw apiErrors.accessKeyNotFound();

  const toSign = stringToSign(
    canonicalRequest({ ...request, signedHeaders: auth.signedHeaders, payloadHash }),
  );
  if (!signaturesEqual(computeSignature(key.secret, toSign), auth.signature)) {
    throw apiErrors.signatureDoesNotMatch(`server string to sign is:${toSign}`);
  }

  checkTimestamp(single(request.headers['x-acs-date']) ?? '', settings);

  const nonce = single(request.headers['x-acs-signature-nonce']) ?? '';
  if (!settings.nonces.use(`${auth.accessKeyId}:${nonce}`, settings.now())) throw apiErrors.nonceUsed();

  return { accessKeyId: auth.accessKeyId, account: key.account };
}

function checkTimestamp(date: string, settings: AuthSettings): void {
  const sent = ACS_DATE.test(date) ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(sent)) throw apiErrors.timestampFormat();
  if (Math.abs(settings.now() - sent) > settings.maxClockSkewMs) throw apiErrors.timestampExpired();
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}
