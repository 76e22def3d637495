import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { startRedis, stop } from './helpers/redis-server.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { buildApp } from '../src/app.js';
import { DATABASE_URL, dropSchemas, freePort, freshDatabaseUrl, LogCapture, startStack, testConfig, waitFor, type Stack } from './helpers/stack.js';

interface Readiness {
  status: 'ready' | 'not_ready';
  checks: Record<'postgres' | 'redis' | 'config' | 'load', string>;
}

/** GET /readyz, timed. */
async function readyz(stack: Stack): Promise<{ status: number; body: Readiness; ms: number }> {
  const startedAt = Date.now();
  const res = await fetch(`${stack.appUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as Readiness, ms: Date.now() - startedAt };
}

const stacks: Stack[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});
async function stackWith(env: Record<string, string>): Promise<Stack> {
  const stack = await startStack({ env });
  stacks.push(stack);
  cleanups.push(() => stack.close());
  return stack;
}

describe('/readyz', () => {
  test('200 with every check ok; /healthz 200', async () => {
    const stack = await stackWith({});
    const r = await readyz(stack);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'ready', checks: { postgres: 'ok', redis: 'ok', config: 'ok', load: 'ok' } });
    const live = await fetch(`${stack.appUrl}/healthz`);
    assert.equal(live.status, 200);
  });

  test('503 naming redis while Redis is down, 200 again once it is back', async () => {
    const port = await freePort();
    let redis: ChildProcess | undefined = await startRedis(port);
    cleanups.push(() => stop(redis));
    const stack = await stackWith({ REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal((await readyz(stack)).status, 200);

    await stop(redis);
    const down = await readyz(stack);
    assert.equal(down.status, 503);
    assert.equal(down.body.status, 'not_ready');
    assert.notEqual(down.body.checks.redis, 'ok');
    assert.equal(down.body.checks.postgres, 'ok');
    assert.ok(down.ms < 1000, `answered in ${down.ms} ms`);
    assert.ok(stack.logs.lines.some((l) => l.includes('"not ready"') && l.includes('"redis"')), 'the reason is logged');

    redis = await startRedis(port);
    const back = await waitFor('readiness with Redis back', async () => {
      const r = await readyz(stack);
      return r.status === 200 ? r : undefined;
    });
    assert.equal(back.body.checks.redis, 'ok');

    // A Redis that never answers (stopped, connection open): the check gives up in time.
    redis.kill('SIGSTOP');
    try {
      const silent = await readyz(stack);
      assert.equal(silent.status, 503);
      assert.equal(silent.body.checks.redis, 'timeout');
      assert.ok(silent.ms < 1000, `answered in ${silent.ms} ms`);
    } finally {
      redis.kill('SIGCONT');
    }
    await waitFor('readiness after the silent Redis', async () => ((await readyz(stack)).status === 200 ? true : undefined));
  });

  test('503 naming postgres while PostgreSQL is unreachable or silent, 200 again once it is back', async () => {
    // The app reaches PostgreSQL through a proxy the test can cut (new connections refused) or blackhole.
    const db = new URL(DATABASE_URL);
    const proxy = new TcpProxy({ host: db.hostname, port: Number(db.port || 5432) });
    const databaseUrl = new URL(await freshDatabaseUrl());
    databaseUrl.port = String(await proxy.listen());
    const config = testConfig({ DATABASE_URL: databaseUrl.toString() });
    const app = await buildApp(config, { logStream: new LogCapture() });
    cleanups.push(async () => {
      proxy.cut(); // nothing left waiting on a held connection
      proxy.restore(); // PostgreSQL back, so the job queue stops cleanly
      await app.close();
      await proxy.close();
      await dropSchemas(config);
    });
    const stack = { appUrl: await app.listen({ port: 0, host: '127.0.0.1' }) } as Stack;
    assert.equal((await readyz(stack)).status, 200);

    proxy.cut();
    const down = await readyz(stack);
    assert.equal(down.status, 503);
    assert.equal(down.body.status, 'not_ready');
    assert.equal(down.body.checks.postgres, 'error');
    assert.equal(down.body.checks.redis, 'ok');
    assert.ok(down.ms < 1000, `answered in ${down.ms} ms`);

    proxy.restore();
    const back = await waitFor('readiness with PostgreSQL back', async () => {
      const r = await readyz(stack);
      return r.status === 200 ? r : undefined;
    });
    assert.equal(back.body.checks.postgres, 'ok');

    // Connections accepted, nothing answered: the check gives up in time.
    // (The pool's connections are reset first, so the first probes may see that as an error.)
    proxy.blackhole();
    const seen: string[] = [];
    for (let i = 0; i < 5 && !seen.includes('timeout'); i++) {
      const silent = await readyz(stack);
      assert.equal(silent.status, 503);
      assert.ok(silent.ms < 1000, `answered in ${silent.ms} ms`);
      seen.push(silent.body.checks.postgres);
    }
    assert.ok(seen.includes('timeout'), `postgres checks: ${seen.join(', ')}`);
    proxy.cut(); // drops the held connections, so nothing waits on them
    proxy.restore();
    await waitFor('readiness after the silent database', async () => ((await readyz(stack)).status === 200 ? true : undefined));
  });
});

describe('overload (@fastify/under-pressure)', () => {
  test('503 OVERLOADED with Retry-After on the API; /healthz, /readyz (load: overloaded) and /metrics still answer', async () => {
    // Any heap is above 1 byte: overloaded from the first sample (after 1 s) on.
    const stack = await stackWith({ OVERLOAD_MAX_HEAP_USED_BYTES: '1', OVERLOAD_RETRY_AFTER_S: '7' });
    await waitFor('the first pressure sample', async () => (stack.app.isUnderPressure() ? true : undefined), 5000);
    const res = await fetch(`${stack.appUrl}/kyc/sessions/abc`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '7');
    assert.equal(((await res.json()) as { code: string }).code, 'OVERLOADED');
    assert.equal((await fetch(`${stack.appUrl}/healthz`)).status, 200);
    const r = await readyz(stack);
    assert.equal(r.status, 503);
    assert.deepEqual(r.body.checks, { postgres: 'ok', redis: 'ok', config: 'ok', load: 'overloaded' });
    const metrics = await fetch(`${stack.appUrl}/metrics`); // no METRICS_TOKEN: open
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /kyc_http_request_duration_seconds_count\{method="GET",route="\/kyc\/sessions\/:merchantBizId",status_code="503"\} 1/);
  });

  test('the default thresholds do not trip in normal operation', async () => {
    const stack = await stackWith({});
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(stack.app.isUnderPressure(), false);
    assert.equal((await fetch(`${stack.appUrl}/kyc/sessions/abc`)).status, 401);
  });
});
