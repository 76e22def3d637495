import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT, importPKCS8 } from 'jose';
import { buildApp } from '../src/app.js';
import { demoRoutes } from '../src/simulator/demo.js';
import { clientFor } from './helpers/client.js';
import { signToken, TEST_JWT_SECRET } from './helpers/jwt.js';
import { dropSchemas, freshDatabaseUrl, LogCapture, startStack, testConfig, type Stack } from './helpers/stack.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rsaPrivatePem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

let hsStack: Stack;
let rsStack: Stack;
before(async () => {
  hsStack = await startStack();
  rsStack = await startStack({ env: { AUTH_JWT_SECRET: undefined, AUTH_JWT_PUBLIC_KEY: rsaPublicPem, AUTH_JWT_PUBLIC_KEY_ALG: 'RS256', AUTH_JWT_ISSUER: 'https://auth.shop.example' } });
});
after(async () => {
  await hsStack.close();
  await rsStack.close();
});

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

describe('caller authentication (HS256)', () => {
  const cases: Array<[string, () => Promise<string | undefined>, string]> = [
    ['no Authorization header', async () => undefined, 'UNAUTHENTICATED'],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u', exp: now() + 60 })}.`, 'INVALID_TOKEN'],
    ['wrong secret', () => signToken('u', { secret: 'another-secret-0123456789-abcdefghijk' }), 'INVALID_TOKEN'],
    ['expired', () => signToken('u', { expiresIn: now() - 60 }), 'INVALID_TOKEN'],
    ['no exp', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u').sign(new TextEncoder().encode(TEST_JWT_SECRET)), 'INVALID_TOKEN'],
    ['no sub', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(TEST_JWT_SECRET)), 'INVALID_TOKEN'],
    ['not yet valid', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setNotBefore(now() + 600).setExpirationTime('20m').sign(new TextEncoder().encode(TEST_JWT_SECRET)), 'INVALID_TOKEN'],
    ['HS512 with the right secret (algorithm pinned)', () => signToken('u', { alg: 'HS512' }), 'INVALID_TOKEN'],
    ['garbage', async () => 'abc.def.ghi', 'INVALID_TOKEN'],
    ['tampered payload', async () => {
      const [h, , s] = (await signToken('alice')).split('.');
      return `${h}.${b64({ sub: 'mallory', exp: now() + 60 })}.${s}`;
    }, 'INVALID_TOKEN'],
  ];
  for (const [name, token, code] of cases) {
    test(`401 ${code}: ${name}`, async () => {
      const api = clientFor(hsStack);
      const res = await api.start(await token());
      assert.equal(res.status, 401);
      assert.equal(res.body.code, code);
      assert.match(String(res.headers.get('www-authenticate')), /^Bearer/);
      assert.equal((await api.session(await token(), 'abc')).status, 401);
    });
  }

  test('a Basic scheme is not a bearer token', async () => {
    const res = await fetch(`${hsStack.appUrl}/kyc/sessions/abc`, { headers: { authorization: `Basic ${await signToken('u')}` } });
    assert.equal(res.status, 401);
  });

  test('a valid token passes', async () => {
    const res = await clientFor(hsStack).start(await signToken('u'));
    assert.equal(res.status, 201);
  });
});

describe('verified tokens are remembered, never beyond their expiry', () => {
  test('a token accepted on one read is refused once its exp (and the 5-s clock tolerance) has passed', async () => {
    const api = clientFor(hsStack);
    const token = await signToken('forgetful', { expiresIn: now() + 1 });
    assert.equal((await api.session(token, 'abc')).status, 404, 'accepted (no such session)');
    assert.equal((await api.session(token, 'abc')).status, 404, 'accepted again');
    await new Promise((r) => setTimeout(r, 7000));
    const late = await api.session(token, 'abc');
    assert.equal(late.status, 401);
    assert.equal(late.body.code, 'INVALID_TOKEN');
  });

  test('a refused token stays refused, and the same caller with a valid token is served', async () => {
    const api = clientFor(hsStack);
    const bad = await signToken('someone', { secret: 'another-secret-0123456789-abcdefghijk' });
    for (let i = 0; i < 3; i++) assert.equal((await api.session(bad, 'abc')).status, 401);
    assert.equal((await api.session(await signToken('someone'), 'abc')).status, 404);
  });
});

