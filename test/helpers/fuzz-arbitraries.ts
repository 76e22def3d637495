/**
 * fast-check generators for test/fuzz.test.ts. Generated values stay small and printable (a
 * counterexample is printed on failure), so big inputs are described (`Big`, sizes, depths) and
 * built only when the request is sent.
 */
import fc from 'fast-check';
import { DOC_TYPES } from '../../src/config/schema.js';
import { META_INFO } from './stack.js';

// ---------------------------------------------------------------------------------------------
// Building blocks

/** A long string described by its unit and length: `unit` repeated to `length` characters. */
export interface Big {
  prefix?: string;
  unit: string;
  length: number;
}
export type Str = string | Big;

export function materialize(s: Str): string {
  if (typeof s === 'string') return s;
  return (s.prefix ?? '') + s.unit.repeat(Math.ceil(s.length / s.unit.length)).slice(0, s.length);
}

const big = (units: string[], min: number, max: number, prefix?: string): fc.Arbitrary<Big> =>
  fc.record({ unit: fc.constantFrom(...units), length: fc.integer({ min, max }) }).map((b) => (prefix ? { prefix, ...b } : b));

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** Characters that tend to break parsers, encoders, databases and log pipelines. */
const nastyChar = fc.oneof(
  { weight: 2, arbitrary: fc.constant('\u0000') },
  { weight: 2, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x20 }).map((c) => String.fromCharCode(c === 0x20 ? 0x7f : c)) },
  { weight: 3, arbitrary: fc.constantFrom(
    '\u0000', '\u0001', '\u001f', '\u007f', '\n', '\r\n', '\t', '\u2028', '\u2029', '\uFEFF', '\u202E', '\uFFFD', '\uFFFF',
    '\u{10FFFF}', '😀', '👩‍👩‍👧', 'é', 'e\u0301', 'İ', 'ß', 'Ａ', '١', '"', "'", '`', '\\', '%', '%00', '&', '=', '?', '#', '/',
    '..', '../', '<script>', '${x}', '{{x}}', '\u0000\u0000', ' ',
  ) },
);

/** An id-like value (a transactionId, say) with one nasty character spliced in. */
const nastyId: fc.Arbitrary<string> = fc
  .tuple(fc.stringMatching(/^hksb[0-9a-f]{4,28}$/), nastyChar, fc.nat())
  .map(([id, ch, at]) => id.slice(0, at % (id.length + 1)) + ch + id.slice(at % (id.length + 1)));

/** Short strings mixing random code points with nasty characters (NUL, lone surrogates, ...). */
export const nastyString: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), nastyChar), { maxLength: 8 })
  .map((parts) => parts.join(''));

const keyName = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  nastyString,
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', ''),
);

const jsonish = (maxDepth: number) => fc.jsonValue({ maxDepth, stringUnit: 'binary' });

/** A JSON text built from entries, keeping keys such as `__proto__` as own properties. */
const jsonText = (entries: Array<[string, unknown]>) => JSON.stringify(Object.fromEntries(entries));

// ---------------------------------------------------------------------------------------------
// Headers

export type AuthSpec =
  | { kind: 'valid'; user: number }
  | { kind: 'none' }
  | { kind: 'raw'; value: Str }
  | { kind: 'tampered'; user: number; how: (typeof TAMPERINGS)[number] };

const TAMPERINGS = [
  'alg-none', 'alg-rs256', 'alg-lowercase', 'payload', 'signature', 'no-signature', 'lowercase-scheme', 'double-token',
  'double-space', 'no-space', 'trailing-dot', 'tab', 'token-only', 'basic',
] as const;

/** Authorization headers: a valid JWT with weight `validWeight`, otherwise missing, garbage, 10 KB+ or tampered. */
export const authSpec = (users: number, validWeight: number): fc.Arbitrary<AuthSpec> =>
  fc.oneof(
    { weight: validWeight, arbitrary: fc.integer({ min: 0, max: users - 1 }).map((user): AuthSpec => ({ kind: 'valid', user })) },
    { weight: 1, arbitrary: fc.constant<AuthSpec>({ kind: 'none' }) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
          fc.string({ unit: 'grapheme-ascii', maxLength: 60 }).map((s) => `Bearer ${s}`),
          fc.stringMatching(/^Bearer [A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}$/),
          big(['A', 'eyJ', 'a.', '-_'], 8_000, 9_000, 'Bearer '), // around the 8,192 limit of the header pattern
          big(['A', 'eyJhbGciOiJIUzI1NiJ9.', '.'], 10_240, 80_000, 'Bearer '), // 10 KB+
        )
        .map((value): AuthSpec => ({ kind: 'raw', value })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ user: fc.integer({ min: 0, max: users - 1 }), how: fc.constantFrom(...TAMPERINGS) })
        .map((t): AuthSpec => ({ kind: 'tampered', ...t })),
    },
  );

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

