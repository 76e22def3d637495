/**
 * Security properties, each a test that fails when the protection is missing. What other suites
 * already cover is not repeated: test/auth.test.ts (alg none, wrong secret, expired, not yet valid,
 * HS512 with the right secret, tampered payload, RS256 issuer, HS256 signed with the RSA public
 * key on an RS-only service), test/kyc-callback.test.ts (wrong token, another transaction's token,
 * token absent in logs after a flow), test/kyc-start.test.ts (the session row holds the token's hash).
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { exportJWK, importPKCS8, SignJWT } from 'jose';
import { buildApp } from '../src/app.js';
import { splitSchemaParam } from '../src/db/url.js';
import { rowsOf } from './helpers/rows.js';
import { signToken, TEST_JWT_SECRET } from './helpers/jwt.js';
import { configSecrets, responseProblems } from './helpers/response-checks.js';
import {
  dropSchemas,
  freshDatabaseUrl,
  LogCapture,
  META_INFO,
  randomId,
  REDIS_URL,
  SIM_KEY_ID,
  SIM_KEY_SECRET,
  startStack,
  testConfig,
  waitFor,
  type Stack,
} from './helpers/stack.js';

const HIGH = '1000000000';
const ALLOWED_ORIGINS = ['https://shop.example', 'https://admin.shop.example'];

let stack: Stack;
const apps: Array<{ app: FastifyInstance; config: ReturnType<typeof testConfig> }> = [];
const stacks: Stack[] = [];

/** A service answering through inject() only (no simulator: for routes that never call Alibaba), on fresh schemas. */
async function injectOnlyApp(env: Record<string, string | undefined>): Promise<{ app: FastifyInstance; logs: LogCapture }> {
  const logs = new LogCapture();
  const config = testConfig({ ...('DATABASE_URL' in env ? {} : { DATABASE_URL: await freshDatabaseUrl() }), JOBS_WORKERS: 'false', ...env });
  const app = await buildApp(config, { logStream: logs });
  apps.push({ app, config });
  await app.ready();
  return { app, logs };
}

async function extraStack(env: Record<string, string | undefined>): Promise<Stack> {
  const s = await startStack({ env });
  stacks.push(s);
  return s;
}

before(async () => {
  stack = await startStack({
    env: {
      LOG_LEVEL: 'trace',
      CORS_ORIGINS: ALLOWED_ORIGINS.join(','),
      RATE_LIMIT_PER_USER: HIGH,
      RATE_LIMIT_PER_IP: HIGH,
      RATE_LIMIT_CALLBACK_PER_IP: HIGH,
    },
  });
});

after(async () => {
  for (const { app, config } of apps) {
    await app.close();
    await dropSchemas(config);
  }
  for (const s of stacks) await s.close();
  await stack.close();
});

interface Started {
  jwt: string;
  merchantBizId: string;
  transactionId: string;
  callbackToken: string;
}

/** A started verification and the CallbackToken the simulator (Alibaba) received for it. */
async function started(on: Stack = stack): Promise<Started> {
  const jwt = await signToken(randomId('user-'));
  const res = await on.app.inject({
    method: 'POST',
    url: '/kyc/start',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    payload: { metaInfo: META_INFO },
  });
  assert.equal(res.statusCode, 201, res.body);
  const { merchantBizId, transactionId } = res.json<{ merchantBizId: string; transactionId: string }>();
  const tx = (await (await fetch(`${on.simUrl}/__sim/transactions/${transactionId}`)).json()) as { params: Record<string, string> };
  return { jwt, merchantBizId, transactionId, callbackToken: tx.params.CallbackToken! };
}

