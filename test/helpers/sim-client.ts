/**
 * Talking to the simulator as a merchant's server does: the real @alicloud/openapi-core client
 * (signature V3), plus small HTTP servers standing in for the merchant's callback endpoint.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenApi, { $OpenApiUtil } from '@alicloud/openapi-core';
import * as $dara from '@darabonba/typescript';
import { buildSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';

export const AK_ID = 'test-ak';
export const AK_SECRET = 'test-secret';
const ClientClass: any = (OpenApi as any).default ?? OpenApi;

export interface Credentials {
  id: string;
  secret: string;
}

export type AnyError = any;
export type ApiResponse = { statusCode: number; headers: Record<string, string>; body: any };

export function makeClient(hostPort: string, credentials: Credentials = { id: AK_ID, secret: AK_SECRET }) {
  return new ClientClass(
    new $OpenApiUtil.Config({
      accessKeyId: credentials.id,
      accessKeySecret: credentials.secret,
      endpoint: hostPort,
      protocol: 'HTTP',
    }),
  );
}

export function callApi(
  client: any,
  action: string,
  query: Record<string, string>,
  /**
   * connectTimeout is also the socket's idle timeout in the client's HTTP layer (httpx): an answer
   * slower than it fails with RequestTimeoutError whatever readTimeout says.
   */
  options: { version?: string; readTimeout?: number; connectTimeout?: number } = {},
): Promise<ApiResponse> {
  const params = new $OpenApiUtil.Params({
    action,
    version: options.version ?? '2022-08-09',
    protocol: 'HTTPS',
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: 'json',
  });
  const runtime = new $dara.RuntimeOptions({
    readTimeout: options.readTimeout ?? 3000,
    ...(options.connectTimeout ? { connectTimeout: options.connectTimeout } : {}),
  });
  return client.callApi(params, new $OpenApiUtil.OpenApiRequest({ query }), runtime);
}

export function hostPortOf(baseUrl: string): string {
  return new URL(baseUrl).host;
}

export const META_INFO = JSON.stringify({ zimVer: '3.0.0', deviceType: 'h5', note: "a b*!()~'ü+=&?" });

export function initializeQuery(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const query: Record<string, string | undefined> = {
    ProductCode: 'eKYC',
    MerchantBizId: 'biz0001',
    MetaInfo: META_INFO,
    MerchantUserId: 'user-hash-1',
    DocType: '01000000',
    ...overrides,
  };
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

export async function expectApiError(promise: Promise<unknown>, expected: { name?: string; code: string; statusCode?: number }) {
  let caught: AnyError;
  await assert.rejects(promise, (err: AnyError) => {
    caught = err;
    return true;
  });
  if (expected.name) assert.equal(caught.name, expected.name);
  assert.equal(caught.code, expected.code, caught.message);
  if (expected.statusCode) assert.equal(caught.statusCode, expected.statusCode);
  return caught;
}

export async function startServer(handler: http.RequestListener) {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (fetch keeps them) and hanging requests would hold close() up.
        server.closeAllConnections();
      }),
    server,
  };
}

/** Receives Alibaba's requests (reachability probes and callbacks), answering `status`. */
export async function startCallbackReceiver(status = 200) {
  const received: string[] = [];
  const server = await startServer((req, res) => {
    received.push(req.url ?? '');
    res.writeHead(status).end('ok');
  });
  return { ...server, received };
}

export async function control(baseUrl: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** A simulator of its own, listening, with a client signed with AK_ID; closed after the file (or suite). */
export function useSimulator(options: Partial<SimulatorOptions> = {}) {
  const ctx = {} as { sim: Simulator; baseUrl: string; client: ReturnType<typeof makeClient> };
  before(async () => {
    ctx.sim = await buildSimulator({ accessKeys: { [AK_ID]: AK_SECRET }, qps: 0, ...options });
    ctx.baseUrl = await ctx.sim.listen();
    ctx.client = makeClient(hostPortOf(ctx.baseUrl));
  });
  after(() => ctx.sim.close());
  return ctx;
}
