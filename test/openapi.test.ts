/**
 * The OpenAPI document cannot drift from the service: it lists exactly the routes Fastify serves,
 * names only error codes the code produces (with their status), and real responses of every route
 * validate against the schema it documents for their status.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import Fastify, { type RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { serviceApp } from '../src/app.js';
import { ERROR_CODES, errorTable, type ErrorCode } from '../src/errors/codes.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { dropSchemas, freshDatabaseUrl, META_INFO, randomId, startStack, testConfig, type Stack } from './helpers/stack.js';

const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as typeof AjvModule.default;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as typeof addFormatsModule.default;

const INTERNAL_API_KEY = 'internal-api-key-0123456789-abcdefghij';
const METRICS_TOKEN = 'metrics-token-0123456789-abcdefghijklmn';
/** Every optional route on; events are sent to a receiver that answers 200. */
const ENV = { INTERNAL_API_KEY, METRICS_TOKEN, DOCS_ENABLED: 'true', MERCHANT_WEBHOOK_SECRET: 'openapi-webhook-secret-0123456789abcdefgh' };

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, unknown> };
}

/** `/kyc/sessions/:merchantBizId` → `/kyc/sessions/{merchantBizId}` */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

let stack: Stack;
let doc: OpenApiDoc;
const receiver = createServer((req, res) => req.resume().on('end', () => res.end()));
before(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  stack = await startStack({ env: { ...ENV, MERCHANT_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events` } });
  const res = await fetch(`${stack.appUrl}/docs/json`);
  assert.equal(res.status, 200);
  doc = (await res.json()) as OpenApiDoc;
});
after(async () => {
  await stack.close();
  receiver.close();
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));

describe('the OpenAPI document lists what Fastify serves', () => {
  test('every route (except /docs and the CORS preflight) is documented with its method, and nothing else', async () => {
    // The same service plugin buildApp registers, on an instance that records its routes.
    const config = testConfig({ ...ENV, DATABASE_URL: await freshDatabaseUrl(), JOBS_WORKERS: 'false' });
    const app = Fastify({ logger: false });
    const routes: Array<Pick<RouteOptions, 'method' | 'url'>> = [];
    app.addHook('onRoute', (r) => void routes.push({ method: r.method, url: r.url }));
    try {
      await app.register(fp(serviceApp), { config });
      await app.ready();
    } finally {
      await app.close();
      await dropSchemas(config);
    }
    const served = new Set<string>();
    for (const r of routes) {
      for (const method of [r.method].flat()) {
        if (r.url.startsWith('/docs')) continue; // Swagger UI and the document itself
        if (method === 'OPTIONS' && r.url === '*') continue; // @fastify/cors preflight
        served.add(`${method} ${openapiPath(r.url)}`);
      }
    }
    // Fastify adds HEAD to every GET route; OpenAPI documents the GET.
    for (const key of [...served]) if (key.startsWith('HEAD ') && served.has(key.replace(/^HEAD /, 'GET '))) served.delete(key);

    const documented = new Set(operations().map((o) => `${o.method} ${o.path}`));
    assert.ok(served.size >= 7, `only ${served.size} routes seen`);
    assert.deepEqual([...documented].sort(), [...served].sort());
  });

  test('security schemes: bearer JWT, the back office apiKey (x-api-key) and the metrics token', () => {
    assert.deepEqual(doc.components.securitySchemes.apiKey, { type: 'apiKey', in: 'header', name: 'x-api-key' });
    assert.ok(doc.components.securitySchemes.bearerAuth);
    assert.ok(doc.components.securitySchemes.metricsToken);
    for (const { path, method, op } of operations().filter((o) => o.path.startsWith('/internal/'))) {
      assert.deepEqual((op as unknown as { security?: unknown }).security, [{ apiKey: [] }], `${method} ${path}`);
    }
  });
});

describe('the status route documents its long poll', () => {
  test('GET /kyc/sessions/{merchantBizId}: query parameters wait (0-30 s) and status (one of the statuses)', () => {
    const op = doc.paths['/kyc/sessions/{merchantBizId}']?.get as unknown as {
      parameters?: Array<{ in: string; name: string; required?: boolean; schema?: { type?: string; minimum?: number; maximum?: number; enum?: string[] } }>;
    };
    const query = Object.fromEntries((op.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p]));
    assert.equal(query.wait?.schema?.type, 'number');
    assert.equal(query.wait?.schema?.minimum, 0);
    assert.equal(query.wait?.schema?.maximum, 30);
    assert.deepEqual(query.status?.schema?.enum, ['pending', 'verifying', 'passed', 'failed', 'expired', 'error']);
    assert.ok(!query.wait?.required && !query.status?.required, 'both optional: a plain read names neither');
  });
});

describe('error codes', () => {
  /** Every (status, code) the document promises. */
  const documentedCodes = () => {
    const out: Array<{ where: string; status: number; code: string }> = [];
    for (const { path, method, op } of operations()) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const schema = response.content?.['application/json']?.schema as { properties?: { code?: { enum?: string[] } } } | undefined;
        const codes = schema?.properties?.code?.enum;
        if (path === '/readyz' && status === '503') continue; // the readiness report, not an error
        assert.ok(codes && codes.length > 0, `${method} ${path} ${status} documents no code enum`);
        for (const code of codes) out.push({ where: `${method} ${path} ${status}`, status: Number(status), code });
      }
    }
    return out;
  };

  /** What src/ can answer with: every HttpError (or subclass) constructed with a literal code, and the error handler's codes. */
  const producedCodes = async () => {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name);
        if (entry.isDirectory() && entry.name !== 'generated') await walk(p);
        else if (entry.name.endsWith('.ts')) files.push(p);
      }
    };
    await walk('src');
    const thrown: Array<{ file: string; status: number; code: string }> = [];
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      // `new HttpError(503, 'CODE'`, or `super(503, 'CODE'` in a subclass.
      for (const m of text.matchAll(/(?:new HttpError|super)\(\s*(\d{3}),\s*'([A-Z0-9_]+)'/g)) thrown.push({ file, status: Number(m[1]), code: m[2]! });
    }
    const handler = await readFile('src/errors/handler.ts', 'utf8');
    const framework = [...handler.matchAll(/'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!);
    return { thrown, all: new Set([...thrown.map((t) => t.code), ...framework]) };
  };

  test('the document names only catalogued codes, each under its catalogued status', () => {
    const documented = documentedCodes();
    assert.ok(documented.length > 20);
    for (const { where, status, code } of documented) {
      assert.ok(code in ERROR_CODES, `${where}: ${code} is not in src/errors/codes.ts`);
      assert.equal(ERROR_CODES[code as ErrorCode].status, status, `${where}: ${code}`);
    }
  });

  test('every catalogued code is produced by the code, with its status, and documented on a route (NOT_FOUND: unknown routes)', async () => {
    const { thrown, all } = await producedCodes();
    for (const t of thrown) assert.equal(ERROR_CODES[t.code as ErrorCode]?.status, t.status, `${t.file}: HttpError(${t.status}, '${t.code}')`);
    assert.deepEqual([...all].sort(), Object.keys(ERROR_CODES).sort(), 'src/errors/codes.ts and the codes src/ produces differ');
    const documented = new Set(documentedCodes().map((d) => d.code));
    assert.deepEqual([...documented, 'NOT_FOUND'].sort(), Object.keys(ERROR_CODES).sort());
  });

  test("README.md has the error table generated from the catalogue (npx tsx src/dev/tables.ts errors)", async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(errorTable()), 'README.md is out of date: paste the output of `npx tsx src/dev/tables.ts errors`');
  });
});

describe('real responses match the documented schemas', () => {
  test('every route, success and errors', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    const api = clientFor(stack);
    const { appUrl } = stack;
    const seen = new Set<string>();
    const problems: string[] = [];

    /** Matches a concrete path to a documented one. */
    const operationFor = (method: string, url: string) => {
      const path = new URL(url, appUrl).pathname;
      for (const o of operations()) {
        const re = new RegExp(`^${o.path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
        if (o.method === method && re.test(path)) return o;
      }
      return undefined;
    };

    const check = async (label: string, method: string, url: string, init: RequestInit = {}, expect?: number | ErrorCode) => {
      const res = await fetch(new URL(url, appUrl), { method, ...init });
      const text = await res.text();
      const o = operationFor(method, url);
      if (!o) return void problems.push(`${label}: ${method} ${url} is not documented`);
      const response = o.op.responses[String(res.status)];
      if (!response) return void problems.push(`${label}: ${method} ${o.path} answered ${res.status}, which is not documented: ${text.slice(0, 200)}`);
      const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!;
      const schema = response.content?.[mediaType]?.schema;
      if (!schema) return void problems.push(`${label}: ${o.path} ${res.status} documents no ${mediaType} body`);
      const body = mediaType === 'application/json' ? (JSON.parse(text) as unknown) : text;
      if (!ajv.validate(schema, body)) problems.push(`${label}: ${o.path} ${res.status}: ${ajv.errorsText()} in ${text.slice(0, 200)}`);
      if (res.status >= 400 && mediaType === 'application/json') {
        const code = (body as { code?: string }).code as ErrorCode;
        if (ERROR_CODES[code] && ERROR_CODES[code].status !== res.status) problems.push(`${label}: ${code} answered with ${res.status}`);
      }
      if (typeof expect === 'number' && res.status !== expect) problems.push(`${label}: expected ${expect}, got ${res.status} ${text.slice(0, 200)}`);
      if (typeof expect === 'string' && !text.includes(`"code":"${expect}"`)) problems.push(`${label}: expected ${expect}, got ${res.status} ${text.slice(0, 200)}`);
      seen.add(`${o.method} ${o.path}`);
      return { status: res.status, body };
    };
    const json = (token: string | undefined, body: unknown): RequestInit => ({
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const bearer = (token: string): RequestInit => ({ headers: { authorization: `Bearer ${token}` } });

    // Operations
    await check('liveness', 'GET', '/healthz', {}, 200);
    await check('readiness', 'GET', '/readyz', {}, 200);
    await check('metrics', 'GET', '/metrics', bearer(METRICS_TOKEN), 200);
    await check('metrics without a token', 'GET', '/metrics', {}, 'UNAUTHENTICATED');
    await check('metrics with a wrong token', 'GET', '/metrics', bearer('x'.repeat(40)), 'INVALID_TOKEN');

    // Starting
    const alice = await signToken(randomId('alice-'));
    const bob = await signToken(randomId('bob-'));
    const id = randomId('oa');
    const started = await check('start', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, merchantBizId: id }), 201);
    await check('start again', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, merchantBizId: id }), 200);
    await check("start: another user's merchantBizId is theirs too", 'POST', '/kyc/start', json(bob, { metaInfo: META_INFO, merchantBizId: id }), 201);
    await check('start: policy field', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, ProductCode: 'x' }), 'VALIDATION_ERROR');
    await check('start: bad JSON', 'POST', '/kyc/start', json(alice, '{"metaInfo":'), 'INVALID_JSON');
    await check('start: media type', 'POST', '/kyc/start', { headers: { 'content-type': 'application/xml', authorization: `Bearer ${alice}` }, body: '<x/>' }, 'UNSUPPORTED_MEDIA_TYPE');
    await check('start: too large', 'POST', '/kyc/start', json(alice, { metaInfo: 'x'.repeat(70_000) }), 'BODY_TOO_LARGE');
    await check('start: no token', 'POST', '/kyc/start', json(undefined, { metaInfo: META_INFO }), 'UNAUTHENTICATED');
    await check('start: bad token', 'POST', '/kyc/start', json('a.b.c', { metaInfo: META_INFO }), 'INVALID_TOKEN');
    await check('start: doc type', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, docType: '00000001' }), 'DOC_TYPE_NOT_ALLOWED');
    await check('start: return URL', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, returnUrl: 'https://evil.example/x' }), 'RETURN_URL_NOT_ALLOWED');
    const upstream: Array<[Parameters<typeof api.sim.fault>[0], ErrorCode]> = [
      [{ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'MetaInfo is invalid' }, 'INVALID_META_INFO'],
      [{ action: 'Initialize', status: 400, code: 'InvalidParameter', message: 'CallbackUrl is invalid' }, 'UPSTREAM_REJECTED'],
      [{ action: 'Initialize', status: 500, code: 'InternalError' }, 'UPSTREAM_ERROR'],
      [{ action: 'Initialize', status: 403, code: 'Forbidden.RAM' }, 'UPSTREAM_ACCESS_DENIED'],
      [{ action: 'Initialize', status: 403, code: 'Throttling.Api', count: 10, retryAfterMs: 100 }, 'UPSTREAM_THROTTLED'],
    ];
    let failedId = '';
    for (const [fault, code] of upstream) {
      await api.sim.fault(fault);
      failedId = randomId('of');
      await check(`start: upstream ${fault.code}`, 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, merchantBizId: failedId }), code);
      await fetch(`${stack.simUrl}/__sim/faults`, { method: 'DELETE' });
    }
    await check('start: failed before', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, merchantBizId: failedId }), 'SESSION_FAILED');

    // Resuming (KYC_MAX_TRANSACTIONS_PER_SESSION is 3 by default: the start and two resumes)
    await check('resume', 'POST', `/kyc/sessions/${id}/resume`, json(alice, { metaInfo: META_INFO }), 201);
    await check('resume again', 'POST', `/kyc/sessions/${id}/resume`, json(alice, { metaInfo: META_INFO }), 201);
    await check('resume: attempts exhausted', 'POST', `/kyc/sessions/${id}/resume`, json(alice, { metaInfo: META_INFO }), 'ATTEMPTS_EXHAUSTED');
    await check('resume: unknown', 'POST', `/kyc/sessions/${randomId('none')}/resume`, json(alice, { metaInfo: META_INFO }), 'SESSION_NOT_FOUND');
    await check('resume: bad body', 'POST', `/kyc/sessions/${id}/resume`, json(alice, { metaInfo: 'x' }), 'VALIDATION_ERROR');

    // The callback
    const transactionId = String((started?.body as { transactionId: string }).transactionId);
    const callbackToken = (await api.sim.transaction(transactionId)).body.params.CallbackToken!;
    const cb = (q: Record<string, string>) => `/kyc/callback?${new URLSearchParams(q)}`;
    await check('callback', 'GET', cb({ transactionId, passed: 'Y', subCode: '200', callbackToken }), {}, 200);
    await check('callback again', 'GET', cb({ transactionId, passed: 'Y', subCode: '200', callbackToken }), {}, 200);
    await check('callback: tampered', 'GET', cb({ transactionId, passed: 'N', subCode: '200', callbackToken }), {}, 'CALLBACK_CONFLICT');
    await check('callback: wrong token', 'GET', cb({ transactionId, passed: 'Y', callbackToken: 'nope' }), {}, 'CALLBACK_REJECTED');
    await check('callback: invalid', 'GET', cb({ transactionId, passed: 'maybe', callbackToken }), {}, 'VALIDATION_ERROR');
    await check('callback: reachability probe', 'GET', '/kyc/callback?sessionId=x&attempt=1', {}, 200);
    await check('resume: being verified', 'POST', `/kyc/sessions/${id}/resume`, json(alice, { metaInfo: META_INFO }), 'SESSION_COMPLETED');
    await check("resume: another user's session of the same merchantBizId is theirs", 'POST', `/kyc/sessions/${id}/resume`, json(bob, { metaInfo: META_INFO }), 201);
    await check('start: completed', 'POST', '/kyc/start', json(alice, { metaInfo: META_INFO, merchantBizId: id }), 'SESSION_COMPLETED');

    // Reading sessions
    await check('session', 'GET', `/kyc/sessions/${id}`, bearer(alice), 200);
    await check("session: someone else's", 'GET', `/kyc/sessions/${failedId}`, bearer(bob), 'SESSION_NOT_FOUND');
    await check('session: no token', 'GET', `/kyc/sessions/${id}`, {}, 'UNAUTHENTICATED');
    await check('session: bad id', 'GET', '/kyc/sessions/a-b', bearer(alice), 'VALIDATION_ERROR');
    const key = { headers: { 'x-api-key': INTERNAL_API_KEY } };
    const listed = await check('back office: by merchantBizId', 'GET', `/internal/kyc/sessions?merchantBizId=${id}`, key, 200);
    const sessionId = (listed?.body as { sessions: Array<{ id: string }> }).sessions[0]!.id;
    await check('back office', 'GET', `/internal/kyc/sessions/${sessionId}`, key, 200);
    await check('back office: unknown', 'GET', `/internal/kyc/sessions/${randomUUID()}`, key, 'SESSION_NOT_FOUND');
    await check('back office: no key', 'GET', `/internal/kyc/sessions/${sessionId}`, {}, 'INVALID_API_KEY');
    await check('back office: bad id', 'GET', '/internal/kyc/sessions/a-b', key, 'VALIDATION_ERROR');
    await check('back office: list without merchantBizId', 'GET', '/internal/kyc/sessions', key, 'VALIDATION_ERROR');

    // Back office: events, redelivery, erasure, the audit trail
    const keyJson = (body: unknown): RequestInit => ({ headers: { 'x-api-key': INTERNAL_API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const events = await check('back office: events', 'GET', '/internal/kyc/events?limit=1', key, 200);
    const eventsPage = events?.body as { events: Array<{ id: string }>; nextCursor: string };
    await check('back office: events, next page', 'GET', `/internal/kyc/events?state=pending&limit=1&cursor=${eventsPage.nextCursor}`, key, 200);
    await check('back office: events, bad cursor', 'GET', '/internal/kyc/events?cursor=x', key, 'VALIDATION_ERROR');
    await check('back office: events, no key', 'GET', '/internal/kyc/events', {}, 'INVALID_API_KEY');
    await check('back office: redeliver', 'POST', `/internal/kyc/events/${eventsPage.events[0]!.id}/redeliver`, key, 200);
    await check('back office: redeliver an unknown event', 'POST', `/internal/kyc/events/evt_${'0'.repeat(32)}/redeliver`, key, 'EVENT_NOT_FOUND');
    await check('back office: redeliver a malformed id', 'POST', '/internal/kyc/events/x/redeliver', key, 'VALIDATION_ERROR');
    await check('back office: bulk redelivery', 'POST', '/internal/kyc/events/redeliver', keyJson({ state: 'failed', since: new Date().toISOString() }), 202);
    await check('back office: bulk redelivery without since', 'POST', '/internal/kyc/events/redeliver', keyJson({ state: 'failed' }), 'VALIDATION_ERROR');
    await check('back office: bulk redelivery, bad JSON', 'POST', '/internal/kyc/events/redeliver', { headers: { 'x-api-key': INTERNAL_API_KEY, 'content-type': 'application/json' }, body: '{' }, 'INVALID_JSON');
    await check('back office: erase a session', 'DELETE', `/internal/kyc/sessions/${sessionId}`, key, 202);
    await check('back office: erase an unknown session', 'DELETE', `/internal/kyc/sessions/${randomUUID()}`, key, 'SESSION_NOT_FOUND');
    await check('back office: erase a malformed id', 'DELETE', '/internal/kyc/sessions/a-b', key, 'VALIDATION_ERROR');
    await check('back office: erase a person', 'DELETE', `/internal/kyc/users/${encodeURIComponent('bob|someone@example.com')}`, key, 202);
    await check('back office: erase a person, no key', 'DELETE', '/internal/kyc/users/bob', {}, 'INVALID_API_KEY');
    await check('back office: audit', 'GET', `/internal/audit?target=session:${sessionId}&limit=2`, key, 200);
    await check('back office: audit, bad action', 'GET', '/internal/audit?action=nope', key, 'VALIDATION_ERROR');

    // No route: the 404 envelope, with its catalogued status.
    const missing = await fetch(`${appUrl}/nope`);
    assert.equal(missing.status, ERROR_CODES.NOT_FOUND.status);
    assert.equal(((await missing.json()) as { code: string }).code, 'NOT_FOUND');

    assert.deepEqual(problems, []);
    assert.deepEqual([...seen].sort(), operations().map((o) => `${o.method} ${o.path}`).sort(), 'every documented operation answered');
  });
});