/** The whole row, to compare before and after (independent of which columns the schema has). */
const rowOf = async (merchantBizId: string, on: Stack = stack) =>
  JSON.stringify(await rowsOf(on.app).sessionOrNull(merchantBizId), (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  );

/** Waits until the CheckResult that follows a delivered callback has decided the session. */
const settled = (merchantBizId: string, on: Stack = stack) =>
  waitFor(`session ${merchantBizId} decided`, async () => {
    const row = await rowsOf(on.app).sessionOrNull(merchantBizId);
    return row && !['pending', 'verifying'].includes(row.status) ? row.status : undefined;
  }, 15_000);

const complete = (transactionId: string, passed: 'Y' | 'N', subCode: string, on: Stack = stack) =>
  fetch(`${on.simUrl}/__sim/transactions/${transactionId}/complete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ passed, subCode }),
  });

const callback = (query: string, on: Stack = stack) => on.app.inject({ method: 'GET', url: `/kyc/callback?${query}` });
const qs = (params: Record<string, string>) => new URLSearchParams(params).toString();

// -------------------------------------------------------------------------------------------------

describe('JWT algorithm confusion (beyond test/auth.test.ts)', () => {
  const server = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serverPublicPem = server.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const serverPrivatePem = server.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const attackerPrivatePem = attacker.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const attackerEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attackerEcPem = attackerEc.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = () => ({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 300 });
  /** A JWT with any header, HMAC-SHA256-signed with `key` (whatever the header claims). */
  const hmacJwt = (header: unknown, key: string | Buffer) => {
    const signingInput = `${b64(header)}.${b64(claims())}`;
    return `${signingInput}.${createHmac('sha256', key).update(signingInput).digest('base64url')}`;
  };
  const rsJwt = async (pem: string, alg: string, header: Record<string, unknown> = {}) =>
    new SignJWT({}).setProtectedHeader({ ...header, alg }).setSubject('mallory').setExpirationTime('5m').sign(await importPKCS8(pem, alg));

  let both: FastifyInstance; // HS256 secret and RS256 public key configured together
  let rsOnly: FastifyInstance;
  before(async () => {
    both = (await injectOnlyApp({ AUTH_JWT_SECRET: TEST_JWT_SECRET, AUTH_JWT_PUBLIC_KEY: serverPublicPem, AUTH_JWT_PUBLIC_KEY_ALG: 'RS256' })).app;
    rsOnly = (await injectOnlyApp({ AUTH_JWT_SECRET: undefined, AUTH_JWT_PUBLIC_KEY: serverPublicPem, AUTH_JWT_PUBLIC_KEY_ALG: 'RS256' })).app;
  });

  /** 404 SESSION_NOT_FOUND means the caller got past authentication; 401 INVALID_TOKEN that it did not. */
  const authStatus = async (app: FastifyInstance, token: string) => {
    const res = await app.inject({ method: 'GET', url: '/kyc/sessions/nosuchsession', headers: { authorization: `Bearer ${token}` } });
    return `${res.statusCode} ${res.json<{ code: string }>().code}`;
  };

  test('with both keys configured, each algorithm is bound to its own key', async () => {
    assert.equal(await authStatus(both, await signToken('alice')), '404 SESSION_NOT_FOUND', 'a genuine HS256 token passes');
    assert.equal(await authStatus(both, await rsJwt(serverPrivatePem, 'RS256')), '404 SESSION_NOT_FOUND', 'a genuine RS256 token passes');
    // The classic confusion: HS256 keyed with the (public) RSA key, in every encoding an attacker might try.
    const publicDer = server.publicKey.export({ type: 'spki', format: 'der' });
    const publicJwk = JSON.stringify(await exportJWK(server.publicKey));
    for (const [what, key] of [
      ['the PEM', serverPublicPem],
      ['the PEM without its final newline', serverPublicPem.trimEnd()],
      ['the DER bytes', publicDer],
      ['the base64 of the DER', publicDer.toString('base64')],
      ['the JWK', publicJwk],
    ] as const) {
      assert.equal(await authStatus(both, hmacJwt({ alg: 'HS256', typ: 'JWT' }, key)), '401 INVALID_TOKEN', `HS256 keyed with ${what}`);
    }
    // The reverse: an RS256 header over an HMAC made with the shared secret.
    assert.equal(await authStatus(both, hmacJwt({ alg: 'RS256' }, TEST_JWT_SECRET)), '401 INVALID_TOKEN', 'RS256 header, HMAC signature');
  });

  test('the algorithm must match exactly: case, padding and type variants of HS256 are refused even with a valid HMAC', async () => {
    const { app } = stack;
    assert.equal(await authStatus(app, hmacJwt({ alg: 'HS256' }, TEST_JWT_SECRET)), '404 SESSION_NOT_FOUND', 'control: a genuine HMAC passes');
    for (const alg of ['hs256', 'Hs256', 'HS256 ', ' HS256', 'HS256\u0000', ['HS256'], { name: 'HS256' }, null, '']) {
      assert.equal(await authStatus(app, hmacJwt({ alg }, TEST_JWT_SECRET)), '401 INVALID_TOKEN', `alg ${JSON.stringify(alg)}`);
    }
    assert.equal(await authStatus(app, hmacJwt({ alg: 'HS256', crit: ['exp2'], exp2: 1 }, TEST_JWT_SECRET)), '401 INVALID_TOKEN', 'unknown crit');
  });

  test('an HS-only service refuses RS256/ES256 tokens, whatever key signed them', async () => {
    assert.equal(await authStatus(stack.app, await rsJwt(attackerPrivatePem, 'RS256')), '401 INVALID_TOKEN');
    assert.equal(await authStatus(stack.app, await rsJwt(attackerEcPem, 'ES256')), '401 INVALID_TOKEN');
  });

  test('an ES256 key: its own tokens pass; another P-256 key, RS256 and HS256 keyed with the PEM do not', async () => {
    const serverEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const serverEcPublicPem = serverEc.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const serverEcPrivatePem = serverEc.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const esOnly = (await injectOnlyApp({ AUTH_JWT_SECRET: undefined, AUTH_JWT_PUBLIC_KEY: serverEcPublicPem, AUTH_JWT_PUBLIC_KEY_ALG: 'ES256' })).app;
    assert.equal(await authStatus(esOnly, await rsJwt(serverEcPrivatePem, 'ES256')), '404 SESSION_NOT_FOUND', 'control');
    assert.equal(await authStatus(esOnly, await rsJwt(attackerEcPem, 'ES256')), '401 INVALID_TOKEN', 'another P-256 key');
    assert.equal(await authStatus(esOnly, await rsJwt(attackerPrivatePem, 'RS256')), '401 INVALID_TOKEN', 'RS256');
    assert.equal(await authStatus(esOnly, hmacJwt({ alg: 'HS256' }, serverEcPublicPem)), '401 INVALID_TOKEN', 'HS256 keyed with the PEM');
  });

  test('an RS-only service trusts no key named by the token: embedded jwk, jku, x5u, kid; nor alg none or another algorithm', async () => {
    const attackerJwk = await exportJWK(attacker.publicKey);
    assert.equal(await authStatus(rsOnly, await rsJwt(serverPrivatePem, 'RS256')), '404 SESSION_NOT_FOUND', 'control');
    const forged: Array<[string, string]> = [
      ['jwk: the attacker\'s public key', await rsJwt(attackerPrivatePem, 'RS256', { jwk: attackerJwk })],
      ['jku: the attacker\'s key set', await rsJwt(attackerPrivatePem, 'RS256', { jku: 'https://evil.example/jwks.json' })],
      ['x5u: the attacker\'s certificate', await rsJwt(attackerPrivatePem, 'RS256', { x5u: 'https://evil.example/cert.pem' })],
      ['kid: a path', await rsJwt(attackerPrivatePem, 'RS256', { kid: '../../../../dev/null' })],
      ['PS256 with the attacker\'s key', await rsJwt(attackerPrivatePem, 'PS256')],
      ['ES256 with the attacker\'s key', await rsJwt(attackerEcPem, 'ES256')],
      ['alg none', `${b64({ alg: 'none' })}.${b64(claims())}.`],
      ['HS256 keyed with the PEM', hmacJwt({ alg: 'HS256' }, serverPublicPem)],
    ];
    for (const [what, token] of forged) assert.equal(await authStatus(rsOnly, token), '401 INVALID_TOKEN', what);
  });
});

// -------------------------------------------------------------------------------------------------

describe('CORS', () => {
  const preflight = (app: FastifyInstance, origin: string, url = '/kyc/start') =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin, 'access-control-request-method': url === '/kyc/start' ? 'POST' : 'GET', 'access-control-request-headers': 'authorization,content-type' },
    });
  const simple = (app: FastifyInstance, origin: string) =>
    app.inject({ method: 'GET', url: '/kyc/sessions/abc', headers: { origin, authorization: 'Bearer x.y.z' } });

  test('a configured origin gets access-control-allow-origin on a preflight and on a simple request', async () => {
    for (const origin of ALLOWED_ORIGINS) {
      for (const url of ['/kyc/start', '/kyc/sessions/abc']) {
        const res = await preflight(stack.app, origin, url);
        assert.equal(res.statusCode, 204, `preflight ${url} from ${origin}`);
        assert.equal(res.headers['access-control-allow-origin'], origin);
        assert.match(String(res.headers['access-control-allow-methods']), url === '/kyc/start' ? /POST/ : /GET/);
        assert.match(String(res.headers['access-control-allow-headers']), /authorization/i);
        assert.match(String(res.headers.vary), /origin/i, 'responses vary by Origin (no cache mix-up)');
      }
      const res = await simple(stack.app, origin);
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.match(String(res.headers.vary), /origin/i);
    }
  });

  test('any other origin gets no access-control-allow-origin (look-alikes included), and never credentials', async () => {
    const others = [
      'https://evil.example', 'https://shop.example.evil.example', 'https://evilshop.example', 'https://evil-shop.example',
      'http://shop.example', 'https://shop.example:8443', 'https://sub.shop.example', 'null', 'https://shop.exampl',
      'https://shop.example%60.evil.example', 'https://shop.example/', 'file://', '*',
    ];
    for (const origin of others) {
      for (const res of [await preflight(stack.app, origin), await preflight(stack.app, origin, '/kyc/sessions/abc'), await simple(stack.app, origin)]) {
        assert.equal(res.headers['access-control-allow-origin'], undefined, `${origin} allowed`);
        assert.notEqual(res.headers['access-control-allow-credentials'], 'true');
      }
    }
    for (const origin of ALLOWED_ORIGINS) assert.notEqual((await preflight(stack.app, origin)).headers['access-control-allow-credentials'], 'true');
  });

  test('with CORS_ORIGINS empty, no origin is allowed', async () => {
    const { app } = await injectOnlyApp({ CORS_ORIGINS: '' });
    for (const origin of [...ALLOWED_ORIGINS, 'https://evil.example']) {
      assert.equal((await preflight(app, origin)).headers['access-control-allow-origin'], undefined);
      assert.equal((await simple(app, origin)).headers['access-control-allow-origin'], undefined);
    }
  });
});

// -------------------------------------------------------------------------------------------------

describe('security headers (helmet) on API responses', () => {
  const checkHeaders = (what: string, headers: Record<string, unknown>) => {
    assert.equal(headers['x-content-type-options'], 'nosniff', `${what}: x-content-type-options`);
    const hsts = String(headers['strict-transport-security'] ?? '');
    const maxAge = Number(/max-age=(\d+)/.exec(hsts)?.[1] ?? 0);
    assert.ok(maxAge >= 180 * 24 * 3600, `${what}: strict-transport-security "${hsts}"`);
    assert.match(hsts, /includeSubDomains/i, `${what}: HSTS includeSubDomains`);
    const xfo = String(headers['x-frame-options'] ?? '');
    const csp = String(headers['content-security-policy'] ?? '');
    assert.ok(/^(DENY|SAMEORIGIN)$/i.test(xfo) || /frame-ancestors\s+('none'|'self')/.test(csp), `${what}: framing not restricted`);
    assert.equal(headers['referrer-policy'], 'no-referrer', `${what}: referrer-policy`);
    assert.equal(headers['x-dns-prefetch-control'], 'off', `${what}: x-dns-prefetch-control`);
    assert.equal(headers['x-permitted-cross-domain-policies'], 'none', `${what}: x-permitted-cross-domain-policies`);
    assert.equal(headers['cross-origin-opener-policy'], 'same-origin', `${what}: cross-origin-opener-policy`);
    assert.equal(headers['x-powered-by'], undefined, `${what}: x-powered-by`);
  };

  test('present on success, error and not-found responses of every route', async () => {
    const jwt = await signToken(randomId('user-'));
    const json = { 'content-type': 'application/json' };
    const requests: Array<[string, InjectOptions]> = [
      ['GET /healthz 200', { method: 'GET', url: '/healthz' }],
      ['POST /kyc/start 201', { method: 'POST', url: '/kyc/start', headers: { ...json, authorization: `Bearer ${jwt}` }, payload: { metaInfo: META_INFO } }],
      ['POST /kyc/start 401', { method: 'POST', url: '/kyc/start', headers: json, payload: { metaInfo: META_INFO } }],
      ['POST /kyc/start 400', { method: 'POST', url: '/kyc/start', headers: { ...json, authorization: `Bearer ${jwt}` }, payload: '{"metaInfo":' }],
      ['POST /kyc/start 413', { method: 'POST', url: '/kyc/start', headers: json, payload: 'x'.repeat(70_000) }],
      ['POST /kyc/start 415', { method: 'POST', url: '/kyc/start', headers: { 'content-type': 'application/xml' }, payload: '<x/>' }],
      ['GET /kyc/sessions 404', { method: 'GET', url: '/kyc/sessions/nosuchsession', headers: { authorization: `Bearer ${jwt}` } }],
      ['GET /kyc/sessions 401', { method: 'GET', url: '/kyc/sessions/abc' }],
      ['GET /kyc/callback 403', { method: 'GET', url: `/kyc/callback?${qs({ transactionId: 'hksb0', passed: 'Y', callbackToken: 'x' })}` }],
      ['GET /kyc/callback 400', { method: 'GET', url: '/kyc/callback' }],
      ['GET /nope 404', { method: 'GET', url: '/nope' }],
      ['OPTIONS preflight', { method: 'OPTIONS', url: '/kyc/start', headers: { origin: ALLOWED_ORIGINS[0]!, 'access-control-request-method': 'POST' } }],
    ];
    for (const [what, req] of requests) {
      const res = await stack.app.inject(req);
      assert.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.body}`);
      checkHeaders(`${what} (got ${res.statusCode})`, res.headers);
    }
  });

  test('malformed URLs are answered like every other error: the { code, message } envelope and the security headers', async () => {
    // Fastify answers these before routing (and before any hook), unless `frameworkErrors` is set.
    for (const url of ['/kyc/sessions/%E0%A4%A', `/kyc/sessions/${'a'.repeat(200)}`]) {
      const res = await stack.app.inject({ method: 'GET', url });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${url.slice(0, 40)}: ${res.statusCode}`);
      const body = res.json<Record<string, unknown>>();
      assert.deepEqual(Object.keys(body).sort(), ['code', 'message'], `${url.slice(0, 40)}: ${res.body.slice(0, 200)}`);
      assert.ok(!String(body.code).startsWith('FST_'), `framework code leaked: ${String(body.code)}`);
      checkHeaders(url.slice(0, 40), res.headers);
    }
  });
});

// -------------------------------------------------------------------------------------------------

describe('inbound limits', () => {
  test('the start limit counts every authenticated request, even invalid ones; the callback limit guards only what reaches storage', async () => {
    const { app } = await injectOnlyApp({ RATE_LIMIT_PER_IP: '3', RATE_LIMIT_CALLBACK_PER_IP: '3' });
    const jwt = await signToken(randomId('user-'));
    const start = () =>
      app.inject({ method: 'POST', url: '/kyc/start', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, payload: '{"nope":1}' });
    const invalidCallback = () => app.inject({ method: 'GET', url: '/kyc/callback?transactionId=x' });
    const genuineCallback = () =>
      app.inject({ method: 'GET', url: `/kyc/callback?${qs({ transactionId: 'hksbnone', passed: 'Y', callbackToken: app.callbackTokens.issue().token })}` });
    const starts: number[] = [];
    const invalid: number[] = [];
    for (let i = 0; i < 6; i++) {
      starts.push((await start()).statusCode);
      invalid.push((await invalidCallback()).statusCode);
    }
    assert.ok(starts.includes(429), `POST /kyc/start with invalid bodies: ${starts.join(',')}`);
    // An invalid (or forged) callback is refused with no I/O at all, cheaper than counting it in Redis.
    assert.deepEqual(invalid, [400, 400, 400, 400, 400, 400]);
    const genuine: number[] = [];
    for (let i = 0; i < 4; i++) genuine.push((await genuineCallback()).statusCode);
    assert.deepEqual(genuine, [403, 403, 403, 429]);
  });
});

// -------------------------------------------------------------------------------------------------

describe('the callback token', () => {
  test('never appears in the logs, whatever the callback does (rejected, invalid, duplicated, misrouted, conflicting)', async () => {
    const s = await started();
    const o = await started();
    const t = s.callbackToken;
    const base = { transactionId: s.transactionId, passed: 'Y', subCode: '200' };
    const queries = [
      qs({ ...base, callbackToken: o.callbackToken }), // 403: another transaction's token
      qs({ ...base, transactionId: 'hksbnosuchtransaction', callbackToken: t, merchantBizId: s.merchantBizId }), // 403: miss
      qs({ ...base, passed: 'maybe', callbackToken: t }), // 400
      qs({ ...base, subCode: 'x'.repeat(33), callbackToken: t }), // 400
      qs({ ...base, callbackToken: t.repeat(13) }), // 400: over 512
      `${qs(base)}&callbackToken=${t}&callbackToken=${o.callbackToken}`, // 400: duplicated
      qs({ ...base, transactionId: `${s.transactionId}\u0000`, callbackToken: t }), // 400: NUL
    ];
    for (const q of queries) assert.ok((await callback(q)).statusCode < 500);
    for (const [method, url] of [
      ['GET', `/kyc/callback/?${qs({ ...base, callbackToken: t })}`],
      ['GET', `/kyc/callbackx?callbackToken=${t}`],
      ['POST', `/kyc/callback?${qs({ ...base, callbackToken: t })}`],
      ['GET', `/kyc/sessions/${s.merchantBizId}?callbackToken=${t}`],
    ] as const) {
      assert.ok((await stack.app.inject({ method, url })).statusCode < 500);
    }
    // The real delivery, a redelivery and a contradicting one (409, logged as tampering).
    await complete(s.transactionId, 'N', '205');
    await settled(s.merchantBizId);
    await callback(qs({ transactionId: s.transactionId, passed: 'N', subCode: '205', callbackToken: t, merchantBizId: s.merchantBizId }));
    await callback(qs({ ...base, callbackToken: t, merchantBizId: s.merchantBizId }));

    const text = stack.logs.text;
    assert.ok(stack.logs.lines.some((l) => l.includes('"callback rejected"')), 'the rejections were logged');
    for (const token of [t, o.callbackToken, encodeURIComponent(t)]) assert.ok(!text.includes(token), `a token is in the logs: ${token.slice(0, 6)}…`);
    assert.ok(!/callbackToken=/i.test(text), 'a query string with callbackToken is in the logs');
  });

  test('is stored nowhere in clear: no table of the database and no Redis key holds it', async () => {
    const s = await started();
    await complete(s.transactionId, 'Y', '200');
    await settled(s.merchantBizId);
    await callback(qs({ transactionId: s.transactionId, passed: 'Y', subCode: '200', callbackToken: s.callbackToken }));
    const { prisma } = stack.app;
    // Every table of this service: its own schema (sessions, results) and its job queue's.
    const own = [splitSchemaParam(stack.config.DATABASE_URL).schema, stack.config.JOBS_SCHEMA];
    const tables = await prisma.$queryRawUnsafe<Array<{ schema: string; name: string }>>(
      `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_schema = ANY($1::text[])`,
      own,
    );
    assert.ok(tables.some((t) => t.name === 'kyc_session'), 'the scan sees kyc_session');
    assert.ok(tables.some((t) => t.schema === stack.config.JOBS_SCHEMA), 'the scan sees the job queue');
    const quote = (id: string) => `"${id.replaceAll('"', '""')}"`;
    for (const t of tables) {
      const [hit] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM ${quote(t.schema)}.${quote(t.name)} AS r WHERE strpos(r::text, $1) > 0`,
        s.callbackToken,
      );
      assert.equal(hit!.n, 0, `${t.schema}.${t.name} holds the token`);
    }
    const [hashed] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM ${quote(own[0]!)}.kyc_transaction WHERE callback_token_hash = $1`,
      createHash('sha256').update(s.callbackToken).digest('hex'),
    );
    assert.equal(hashed!.n, 1, 'its SHA-256 is what the session holds');
    let cursor = '0';
    do {
      const [next, keys] = await stack.app.redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      assert.ok(!keys.some((k) => k.includes(s.callbackToken)), 'a Redis key holds the token');
    } while (cursor !== '0');
  });
});