export function authHeaderOf(spec: AuthSpec, tokens: readonly string[]): string | undefined {
  switch (spec.kind) {
    case 'none':
      return undefined;
    case 'valid':
      return `Bearer ${tokens[spec.user]}`;
    case 'raw':
      return materialize(spec.value);
    case 'tampered': {
      const t = tokens[spec.user]!;
      const [h, p, s] = t.split('.') as [string, string, string];
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
      switch (spec.how) {
        case 'alg-none':
          return `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${p}.`;
        case 'alg-rs256':
          return `Bearer ${b64({ alg: 'RS256' })}.${p}.${s}`;
        case 'alg-lowercase':
          return `Bearer ${b64({ alg: 'hs256' })}.${p}.${s}`;
        case 'payload':
          return `Bearer ${h}.${b64({ ...payload, sub: 'mallory' })}.${s}`;
        case 'signature':
          return `Bearer ${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
        case 'no-signature':
          return `Bearer ${h}.${p}.`;
        case 'lowercase-scheme':
          return `bearer ${t}`;
        case 'double-token':
          return `Bearer ${t} ${t}`;
        case 'double-space':
          return `Bearer  ${t}`;
        case 'no-space':
          return `Bearer${t}`;
        case 'trailing-dot':
          return `Bearer ${t}.`;
        case 'tab':
          return `Bearer\t${t}`;
        case 'token-only':
          return t;
        case 'basic':
          return `Basic ${Buffer.from(`user:${t}`).toString('base64')}`;
      }
    }
  }
}

const RESERVED_HEADERS = new Set(['authorization', 'content-type', 'content-length', 'transfer-encoding']);

const headerName = fc
  .oneof(
    fc.constantFrom(
      'x-request-id', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'forwarded', 'host', 'origin',
      'referer', 'cookie', 'accept', 'accept-encoding', 'accept-language', 'content-encoding', 'x-http-method-override',
      'access-control-request-method', 'access-control-request-headers', 'if-none-match', 'if-modified-since', 'range',
      'user-agent', 'x-original-url', 'x-rewrite-url', 'expect', 'te', 'connection', 'upgrade', 'x-api-key', 'prefer',
    ),
    fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,24}$/),
  )
  .filter((n) => !RESERVED_HEADERS.has(n));

const headerValue: fc.Arbitrary<Str> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 60 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'gzip', 'br, gzip, deflate', 'identity', '*/*', 'application/xml', 'text/html', 'null', 'https://evil.example',
      'https://shop.example', '127.0.0.1, 10.0.0.1', 'for=1.2.3.4;proto=https', '100-continue', 'websocket', 'close',
      'keep-alive, Upgrade', 'bytes=0-1', 'DELETE', '../../etc/passwd', '${jndi:ldap://x}', 'a=b; c=d',
    ),
  },
  { weight: 1, arbitrary: big(['a', 'x-', '%00'], 1_000, 12_000) },
);

export const randomHeaders: fc.Arbitrary<Array<[string, Str]>> = fc.uniqueArray(fc.tuple(headerName, headerValue), {
  maxLength: 4,
  selector: ([name]) => name,
});

export function headersOf(pairs: Array<[string, Str]>): Record<string, string> {
  return Object.fromEntries(pairs.map(([n, v]) => [n, materialize(v)]));
}

// ---------------------------------------------------------------------------------------------
// POST /kyc/start bodies. Each case is { label, build(): { payload, contentType } }.

export interface Body {
  payload?: string | Buffer;
  /** undefined: no content-type header. */
  contentType?: string;
}

const JSON_TYPE = 'application/json';

export const START_FIELDS = [
  'metaInfo', 'merchantBizId', 'docType', 'returnUrl', 'sceneCode', 'languageConfig', 'styleConfig', 'showOcrResult',
  'showGuidePage', 'showAlbumIcon', 'editOcrResult', 'procedurePriority',
] as const;
const POLICY_FIELDS = [
  'ProductCode', 'SecurityLevel', 'Model', 'IdSpoof', 'Authorize', 'IdThreshold', 'AppQualityCheck', 'DocVideo', 'CallbackUrl',
  'CallbackToken', 'productCode', 'callbackUrl', 'callbackToken', 'MerchantUserId', 'merchantUserId', 'MetaInfo', 'userId',
  'sub', 'MerchantBizId', 'securityLevel',
] as const;

/** 1. Any JSON value as the body. */
export const arbitraryJsonBody: fc.Arbitrary<Body> = fc
  .oneof(jsonish(4), fc.dictionary(keyName, jsonish(3), { maxKeys: 6 }))
  .map((v) => ({ payload: JSON.stringify(v), contentType: JSON_TYPE }));

/** Values worth trying in any field of a start body. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: jsonish(2) },
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.dictionary(keyName, jsonish(2), { maxKeys: 4 }) },
  {
    weight: 4,
    arbitrary: fc.constantFrom<unknown>(
      '', ' ', '{}', '[]', 'null', '"x"', '{', '{"a":1} ', `${META_INFO}\u0000`, '{"a":"\ud800"}', '{"a":"\\ud800"}',
      '{"a":"\u0000"}', '{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}', 'true', 0, -1,
      1.5, 2 ** 53 + 1, true, false, null, [], {}, [META_INFO], { zimVer: '3.0.0', deviceType: 'h5' }, 'Y', 'url', 'keep',
      'URL', ...DOC_TYPES, '0100000', ' 01000000', '01000000 ', '010000000', 'https://shop.example/done',
      'http://shop.example/done', 'https://shop.example.evil.example/', 'https://evil.example/', 'https://shop.example@evil.example/',
      'https://evil.example/?https://shop.example', 'javascript:alert(1)', 'data:text/html,x', 'https://shop.example:8443/',
      'HTTPS://SHOP.EXAMPLE/x', '//shop.example/x', 'https://shop.example/\u0000', 'https://shop.example/\ud800',
      'https://shop.example/%00', 'https://[::1]/', 'https://shop.example/' + 'a'.repeat(2100), 'abc', 'a'.repeat(32),
      'a'.repeat(33), 'ab-c', 'ab c', '١٢٣', 'ＡＢＣ', 'abc\u0000', 'signup_1', 'a'.repeat(11), 'toString', '__proto__',
    ),
  },
);

/** The valid body a near-valid case starts from; merchantBizIds come from a small pool (repeats hit the idempotent path). */
const validBase = (bizIdPool: readonly string[]) =>
  fc.record(
    {
      metaInfo: fc.constantFrom<unknown>(META_INFO, '{}', { zimVer: '3.0.0', deviceType: 'h5' }),
      merchantBizId: fc.constantFrom(...bizIdPool),
      docType: fc.constantFrom('01000000', '00000006', '00000008'),
      returnUrl: fc.constant('https://shop.example/done'),
      sceneCode: fc.constant('signup_1'),
      languageConfig: fc.constantFrom<unknown>('{"locale":"en"}', { locale: 'en' }),
      styleConfig: fc.constant('{}'),
      showOcrResult: fc.boolean(),
      showGuidePage: fc.boolean(),
      showAlbumIcon: fc.boolean(),
      editOcrResult: fc.boolean(),
      procedurePriority: fc.constantFrom('url', 'keep'),
    },
    { requiredKeys: ['metaInfo', 'merchantBizId'] },
  );

export type Mutation =
  | { op: 'delete'; field: string }
  | { op: 'set'; field: string; value: unknown }
  | { op: 'none' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Mutation>({ op: 'none' }) },
  { weight: 2, arbitrary: fc.constantFrom(...START_FIELDS).map((field): Mutation => ({ op: 'delete', field })) },
  {
    weight: 12,
    arbitrary: fc
      .record({ field: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...START_FIELDS) }, { weight: 2, arbitrary: fc.constantFrom(...POLICY_FIELDS) }, { weight: 1, arbitrary: keyName }), value: fieldValue })
      .map((m): Mutation => ({ op: 'set', ...m })),
  },
);

export interface NearValid {
  base: Record<string, unknown>;
  /** Without merchantBizId: a fresh session (a real Initialize) every time. */
  dropBizId: boolean;
  mutation: Mutation;
}

/** 2. A valid body with one field deleted, retyped or set to a nasty value (or an extra/policy key). */
export const nearValidBody = (bizIdPool: readonly string[]): fc.Arbitrary<NearValid> =>
  fc.record({
    base: validBase(bizIdPool),
    dropBizId: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 4, arbitrary: fc.constant(false) }),
    mutation,
  });

export function nearValidPayload(c: NearValid): Body {
  const entries = Object.entries(c.base).filter(([k]) => !(c.dropBizId && k === 'merchantBizId'));
  const m = c.mutation;
  let out = entries;
  if (m.op === 'delete') out = entries.filter(([k]) => k !== m.field);
  if (m.op === 'set') out = [...entries.filter(([k]) => k !== m.field), [m.field, m.value]];
  return { payload: jsonText(out), contentType: JSON_TYPE };
}

/** 3. Bodies over the 64 KB limit, in several shapes and content types. */
export const oversizedBody = fc
  .record({
    shape: fc.constantFrom('json-string', 'json-array', 'json-metaInfo', 'text', 'no-type', 'binary', 'form'),
    size: fc.integer({ min: 64 * 1024 + 1, max: 400 * 1024 }),
  });

export function oversizedPayload(c: { shape: string; size: number }): Body {
  const n = c.size;
  switch (c.shape) {
    case 'json-string':
      return { payload: JSON.stringify('x'.repeat(n)), contentType: JSON_TYPE };
    case 'json-array':
      return { payload: `[${'1,'.repeat(Math.ceil(n / 2))}1]`, contentType: JSON_TYPE };
    case 'json-metaInfo':
      return { payload: JSON.stringify({ metaInfo: JSON.stringify({ a: 'é'.repeat(n) }) }), contentType: JSON_TYPE };
    case 'text':
      return { payload: 'x'.repeat(n), contentType: 'text/plain' };
    case 'no-type':
      return { payload: 'x'.repeat(n) };
    case 'form':
      return { payload: `a=${'x'.repeat(n)}`, contentType: 'application/x-www-form-urlencoded' };
    default:
      return { payload: Buffer.alloc(n, 0xff), contentType: JSON_TYPE };
  }
}

/** 4. Deeply nested JSON, up to depth 12,000, as raw text, at the top level or inside fields. */
export const deepBody = fc
  .record({
    where: fc.constantFrom('top-array', 'top-object', 'metaInfo-object', 'metaInfo-text', 'languageConfig-object', 'extra-key', 'unbalanced'),
    depth: fc.integer({ min: 1, max: 12_000 }),
  });

export function deepPayload(c: { where: string; depth: number }): Body {
  const d = c.depth;
  const arr = `${'['.repeat(d)}${']'.repeat(d)}`;
  const obj = `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
  switch (c.where) {
    case 'top-array':
      return { payload: arr, contentType: JSON_TYPE };
    case 'top-object':
      return { payload: obj, contentType: JSON_TYPE };
    case 'metaInfo-object':
      return { payload: `{"metaInfo":${obj}}`, contentType: JSON_TYPE };
    case 'metaInfo-text':
      return { payload: `{"metaInfo":${JSON.stringify(obj)}}`, contentType: JSON_TYPE };
    case 'languageConfig-object':
      return { payload: `{"metaInfo":"{}","languageConfig":${obj}}`, contentType: JSON_TYPE };
    case 'extra-key':
      return { payload: `{"metaInfo":"{}","x":${arr}}`, contentType: JSON_TYPE };
    default:
      return { payload: `{"metaInfo":${'['.repeat(d)}`, contentType: JSON_TYPE };
  }
}

/** 5. Unicode trouble: lone surrogates and NUL (as JSON escapes), invalid UTF-8 bytes, BOMs. */
export const unicodeBody: fc.Arbitrary<Body> = fc.oneof(
  // A field (or key) holding nasty characters; JSON.stringify escapes lone surrogates as \udXXX.
  fc
    .record({ field: fc.oneof(fc.constantFrom(...START_FIELDS), nastyString), value: nastyString, withMeta: fc.boolean() })
    .map(({ field, value, withMeta }) => ({
      payload: jsonText([...(withMeta && field !== 'metaInfo' ? [['metaInfo', META_INFO] as [string, unknown]] : []), [field, value]]),
      contentType: JSON_TYPE,
    })),
  // metaInfo text with nasty characters inside its JSON strings or keys.
  fc.record({ key: nastyString, value: nastyString, asObject: fc.boolean() }).map(({ key, value, asObject }) => ({
    payload: asObject
      ? jsonText([['metaInfo', Object.fromEntries([[key, value]])]])
      : JSON.stringify({ metaInfo: `{${JSON.stringify(key)}:"${value}"}` }),
    contentType: JSON_TYPE,
  })),
  // Raw bytes that are not UTF-8, spliced into a valid body.
  fc
    .record({ at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) })
    .map(({ at, bytes }) => {
      const text = Buffer.from(JSON.stringify({ metaInfo: META_INFO, merchantBizId: 'abc123' }));
      const i = at % (text.length + 1);
      return { payload: Buffer.concat([text.subarray(0, i), Buffer.from(bytes), text.subarray(i)]), contentType: JSON_TYPE };
    }),
  fc.constantFrom<Body>(
    { payload: `\uFEFF${JSON.stringify({ metaInfo: META_INFO })}`, contentType: JSON_TYPE },
    { payload: Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), contentType: JSON_TYPE },
    { payload: Buffer.from('{"metaInfo":"{\\"a\\":\\"\xc0\x80\\"}"}', 'latin1'), contentType: JSON_TYPE }, // overlong NUL
    { payload: Buffer.from('{"metaInfo":"{\\"a\\":\\"\xed\xa0\x80\\"}"}', 'latin1'), contentType: JSON_TYPE }, // CESU surrogate
    { payload: Buffer.from('\xff\xfe{\x00}\x00', 'latin1'), contentType: 'application/json; charset=utf-16' },
    { payload: '{"metaInfo":"{}","merchantBizId":"abc\\u0000"}', contentType: JSON_TYPE },
    { payload: '{"metaInfo":"{\\"a\\":\\"\\u0000\\"}"}', contentType: JSON_TYPE },
    { payload: '{"metaInfo":"{}","returnUrl":"https://shop.example/\\udfff"}', contentType: JSON_TYPE },
    { payload: '{"metaInfo":"{}","languageConfig":"{\\"a\\":\\"\\ud83d\\"}"}', contentType: JSON_TYPE },
  ),
);

/** 6. Prototype-pollution keys at the top level, nested, inside metaInfo, escaped or not. */
export const protoBody = fc
  .record({
    key: fc.constantFrom('__proto__', 'constructor', 'prototype', '\\u005f_proto__', '__pro\\u0074o__', 'constructor\\u0000'),
    where: fc.constantFrom('top', 'top-nested', 'metaInfo-object', 'metaInfo-text', 'languageConfig', 'array', 'constructor-prototype'),
  });

export function protoPayload(c: { key: string; where: string }): Body {
  const evil = `{"polluted":"yes","toString":"x"}`;
  const k = `"${c.key}"`;
  const text = (() => {
    switch (c.where) {
      case 'top':
        return `{"metaInfo":"{}",${k}:${evil}}`;
      case 'top-nested':
        return `{"metaInfo":"{}","a":{"b":{${k}:${evil}}}}`;
      case 'metaInfo-object':
        return `{"metaInfo":{${k}:${evil}}}`;
      case 'metaInfo-text':
        return `{"metaInfo":${JSON.stringify(`{${k}:${evil}}`)}}`;
      case 'languageConfig':
        return `{"metaInfo":"{}","languageConfig":{"x":{${k}:${evil}}}}`;
      case 'array':
        return `[{${k}:${evil}}]`;
      default:
        return `{"metaInfo":{"constructor":{"prototype":${evil}}},"constructor":{"prototype":${evil}}}`;
    }
  })();
  return { payload: text, contentType: JSON_TYPE };
}

/** 7. Content types other than application/json (and lying content-lengths). */
export const contentTypeBody = fc
  .record({
    contentType: fc.oneof(
      fc.constantFrom(
        undefined, '', 'text/plain', 'text/html', 'application/xml', 'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x', 'multipart/form-data', 'application/octet-stream', 'application/json; charset=latin1',
        'application/json; charset=utf-16', 'application/json;', 'application/json; boundary=x', 'APPLICATION/JSON',
        'application/json, text/plain', 'application/jsonp', 'application/json-patch+json', 'application/vnd.api+json',
        'application/problem+json', 'text/json', 'json', '*/*', ';;;', 'application/json\u0000', ' application/json',
        'application/json ; charset=utf-8',
      ),
      fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    ),
    body: fc.constantFrom('valid', 'form', 'xml', 'text', 'empty', 'multipart'),
    contentLength: fc.option(fc.constantFrom('0', '1', '5', '-1', 'abc', '99999999999', '1e3', '70000', ' 10'), { nil: undefined }),
  });

export function contentTypePayload(c: { contentType: string | undefined; body: string }): Body {
  const payloads: Record<string, string> = {
    valid: JSON.stringify({ metaInfo: META_INFO }),
    form: `metaInfo=${encodeURIComponent(META_INFO)}&merchantBizId=abc`,
    xml: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    text: 'hello',
    empty: '',
    multipart: '--x\r\nContent-Disposition: form-data; name="metaInfo"\r\n\r\n{}\r\n--x--\r\n',
  };
  const contentType = c.contentType;
  return { payload: payloads[c.body]!, ...(contentType !== undefined ? { contentType } : {}) };
}

/** 8. application/json bodies that are not JSON. */
export const nonJsonBody: fc.Arbitrary<Body> = fc
  .oneof(
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: 'grapheme-ascii', maxLength: 80 }),
    fc.record({ cut: fc.nat() }).map(({ cut }) => {
      const t = JSON.stringify({ metaInfo: META_INFO, merchantBizId: 'abc' });
      return t.slice(0, cut % t.length);
    }),
    fc.string({ maxLength: 10 }).map((junk) => `${JSON.stringify({ metaInfo: '{}' })}${junk}x`),
    fc.constantFrom(
      "{'metaInfo':'{}'}", '{metaInfo:"{}"}', '{"metaInfo":"{}",}', '[1,]', 'NaN', 'Infinity', '-', '/*c*/{}', '{"a":1}{"b":2}',
      '"str"', '123', '-0', 'null', 'true', '1e400', '{"metaInfo":1e400}', '{"metaInfo":"{}"', '{"metaInfo":"{}"}}',
      '{"metaInfo":"\\x41"}', '{"metaInfo":"\\u12"}', '{"metaInfo":"\u0001"}', '{"metaInfo"\n:\n"{}"}', '\u0000', ' ', '{"":""}',
      '{"metaInfo":"{}","metaInfo":"{}"}', '{"metaInfo":"{}","merchantBizId":"a","merchantBizId":"b"}',
    ),
  )
  .map((payload) => ({ payload, contentType: JSON_TYPE }));