describe('caller authentication (RS256)', () => {
  const rs256 = async (claims: { iss?: string; sub?: string }) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject(claims.sub ?? 'u')
      .setIssuer(claims.iss ?? 'https://auth.shop.example')
      .setExpirationTime('5m')
      .sign(await importPKCS8(rsaPrivatePem, 'RS256'));

  test('a token signed with the private key passes', async () => {
    assert.equal((await clientFor(rsStack).start(await rs256({}))).status, 201);
  });

  test('the wrong issuer → 401', async () => {
    assert.equal((await clientFor(rsStack).start(await rs256({ iss: 'https://evil.example' }))).status, 401);
  });

  test('algorithm confusion: HS256 signed with the public key as secret → 401', async () => {
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setIssuer('https://auth.shop.example')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(rsaPublicPem));
    const res = await clientFor(rsStack).start(forged);
    assert.equal(res.status, 401);
    assert.equal(res.body.code, 'INVALID_TOKEN');
  });
});

describe('token lifetime and demo tokens', () => {
  const apps: Array<{ app: FastifyInstance; config: ReturnType<typeof testConfig> }> = [];
  after(async () => {
    for (const { app, config } of apps) {
      await app.close();
      await dropSchemas(config);
    }
  });

  /** The service answering through inject() only, in the given environment, on fresh schemas. */
  const serviceApp = async (env: Record<string, string | undefined>) => {
    const config = testConfig({ DATABASE_URL: await freshDatabaseUrl(), JOBS_WORKERS: 'false', CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9', ...env });
    const app = await buildApp(config, { logStream: new LogCapture() });
    apps.push({ app, config });
    await app.ready();
    return app;
  };
  /** 404 SESSION_NOT_FOUND: the token got past authentication; 401 INVALID_TOKEN and the reason: it did not. */
  const authOutcome = async (app: FastifyInstance, token: string) => {
    const res = await app.inject({ method: 'GET', url: '/kyc/sessions/nosuchsession', headers: { authorization: `Bearer ${token}` } });
    const body = res.json<{ code: string; message: string }>();
    return `${res.statusCode} ${body.code}${res.statusCode === 401 ? `: ${body.message}` : ''}`;
  };
  const hs256 = (exp: number, claims: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime(exp).sign(new TextEncoder().encode(TEST_JWT_SECRET));

  test('a token expiring further ahead than AUTH_JWT_MAX_AGE_S (default 3600 s) is refused, with the reason', async () => {
    const api = clientFor(hsStack);
    const year5000 = await hs256(Math.floor(Date.UTC(5000, 0, 1) / 1000));
    for (const token of [year5000, await hs256(now() + 3 * 3600)]) {
      const res = await api.session(token, 'abc');
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'INVALID_TOKEN');
      assert.match(String(res.body.message), /expires too far ahead \(more than 3600 s from now\)/);
    }
    assert.equal((await api.session(await hs256(now() + 3600), 'abc')).status, 404, 'a token of exactly the maximum passes');
  });

  test('the bound holds in development too, at the configured AUTH_JWT_MAX_AGE_S', async () => {
    const app = await serviceApp({ NODE_ENV: 'development', AUTH_JWT_MAX_AGE_S: '600' });
    assert.match(await authOutcome(app, await hs256(now() + 20 * 60)), /^401 INVALID_TOKEN: .*more than 600 s from now/);
    assert.equal(await authOutcome(app, await hs256(now() + 5 * 60)), '404 SESSION_NOT_FOUND');
  });

  test("the simulator's demo tokens: accepted in development, refused in production even with the same secret", async () => {
    // The demo page's own signer, keyed with the service's secret (as the compose dev stack does).
    const demo = Fastify();
    await demo.register(demoRoutes, { jwtSecret: TEST_JWT_SECRET, serviceUrl: 'http://127.0.0.1:3000' });
    const minted = await demo.inject({ method: 'POST', url: '/demo/token', payload: { user: 'alice' } });
    await demo.close();
    const { token } = minted.json<{ token: string }>();
    assert.equal(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).demo, true, 'the mark is explicit');

    const development = await serviceApp({ NODE_ENV: 'development' });
    assert.equal(await authOutcome(development, token), '404 SESSION_NOT_FOUND');

    const production = await serviceApp({ NODE_ENV: 'production', METRICS_TOKEN: randomBytes(32).toString('base64') });
    assert.equal(await authOutcome(production, token), '401 INVALID_TOKEN: The bearer token was rejected: demo tokens are refused in production');
    // The same token without the mark passes: only the mark is refused.
    assert.equal(await authOutcome(production, await hs256(now() + 600)), '404 SESSION_NOT_FOUND');
    assert.match(await authOutcome(production, await hs256(now() + 600, { demo: true })), /^401 INVALID_TOKEN: .*demo tokens/);
  });
});
