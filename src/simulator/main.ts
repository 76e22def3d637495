/**
 * `npm run simulator`: runs the simulator as a process, configured from the environment and from
 * `.env` when present (real environment variables win, as for the service).
 *
 * The demo page (/demo) is on when it has an HS256 secret: SIMULATOR_DEMO_JWT_SECRET, or else the
 * service's AUTH_JWT_SECRET (the same `.env` serves both processes under `npm run dev`; not when
 * NODE_ENV=production).
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { AccessKey } from './authenticate.js';
import { CALLBACK_SPELLING_NAMES } from './callback.js';
import { buildSimulator } from './server.js';

/**
 * SIMULATOR_EXTRA_ACCESS_KEYS: `id:secret[:account]`, comma-separated. A key without an account
 * belongs to SIMULATOR_ACCOUNT (another RAM user of the same account).
 */
const ExtraAccessKeys = z
  .string()
  .transform((text, ctx) => {
    const keys: Array<{ id: string; secret: string; account: string | undefined }> = [];
    for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
      const [id, secret, account, ...rest] = entry.split(':');
      if (!id || !secret || account === '' || rest.length > 0) {
        ctx.addIssue({ code: 'custom', message: `"${entry.split(':')[0] ?? ''}:…" is not id:secret[:account]` });
        return z.NEVER;
      }
      keys.push({ id, secret, account });
    }
    return keys;
  });

const Env = z.object({
  SIMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
  SIMULATOR_HOST: z.string().min(1).default('127.0.0.1'),
  SIMULATOR_ACCESS_KEY_ID: z.string().min(1).default('sim-access-key-id'),
  SIMULATOR_ACCESS_KEY_SECRET: z.string().min(1).default('sim-access-key-secret'),
  SIMULATOR_ACCOUNT: z.string().min(1).default('sim-account'),
  SIMULATOR_EXTRA_ACCESS_KEYS: ExtraAccessKeys.default([]),
  SIMULATOR_QPS: z.coerce.number().int().min(0).default(10),
  SIMULATOR_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  SIMULATOR_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  SIMULATOR_REQUIRE_HTTPS_CALLBACK: z.enum(['true', 'false']).default('false'),
  SIMULATOR_PROBE_CALLBACK: z.enum(['true', 'false']).default('true'),
  SIMULATOR_CALLBACK_SPELLING: z.enum(CALLBACK_SPELLING_NAMES).default('camel'),
  SIMULATOR_DEMO_JWT_SECRET: z.string().min(1).optional(),
  SIMULATOR_DEMO_SERVICE_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  // The service's own settings, shared through .env: the demo signs caller JWTs the service accepts.
  AUTH_JWT_SECRET: z.string().min(1).optional(),
  AUTH_JWT_ISSUER: z.string().min(1).optional(),
  AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
  NODE_ENV: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

function readEnv(envFile = '.env'): z.infer<typeof Env> {
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  // An empty variable (common in compose files) counts as unset.
  const present = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = Env.safeParse(present);
  if (!parsed.success) {
    console.error(`Invalid simulator configuration:\n${z.prettifyError(parsed.error)}`);
    process.exit(1);
  }
  return parsed.data;
}

async function main(): Promise<void> {
  const env = readEnv();
  // Never borrow a production service's secret: there, only an explicit demo secret turns the demo on.
  const demoSecret = env.SIMULATOR_DEMO_JWT_SECRET ?? (env.NODE_ENV === 'production' ? undefined : env.AUTH_JWT_SECRET);
  const accessKeys: Record<string, AccessKey> = {
    [env.SIMULATOR_ACCESS_KEY_ID]: { secret: env.SIMULATOR_ACCESS_KEY_SECRET, account: env.SIMULATOR_ACCOUNT },
  };
  for (const key of env.SIMULATOR_EXTRA_ACCESS_KEYS) {
    accessKeys[key.id] = { secret: key.secret, account: key.account ?? env.SIMULATOR_ACCOUNT };
  }
  const simulator = await buildSimulator({
    accessKeys,
    qps: env.SIMULATOR_QPS,
    latencyMs: env.SIMULATOR_LATENCY_MS,
    publicUrl: env.SIMULATOR_PUBLIC_URL,
    requireHttpsCallback: env.SIMULATOR_REQUIRE_HTTPS_CALLBACK === 'true',
    probeCallbackUrl: env.SIMULATOR_PROBE_CALLBACK === 'true',
    callbackSpelling: env.SIMULATOR_CALLBACK_SPELLING,
    logger: true,
    logLevel: env.LOG_LEVEL,
    ...(demoSecret
      ? {
          demo: {
            jwtSecret: demoSecret,
            serviceUrl: env.SIMULATOR_DEMO_SERVICE_URL,
            issuer: env.AUTH_JWT_ISSUER,
            audience: env.AUTH_JWT_AUDIENCE,
          },
        }
      : {}),
  });
  const log = simulator.app.log;

  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'simulator shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    simulator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'simulator failed to close');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);

  const baseUrl = await simulator.listen(env.SIMULATOR_PORT, env.SIMULATOR_HOST);
  log.info(
    {
      baseUrl,
      publicUrl: simulator.publicUrl,
      accessKeys: Object.entries(accessKeys).map(([id, key]) => ({ id, account: key.account })),
      qps: env.SIMULATOR_QPS,
      probeCallbackUrl: env.SIMULATOR_PROBE_CALLBACK === 'true',
      callbackSpelling: env.SIMULATOR_CALLBACK_SPELLING,
      latencyMs: env.SIMULATOR_LATENCY_MS,
    },
    'cloudauth-intl simulator ready',
  );
  if (demoSecret) {
    log.info(
      {
        demoUrl: `${simulator.publicUrl}/demo`,
        serviceUrl: env.SIMULATOR_DEMO_SERVICE_URL,
        jwtSecretFrom: env.SIMULATOR_DEMO_JWT_SECRET ? 'SIMULATOR_DEMO_JWT_SECRET' : 'AUTH_JWT_SECRET',
      },
      'demo page ready (local use only: it mints caller JWTs for any user name)',
    );
  } else {
    log.info('demo page off: set SIMULATOR_DEMO_JWT_SECRET (or AUTH_JWT_SECRET) to serve /demo');
  }
}

main().catch((err: unknown) => {
  console.error('simulator failed to start', err);
  process.exit(1);
});
