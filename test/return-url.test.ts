/**
 * returnUrl: only forms every URL parser reads alike, on an allowed origin, forwarded to Alibaba
 * as WHATWG's serialization. The domain function, then the route end to end (what reached the
 * simulator).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { HttpError } from '../src/errors/http-error.js';
import { allowedReturnUrl } from '../src/sessions/return-url.js';
import { signToken } from './helpers/jwt.js';
import { META_INFO, randomId, withStack } from './helpers/stack.js';
import { useStack } from './helpers/use-stack.js';

const ORIGINS = ['https://shop.example', 'http://shop.example'];
const inTest = { NODE_ENV: 'test' as const, KYC_RETURN_URL_ORIGINS: ORIGINS };
const inProduction = { NODE_ENV: 'production' as const, KYC_RETURN_URL_ORIGINS: ORIGINS };

/** Each refused form, with why: every one of them is on an allowed origin to at least one parser. */
const REFUSED: Array<[string, string]> = [
  ['https://user@shop.example/done', 'user info'],
  ['https://:pass@shop.example/done', 'a password alone'],
  ['https://user:pass@shop.example/done', 'user and password'],
  ['https://@shop.example/done', 'an empty user info (WHATWG drops it)'],
  ['https://:@shop.example/done', 'an empty user and password'],
  ['https://shop.example@evil.example/', 'user info that looks like the host'],
  ['https://shop.example\\@evil.example', 'WHATWG: host shop.example; Java, Python: host evil.example'],
  ['https://shop.example\\evil.example', 'a backslash after the host'],
  ['https://shop.example/a\\b', 'a backslash in the path'],
  ['https://evil.example%5C@shop.example/', 'an escaped backslash in user info'],
  ['https://shop.example%5C@evil.example', 'an escaped backslash, then user info'],
  ['https://shop.example%5c.evil.example/', 'an escaped backslash in the host (lower case)'],
  ['https://sh%6Fp.example/', 'an escaped host WHATWG decodes to shop.example and others do not'],
  ['https://shop.example:%34%34%33/', 'an escaped port'],
  ['https://shop.example%5C%40evil.example/', 'a parser that decodes first reads shop.example\\@evil.example'],
  ['https://shop.exa\tmple/', 'a tab in the host (WHATWG drops it)'],
  ['https://shop.example /', 'a space in the host'],
  ['https://\uFEFFshop.example/done', 'a zero-width no-break space in the host (IDNA mapping erases it: WHATWG reads shop.example)'],
  ['https://shop\u00ADexample/done', 'a soft hyphen in the host (erased by IDNA mapping too)'],
  ['https://ｓｈｏｐ.example/done', 'full-width letters (IDNA maps them to shop)'],
  ['https://shop.example\u0000/', 'NUL in the host'],
  ['https:shop.example/done', 'no // (a host only to WHATWG)'],
  ['https:/shop.example/done', 'one slash'],
  ['https:\\\\shop.example/done', 'backslashes for slashes'],
  ['https://evil.example/done', 'another origin'],
  ['https://shop.example.evil.example/', 'a look-alike origin'],
  ['https://shop.example:8443/', 'another port'],
];

function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err;
  }
  assert.fail('not refused');
}

describe('allowedReturnUrl', () => {
  for (const [raw, why] of REFUSED) {
    test(`refuses ${raw} (${why})`, () => {
      const err = refusal(() => allowedReturnUrl(inTest, raw));
      assert.equal(err.statusCode, 400);
      assert.equal(err.code, 'RETURN_URL_NOT_ALLOWED');
    });
  }

  test('returns the normalized href, not the text it was given', () => {
    assert.equal(allowedReturnUrl(inTest, 'HTTPS://Shop.Example:443/kyc/done?x=1&y=a b#top'), 'https://shop.example/kyc/done?x=1&y=a%20b#top');
    assert.equal(allowedReturnUrl(inTest, 'https://shop.example'), 'https://shop.example/');
    // '@' after the authority is path, query or fragment to every parser.
    assert.equal(allowedReturnUrl(inTest, 'https://shop.example/@evil.example?u=a@b#@c'), 'https://shop.example/@evil.example?u=a@b#@c');
    // Escapes in the path are kept as they are.
    assert.equal(allowedReturnUrl(inTest, 'https://shop.example/a%5Cb'), 'https://shop.example/a%5Cb');
  });

  test('plain http only outside production', () => {
    assert.equal(allowedReturnUrl(inTest, 'http://shop.example/done'), 'http://shop.example/done');
    const err = refusal(() => allowedReturnUrl(inProduction, 'http://shop.example/done'));
    assert.equal(err.code, 'RETURN_URL_NOT_ALLOWED');
    assert.match(err.message, /https/);
    assert.equal(allowedReturnUrl(inProduction, 'https://shop.example/done'), 'https://shop.example/done');
  });
});