/** Boundary sizes: fields at, just under and just over their limits, with text that is cheap or costly to percent-encode. */
export const boundaryBody = fc
  .record({
    field: fc.constantFrom('metaInfo', 'languageConfig', 'styleConfig', 'returnUrl', 'merchantBizId', 'sceneCode'),
    delta: fc.integer({ min: -64, max: 64 }),
    filler: fc.constantFrom('a', '{', '"', '\\', ' ', 'é', '€', '😀', '%', '+', '&'),
  });

export function boundaryPayload(c: { field: string; delta: number; filler: string }): Body {
  const limits: Record<string, number> = { metaInfo: 8192, languageConfig: 16384, styleConfig: 16384, returnUrl: 2048, merchantBizId: 32, sceneCode: 10 };
  const target = Math.max(0, limits[c.field]! + c.delta);
  let value: string;
  if (c.field === 'returnUrl') {
    const head = 'https://shop.example/';
    value = head + encodeURIComponent(c.filler).repeat(target).slice(0, Math.max(0, target - head.length));
  } else if (c.field === 'merchantBizId' || c.field === 'sceneCode') {
    value = 'A'.repeat(Math.max(0, limits[c.field]! + c.delta));
  } else {
    // A JSON object text of about `target` UTF-8 bytes.
    const fill = JSON.stringify(c.filler).slice(1, -1);
    const unitBytes = Buffer.byteLength(fill);
    value = `{"p":"${fill.repeat(Math.max(0, Math.floor((target - 8) / unitBytes)))}"}`;
  }
  const entries: Array<[string, unknown]> = [['metaInfo', c.field === 'metaInfo' ? value : '{}'], ...(c.field === 'metaInfo' ? [] : [[c.field, value] as [string, unknown]])];
  return { payload: jsonText(entries), contentType: JSON_TYPE };
}

