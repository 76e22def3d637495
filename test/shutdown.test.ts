import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSimulator, type Simulator } from '../src/simulator/server.js';
import { signToken } from './helpers/jwt.js';
import { dropSchemas, freePort, freshDatabaseUrl, META_INFO, randomId, REDIS_URL, SIM_KEY_ID, SIM_KEY_SECRET } from './helpers/stack.js';

let sim: Simulator | undefined;
let schemas: { DATABASE_URL: string; JOBS_SCHEMA: string } | undefined;
let service: ChildProcess | undefined;
after(async () => {
  // A failed assertion before the SIGTERM must not leave the service running.
  if (service && service.exitCode === null && service.signalCode === null) service.kill('SIGKILL');
  await sim?.close();
  if (schemas) await dropSchemas(schemas);
});

test('SIGTERM under load: in-flight requests finish, new ones are refused, nothing is dropped', async (t) => {
  // Alibaba answers in 300 ms, so requests are in flight when the signal comes.
  // No CallbackUrl check: the service answers a bare GET /kyc/callback with 400 (for now).
  const upstream = await buildSimulator({ accessKeys: { [SIM_KEY_ID]: SIM_KEY_SECRET }, qps: 0, latencyMs: 300 });
  sim = upstream;
  const simUrl = await upstream.listen(0, '127.0.0.1');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  schemas = { DATABASE_URL: await freshDatabaseUrl(), JOBS_SCHEMA: `jobs_${randomId()}`.toLowerCase() };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.SHUTDOWN_DEBUG ? 'info' : 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: schemas.DATABASE_URL,
      REDIS_URL,
      ALIBABA_CLOUD_ACCESS_KEY_ID: SIM_KEY_ID,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: SIM_KEY_SECRET,
      CLOUDAUTH_ENDPOINT: simUrl,
      CLOUDAUTH_ACCOUNT: randomId('acct'),
      CLOUDAUTH_QPS: '1000',
      KYC_MAX_STARTS_PER_USER_PER_DAY: '10000',
      PUBLIC_BASE_URL: base,
      AUTH_JWT_SECRET: 'test-jwt-secret-0123456789-abcdefghij',
      USER_ID_HASH_SECRET: 'test-user-id-hash-secret-0123456789',
      JOBS_SCHEMA: schemas.JOBS_SCHEMA,
    },
    stdio: ['ignore', process.env.SHUTDOWN_DEBUG ? 'inherit' : 'ignore', 'inherit'],
  });
  service = child;
  const exited = once(child, 'exit');
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    assert.ok(i < 200, 'the service did not become ready');
    await sleep(100);
  }

  const token = await signToken('shutdown-user', { secret: 'test-jwt-secret-0123456789-abcdefghij' });
  const start = () =>
    fetch(`${base}/kyc/start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ metaInfo: META_INFO }),
    }).then(
      (r) => r.status,
      () => 0, // connection refused: the listener is gone (a load balancer sends no more)
    );
  const inFlight = Array.from({ length: 20 }, start);
  // SIGTERM once all 20 are being served (each is waiting on Alibaba's 300 ms answer).
  for (let i = 0; upstream.calls.list().filter((c) => c.action === 'Initialize').length < 20; i++) {
    // Generous: what is tested is the shutdown, not how fast a busy 2-core machine serves 20 starts.
    assert.ok(i < 3000, 'the requests did not reach the upstream within 30 s');
    await sleep(10);
  }
  child.kill('SIGTERM');
  await sleep(50);
  const afterSignal = await Promise.all(Array.from({ length: 10 }, start));
  const ready = await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
  const statuses = await Promise.all(inFlight);
  const [code] = await exited;

  t.diagnostic(`in flight: ${JSON.stringify(statuses)}; after SIGTERM: ${JSON.stringify(afterSignal)}; readyz ${ready}`);
  assert.deepEqual(statuses, Array(20).fill(201), 'every request in flight at SIGTERM finished');
  assert.ok(afterSignal.every((s) => s === 0 || s === 503), 'new requests are refused, not half-served');
  assert.ok(ready === 0 || ready === 503, 'not ready while shutting down');
  assert.equal(code, 0, 'a clean exit');
});
