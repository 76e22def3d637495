/**
 * The service with the naive fixed-window limiter in place of its QPS budget, for
 * `npm run bench:budget` only: `node --import tsx bench/lib/baseline-service.ts`, configured from
 * the environment like `node dist/server.js`. The baseline is injected through buildApp; no
 * configuration of the service can select it.
 */
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { FixedWindowLimiter } from './fixed-window.js';

const config = loadConfig();
const app = await buildApp(config, {
  budget: ({ redis }) =>
    new FixedWindowLimiter({
      redis,
      keyPrefix: 'kyc:budget-baseline',
      account: config.CLOUDAUTH_ACCOUNT,
      limits: config.CLOUDAUTH_QPS,
      maxWaitMs: config.CLOUDAUTH_BUDGET_WAIT_MS,
    }),
});
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
await app.listen({ port: config.PORT, host: config.HOST });
