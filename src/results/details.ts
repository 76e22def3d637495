import { CHECK_RESULT_DETAIL_FIELDS, type CheckResultDetail, type CheckResultResult } from '../cloudauth/types.js';

/**
 * A verification's details as stored (sealed): every field of CheckResult that carries its data
 * (ExtBasicInfo, ExtIdInfo, ExtFaceInfo, ExtRiskInfo, ExtInfo, ExtSourceInfo, EkycResult), as the JSON
 * text Alibaba sent, null when it sent none. Rows stored before a field was kept lack it.
 */
export const DETAIL_FIELDS = Object.keys(CHECK_RESULT_DETAIL_FIELDS) as CheckResultDetail[];

/** The plaintext to seal. */
export function detailsText(result: Pick<CheckResultResult, 'details'>): string {
  return JSON.stringify(Object.fromEntries(DETAIL_FIELDS.map((field) => [field, result.details[field] ?? null])));
}

/** The details opened for the back office: each field parsed from its JSON text (kept as text when it is not JSON). */
export function readDetails(plaintext: string): Record<CheckResultDetail, unknown> {
  const stored = JSON.parse(plaintext) as Record<string, unknown>;
  return Object.fromEntries(DETAIL_FIELDS.map((field) => [field, parseExt(stored[field])])) as Record<CheckResultDetail, unknown>;
}

function parseExt(text: unknown): unknown {
  if (typeof text !== 'string') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
