import type { LightMyRequestResponse } from 'fastify';

/**
 * What no response of the service may do, whatever the request: answer 5xx, answer a 4xx without
 * the `{ code, message }` envelope, echo a secret, or show a stack trace / source path.
 * Returns the problems found (empty: the response is fine).
 */
export function responseProblems(
  method: string,
  res: Pick<LightMyRequestResponse, 'statusCode' | 'headers' | 'body'>,
  secrets: readonly string[],
): string[] {
  const problems: string[] = [];
  if (res.statusCode >= 500) problems.push(`status ${res.statusCode}`);

  let parsed: unknown;
  const contentType = String(res.headers['content-type'] ?? '');
  if (res.statusCode >= 400 && method !== 'HEAD') {
    if (!contentType.startsWith('application/json')) problems.push(`${res.statusCode} with content-type "${contentType}"`);
    try {
      parsed = JSON.parse(res.body);
    } catch {
      problems.push(`${res.statusCode} body is not JSON: ${res.body.slice(0, 120)}`);
    }
    const body = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (typeof body.code !== 'string') problems.push(`${res.statusCode} body has no string code`);
    if (typeof body.message !== 'string') problems.push(`${res.statusCode} body has no string message`);
  } else if (method !== 'HEAD' && contentType.startsWith('application/json')) {
    try {
      parsed = JSON.parse(res.body);
    } catch {
      problems.push('a JSON response that does not parse');
    }
  }

  const headerText = JSON.stringify(res.headers);
  for (const secret of secrets) {
    if (secret && (res.body.includes(secret) || headerText.includes(secret))) problems.push(`echoes a secret (${secret.slice(0, 6)}…)`);
  }
  if (looksLikeStackTrace(res.body, parsed)) problems.push('shows a stack trace or source path');
  return problems;
}

const CWD = process.cwd();

function looksLikeStackTrace(raw: string, parsed: unknown): boolean {
  if (raw.includes(CWD) || raw.includes('node_modules') || /\bfile:\/\/\//.test(raw)) return true;
  // A stack serialized into JSON: a key named "stack", or a string with "\n    at fn (...)" lines.
  let found = false;
  const visit = (v: unknown): void => {
    if (found) return;
    if (typeof v === 'string') {
      if (/\n\s+at\s+\S/.test(v) || /\(\/[^)]+:\d+:\d+\)/.test(v)) found = true;
    } else if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k === 'stack') found = true;
        visit(child);
      }
    }
  };
  visit(parsed);
  return found;
}

/**
 * The error envelope the README promises: exactly `code`, `message` and (optionally) `details`,
 * with one of the service's own codes (not a leaked framework code such as FST_ERR_BAD_URL).
 * Returns a short description of the deviation, or undefined.
 */
export function envelopeDeviation(res: Pick<LightMyRequestResponse, 'statusCode' | 'body'>): string | undefined {
  if (res.statusCode < 400 || res.body === '') return undefined;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    return `${res.statusCode} not JSON`;
  }
  const extra = Object.keys(body).filter((k) => !['code', 'message', 'details'].includes(k));
  const code = String(body.code);
  if (extra.length > 0 || code.startsWith('FST_')) {
    return `${res.statusCode} ${code}${extra.length > 0 ? ` (extra keys: ${extra.join(', ')})` : ''}`;
  }
  return undefined;
}

/**
 * Every secret-looking value of a config (names with SECRET, KEY, PASSWORD or TOKEN, except public
 * keys), so checks cover secrets added to the schema later.
 */
export function configSecrets(config: object): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(config)) {
    if (!/SECRET|KEY|PASSWORD|TOKEN/.test(name) || /PUBLIC|_ID$|_ALG$/.test(name)) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (typeof v !== 'string' || v.length < 8) continue;
      out.push(v);
      // id:key pairs (key rings): the key part alone is secret too.
      const colon = v.indexOf(':');
      if (colon > 0 && v.length - colon > 16) out.push(v.slice(colon + 1));
    }
  }
  return out;
}