describe('POST /kyc/start with a returnUrl', () => {
  const ctx = useStack({ env: { KYC_RETURN_URL_ORIGINS: ORIGINS.join(',') } });
  const start = async (returnUrl: string) => ctx.api.start(await signToken(randomId('u')), { metaInfo: META_INFO, returnUrl });
  const initializeCalls = async () => (await ctx.api.sim.calls()).body.filter((c) => c.action === 'Initialize').length;

  test('each refused form → 400 RETURN_URL_NOT_ALLOWED, before anything is stored or sent to Alibaba', async () => {
    const calls = await initializeCalls();
    const rows = await ctx.stack.app.prisma.kycSession.count();
    for (const [raw, why] of REFUSED) {
      const res = await start(raw);
      assert.deepEqual([res.status, res.body.code], [400, 'RETURN_URL_NOT_ALLOWED'], `${raw} (${why}): ${JSON.stringify(res.body)}`);
    }
    assert.equal(await initializeCalls(), calls);
    assert.equal(await ctx.stack.app.prisma.kycSession.count(), rows);
  });

  test('what is not an http(s) URL at all → 400 VALIDATION_ERROR (the schema)', async () => {
    for (const raw of ['shop.example/done', '//shop.example/done', 'javascript:alert(1)', 'data:text/html,x', ' https://shop.example/']) {
      const res = await start(raw);
      assert.deepEqual([res.status, res.body.code], [400, 'VALIDATION_ERROR'], raw);
    }
  });

  test('an allowed one reaches Alibaba as its href', async () => {
    const res = await start('HTTPS://Shop.Example:443/kyc/done?order=1&note=a b#top');
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const tx = await ctx.api.sim.transaction(String(res.body.transactionId));
    assert.equal(tx.body.params.ReturnUrl, 'https://shop.example/kyc/done?order=1&note=a%20b#top');
    // A newline in the path (dropped by WHATWG, kept by others) is not forwarded either.
    const newline = await start('https://shop.example/d\none');
    assert.equal(newline.status, 201, JSON.stringify(newline.body));
    assert.equal((await ctx.api.sim.transaction(String(newline.body.transactionId))).body.params.ReturnUrl, 'https://shop.example/done');
  });

  test('NODE_ENV=production: an http returnUrl → 400; https → 201', async () => {
    // A production configuration refuses http return-URL origins at start (src/config/production.ts), so
    // here the http one is refused twice over; the unit tests above cover an http origin on the list.
    await withStack(
      { env: { NODE_ENV: 'production', KYC_RETURN_URL_ORIGINS: 'https://shop.example', METRICS_TOKEN: randomBytes(32).toString('base64'), LOG_LEVEL: 'warn' } },
      async (prod) => {
        const startOn = async (returnUrl: string) =>
          (await fetch(`${prod.appUrl}/kyc/start`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${await signToken(randomId('u'))}` },
            body: JSON.stringify({ metaInfo: META_INFO, returnUrl }),
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> })));
        const plain = await startOn('http://shop.example/done');
        assert.deepEqual([plain.status, plain.body.code], [400, 'RETURN_URL_NOT_ALLOWED']);
        const secure = await startOn('https://shop.example/done');
        assert.equal(secure.status, 201, JSON.stringify(secure.body));
        const tx = (await (await fetch(`${prod.simUrl}/__sim/transactions/${String(secure.body.transactionId)}`)).json()) as { params: Record<string, string> };
        assert.equal(tx.params.ReturnUrl, 'https://shop.example/done');
      },
    );
  });
});