// -------------------------------------------------------------------------------------------------

describe('an attacker who knows a transactionId (and merchantBizId) but not its token', () => {
  test('changes nothing: wrong, altered, foreign and duplicated tokens, parameter-name tricks, merchantBizId redirection', async () => {
    const victim = await started();
    const other = await started();
    const unstored = await started(); // a session whose TransactionId was never stored (reachable by merchantBizId)
    await rowsOf(stack.app).forgetTransactionId(unstored.merchantBizId);
    const watched = [victim, other, unstored].map((s) => s.merchantBizId);
    const snapshot = async () => Promise.all(watched.map((id) => rowOf(id)));
    const before = await snapshot();

    const t = victim.callbackToken;
    const swapcase = [...t].map((c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())).join('');
    const q = (p: Record<string, string>) => qs({ transactionId: victim.transactionId, passed: 'Y', subCode: '200', ...p });
    const attempts: Array<[string, string]> = [
      ['a random token of the right shape', q({ callbackToken: randomBytes(32).toString('base64url') })],
      ['another transaction\'s token', q({ callbackToken: other.callbackToken })],
      ['another transaction\'s token, naming that transaction\'s merchantBizId', q({ callbackToken: other.callbackToken, merchantBizId: other.merchantBizId })],
      ['another transaction\'s token, naming this merchantBizId', q({ callbackToken: other.callbackToken, merchantBizId: victim.merchantBizId })],
      ['an unknown transactionId naming this merchantBizId (its TransactionId is stored)', q({ transactionId: 'hksbforged', callbackToken: other.callbackToken, merchantBizId: victim.merchantBizId })],
      ['an unknown transactionId naming a session without TransactionId, another token', q({ transactionId: 'hksbforged', callbackToken: other.callbackToken, merchantBizId: unstored.merchantBizId })],
      ['this transactionId naming a session without TransactionId, another token', q({ callbackToken: other.callbackToken, merchantBizId: unstored.merchantBizId })],
      ['the token upper-cased', q({ callbackToken: t.toUpperCase() })],
      ['the token lower-cased', q({ callbackToken: t.toLowerCase() })],
      ['the token with its case swapped', q({ callbackToken: swapcase })],
      ['the token with a leading space', q({ callbackToken: ` ${t}` })],
      ['the token with a trailing space', q({ callbackToken: `${t} ` })],
      ['the token with a trailing tab', q({ callbackToken: `${t}\t` })],
      ['the token with a trailing NUL', q({ callbackToken: `${t}\u0000` })],
      ['the token with a leading "+" (a space once decoded)', `${q({})}&callbackToken=+${t}`],
      ['the token minus its last character', q({ callbackToken: t.slice(0, -1) })],
      ['the token plus one character', q({ callbackToken: `${t}A` })],
      ['the token\'s SHA-256 (what the database holds)', q({ callbackToken: createHash('sha256').update(t).digest('hex') })],
      ['the token twice: right then wrong', `${q({ callbackToken: t })}&callbackToken=wrong`],
      ['the token twice: wrong then right', `${q({})}&callbackToken=wrong&callbackToken=${t}`],
      ['the token then an empty duplicate', `${q({ callbackToken: t })}&callbackToken=`],
      ['the token as callbackToken[]', `${q({})}&callbackToken[]=${t}`],
      ['the token under CallbackToken beside a wrong callbackToken (two spellings)', `${q({ callbackToken: 'wrong' })}&CallbackToken=${t}`],
      ['the token under CallbackToken beside itself under callbackToken (two spellings)', `${q({ callbackToken: t })}&CallbackToken=${t}`],
      ['the token with the transactionId under two spellings', `${q({ callbackToken: t })}&TransactionId=${other.transactionId}`],
      ['the token under callbacktoken (no callbackToken)', `${q({})}&callbacktoken=${t}`],
      ['a wrong token with subcode (lower case)', qs({ transactionId: victim.transactionId, passed: 'Y', subcode: '200', callbackToken: other.callbackToken })],
      ['a wrong token with subCode and subcode', `${q({ callbackToken: other.callbackToken })}&subcode=205`],
      ['a wrong token with transactionId twice', `${q({ callbackToken: other.callbackToken })}&transactionId=${other.transactionId}`],
      ['a wrong token with passed twice', `${q({ callbackToken: other.callbackToken })}&passed=N`],
      ['a wrong token under TransactionId/Passed spellings', qs({ TransactionId: victim.transactionId, Passed: 'Y', CallbackToken: other.callbackToken })],
    ];
    for (const [what, query] of attempts) {
      const res = await callback(query);
      const code = res.json<{ code?: string }>().code;
      assert.ok(
        (res.statusCode === 403 && code === 'CALLBACK_REJECTED') || (res.statusCode === 400 && code === 'VALIDATION_ERROR'),
        `${what}: ${res.statusCode} ${res.body}`,
      );
    }
    assert.deepEqual(await snapshot(), before, 'no session changed');
  });

  test('once Alibaba has delivered, a wrong token still gets 403 (not 409: nothing about the outcome leaks) and changes nothing', async () => {
    const s = await started();
    const o = await started();
    await complete(s.transactionId, 'N', '205');
    await settled(s.merchantBizId);
    const before = await rowOf(s.merchantBizId);
    for (const [passed, subCode] of [['Y', '200'], ['N', '205'], ['Y', '205']] as const) {
      for (const callbackToken of [o.callbackToken, s.callbackToken.toUpperCase(), `${s.callbackToken} `]) {
        const res = await callback(qs({ transactionId: s.transactionId, passed, subCode, callbackToken, merchantBizId: s.merchantBizId }));
        assert.equal(res.statusCode, 403, res.body);
      }
    }
    assert.equal(await rowOf(s.merchantBizId), before);
  });

  test('the merchantBizId parameter cannot redirect a valid callback to another session', async () => {
    const victim = await started();
    const caller = await started();
    const victimBefore = await rowOf(victim.merchantBizId);
    const callerBefore = await rowOf(caller.merchantBizId);
    // The caller's own transaction and token (a genuine callback) with the victim's merchantBizId appended.
    const res = await callback(qs({ transactionId: caller.transactionId, passed: 'Y', subCode: '200', callbackToken: caller.callbackToken, merchantBizId: victim.merchantBizId }));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(await rowOf(victim.merchantBizId), victimBefore, 'the named session is untouched');
    assert.notEqual(await rowOf(caller.merchantBizId), callerBefore, 'the callback was applied to its own transaction');
  });
});