// ---------------------------------------------------------------------------------------------
// GET /kyc/callback query strings

export type Encoding = 'encode' | 'raw' | 'plus';
export type QueryPair = [key: string, value: Str, encoding: Encoding];

export interface SeededSession {
  merchantBizId: string;
  /** The session's own id, registered in its CallbackUrl with the attempt (1). */
  sessionId: string;
  transactionId: string;
  callbackToken: string;
}

export type TokenSpec =
  | 'real' | 'other-session' | 'upper' | 'lower' | 'swapcase' | 'space-before' | 'space-after' | 'tab-after' | 'truncated'
  | 'extended' | 'percent-encoded' | 'nul-after' | 'hash' | 'empty';

const TOKEN_SPECS: TokenSpec[] = [
  'real', 'other-session', 'upper', 'lower', 'swapcase', 'space-before', 'space-after', 'tab-after', 'truncated', 'extended',
  'percent-encoded', 'nul-after', 'hash', 'empty',
];

export function tokenFor(spec: TokenSpec, s: SeededSession, other: SeededSession): string {
  const t = s.callbackToken;
  switch (spec) {
    case 'real':
      return t;
    case 'other-session':
      return other.callbackToken;
    case 'upper':
      return t.toUpperCase();
    case 'lower':
      return t.toLowerCase();
    case 'swapcase':
      return [...t].map((ch) => (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase())).join('');
    case 'space-before':
      return ` ${t}`;
    case 'space-after':
      return `${t} `;
    case 'tab-after':
      return `${t}\t`;
    case 'truncated':
      return t.slice(0, -1);
    case 'extended':
      return `${t}A`;
    case 'percent-encoded':
      return [...t].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
    case 'nul-after':
      return `${t}\u0000`;
    case 'hash':
      return 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    case 'empty':
      return '';
  }
}

