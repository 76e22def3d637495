import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const ctx = useStack({
    env: { TRUST_PROXY: 'true', RATE_LIMIT_PER_USER: '3', RATE_LIMIT_PER_IP: '5', RATE_LIMIT_CALLBACK_PER_IP: '4' },
  });

// Client addresses come from X-Forwarded-For (TRUST_PROXY): no traffic goes to these addresses.
const from = (ip: string) => ({ 'x-forwarded-for': ip });
const initializeCalls = async () => (await ctx.api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;

describe('inbound limits', () => {
  test('per user: the 4th start in a minute → 429 RATE_LIMITED with the standard headers; other users go on', async () => {
    const alice = await signToken(randomId('alice'));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await ctx.api.start(alice, { metaInfo: META_INFO }, from('192.0.2.10'))).status);
    assert.deepEqual(statuses, [201, 201, 201]);
    const calls = await initializeCalls();
    const limited = await ctx.api.start(alice, { metaInfo: META_INFO }, from('192.0.2.11'));
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RATE_LIMITED');
    assert.equal(limited.headers.get('x-ratelimit-limit'), '3');
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter}`);
    assert.equal(await initializeCalls(), calls, 'a limited request spends no upstream budget');
    const bob = await ctx.api.start(await signToken(randomId('bob')), { metaInfo: META_INFO }, from('192.0.2.12'));
    assert.equal(bob.status, 201);
  });

  test('per IP: the 6th start from one address → 429, whoever the users are; another address goes on', async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO }, from('198.51.100.7'))).status);
    }
    assert.deepEqual(statuses, [201, 201, 201, 201, 201, 429]);
    // Failed authentications count in a limit of their own (test/limits.test.ts), not in the address's starts.
    assert.equal((await ctx.api.start(undefined, { metaInfo: META_INFO }, from('198.51.100.7'))).status, 401);
    assert.equal((await ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO }, from('198.51.100.8'))).status, 201);
  });

  test('callbacks with a token of this service are limited per IP, separately from starts; forged ones are refused before', async () => {
    // A token this service made (for no stored transaction): it passes the MAC check, reaches the limit, then 403.
    const q = { transactionId: 'hksbnope', passed: 'Y', callbackToken: ctx.stack.app.callbackTokens.issue().token };
    const call = (ip: string, query: Record<string, string> = q) =>
      fetch(`${ctx.stack.appUrl}/kyc/callback?${new URLSearchParams(query)}`, { headers: from(ip) });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await call('203.0.113.5')).status);
    assert.deepEqual(statuses, [403, 403, 403, 403, 429]);
    assert.equal((await call('203.0.113.6')).status, 403);
    // A forged token costs an HMAC and is refused as such, without spending the address's allowance.
    assert.equal((await call('203.0.113.7', { ...q, callbackToken: 'x' })).status, 403);
    for (let i = 0; i < 4; i++) assert.equal((await call('203.0.113.7')).status, 403);
    assert.equal((await call('203.0.113.7')).status, 429);
    // The start limit of that address is untouched.
    assert.equal((await ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO }, from('203.0.113.5'))).status, 201);
  });
});
