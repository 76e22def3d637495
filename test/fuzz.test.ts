/**
 * Property-based fuzzing of the three public routes with fast-check, through app.inject() on one
 * service (real PostgreSQL, Redis and the Alibaba simulator behind it).
 *
 * For every generated request: no 5xx, every 4xx is JSON with a string `code` and `message`, no
 * response echoes a secret or shows a stack trace. After the run: Object.prototype is untouched,
 * nothing was thrown unhandled and the service still serves a normal flow.
 *
 * Runs are explicit (NUM_RUNS); FUZZ_SCALE=0.1 makes a quick pass, FUZZ_SEED (and FUZZ_PATH) replay
 * the seed fast-check prints with a failure.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import {
  arbitraryJsonBody,
  authHeaderOf,
  authSpec,
  type Body,
  boundaryBody,
  boundaryPayload,
  callbackCase,
  callbackPairs,
  contentTypeBody,
  contentTypePayload,
  deepBody,
  deepPayload,
  headersOf,
  materialize,
  nearValidBody,
  nearValidPayload,
  nonJsonBody,
  oversizedBody,
  oversizedPayload,
  protoBody,
  protoPayload,
  queryString,
  randomHeaders,
  requestIdValue,
  returnUrlCase,
  returnUrlOf,
  rfc3986Host,
  type SeededSession,
  sessionCase,
  sessionUrl,
  unicodeBody,
} from './helpers/fuzz-arbitraries.js';
import { RESULT_FIELD_NAMES } from '../src/routes/kyc/callback-fields.js';
import { parseQuery } from '../src/routes/kyc/callback-gate.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import { configSecrets, envelopeDeviation, responseProblems } from './helpers/response-checks.js';
import { META_INFO, randomId, startStack, type Stack } from './helpers/stack.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? '1');
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

/** Generated requests per property (each run sends one request; shrinking after a failure sends more). */
const NUM_RUNS = {
  startArbitraryJson: runs(800),
  startNearValid: runs(2000),
  startOversized: runs(120),
  startDeep: runs(250),
  startUnicode: runs(600),
  startPrototypePollution: runs(300),
  startContentTypes: runs(500),
  startNonJson: runs(600),
  startBoundarySizes: runs(300),
  startReturnUrl: runs(600),
  callback: runs(3500),
  callbackOverHttp: runs(1500),
  sessions: runs(2500),
  requestIds: runs(500),
};
const PLANNED = Object.values(NUM_RUNS).reduce((a, b) => a + b, 0);
const MIN_TOTAL = 10_000;

let failedProperties = 0;
/** fc.assert, counting failures (a failed property stops early, so fewer requests are sent). */
async function check<Ts extends [unknown, ...unknown[]]>(property: fc.IAsyncProperty<Ts>, params: fc.Parameters<Ts>): Promise<void> {
  try {
    await fc.assert(property, params);
  } catch (err) {
    failedProperties++;
    throw err;
  }
}

const fcParams = <Ts>(numRuns: number): fc.Parameters<Ts> => ({
  numRuns,
  includeErrorInReport: true,
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
  ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
});

const USERS = 3;
let stack: Stack;
let tokens: string[] = [];
let seeded: SeededSession[] = [];
let bizIdPool: string[] = [];
let secrets: string[] = [];
const prototypeBaseline = {
  object: Object.getOwnPropertyNames(Object.prototype).sort(),
  array: Object.getOwnPropertyNames(Array.prototype).sort(),
  fn: Object.getOwnPropertyNames(Function.prototype).sort(),
};
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

