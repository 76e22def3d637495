import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT, importPKCS8 } from 'jose';
import { clientFor } from './helpers/client.js';
import { signToken, TEST_JWT_SECRET } from './helpers/jwt.js';
import { startStack, type Stack } from './helpers/stack.js';

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