export interface CallbackCase {
  path: string;
  method: string;
  base: {
    session: number;
    token: TokenSpec;
    passed: string;
    subCode: Str | undefined;
    subKey: string;
    /** The spellings used for the token, the transactionId and passed (Alibaba uses both). */
    tokenKey: string;
    txKey: string;
    passedKey: string;
    /** The session named by our CallbackUrl's sessionId (and attempt): its own, another's, none or unknown. */
    bizId: 'own' | 'other' | 'none' | 'unknown';
    /** The session's own transactionId, another's, an unknown one or a generated value. */
    tx: 'own' | 'other' | 'unknown' | { value: Str };
  } | null;
  extra: QueryPair[];
  headers: Array<[string, Str]>;
}

const callbackKey = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'transactionId', 'passed', 'subCode', 'subcode', 'callbackToken', 'merchantBizId', 'CallbackToken', 'TransactionId', 'SubCode',
      'Passed', 'sessionId', 'attempt',
      'callbacktoken', 'callbackToken[]', 'callbackToken[0]', '__proto__', 'constructor', 'prototype', '__proto__[polluted]',
      'constructor[prototype][polluted]', 'toString', 'hasOwnProperty', 'callbackToken ', ' callbackToken',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) },
  { weight: 1, arbitrary: nastyString },
);