// Counters for the report.
type Route = 'start' | 'callback' | 'sessions' | 'other';
const sent: Record<Route, number> = { start: 0, callback: 0, sessions: 0, other: 0 };
const statuses = new Map<number, number>();
const envelopeDeviations = new Map<string, string>();
const startedAt = Date.now();

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  const high = '1000000000';
  stack = await startStack({
    env: {
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_USER: high,
      RATE_LIMIT_PER_IP: high,
      RATE_LIMIT_CALLBACK_PER_IP: high,
      CLOUDAUTH_QPS: '100000',
      // The tokens below live 2 h (a long run must not see them expire); the default bound is 1 h.
      AUTH_JWT_MAX_AGE_S: '7200',
    },
  });
  tokens = await Promise.all(Array.from({ length: USERS }, (_, i) => signToken(randomId(`fuzz-user${i}-`), { expiresIn: '2h' })));
  bizIdPool = Array.from({ length: 12 }, () => randomId('fz'));
  // Sessions whose transactionIds and callback tokens the callback fuzzing may use.
  for (let i = 0; i < 4; i++) {
    const res = await stack.app.inject({
      method: 'POST',
      url: '/kyc/start',
      headers: { authorization: `Bearer ${tokens[i % 2]}`, 'content-type': 'application/json' },
      payload: { metaInfo: META_INFO },
    });
    assert.equal(res.statusCode, 201, res.body);
    const { merchantBizId, transactionId } = res.json<{ merchantBizId: string; transactionId: string }>();
    const tx = await (await fetch(`${stack.simUrl}/__sim/transactions/${transactionId}`)).json() as { params: Record<string, string> };
    const sessionId = (await rowsOf(stack.app).session(merchantBizId)).id;
    seeded.push({ merchantBizId, sessionId, transactionId, callbackToken: tx.params.CallbackToken! });
  }
  // One whose TransactionId was never stored: reachable only through the session id and attempt.
  await rowsOf(stack.app).forgetTransactionId(seeded[3]!.merchantBizId);
  // Never in a response: the configured secrets and the seeded sessions' callback tokens (sent in requests).
  secrets = [...new Set([...configSecrets(stack.config), stack.config.ALIBABA_CLOUD_ACCESS_KEY_SECRET, ...seeded.map((s) => s.callbackToken)])];
  assert.ok(secrets.includes(stack.config.AUTH_JWT_SECRET!) && secrets.includes(stack.config.USER_ID_HASH_SECRET));
});

after(async () => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  await stack?.close();
});

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends one request and checks the response properties; throws (for fast-check) on a violation. */
async function send(route: Route, opts: InjectOptions & { method: string; url: string }): Promise<LightMyRequestResponse> {
  sent[route]++;
  const what = `${opts.method} ${opts.url.slice(0, 160)}${opts.url.length > 160 ? `… (${opts.url.length} chars)` : ''}`;
  const res = await withTimeout(stack.app.inject(opts), 15_000, what);
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  const deviation = envelopeDeviation(res);
  if (deviation && !envelopeDeviations.has(deviation)) envelopeDeviations.set(deviation, what);
  const problems = responseProblems(opts.method, res, secrets);
  if (problems.length > 0) {
    assert.fail(`${what} → ${res.statusCode} ${res.body.slice(0, 300)}\n  problems: ${problems.join('; ')}`);
  }
  return res;
}

function startRequest(body: Body, auth: string | undefined, extraHeaders: Record<string, string> = {}) {
  const headers: Record<string, string> = { ...extraHeaders };
  if (body.contentType !== undefined) headers['content-type'] = body.contentType;
  if (auth !== undefined) headers.authorization = auth;
  return send('start', { method: 'POST', url: '/kyc/start', headers, ...(body.payload !== undefined ? { payload: body.payload } : {}) });
}

/** A start property: a body case, an Authorization header (valid for most runs) and random headers. */
function startProperty<T>(cases: fc.Arbitrary<T>, toBody: (c: T) => Body, validWeight = 4) {
  return fc.asyncProperty(cases, authSpec(USERS, validWeight), randomHeaders, async (c, auth, headers) => {
    await startRequest(toBody(c), authHeaderOf(auth, tokens), headersOf(headers));
  });
}

