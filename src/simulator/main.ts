/** `npm run simulator`: runs the simulator as a process, configured from the environment. */
import { z } from 'zod';
import { buildSimulator } from './server.js';

const Env = z.object({
  SIMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
  SIMULATOR_HOST: z.string().min(1).default('127.0.0.1'),
  SIMULATOR_ACCESS_KEY_ID: z.string().min(1).default('sim-access-key-id'),
  SIMULATOR_ACCESS_KEY_SECRET: z.string().min(1).default('sim-access-key-secret'),
  SIMULATOR_QPS: z.coerce.number().int().min(0).default(10),
  SIMULATOR_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  SIMULATOR_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  SIMULATOR_REQUIRE_HTTPS_CALLBACK: z.enum(['true', 'false']).default('false'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

function readEnv(): z.infer<typeof Env> {
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
  const simulator = await buildSimulator({
    accessKeys: { [env.SIMULATOR_ACCESS_KEY_ID]: env.SIMULATOR_ACCESS_KEY_SECRET },
    qps: env.SIMULATOR_QPS,
    latencyMs: env.SIMULATOR_LATENCY_MS,
    publicUrl: env.SIMULATOR_PUBLIC_URL,
    requireHttpsCallback: env.SIMULATOR_REQUIRE_HTTPS_CALLBACK === 'true',
    logger: true,
    logLevel: env.LOG_LEVEL,
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
      accessKeyId: env.SIMULATOR_ACCESS_KEY_ID,
      qps: env.SIMULATOR_QPS,
      latencyMs: env.SIMULATOR_LATENCY_MS,
    },
    'cloudauth-intl simulator ready',
  );
}

main().catch((err: unknown) => {
  console.error('simulator failed to start', err);
  process.exit(1);
});