const callbackValue: fc.Arbitrary<Str> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Y', 'N', 'y', 'n', 'YES', '', '200', '205', '0', '-1', 'hksb0000', 'null', 'undefined', '[]', '{}', 'polluted') },
  { weight: 2, arbitrary: fc.stringMatching(/^hksb[0-9a-f]{28}$/) },
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 70 }) },
  { weight: 1, arbitrary: big(['A', 'a', '%', '-_'], 500, 1_000) },
  { weight: 1, arbitrary: big(['A', 'x', '%41'], 100 * 1024, 120 * 1024) }, // 100 KB tokens and ids
);

/** Malformed or unusual escapes, used as raw query text. */
const rawEscape = fc.constantFrom('%', '%zz', '%E0%A4%A', '%ED%A0%80', '%C0%80', '%00', '%FF', '%uD800', '%%', '%2', '+', '%2B', '&&', '=', '==', ';');

export const callbackCase = (seeded: number): fc.Arbitrary<CallbackCase> =>
  fc.record({
    path: fc.oneof(
      { weight: 20, arbitrary: fc.constant('/kyc/callback') },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '/kyc/callback/', '/kyc//callback', '/KYC/callback', '/kyc/Callback', '/kyc/callback%00', '/kyc/callback;x', '/kyc/./callback',
          '/kyc/x/../callback', '/kyc/callback.json', '/kyc%2Fcallback', '/kyc/callback%20', '//kyc/callback', '/kyc/callback/%2e%2e',
        ),
      },
    ),
    method: fc.oneof({ weight: 20, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }),
    base: fc.option(
      fc.record({
        session: fc.integer({ min: 0, max: seeded - 1 }),
        token: fc.constantFrom(...TOKEN_SPECS),
        passed: fc.oneof({ weight: 5, arbitrary: fc.constantFrom('Y', 'N') }, { weight: 1, arbitrary: fc.constantFrom('y', 'YES', '', 'Y ', 'N\u0000', '1') }),
        subCode: fc.option(
          fc.oneof(
            { weight: 4, arbitrary: fc.constantFrom('200', '205', '201', '') },
            { weight: 2, arbitrary: callbackValue },
            { weight: 1, arbitrary: nastyChar.map((ch) => `20${ch}`) },
          ),
          { nil: undefined },
        ),
        subKey: fc.constantFrom('subCode', 'subcode', 'SubCode'),
        tokenKey: fc.constantFrom('callbackToken', 'CallbackToken'),
        txKey: fc.constantFrom('transactionId', 'TransactionId'),
        passedKey: fc.constantFrom('passed', 'Passed'),
        bizId: fc.constantFrom('own', 'other', 'none', 'unknown'),
        tx: fc.oneof(
          { weight: 6, arbitrary: fc.constant('own' as const) },
          { weight: 2, arbitrary: fc.constantFrom('other' as const, 'unknown' as const) },
          { weight: 2, arbitrary: nastyId.map((value) => ({ value })) },
          { weight: 2, arbitrary: callbackValue.map((value) => ({ value })) },
        ),
      }),
      { freq: 4, nil: null },
    ),
    extra: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.tuple(callbackKey, callbackValue, fc.constantFrom<Encoding>('encode', 'encode', 'plus')) },
        { weight: 1, arbitrary: fc.tuple(callbackKey, rawEscape, fc.constant<Encoding>('raw')) },
        { weight: 1, arbitrary: fc.tuple(callbackKey, fc.string({ unit: 'grapheme-ascii', maxLength: 20 }), fc.constant<Encoding>('raw')) },
      ),
      { maxLength: 6 },
    ),
    headers: randomHeaders,
  });