describe('fuzz: POST /kyc/start', () => {
  test(`arbitrary JSON bodies (${NUM_RUNS.startArbitraryJson} runs)`, async () => {
    await check(startProperty(arbitraryJsonBody, (b) => b), fcParams(NUM_RUNS.startArbitraryJson));
  });

  test(`near-valid bodies: one field deleted, retyped or nasty; policy and unknown keys (${NUM_RUNS.startNearValid} runs)`, async () => {
    await check(startProperty(nearValidBody(bizIdPool), nearValidPayload, 8), fcParams(NUM_RUNS.startNearValid));
  });

  test(`bodies over the 64 KB limit → 413 (${NUM_RUNS.startOversized} runs)`, async () => {
    await check(
      fc.asyncProperty(oversizedBody, authSpec(USERS, 4), async (c, auth) => {
        const res = await startRequest(oversizedPayload(c), authHeaderOf(auth, tokens));
        // The caller is authenticated before the body is read: a bad token is refused first (401).
        if (auth.kind !== 'valid') assert.equal(res.statusCode, 401, res.body);
        // application/json and text/plain have parsers (limited to 64 KB); other types are refused first.
        else if (c.shape !== 'no-type' && c.shape !== 'form') assert.equal(res.statusCode, 413, res.body);
      }),
      fcParams(NUM_RUNS.startOversized),
    );
  });

  test(`deeply nested JSON up to depth 12,000 (${NUM_RUNS.startDeep} runs)`, async () => {
    await check(startProperty(deepBody, deepPayload, 6), fcParams(NUM_RUNS.startDeep));
  });

  test(`unicode: lone surrogates, NUL, invalid UTF-8, BOMs (${NUM_RUNS.startUnicode} runs)`, async () => {
    await check(startProperty(unicodeBody, (b) => b, 6), fcParams(NUM_RUNS.startUnicode));
  });

  test(`prototype-pollution keys at the top level and nested (${NUM_RUNS.startPrototypePollution} runs)`, async () => {
    await check(startProperty(protoBody, protoPayload, 6), fcParams(NUM_RUNS.startPrototypePollution));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test(`wrong content types and lying content-lengths (${NUM_RUNS.startContentTypes} runs)`, async () => {
    await check(
      fc.asyncProperty(contentTypeBody, authSpec(USERS, 4), async (c, auth) => {
        const body = contentTypePayload(c);
        await startRequest(body, authHeaderOf(auth, tokens), c.contentLength !== undefined ? { 'content-length': c.contentLength } : {});
      }),
      fcParams(NUM_RUNS.startContentTypes),
    );
  });

  test(`application/json bodies that are not JSON (${NUM_RUNS.startNonJson} runs)`, async () => {
    await check(startProperty(nonJsonBody, (b) => b), fcParams(NUM_RUNS.startNonJson));
  });

  test(`fields at, under and over their size limits (${NUM_RUNS.startBoundarySizes} runs)`, async () => {
    await check(startProperty(boundaryBody, boundaryPayload, 8), fcParams(NUM_RUNS.startBoundarySizes));
  });
});

describe('fuzz: returnUrl', () => {
  test(`user info, backslashes, escapes, odd schemes, separators, hosts and ports (${NUM_RUNS.startReturnUrl} runs): accepted only on the allowed origin, forwarded as its href, whose host an RFC 3986 parser reads alike`, async () => {
    let accepted = 0;
    await check(
      fc.asyncProperty(returnUrlCase, async (c) => {
        const raw = returnUrlOf(c);
        const res = await startRequest(
          { payload: JSON.stringify({ metaInfo: META_INFO, returnUrl: raw }), contentType: 'application/json' },
          `Bearer ${tokens[0]}`,
        );
        const what = `${JSON.stringify(raw.slice(0, 200))} → ${res.statusCode} ${res.body.slice(0, 200)}`;
        if (res.statusCode === 201) {
          accepted++;
          const { transactionId } = res.json<{ transactionId: string }>();
          const tx = (await (await fetch(`${stack.simUrl}/__sim/transactions/${transactionId}`)).json()) as { params: Record<string, string> };
          const forwarded = tx.params.ReturnUrl!;
          assert.equal(forwarded, new URL(raw).href, what);
          assert.equal(new URL(forwarded).origin, 'https://shop.example', what);
          assert.equal(rfc3986Host(forwarded), 'shop.example', `${what}: forwarded ${forwarded}`);
          // What was accepted had nothing for another parser to read differently.
          assert.ok(!raw.includes('\\'), what);
          assert.ok(!/[@%\s]/.test(/^https?:\/\/([^/?#]*)/i.exec(raw)?.[1] ?? '@'), what);
        } else {
          assert.equal(res.statusCode, 400, what);
          assert.ok(['RETURN_URL_NOT_ALLOWED', 'VALIDATION_ERROR'].includes(res.json<{ code: string }>().code), what);
        }
        // Not a policy that refuses everything: a plain URL on the allowed origin is accepted.
        if (raw.length <= 2048 && /^https:\/\/shop\.example(:443)?(\/[A-Za-z0-9/_-]*)?$/i.test(raw)) assert.equal(res.statusCode, 201, what);
      }),
      fcParams(NUM_RUNS.startReturnUrl),
    );
    assert.ok(accepted >= NUM_RUNS.startReturnUrl / 20, `only ${accepted} returnUrls were accepted`);
  });
});

describe('fuzz: GET /kyc/callback', () => {
  test(`query strings: seeded transactions with real, wrong and altered tokens, duplicates, nasty values, 100 KB tokens (${NUM_RUNS.callback} runs)`, async () => {
    await check(
      fc.asyncProperty(callbackCase(seeded.length), async (c) => {
        const pairs = callbackPairs(c, seeded);
        const q = queryString(pairs);
        const route: Route = c.path === '/kyc/callback' ? 'callback' : 'other';
        const res = await send(route, { method: c.method, url: q ? `${c.path}?${q}` : c.path, headers: headersOf(c.headers) });
        const value = (...keys: string[]) => pairs.filter(([k]) => keys.includes(k)).map(([, v]) => materialize(v))[0];
        if (res.statusCode === 200 && (c.method === 'HEAD' || (JSON.parse(res.body) as { result?: string }).result === 'reachable')) {
          // A reachability probe: only when no result field is there under any spelling (in the query the
          // server receives: a raw '#' starts the fragment).
          const received = parseQuery(q.split('#')[0]!);
          assert.equal(RESULT_FIELD_NAMES.some((k) => received[k] !== undefined), false, `a probe answer to a callback: ${q.slice(0, 300)}`);
        } else if (res.statusCode === 200 && c.method === 'GET') {
          // Accepted only with the exact token of the transaction the transactionId (or session id) names.
          const owner = seeded.find((s) => s.callbackToken === value('callbackToken', 'CallbackToken'));
          assert.ok(owner, `accepted without any session's exact token: ${res.body}`);
          // A transaction that never stored its TransactionId takes the one its first accepted callback carried
          // (found by session id and attempt); later callbacks may name it by that one.
          const stored = (await rowsOf(stack.app).transaction(owner.merchantBizId)).transactionId;
          assert.ok(
            [owner.transactionId, stored].includes(value('transactionId', 'TransactionId') ?? null) || value('sessionId') === owner.sessionId,
            `accepted a token for another session: ${res.body}`,
          );
        }
      }),
      fcParams(NUM_RUNS.callback),
    );
  });
});

/**
 * The same request over a real connection, through the callback gate in front of Fastify (see
 * src/routes/kyc/callback-gate.ts); undefined when Node's HTTP client refuses to send it as typed
 * (control characters in the path or a header), which app.inject() sends anyway. A connection per
 * request: a generated header (connection, expect, transfer-encoding…) may end a kept-alive one.
 */
async function overHttp(method: string, path: string, headers: Record<string, string>): Promise<{ statusCode: number; body: string } | undefined> {
  const { port } = new URL(stack.appUrl);
  return new Promise((resolve, reject) => {
    try {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ statusCode: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_UNESCAPED_CHARACTERS' || code === 'ERR_INVALID_CHAR' || code === 'ERR_HTTP_INVALID_HEADER_VALUE' || code === 'ERR_INVALID_HTTP_TOKEN') resolve(undefined);
      else reject(err);
    }
  });
}

describe('fuzz: GET /kyc/callback over HTTP, through the gate', () => {
  test(`each answer over a real connection matches app.inject()'s for the same request (${NUM_RUNS.callbackOverHttp} runs)`, async () => {
    let compared = 0;
    await check(
      fc.asyncProperty(callbackCase(seeded.length), async (c) => {
        const q = queryString(callbackPairs(c, seeded));
        const url = q ? `${c.path}?${q}` : c.path;
        const headers = headersOf(c.headers);
        // Over HTTP first: a genuine callback it records, inject() then redelivers (200 both times).
        const viaHttp = await withTimeout(overHttp(c.method, url, headers), 15_000, `${c.method} ${url.slice(0, 160)}`);
        const injected = await send(c.path === '/kyc/callback' ? 'callback' : 'other', { method: c.method, url, headers });
        // inject() normalizes the URL (dot segments, a '#' fragment, escapes); a real client sends it as typed.
        const normalized = new URL(url, 'http://localhost');
        if (!viaHttp || `${normalized.pathname}${normalized.search}` !== url) return;
        const codeOf = (body: string) => (body.startsWith('{') ? (JSON.parse(body) as { code?: string }).code : undefined);
        // Over 16 KB of request line and headers, Node's parser refuses it before the app sees it.
        if (viaHttp.statusCode === 431) return assert.equal(c.method === 'HEAD' ? 'HEADERS_TOO_LARGE' : codeOf(viaHttp.body), 'HEADERS_TOO_LARGE');
        compared++;
        assert.deepEqual([viaHttp.statusCode, codeOf(viaHttp.body)], [injected.statusCode, codeOf(injected.body)], `${c.method} ${url.slice(0, 200)}`);
      }),
      fcParams(NUM_RUNS.callbackOverHttp),
    );
    // Most generated requests are sendable as they are; the comparison must not have been vacuous.
    assert.ok(compared >= NUM_RUNS.callbackOverHttp / 2, `only ${compared} requests went over HTTP`);
  });
});

describe('fuzz: GET /kyc/sessions/:merchantBizId', () => {
  test(`path params (%00, .., malformed escapes, 20 KB), auth headers, query noise (${NUM_RUNS.sessions} runs)`, async () => {
    const ids = [...seeded.map((s) => s.merchantBizId), ...bizIdPool];
    await check(
      fc.asyncProperty(sessionCase(ids, USERS), async (c) => {
        const auth = authHeaderOf(c.auth, tokens);
        const headers = { ...headersOf(c.headers), ...(auth !== undefined ? { authorization: auth } : {}) };
        const res = await send('sessions', { method: c.method, url: sessionUrl(c), headers });
        if (res.statusCode === 200 && c.method === 'GET') {
          // Only the owner reads a session: a 200 needs a valid token.
          assert.equal(c.auth.kind, 'valid', `200 without a valid token: ${res.body}`);
        }
      }),
      fcParams(NUM_RUNS.sessions),
    );
  });
});

describe('fuzz: x-request-id', () => {
  test(`used only when it is 1-64 of A-Z a-z 0-9 . _ -, otherwise replaced by a new UUID, on every route (${NUM_RUNS.requestIds} runs)`, async () => {
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const routes: Array<[Route, string, string]> = [
      ['other', 'GET', '/healthz'],
      ['sessions', 'GET', '/kyc/sessions/abc'],
      ['callback', 'GET', '/kyc/callback?transactionId=x'],
      ['start', 'POST', '/kyc/start'],
      ['other', 'GET', '/no/such/route'],
    ];
    await check(
      fc.asyncProperty(requestIdValue, fc.integer({ min: 0, max: routes.length - 1 }), async (id, r) => {
        const [route, method, url] = routes[r]!;
        const res = await send(route, { method, url, headers: { 'x-request-id': id, authorization: `Bearer ${tokens[1]}` } });
        const echoed = String(res.headers['x-request-id']);
        if (/^[A-Za-z0-9._-]{1,64}$/.test(id)) assert.equal(echoed, id);
        else assert.match(echoed, UUID, `${JSON.stringify(id)} → ${echoed}`);
      }),
      fcParams(NUM_RUNS.requestIds),
    );
  });
});

describe('after the fuzzing', () => {
  test('Object.prototype, Array.prototype and Function.prototype are not polluted', () => {
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBaseline.object);
    assert.deepEqual(Object.getOwnPropertyNames(Array.prototype).sort(), prototypeBaseline.array);
    assert.deepEqual(Object.getOwnPropertyNames(Function.prototype).sort(), prototypeBaseline.fn);
    const probe = {} as Record<string, unknown>;
    assert.equal(probe.polluted, undefined);
    assert.equal(Object.prototype.toString.call(probe), '[object Object]');
  });

  test('nothing was thrown unhandled and the service still serves a normal flow', async () => {
    assert.deepEqual(unhandled, []);
    assert.equal((await stack.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const res = await stack.app.inject({
      method: 'POST',
      url: '/kyc/start',
      headers: { authorization: `Bearer ${tokens[0]}`, 'content-type': 'application/json' },
      payload: { metaInfo: META_INFO },
    });
    assert.equal(res.statusCode, 201, res.body);
    const logs = stack.logs.text;
    assert.ok(!logs.includes('"unhandled error"'), 'no unhandled error was logged');
    for (const secret of secrets) assert.ok(!logs.includes(secret), `logs contain ${secret.slice(0, 6)}…`);
  });

  test('every error used the service envelope { code, message, details? } with its own codes', () => {
    assert.deepEqual(Object.fromEntries(envelopeDeviations), {}, 'error responses outside the envelope (deviation → example request)');
  });

  test(`at least ${MIN_TOTAL} requests were sent`, () => {
    const total = sent.start + sent.callback + sent.sessions + sent.other;
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    const byStatus = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(
      `fuzz: ${total} requests (${PLANNED} runs planned, ${failedProperties} properties failed) in ${seconds} s — start ${sent.start}, callback ${sent.callback}, sessions ${sent.sessions}, other paths ${sent.other}; by status ${byStatus}`,
    );
    if (SCALE >= 1) {
      assert.ok(PLANNED >= MIN_TOTAL, `only ${PLANNED} runs planned`);
      // A failed property stops at its counterexample; its failure is reported on its own.
      if (failedProperties === 0) assert.ok(total >= MIN_TOTAL, `only ${total} requests`);
    }
  });
});
