/** Validation helpers for API parameters; each throws the Alibaba error for the problem. */
import { apiErrors } from './protocol.js';
import type { QueryParams } from './signature.js';

/** A required parameter: absent or empty → MissingParameter. */
export function requireParam(params: QueryParams, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === '') throw apiErrors.missingParameter(name);
  return value;
}

/** An optional parameter: empty counts as absent. */
export function optionalParam(params: QueryParams, name: string): string | undefined {
  const value = params.get(name);
  return value === undefined || value === '' ? undefined : value;
}

export function checkOneOf(name: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) {
    throw apiErrors.invalidParameter(name, `must be one of ${allowed.join(', ')}`);
  }
}

export function checkPattern(name: string, value: string, pattern: RegExp, rule: string): void {
  if (!pattern.test(value)) throw apiErrors.invalidParameter(name, rule);
}

export function checkJsonObject(name: string, value: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw apiErrors.invalidParameter(name, 'must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw apiErrors.invalidParameter(name, 'must be a JSON object');
  }
}

export function checkHttpUrl(name: string, value: string, requireHttps: boolean): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw apiErrors.invalidParameter(name, 'must be an absolute URL');
  }
  const allowed = requireHttps ? ['https:'] : ['https:', 'http:'];
  if (!allowed.includes(url.protocol)) {
    throw apiErrors.invalidParameter(name, requireHttps ? 'must be an https URL' : 'must be an http(s) URL');
  }
}
