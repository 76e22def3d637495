/**
 * Limits an attacker cannot turn against users: failed authentications in a bucket of their own,
 * status reads per user, the back office per address with wrong keys limited more tightly, sane
 * request ids only, upstream messages logged without URLs or query strings.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId, testConfig } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const INTERNAL_API_KEY = 'limits-internal-api-key-0123456789-abcdef';
const LIMITS = { startPerIp: 5, authFailures: 4, statusPerUser: 6, internalPerIp: 8, keyFailures: 3 };

const ctx = useStack({
  env: {
    TRUST_PROXY: 'true',
    INTERNAL_API_KEY,
    RATE_LIMIT_PER_IP: String(LIMITS.startPerIp),
    RATE_LIMIT_AUTH_FAILURES_PER_IP: String(LIMITS.authFailures),
    RATE_LIMIT_STATUS_PER_USER: String(LIMITS.statusPerUser),
    RATE_LIMIT_INTERNAL_PER_IP: String(LIMITS.internalPerIp),
    RATE_LIMIT_INTERNAL_KEY_FAILURES_PER_IP: String(LIMITS.keyFailures),
  },
});

// Client addresses come from X-Forwarded-For (TRUST_PROXY): no traffic goes to these addresses.
// Each test uses addresses of its own, so the tests' counts do not meet.
const from = (ip: string) => ({ 'x-forwarded-for': ip });
const initializeCalls = async () => (await ctx.api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;
const sessionRead = (token: string | undefined, merchantBizId: string, ip: string, headers: Record<string, string> = {}) =>
  fetch(`${ctx.stack.appUrl}/kyc/sessions/${merchantBizId}`, {
    headers: { ...from(ip), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
const internal = (ip: string, key: string | undefined, sessionId = '00000000-0000-4000-8000-000000000000') =>
  fetch(`${ctx.stack.appUrl}/internal/kyc/sessions/${sessionId}`, { headers: { ...from(ip), ...(key === undefined ? {} : { 'x-api-key': key }) } });

/** Bad caller credentials of every kind: none, garbage, another key's signature, expired. */
async function badAuthorizations(): Promise<Array<string | undefined>> {
  const sub = randomId('mallory');
  return [
    undefined,
    'Bearer not-a-jwt',
    `Bearer ${await signToken(sub, { secret: 'another-secret-0123456789-abcdefghijkl' })}`,
    `Bearer ${await signToken(sub, { expiresIn: Math.floor(Date.now() / 1000) - 60 })}`,
  ];
}

async function assertRateLimited(res: Response, what: string) {
  const body = (await res.json()) as { code?: string };
  assert.equal(res.status, 429, `${what}: ${JSON.stringify(body)}`);
  assert.equal(body.code, 'RATE_LIMITED', what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `${what}: retry-after ${retryAfter}`);
}

