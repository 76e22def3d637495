import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { migrate } from '../../src/db/migrate.js';
import type { CallbackSpelling } from '../../src/simulator/callback.js';
import { buildSimulator, type Simulator } from '../../src/simulator/server.js';
import { TEST_JWT_SECRET } from './jwt.js';

export const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const SIM_KEY_ID = 'test-access-key-id';
export const SIM_KEY_SECRET = 'test-access-key-secret';

/**
 * A fresh PostgreSQL schema with the migrations applied, so that each test app sees only its own
 * sessions (a reconciliation sweep must not find another file's leftovers). Dropped on close.
 */
export async function freshDatabaseUrl(): Promise<string> {
  const url = new URL(DATABASE_URL);
  url.searchParams.set('schema', `t_${randomId()}`.toLowerCase());
  await migrate({ databaseUrl: url.toString(), log: () => {} });
  return url.toString();
}

async function dropSchema(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export const randomId = (prefix = '') => `${prefix}${Math.random().toString(36).slice(2, 12)}`.replace(/[^A-Za-z0-9]/g, '');

/** The service's config for tests: every required variable, pointed at the given simulator. */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return parseConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL,
    REDIS_URL,
    ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY_ID,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY_SECRET,
    // A budget of its own per app, so test files don't share QPS slots.
    CLOUDAUTH_ACCOUNT: randomId('acct'),
    CLOUDAUTH_TIMEOUT_MS: '3000',
    PUBLIC_BASE_URL: 'http://127.0.0.1:9',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    USER_ID_HASH_SECRET: 'test-user-id-hash-secret-0123456789',
    KYC_DOC_TYPES: '01000000,00000006,00000008',
    KYC_RETURN_URL_ORIGINS: 'https://shop.example',
    RATE_LIMIT_PER_IP: '100000',
    RATE_LIMIT_PER_USER: '100000',
    RATE_LIMIT_CALLBACK_PER_IP: '100000',
    RATE_LIMIT_AUTH_FAILURES_PER_IP: '100000',
    RATE_LIMIT_STATUS_PER_USER: '100000',
    RATE_LIMIT_INTERNAL_PER_IP: '100000',
    RATE_LIMIT_INTERNAL_KEY_FAILURES_PER_IP: '100000',
    // Tests reuse a user for many starts; the cap's own tests set it low.
    KYC_MAX_STARTS_PER_USER_PER_DAY: '10000',
    // A job queue of its own per app (dropped on close), polled often, retried quickly.
    JOBS_SCHEMA: `jobs_${randomId()}`.toLowerCase(),
    JOBS_POLL_INTERVAL_S: '0.5',
    CHECK_RESULT_RETRY_DELAY_S: '1',
    ...overrides,
  });
}

/** Collects the service's JSON log lines. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text() {
    return this.lines.join('\n');
  }
}

export interface Stack {
  app: FastifyInstance;
  sim: Simulator;
  simUrl: string;
  appUrl: string;
  logs: LogCapture;
  config: Config;
  close(): Promise<void>;
}

export interface StackOptions {
  env?: Record<string, string | undefined>;
  simQps?: number;
  simLatencyMs?: number;
  /**
   * Serve the simulator's demo page (`${simUrl}/demo`), minting tokens with TEST_JWT_SECRET. The
   * service then allows the simulator's origin for CORS and returnUrl (unless `env` says otherwise).
   */
  demo?: boolean;
  /** How the simulator spells its callbacks' fields (Alibaba's material uses each). Default camel. */
  simCallbackSpelling?: CallbackSpelling;
}

/**
 * A simulator and the service, both listening on loopback, wired to each other: the service
 * calls the simulator as Alibaba, the simulator calls the service's callback.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  // A DATABASE_URL given in env (e.g. through a proxy) is used as is: no schema of its own to leave behind.
  const databaseUrl = opts.env?.DATABASE_URL ?? (await freshDatabaseUrl());
  // The demo page needs the service's URL before the simulator is built.
  const demoPort = opts.demo ? await freePort() : undefined;
  const sim = await buildSimulator({
    accessKeys: { [SIM_KEY_ID]: SIM_KEY_SECRET },
    qps: opts.simQps ?? 0,
    latencyMs: opts.simLatencyMs ?? 0,
    ...(opts.simCallbackSpelling ? { callbackSpelling: opts.simCallbackSpelling } : {}),
    ...(demoPort ? { demo: { jwtSecret: TEST_JWT_SECRET, serviceUrl: `http://127.0.0.1:${demoPort}` } } : {}),
  });
  const simUrl = await sim.listen(0, '127.0.0.1');
  const port = demoPort ?? (await freePort());
  const appUrl = `http://127.0.0.1:${port}`;
  const demoEnv = opts.demo ? { CORS_ORIGINS: simUrl, KYC_RETURN_URL_ORIGINS: `https://shop.example,${simUrl}` } : {};
  const config = testConfig({ DATABASE_URL: databaseUrl, CLOUDAUTH_ENDPOINT: simUrl, PUBLIC_BASE_URL: appUrl, ...demoEnv, ...opts.env });
  const logs = new LogCapture();
  const app = await buildApp(config, { logStream: logs });
  await app.listen({ port, host: '127.0.0.1' });
  return {
    app,
    sim,
    simUrl,
    appUrl,
    logs,
    config,
    async close() {
      await app.close();
      await sim.close();
      await dropSchemas(config);
    },
  };
}

/** Runs `fn` with a stack of its own, closed afterwards whatever `fn` does. */
export async function withStack<T>(opts: StackOptions, fn: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack(opts);
  try {
    return await fn(stack);
  } finally {
    await stack.close();
  }
}

/** Removes a test app's schemas (its tables and its job queue). */
export async function dropSchemas(config: Pick<Config, 'DATABASE_URL' | 'JOBS_SCHEMA'>): Promise<void> {
  await dropSchema(config.JOBS_SCHEMA);
  const tables = new URL(config.DATABASE_URL).searchParams.get('schema');
  if (tables && tables !== 'public') await dropSchema(tables);
}

/** Polls until `check` returns a value other than undefined (or fails after `timeoutMs`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A MetaInfo shaped like the Alibaba app/H5 SDKs' getMetaInfo() (zimVer, deviceType "h5", …). */
export const META_INFO = JSON.stringify({
  apdidToken: '',
  appName: 'https://shop.example',
  appVersion: '1.0.0',
  bioMetaInfo: '4.1.0:1150****,0',
  deviceType: 'h5',
  osVersion: 'iOS 17.0',
  zimVer: '3.0.0',
});

/** A MetaInfo as the Alibaba web SDK's getMetaInfo() returns it (Alibaba's example shape). */
export const WEB_META_INFO = JSON.stringify({
  bioMetaInfo: '4.1.0:2916352,0',
  deviceType: 'web',
  ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
});
