/** Assembles the simulator: one fastify instance with the API, the user page and the control API. */
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { apiRoutes } from './api-route.js';
import { MAX_CLOCK_SKEW_MS, NonceCache, accessKeyMap, type AccessKeysOption } from './authenticate.js';
import { DEFAULT_CALLBACK_TIMEOUT_MS, type CallbackSpelling } from './callback.js';
import { CallLog } from './call-log.js';
import { controlRoutes } from './control-routes.js';
import { demoRoutes, type DemoOptions } from './demo.js';
import { FaultQueue } from './faults.js';
import { pageRoutes } from './page-routes.js';
import { PROBE_TIMEOUT_MS, ProbeLog, probeCallbackUrl } from './probe.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import { TRANSACTION_TTL_MS, TransactionStore } from './store.js';

export const DEFAULT_QPS = 10;

export interface SimulatorOptions {
  /**
   * AccessKey id → secret (the key is an account of its own), or → `{ secret, account }`: the
   * keys of one account (its RAM users) share its QPS limits and see each other's transactions.
   */
  accessKeys: AccessKeysOption;
  /** Per action and account, sliding 1-s window; 0 = unlimited. Default 10. */
  qps?: number;
  /** Per-action overrides of `qps`. */
  qpsByAction?: Record<string, number>;
  /** Fixed delay before answering each API call. Default 0. */
  latencyMs?: number;
  /** Base of TransactionUrl. Default: the address the simulator listens on. */
  publicUrl?: string;
  /** Refuse http:// CallbackUrl, as real Alibaba does. Default false. */
  requireHttpsCallback?: boolean;
  /**
   * Check at Initialize that the CallbackUrl answers `GET` (as registered) with a 2xx, else
   * InvalidParameter, as Alibaba does. Default true; off for tests whose CallbackUrl is unreachable.
   */
  probeCallbackUrl?: boolean;
  /** Bound on that check (ms). Default 3000. */
  probeTimeoutMs?: number;
  /** How the callback spells its fields: camel (default), pascal or docs (see callback.ts). */
  callbackSpelling?: CallbackSpelling;
  /**
   * Code of a successful DeleteVerifyResult: "Success" (default, like every other action) or
   * "200", the value the SDK's DeleteVerifyResultResponseBody example shows.
   */
  deleteVerifyResultCode?: 'Success' | '200';
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
  /** The CallbackUrl checks made at Initialize. */
  probes: ProbeLog;
  /** `http://host:port` once listening. */
  readonly baseUrl: string | undefined;
  /** Base of the TransactionUrls handed out. */
  readonly publicUrl: string;
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
  /** Forgets transactions, calls, faults, probes, nonces and rate-limit windows. */
  reset(): void;
}

export async function buildSimulator(options: SimulatorOptions): Promise<Simulator> {
  const now = options.now ?? Date.now;
  const store = new TransactionStore(now, options.transactionTtlMs ?? TRANSACTION_TTL_MS);
  const calls = new CallLog();
  const faults = new FaultQueue();
  const probes = new ProbeLog();
  const nonces = new NonceCache(options.maxClockSkewMs ?? MAX_CLOCK_SKEW_MS);
  const limiter = new SlidingWindowLimiter(1000);
  const callbackTimeoutMs = options.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
  const callbackSpelling = options.callbackSpelling ?? 'camel';
  const probeTimeoutMs = options.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
  let baseUrl: string | undefined;
  const publicUrl = () => (options.publicUrl ?? baseUrl ?? 'http://127.0.0.1').replace(/\/+$/, '');
  const reset = () => {
    store.clear();
    calls.clear();
    faults.clear();
    probes.clear();
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
      accessKeys: accessKeyMap(options.accessKeys),
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
    probeCallbackUrl:
      options.probeCallbackUrl === false
        ? undefined
        : async (url) => {
            const probe = await probeCallbackUrl(url, probeTimeoutMs);
            probes.add(probe);
            return probe;
          },
    successCodeFor: (action) => (action === 'DeleteVerifyResult' ? (options.deleteVerifyResultCode ?? 'Success') : 'Success'),
  });
  await app.register(pageRoutes, { store, callbackTimeoutMs, callbackSpelling });
  await app.register(controlRoutes, { store, callbackTimeoutMs, callbackSpelling, calls, faults, probes, reset });
  if (options.demo) await app.register(demoRoutes, options.demo);

  return {
    app,
    store,
    calls,
    faults,
    probes,
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
