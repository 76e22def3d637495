/**
 * Alibaba Cloud request signature V3 (ACS3-HMAC-SHA256), server side.
 * Pure functions: parsing the raw query, canonicalizing a request and computing its signature.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const SIGNATURE_ALGORITHM = 'ACS3-HMAC-SHA256';

export type QueryParams = ReadonlyMap<string, string>;

export interface ParsedAuthorization {
  algorithm: string;
  accessKeyId: string;
  signedHeaders: string[];
  signature: string;
}

export interface CanonicalRequestInput {
  method: string;
  path: string;
  query: QueryParams;
  headers: IncomingHttpHeaders;
  signedHeaders: readonly string[];
  payloadHash: string;
}

export class MalformedQueryError extends Error {}

/** RFC 3986 encoding: only A-Z a-z 0-9 - _ . ~ stay as they are. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Parses a raw query string (the part after "?"). Names and values are percent-decoded;
 * "+" stays a literal plus (Alibaba's SDKs always send spaces as %20).
 * Throws MalformedQueryError on a bad escape or a repeated name.
 */
export function parseRawQuery(raw: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decodeComponent(pair.slice(eq + 1));
    if (params.has(name)) throw new MalformedQueryError(`query parameter "${name}" is repeated`);
    params.set(name, value);
  }
  return params;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new MalformedQueryError('query string has a malformed percent-escape');
  }
}

export function canonicalQueryString(query: QueryParams): string {
  return [...query.keys()]
    .sort()
    .map((name) => `${percentEncode(name)}=${percentEncode(query.get(name) ?? '')}`)
    .join('&');
}

/** `name:value\n` for each signed header, in the order given (values trimmed). */
export function canonicalHeaders(headers: IncomingHttpHeaders, signedHeaders: readonly string[]): string {
  return signedHeaders.map((name) => `${name}:${headerValue(headers, name)}\n`).join('');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (Array.isArray(value)) return value.map((v) => v.trim()).sort().join(',');
  return (value ?? '').trim();
}

export function canonicalRequest(input: CanonicalRequestInput): string {
  return [
    input.method.toUpperCase(),
    input.path,
    canonicalQueryString(input.query),
    canonicalHeaders(input.headers, input.signedHeaders),
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function stringToSign(canonical: string): string {
  return `${SIGNATURE_ALGORITHM}\n${sha256Hex(canonical)}`;
}

export function computeSignature(secret: string, toSign: string): string {
  return createHmac('sha256', secret).update(toSign).digest('hex');
}

export function signaturesEqual(expected: string, received: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(received.toLowerCase());
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Parses `ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex`. */
export function parseAuthorization(header: string | undefined): ParsedAuthorization | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space === -1) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const accessKeyId = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!accessKeyId || !signedHeaders || !signature) return undefined;
  return {
    algorithm: header.slice(0, space),
    accessKeyId,
    signedHeaders: signedHeaders.split(';').map((h) => h.trim().toLowerCase()),
    signature,
  };
}