/** encodeURIComponent, but lone surrogates become their (invalid) 3-byte UTF-8 escapes instead of throwing. */
function encodeLoose(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) out += `%${(0xe0 | (c >> 12)).toString(16)}%${(0x80 | ((c >> 6) & 0x3f)).toString(16)}%${(0x80 | (c & 0x3f)).toString(16)}`;
    else out += encodeURIComponent(ch);
  }
  return out;
}

export function queryString(pairs: QueryPair[]): string {
  return pairs
    .map(([k, v, enc]) => {
      const value = materialize(v);
      if (enc === 'raw') return `${encodeLoose(k)}=${value}`;
      const e = encodeLoose(value);
      return `${encodeLoose(k)}=${enc === 'plus' ? e.replaceAll('%20', '+') : e}`;
    })
    .join('&');
}

export function callbackPairs(c: CallbackCase, seeded: readonly SeededSession[]): QueryPair[] {
  const pairs: QueryPair[] = [];
  if (c.base) {
    const s = seeded[c.base.session]!;
    const other = seeded[(c.base.session + 1) % seeded.length]!;
    const t = c.base.tx;
    const tx = t === 'own' ? s.transactionId : t === 'other' ? other.transactionId : t === 'unknown' ? 'hksb00000000000000000000000000000' : t.value;
    pairs.push([c.base.txKey, tx, 'encode'], [c.base.passedKey, c.base.passed, 'encode']);
    if (c.base.subCode !== undefined) pairs.push([c.base.subKey, c.base.subCode, 'encode']);
    pairs.push([c.base.tokenKey, tokenFor(c.base.token, s, other), 'encode']);
    if (c.base.bizId !== 'none') {
      const session = c.base.bizId === 'own' ? s.sessionId : c.base.bizId === 'other' ? other.sessionId : '00000000-0000-4000-8000-000000000000';
      pairs.push(['sessionId', session, 'encode'], ['attempt', '1', 'encode']);
    }
  }
  return [...pairs, ...c.extra];
}

// ---------------------------------------------------------------------------------------------
// GET /kyc/sessions/:merchantBizId

export interface SessionCase {
  param: Str;
  /** false: the param is inserted raw (so %00, .., malformed escapes reach the router as typed). */
  encode: boolean;
  query: QueryPair[];
  method: string;
  auth: AuthSpec;
  headers: Array<[string, Str]>;
}