describe('failed authentication counts in its own per-address bucket', () => {
  test('a flood of bad tokens gets its own 429s; valid callers behind the same address are served, with their whole start allowance', async () => {
    const nat = '192.0.2.50';
    const bad = await badAuthorizations();
    const start = (authorization: string | undefined, ip = nat) =>
      fetch(`${ctx.stack.appUrl}/kyc/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...from(ip), ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ metaInfo: META_INFO }),
      });
    const flood: number[] = [];
    for (let i = 0; i < 30; i++) flood.push((await start(bad[i % bad.length])).status);
    assert.deepEqual(flood.slice(0, LIMITS.authFailures), Array(LIMITS.authFailures).fill(401), flood.join(','));
    assert.deepEqual(new Set(flood.slice(LIMITS.authFailures)), new Set([429]), flood.join(','));
    await assertRateLimited(await start(bad[1]), 'a bad token after the flood');

    // Valid callers behind the same address: every one of the address's starts is still theirs.
    const calls = await initializeCalls();
    const valid: number[] = [];
    for (let i = 0; i < LIMITS.startPerIp; i++) valid.push((await start(`Bearer ${await signToken(randomId('nat-user'))}`)).status);
    assert.deepEqual(valid, Array(LIMITS.startPerIp).fill(201));
    assert.equal(await initializeCalls(), calls + LIMITS.startPerIp);
    // The address's start limit counts those starts only, as before.
    await assertRateLimited(await start(`Bearer ${await signToken(randomId('nat-user'))}`), 'a valid start over the address limit');

    // The failures were this address's: another address's bad token is still answered 401.
    assert.equal((await start(bad[1], '192.0.2.51')).status, 401);
  });

  test('status reads: the same failure bucket; a valid reader from the flooded address is served', async () => {
    const nat = '192.0.2.60';
    const bad = await badAuthorizations();
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.authFailures + 3; i++) {
      const authorization = bad[i % bad.length];
      const res = await sessionRead(undefined, randomId('s'), nat, authorization ? { authorization } : {});
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [...Array(LIMITS.authFailures).fill(401), 429, 429, 429]);
    // Failures on one route and the other share the bucket: a start with a bad token from here is refused too.
    const badStart = await ctx.api.start('not-a-jwt', { metaInfo: META_INFO }, from(nat));
    assert.equal(badStart.status, 429);
    assert.equal(badStart.body.code, 'RATE_LIMITED');

    const token = await signToken(randomId('reader'));
    const started = await ctx.api.start(token, { metaInfo: META_INFO }, from('192.0.2.61'));
    assert.equal(started.status, 201);
    const read = await sessionRead(token, String(started.body.merchantBizId), nat);
    assert.equal(read.status, 200);
    assert.equal(((await read.json()) as { status?: string }).status, 'pending');
  });

  test('IPv6 addresses count by their /64: rotating within it does not reset the count', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= LIMITS.authFailures + 1; i++) statuses.push((await sessionRead('x.y.z', 'abc', `2001:db8:60::${i.toString(16)}`)).status);
    assert.deepEqual(statuses, [...Array(LIMITS.authFailures).fill(401), 429]);
    assert.equal((await sessionRead('x.y.z', 'abc', '2001:db8:60:1::1')).status, 401, 'another /64 has its own count');
  });
});

describe('status reads are limited per user', () => {
  test(`the ${LIMITS.statusPerUser + 1}th read in a minute → 429, from whichever address; other users go on`, async () => {
    const alice = await signToken(randomId('alice'));
    const started = await ctx.api.start(alice, { metaInfo: META_INFO }, from('192.0.2.70'));
    assert.equal(started.status, 201);
    const merchantBizId = String(started.body.merchantBizId);
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.statusPerUser; i++) statuses.push((await sessionRead(alice, merchantBizId, `192.0.2.${71 + (i % 3)}`)).status);
    assert.deepEqual(statuses, Array(LIMITS.statusPerUser).fill(200));
    const limited = await sessionRead(alice, merchantBizId, '192.0.2.74');
    assert.equal(limited.headers.get('x-ratelimit-limit'), String(LIMITS.statusPerUser));
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    await assertRateLimited(limited, 'over the per-user limit');
    // Reads of unknown sessions count too (each is a database read).
    const bob = await signToken(randomId('bob'));
    const bobs: number[] = [];
    for (let i = 0; i <= LIMITS.statusPerUser; i++) bobs.push((await sessionRead(bob, randomId('none'), '192.0.2.74')).status);
    assert.deepEqual(bobs, [...Array(LIMITS.statusPerUser).fill(404), 429]);
    // A third user from the same address is served.
    assert.equal((await sessionRead(await signToken(randomId('carol')), merchantBizId, '192.0.2.74')).status, 404);
  });

  test('the default leaves the demo page\'s polling (once a second) well inside the limit', () => {
    const defaults = testConfig({ RATE_LIMIT_STATUS_PER_USER: undefined });
    assert.ok(defaults.RATE_LIMIT_STATUS_PER_USER >= 4 * 60, `RATE_LIMIT_STATUS_PER_USER ${defaults.RATE_LIMIT_STATUS_PER_USER}`);
  });
});

describe('/internal/* is limited per address, wrong keys more tightly', () => {
  test(`the ${LIMITS.internalPerIp + 1}th back-office request from an address in a minute → 429; another address goes on`, async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.internalPerIp; i++) statuses.push((await internal('198.51.100.20', INTERNAL_API_KEY)).status);
    assert.deepEqual(statuses, Array(LIMITS.internalPerIp).fill(404));
    await assertRateLimited(await internal('198.51.100.20', INTERNAL_API_KEY), 'over the per-address limit');
    assert.equal((await internal('198.51.100.21', INTERNAL_API_KEY)).status, 404);
  });

  test(`after ${LIMITS.keyFailures} wrong keys an address is refused, even with the right key, before it is compared; others are not`, async () => {
    const wrong = [INTERNAL_API_KEY.slice(0, -1), `${INTERNAL_API_KEY}x`, 'guess'];
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.keyFailures; i++) statuses.push((await internal('198.51.100.30', wrong[i % wrong.length])).status);
    assert.deepEqual(statuses, Array(LIMITS.keyFailures).fill(401));
    // Tighter than the address's request limit (8): the 4th wrong key is refused…
    await assertRateLimited(await internal('198.51.100.30', 'guess-again'), 'a wrong key over the limit');
    // …and so is the right one: a guess beyond the limit is never compared, so it cannot succeed either.
    await assertRateLimited(await internal('198.51.100.30', INTERNAL_API_KEY), 'the right key from an address out of wrong keys');
    assert.equal((await internal('198.51.100.31', INTERNAL_API_KEY)).status, 404);
  });

  test('a missing key is no guess: it is not counted as a wrong key', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.keyFailures + 2; i++) statuses.push((await internal('198.51.100.40', undefined)).status);
    assert.deepEqual(statuses, Array(LIMITS.keyFailures + 2).fill(401));
    assert.equal((await internal('198.51.100.40', INTERNAL_API_KEY)).status, 404);
  });

  test('wrong API keys do not touch the caller-JWT failure bucket, nor the reverse', async () => {
    const ip = '198.51.100.50';
    for (let i = 0; i < LIMITS.keyFailures; i++) assert.equal((await internal(ip, 'guess')).status, 401);
    assert.equal((await sessionRead('x.y.z', 'abc', ip)).status, 401);
    for (let i = 0; i < LIMITS.authFailures; i++) await sessionRead('x.y.z', 'abc', '198.51.100.51');
    assert.equal((await internal('198.51.100.51', 'guess')).status, 401);
  });
});

describe('request ids', () => {
  const echoed = async (id: string, url = '/healthz') =>
    (await fetch(`${ctx.stack.appUrl}${url}`, { headers: { 'x-request-id': id } })).headers.get('x-request-id');
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  test('a caller\'s x-request-id of 1-64 letters, digits, ".", "_" or "-" is used and echoed', async () => {
    for (const id of ['a', 'A.b_c-9', '4bf92f3577b34da6a3ce929d0e0e4736', 'x'.repeat(64), '0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331']) {
      assert.equal(await echoed(id), id);
    }
  });

  test('any other is replaced by a generated one, at Fastify and at the callback gate', async () => {
    for (const id of ['x'.repeat(65), 'a:b', 'a/b', 'a=b', 'a+b', 'a b', 'a\tb', '../etc', 'ünï', '<x>', '${x}', 'a,b', '%41']) {
      const out = await echoed(id);
      assert.match(out ?? '', UUID, `${JSON.stringify(id)} → ${out}`);
    }
    // A forged callback is answered by the gate in front of Fastify, with the same rule.
    const forged = '/kyc/callback?transactionId=hksbnone&passed=Y&callbackToken=AAAA';
    assert.match((await echoed('a:b', forged)) ?? '', UUID);
    assert.equal(await echoed('gate-ok.1', forged), 'gate-ok.1');
  });
});

describe('upstream messages in the log', () => {
  test('URLs, query strings and name=value pairs are removed; the rest of the message stays', async () => {
    const message = 'Specified parameter ReturnUrl is not valid: https://x.example/a?b=c see //cdn.example/p and ?token=abc then MerchantUserId=u123&CallbackToken=tok456 done';
    await ctx.api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message });
    const res = await ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO }, from('203.0.113.80'));
    assert.equal(res.status, 502);
    assert.equal(res.body.code, 'UPSTREAM_REJECTED');
    const reqId = res.headers.get('x-request-id');
    await new Promise((r) => setTimeout(r, 20));
    const lines = ctx.stack.logs.lines.filter((l) => l.includes(`"${reqId}"`) && l.includes('upstreamMessage'));
    assert.ok(lines.length > 0, 'the upstream message is logged');
    for (const line of lines) {
      for (const leaked of ['x.example', 'b=c', 'cdn.example', 'token=abc', 'u123', 'tok456']) {
        assert.ok(!line.includes(leaked), `logged ${leaked}: ${line}`);
      }
      const logged = /"upstreamMessage":"([^"]*)"/.exec(line)?.[1] ?? '';
      assert.equal(
        logged,
        'Specified parameter ReturnUrl is not valid: [removed] see [removed] and [removed] then MerchantUserId=[removed]&CallbackToken=[removed] done',
      );
    }
  });

  test('a MetaInfo refusal is still recognized once its value is removed (400 INVALID_META_INFO)', async () => {
    await ctx.api.sim.fault({ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'MetaInfo={"ua":"x"}&b=c is not valid' });
    const res = await ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO }, from('203.0.113.81'));
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'INVALID_META_INFO');
    assert.ok(!ctx.stack.logs.text.includes('{\\"ua\\":\\"x\\"}'), 'the MetaInfo value is not logged');
  });
});