// -------------------------------------------------------------------------------------------------

describe('callback rejection timing', () => {
  /*
   * Why a wrong token and an unknown transaction should cost the same (src/sessions/callback.ts):
   * both look the transaction up once by its unique transactionId (one indexed query, a row or
   * none), then callbackTokenMatches() hashes the presented token with SHA-256 and compares it with
   * timingSafeEqual against either the stored hash or NO_SESSION_HASH ('0' x 64, the same length),
   * then log the same warning and throw the same 403. Only the presence of a row differs.
   *
   * With a merchantBizId in the query (Alibaba always sends one: it is part of our CallbackUrl), a
   * miss on transactionId is followed by a second query (findByMerchantBizId) that a hit never
   * makes, so "this transactionId exists" can be told apart by timing. Making both paths run both
   * lookups (Promise.all in findSession) removes the difference.
   */
  const PAIRS = 300;
  const WARMUP = 30;
  let timing: Stack;
  let target: Started;
  before(async () => {
    timing = await extraStack({ LOG_LEVEL: 'warn', RATE_LIMIT_CALLBACK_PER_IP: HIGH });
    target = await started(timing);
  });

  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };

  async function measure(withMerchantBizId: boolean) {
    const times = { hit: [] as number[], miss: [] as number[] };
    const wrongToken = randomBytes(32).toString('base64url');
    for (let i = 0; i < WARMUP + PAIRS; i++) {
      // Interleaved, alternating which goes first.
      for (const kind of i % 2 === 0 ? (['hit', 'miss'] as const) : (['miss', 'hit'] as const)) {
        const transactionId = kind === 'hit' ? target.transactionId : `hksb${randomBytes(14).toString('hex')}`;
        const url = `/kyc/callback?${qs({
          transactionId,
          passed: 'Y',
          subCode: '200',
          callbackToken: wrongToken,
          ...(withMerchantBizId ? { merchantBizId: target.merchantBizId } : {}),
        })}`;
        const t0 = process.hrtime.bigint();
        const res = await timing.app.inject({ method: 'GET', url });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        assert.equal(res.statusCode, 403);
        if (i >= WARMUP) times[kind].push(ms);
      }
    }
    const hit = median(times.hit);
    const miss = median(times.miss);
    const all = median([...times.hit, ...times.miss]);
    const diff = Math.abs(hit - miss);
    const line = `wrong token ${hit.toFixed(3)} ms vs unknown transaction ${miss.toFixed(3)} ms (median of ${PAIRS} each; difference ${diff.toFixed(3)} ms = ${((100 * diff) / all).toFixed(0)}%)`;
    console.log(`timing${withMerchantBizId ? ' (with merchantBizId)' : ''}: ${line}`);
    return { diff, all, line };
  }

  test(`a wrong token and an unknown transactionId are rejected in indistinguishable time (${PAIRS} interleaved pairs)`, async () => {
    const { diff, all, line } = await measure(false);
    assert.ok(diff < 1.5 && diff < 0.25 * all, line);
  });

  test(`the same with merchantBizId in the query, as Alibaba's callbacks carry it (${PAIRS} interleaved pairs)`, async () => {
    const { diff, all, line } = await measure(true);
    assert.ok(diff < 1.5 && diff < 0.25 * all, `${line}: a miss on transactionId makes a second query`);
  });
});