export const sessionCase = (bizIds: readonly string[], users: number): fc.Arbitrary<SessionCase> =>
  fc.record({
    param: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...bizIds) },
      { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9]{1,40}$/) },
      { weight: 3, arbitrary: nastyString },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          '%00', 'abc%00', '%00abc', '..', '../..', '..%2F..', '%2e%2e', '%2e%2e%2f', '.', '%2F', 'a%2Fb', '.%00.', '%', '%zz', '%E0%A4%A',
          '%ED%A0%80', '%C0%80', '%FF', '', '/', '//', ';', ';a=b', '%3F', '%23', '*', '~', 'abc%20', '%20abc', 'abc+def', 'ａｂｃ',
          '١٢٣', 'abc\u0000', 'a'.repeat(32), 'a'.repeat(33), 'a'.repeat(100), 'a'.repeat(101), 'constructor', '__proto__', 'prototype',
          'toString', 'hasOwnProperty',
        ),
      },
      { weight: 1, arbitrary: big(['a', '1', '%00', '..%2F', '%F0%9F%98%80'], 101, 20_000) },
    ),
    encode: fc.boolean(),
    query: fc.array(fc.tuple(callbackKey, callbackValue, fc.constant<Encoding>('encode')), { maxLength: 3 }),
    method: fc.oneof({ weight: 20, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') }),
    auth: authSpec(users, 6),
    headers: randomHeaders,
  });

export function sessionUrl(c: SessionCase): string {
  const param = materialize(c.param);
  const path = `/kyc/sessions/${c.encode ? encodeLoose(param) : param}`;
  const q = queryString(c.query);
  return q ? `${path}?${q}` : path;
}

// ---------------------------------------------------------------------------------------------
// returnUrl: forms URL parsers disagree about, assembled from parts

export interface ReturnUrlCase {
  scheme: string;
  separator: string;
  userinfo: string;
  host: string;
  port: string;
  tail: string;
  /** A nasty character spliced in at `at` (modulo the length), or none. */
  splice: { ch: string; at: number } | null;
}

export const returnUrlCase: fc.Arbitrary<ReturnUrlCase> = fc.record({
  scheme: fc.oneof({ weight: 10, arbitrary: fc.constant('https') }, { weight: 1, arbitrary: fc.constantFrom('http', 'HTTPS', 'hTTps', 'ftp', 'javascript') }),
  separator: fc.oneof({ weight: 8, arbitrary: fc.constant('://') }, { weight: 1, arbitrary: fc.constantFrom(':', ':/', ':\\\\', ':/\\', '://\\', ':///', ' ://') }),
  userinfo: fc.oneof(
    { weight: 6, arbitrary: fc.constant('') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '@', ':@', 'user@', ':pass@', 'user:pass@', 'shop.example@', 'evil.example@', 'shop.example%5C@', 'shop.example\\@',
        'evil.example%40', 'a%40b@', 'user@evil.example@', 'shop.example%2F@', '%00@',
      ),
    },
  ),
  host: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('shop.example', 'SHOP.Example') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'evil.example', 'shop.example.evil.example', 'shop.example.', 'sh%6Fp.example', 'shop.example%5C', 'shop.example%5c.evil.example',
        'shop.example%5C%40evil.example', 'ｓｈｏｐ.example', 'shop.exa\tmple', 'shop.example ', '', '[::1]', '127.0.0.1', 'xn--shp-ioa.example',
        'shop.example\\', 'shop.example\\@evil.example',
      ),
    },
  ),
  port: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(':443', ':0443', ':8443', ':', ':%34%34%33', ':443@evil.example') }),
  tail: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('', '/', '/done', '/kyc/done?order=1#top') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        '\\@evil.example', '\\evil.example', '/@evil.example', '/\\evil.example', '//evil.example', '?next=https://evil.example',
        '#@evil.example', '%5C@evil.example', '%40evil.example', '/a b', '/%2e%2e/', '/a%5Cb', '?a=b@c', '/d\none', '/\u0000',
        '/\ud800', `/${'a'.repeat(2100)}`,
      ),
    },
  ),
  splice: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ ch: nastyChar, at: fc.nat() }) }),
});

export function returnUrlOf(c: ReturnUrlCase): string {
  const url = `${c.scheme}${c.separator}${c.userinfo}${c.host}${c.port}${c.tail}`;
  if (!c.splice) return url;
  const at = c.splice.at % (url.length + 1);
  return url.slice(0, at) + c.splice.ch + url.slice(at);
}

/**
 * The host an RFC 3986 parser that does not know WHATWG's rules (Java's URI, Python's urlsplit)
 * reads: the authority runs from `//` to the first `/`, `?` or `#`, user info up to its last `@`,
 * a port after the last `:`. undefined when there is no authority.
 */
export function rfc3986Host(url: string): string | undefined {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(url)?.[1];
  if (authority === undefined) return undefined;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.replace(/:[^:]*$/, '');
  return host.toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// x-request-id values

export const requestIdValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{65,90}$/) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 70 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'a:b', 'a/b', 'a=b', 'a+b', 'a b', 'a,b', '%41', '..', '../etc/passwd', '${x}', '{{x}}', '<x>', 'a\\b', '"a"', 'é', 'Ａ', '',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x'.repeat(64), 'x'.repeat(65),
    ),
  },
);
