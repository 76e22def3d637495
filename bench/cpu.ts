/**
 * `npm run bench:cpu`: the service's CPU time per request under a saturating flood, next to a bare
 * Fastify route's: forged callbacks (refused by the callback gate), and GET /healthz (every plugin,
 * logged). CPU time is read from /proc/<pid>/stat around each flood, so it does not depend on how
 * fast the load generator (which shares the machine) can send. Prints numbers; asserts nothing.
 *
 * The service runs as the Docker image runs it unless BENCH_NODE_FLAGS says otherwise; no upstream
 * is needed (nothing here calls Alibaba). Knobs: BENCH_FLOOD_SECONDS (5), BENCH_CONNECTIONS (50).
 */
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { cpuMs, serviceNodeFlags, startNode, startService, type Child } from './lib/processes.js';
import { BENCH_DATABASE_URL, benchDatabase } from './lib/runs.js';

const SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const APP_PORT = 13200;
const BARE_PORT = 13201;
const APP = `http://127.0.0.1:${APP_PORT}`;
const BARE = `http://127.0.0.1:${BARE_PORT}`;

async function flood(name: string, child: Child, url: string, paths: string[]) {
  const requests = paths.map((path) => ({ method: 'GET' as const, path }));
  await autocannon({ url, connections: CONNECTIONS, duration: 2, requests }); // warm-up (JIT)
  const before = cpuMs(child.process.pid!);
  const startedAt = Date.now();
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, requests });
  const cpu = cpuMs(child.process.pid!) - before;
  const perRequestUs = (cpu * 1000) / result.requests.total;
  const busy = (100 * cpu) / (Date.now() - startedAt);
  console.log(`| ${name} | ${perRequestUs.toFixed(1)} µs | ${Math.round(result.requests.average)} req/s | ${busy.toFixed(0)} % | ${result['2xx']} / ${result.non2xx} / ${result.errors} |`);
  return perRequestUs;
}

const database = await benchDatabase(BENCH_DATABASE_URL);
const children: Child[] = [];
try {
  const app = await startService(APP_PORT, {
    DATABASE_URL: database.url,
    ALIBABA_CLOUD_ACCESS_KEY_ID: 'bench-key-id',
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'bench-key-secret',
    CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9',
    CLOUDAUTH_ACCOUNT: `bench-cpu-${randomBytes(4).toString('hex')}`,
    JOBS_SCHEMA: database.jobsSchema,
    PUBLIC_BASE_URL: APP,
    AUTH_JWT_SECRET: randomBytes(24).toString('hex'),
  }, { keepLine: () => false });
  children.push(app);
  const bare = await startNode('bench/lib/bare-route.mjs', { BARE_PORT: String(BARE_PORT) }, `${BARE}/healthz`);
  children.push(bare);

  const forged = Array.from({ length: 40 }, () => {
    const query = new URLSearchParams({
      merchantBizId: randomBytes(8).toString('hex'),
      transactionId: `sim${randomBytes(12).toString('hex')}`,
      passed: 'Y',
      subCode: '200',
      callbackToken: randomBytes(32).toString('base64url'),
    });
    return `/kyc/callback?${query}`;
  });
  console.log(`\nCPU per request under a ${SECONDS}-s flood, ${CONNECTIONS} connections (service: node ${serviceNodeFlags()})`);
  console.log('| flood | server CPU per request | requests/s | server CPU busy | 2xx / other / errors |');
  console.log('| --- | --- | --- | --- | --- |');
  const bareUs = await flood('bare Fastify route, forged callbacks (own process)', bare, BARE, forged);
  const forgedUs = await flood('the service, forged callbacks (the callback gate)', app, APP, forged);
  const healthUs = await flood('the service, GET /healthz (every plugin, logged)', app, APP, ['/healthz']);
  console.log(`\nForged refusal: ${(forgedUs / bareUs).toFixed(2)}× the bare route's CPU; /healthz ${(healthUs / bareUs).toFixed(2)}×.`);
} finally {
  for (const child of children.reverse()) await child.stop();
  await database.drop();
}