// -------------------------------------------------------------------------------------------------

describe('no secrets in the OpenAPI document or in error responses', () => {
  const DB_PASSWORD = 'db-pass-Wq3-7f1c9e';
  const distinctive = {
    DOCS_ENABLED: '1',
    AUTH_JWT_SECRET: 'docs-jwt-secret-5b8c1e0a9d7f4e2b8c6a',
    ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI5tDocsKeyId7Qx2',
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'docs-access-key-secret-0a1b2c3d4e5f',
    USER_ID_HASH_SECRET: 'docs-user-id-hash-secret-9f8e7d6c5b4a39',
    INTERNAL_API_KEY: 'docs-internal-api-key-1a2b3c4d5e6f7a8b', // the back-office routes are in the document too
    METRICS_TOKEN: 'docs-metrics-token-4e5f6a7b8c9d0e1f2a',
    MERCHANT_WEBHOOK_URL: 'https://hooks.internal.corp.example/kyc',
    MERCHANT_WEBHOOK_SECRET: 'docs-webhook-secret-2b3c4d5e6f7a8b9c',
    KYC_DETAILS_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    DATABASE_URL: `postgresql://postgres:${DB_PASSWORD}@127.0.0.1:5432/test`,
    CLOUDAUTH_ENDPOINT: 'https://cloudauth-intl.internal.corp.example',
    PUBLIC_BASE_URL: 'https://kyc.shop.example',
  };

  test('/docs/json (and /docs/yaml, /docs) hold no configured secret and no internal host', async () => {
    const { app } = await injectOnlyApp(distinctive);
    const json = await app.inject({ method: 'GET', url: '/docs/json' });
    assert.equal(json.statusCode, 200);
    const doc = json.json<{ openapi: string; paths: Record<string, unknown> }>();
    assert.ok(doc.openapi && doc.paths['/kyc/start'], 'the document describes the API');
    assert.ok(Object.keys(doc.paths).some((p) => p.startsWith('/internal/')), 'with the back-office routes');
    const config = testConfig(distinctive);
    const forbidden = [
      ...configSecrets(config),
      config.ALIBABA_CLOUD_ACCESS_KEY_ID,
      DB_PASSWORD,
      config.DATABASE_URL,
      REDIS_URL,
      'internal.corp.example',
      '127.0.0.1',
      'localhost',
      'aliyuncs.com',
      'postgresql://',
      'redis://',
    ];
    assert.ok(forbidden.includes(distinctive.ALIBABA_CLOUD_ACCESS_KEY_SECRET) && forbidden.includes(distinctive.AUTH_JWT_SECRET));
    for (const url of ['/docs/json', '/docs/yaml', '/docs', '/docs/static/index.html']) {
      const res = await app.inject({ method: 'GET', url });
      if (url !== '/docs/static/index.html') assert.equal(res.statusCode, 200, url);
      for (const value of forbidden) assert.ok(!res.body.includes(value), `${url} contains ${value.slice(0, 12)}…`);
    }
  });

  test('/metrics (after traffic) holds no configured secret, token or user id', async () => {
    const s = await started();
    await callback(qs({ transactionId: s.transactionId, passed: 'Y', callbackToken: 'wrong' }));
    const res = await stack.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /# TYPE /);
    for (const value of [...configSecrets(stack.config), s.callbackToken, s.jwt, s.merchantBizId, s.transactionId, stack.simUrl]) {
      assert.ok(!res.body.includes(value), `/metrics contains ${value.slice(0, 12)}…`);
    }
  });

  test('production serves no /docs unless DOCS_ENABLED', async () => {
    // Production requires a METRICS_TOKEN (src/config/production.ts).
    const { app } = await injectOnlyApp({ NODE_ENV: 'production', PUBLIC_BASE_URL: 'https://kyc.shop.example', DOCS_ENABLED: undefined, METRICS_TOKEN: randomBytes(32).toString('base64') });
    for (const url of ['/docs/json', '/docs', '/docs/yaml']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
  });

  test('upstream errors that echo our secrets or request are answered without them', async () => {
    const secrets = [SIM_KEY_SECRET, stack.config.AUTH_JWT_SECRET!, stack.config.USER_ID_HASH_SECRET, ...configSecrets(stack.config)];
    const jwt = await signToken(randomId('user-'));
    const start = () =>
      stack.app.inject({
        method: 'POST',
        url: '/kyc/start',
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        payload: { metaInfo: META_INFO },
      });
    const echo = `MetaInfo ${META_INFO} signed with ${SIM_KEY_SECRET} for ${stack.config.AUTH_JWT_SECRET} at ${stack.simUrl}`;
    for (const fault of [
      { action: 'Initialize', status: 400, code: 'InvalidParameter', message: echo }, // → 400 INVALID_META_INFO
      { action: 'Initialize', status: 400, code: 'InvalidParameter', message: `CallbackUrl invalid: ${echo}` }, // → 502
      { action: 'Initialize', status: 500, code: 'InternalError', message: echo }, // → 502
      { action: 'Initialize', status: 403, code: 'Forbidden.RAM', message: echo }, // → 503
    ]) {
      await fetch(`${stack.simUrl}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...fault, count: 1 }) });
      const res = await start();
      assert.ok(res.statusCode >= 400, `${fault.code}: ${res.statusCode}`);
      const problems = responseProblems('POST', res, [...secrets, echo, 'zimVer', stack.simUrl]).filter((p) => !p.startsWith('status 5'));
      assert.deepEqual(problems, [], `${fault.code} → ${res.statusCode} ${res.body}`);
      assert.deepEqual(Object.keys(res.json<object>()).sort(), ['code', 'message']);
    }
  });

  test('a wrong AccessKey secret (Alibaba answers with its string-to-sign) is answered without the secret or the signature details', async () => {
    const wrongSecret = 'wrong-access-key-secret-3c4d5e6f7a';
    const s = await extraStack({ ALIBABA_CLOUD_ACCESS_KEY_SECRET: wrongSecret });
    const res = await s.app.inject({
      method: 'POST',
      url: '/kyc/start',
      headers: { authorization: `Bearer ${await signToken(randomId('user-'))}`, 'content-type': 'application/json' },
      payload: { metaInfo: META_INFO },
    });
    assert.equal(res.statusCode, 503, res.body);
    const problems = responseProblems('POST', res, [wrongSecret, SIM_KEY_SECRET, SIM_KEY_ID, 'string to sign', 'Signature', 'ACS3-HMAC', s.simUrl]);
    assert.deepEqual(problems.filter((p) => !p.startsWith('status 5')), [], res.body);
    assert.ok(!s.logs.text.includes(wrongSecret), 'the AccessKey secret is not logged either');
  });

  test('a database failure is a bare 500 INTERNAL_ERROR: no connection string, password, table or driver message; no password in the log', async () => {
    const password = 'db-secret-pw-51c0ffee';
    // A schema without the tables: every query of the sessions fails (the job queue, in its own schema, still starts).
    const { app, logs } = await injectOnlyApp({ DATABASE_URL: `postgresql://postgres:${password}@127.0.0.1:5432/test?schema=kyc_no_such_schema` });
    const jwt = await signToken(randomId('user-'));
    for (const req of [
      { method: 'GET', url: '/kyc/sessions/abc', headers: { authorization: `Bearer ${jwt}` } },
      // A token of this service's making: a forged one is refused before any query.
      { method: 'GET', url: `/kyc/callback?${qs({ transactionId: 'hksb0', passed: 'Y', callbackToken: app.callbackTokens.issue().token })}` },
    ] as const) {
      const res = await app.inject(req);
      assert.equal(res.statusCode, 500, res.body);
      assert.deepEqual(res.json(), { code: 'INTERNAL_ERROR', message: 'Internal server error' });
      assert.deepEqual(responseProblems(req.method, res, [password, 'kyc_no_such_schema', 'kyc_session', 'postgresql://', 'Prisma']).filter((p) => p !== 'status 500'), []);
    }
    assert.ok(!logs.text.includes(password), 'the database password is not logged');
  });
});
