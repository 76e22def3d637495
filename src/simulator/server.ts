/** Assembles the simulator: one fastify instance with the API, the user page and the control API. */
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { apiRoutes } from './api-route.js';
import { MAX_CLOCK_SKEW_MS, NonceCache } from './authenticate.js';
import { DEFAULT_CALLBACK_TIMEOUT_MS } from './callback.js';
import { CallLog } from './call-log.js';
import { controlRoutes } from './control-routes.js';
import { demoRoutes, type DemoOptions } from './demo.js';
import { FaultQueue } from './faults.js';
import { pageRoutes } from './page-routes.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import { TRANSACTION_TTL_MS, TransactionStore } from './store.js';

export const DEFAULT_QPS = 10;

export interface SimulatorOptions {
  /** AccessKey id → secret. */
  accessKeys: Record<string, string>;
  /** Per action and AccessKey id, sliding 1-s window; 0 = unlimited. Default 10. */
  qps?: number;
  /** Per-action overrides of `qps`. */
  qpsByAction?: Record<string, number>;
  /** Fixed delay before answering each API call. Default 0. */
  latencyMs?: number;
  /** Base of TransactionUrl. Default: the address the simulator listens on. */
  publicUrl?: string;
  /** Refuse http:// CallbackUrl, as real Alibaba does. Default false. */
  requireHttpsCallback?: boolean;
  callbackTimeoutMs?: number;
  transactionTtlMs?: number;
  maxClockSkewMs?: number;
  /** Wall clock (epoch ms) for expiry and x-acs-date checks; tests can move it. */
  now?: () => number;
  /** JSON logs through pino; query strings are never logged. Default false. */
  logger?: boolean;
  logLevel?: string;
  /** Serves the demo page at /demo and mints caller JWTs at /demo/token; off (404) when absent. */
  demo?: DemoOptions;
}

export interface Simulator {
  app: FastifyInstance;
  store: TransactionStore;
  calls: CallLog;
  faults: FaultQueue;
  /** `http://host:port` once listening. */
  readonly baseUrl: string | undefined;
  /** Base of the TransactionUrls handed out. */
  readonly publicUrl: string;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
  /** Forgets transactions, calls, faults, nonces and rate-limit windows. */
  reset(): void;
}

export async function buildSimulator(options: SimulatorOptions): Promise<Simulator> {
  const now = options.now ?? Date.now;
  const store = new TransactionStore(now, options.transactionTtlMs ?? TRANSACTION_TTL_MS);
  const calls = new CallLog();
  const faults = new FaultQueue();
  const nonces = new NonceCache(options.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS);
  const limiter = new SlidingWindowLimiter(1000);
  const callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
  let baseUrl: string | undefined;
  const publicUrl = () => (options.publicUrl ?? baseUrl ?? 'http://127.0.0.1').replace(/\/+$/, '');
  const reset = () => {
    store.clear();
    calls.clear();
    faults.clear();
    nonces.clear();
    limiter.reset();
  };

  // Initialize carries MetaInfo and the UI configs in the query string: allow long request lines.
  const app = fastify({ logger: loggerOptions(options), http: { maxHeaderSize: 256 * 1024 } });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', path: (request.raw.url ?? '').split('?')[0] });
  });

  await app.register(apiRoutes, {
    auth: {
      accessKeys: new Map(Object.entries(options.accessKeys)),
      nonces,
      now,
      maxClockSkewMs: options.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS,
    },
    store,
    calls,
    faults,
    limiter,
    qpsFor: (action) => options.qpsByAction?.[action] ?? options.qps ?? DEFAULT_QPS,
    latencyMs: options.latencyMs ?? 0,
    publicUrl,
    requireHttpsCallback: options.requireHttpsCallback ?? false,
  });
  await app.register(pageRoutes, { store, callbackTimeoutMs });
  await app.register(controlRoutes, { store, callbackTimeoutMs, calls, faults, reset });
  if (options.demo) await app.register(demoRoutes, options.demo);

  return {
    app,
    store,
    calls,
    faults,
    get baseUrl() {
      return baseUrl;
    },
    get publicUrl() {
      return publicUrl();
    },
    async listen(port = 0, host = '127.0.0.1') {
      await app.listen({ port, host });
      const address = app.server.address() as AddressInfo;
      baseUrl = `http://${hostForUrl(host)}:${address.port}`;
      return baseUrl;
    },
    close: () => app.close(),
    reset,
  };
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Logs request method and path only: query strings carry MetaInfo, user ids and tokens. */
function loggerOptions(options: SimulatorOptions): FastifyServerOptions['logger'] {
  if (!options.logger) return false;
  return {
    level: options.logLevel ?? 'info',
    serializers: {
      req: (request) => ({
        method: request.method,
        path: (request.url ?? '').split('?')[0],
        remoteAddress: request.socket?.remoteAddress,
      }),
    },
  };
}
