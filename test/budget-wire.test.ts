/**
 * The QPS budget where Alibaba counts: the wire. Between the service and "Alibaba" (a simulator),
 * a TCP relay notes when each connection opened and when its first bytes came: a call's connection
 * is opened before its budget slot, and its request written at the slot.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { freePort, META_INFO, randomId, startStack, type Stack } from './helpers/stack.js';

interface Connection {
  openedAt: number;
  firstDataAt?: number;
}

/** Relays TCP to `target`, noting each connection's opening and first request bytes. */
class RecordingRelay {
  readonly connections: Connection[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Close the first connection that carried nothing for this long (a server's idle timeout). */
  closeFirstIdleAfterMs: number | undefined;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const record: Connection = { openedAt: performance.now() };
    this.connections.push(record);
    const upstream = connect(this.target);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    if (this.closeFirstIdleAfterMs !== undefined) {
      const idle = this.closeFirstIdleAfterMs;
      setTimeout(() => {
        if (record.firstDataAt === undefined) {
          this.closeFirstIdleAfterMs = undefined;
          client.destroy();
        }
      }, idle);
    }
    client.once('data', () => (record.firstDataAt = performance.now()));
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

const stacks: Stack[] = [];
const relays: RecordingRelay[] = [];
after(async () => {
  for (const s of stacks) await s.close();
  for (const r of relays) await r.close();
});

/** A service whose Alibaba is a simulator behind a recording relay. */
async function relayedStack(env: Record<string, string>): Promise<{ stack: Stack; upstream: Stack; relay: RecordingRelay }> {
  // Only its simulator is used. Answering in 500 ms, it keeps the first call's connection busy
  // while the second call prepares: the second opens a connection of its own.
  const upstream = await startStack({ simLatencyMs: 500 });
  stacks.push(upstream);
  const sim = new URL(upstream.simUrl);
  const relay = new RecordingRelay({ host: sim.hostname, port: Number(sim.port) });
  await relay.listen();
  relays.push(relay);
  const stack = await startStack({ env: { CLOUDAUTH_ENDPOINT: `http://127.0.0.1:${relay.port}`, ...env } });
  stacks.push(stack);
  return { stack, upstream, relay };
}

const startTwo = async (stack: Stack) => {
  const api = clientFor(stack);
  return Promise.all([0, 1].map(async () => api.start(await signToken(randomId('u')), { metaInfo: META_INFO, merchantBizId: randomId('w') })));
};

describe('the QPS budget on the wire', () => {
  test('a queued call opens its connection before its slot and writes its request at the slot; the delay is measured', async () => {
    const { stack, relay } = await relayedStack({ CLOUDAUTH_QPS_INITIALIZE: '1', CLOUDAUTH_BUDGET_WAIT_MS: '3000', CLOUDAUTH_BUDGET_MARGIN_MS: '40' });
    const results = await startTwo(stack);
    assert.deepEqual(results.map((r) => r.status), [201, 201], JSON.stringify(results.map((r) => r.body)));

    // Two connections, both opened at once; the second carried its request a slot (≥ 1 s) later.
    assert.equal(relay.connections.length, 2);
    const [first, second] = [...relay.connections].sort((a, b) => a.firstDataAt! - b.firstDataAt!);
    assert.ok(Math.abs(second!.openedAt - first!.openedAt) < 500, 'both connections opened before the first slot');
    assert.ok(second!.firstDataAt! - second!.openedAt >= 900, `the second request waited ${second!.firstDataAt! - second!.openedAt} ms on its open connection`);
    assert.ok(second!.firstDataAt! - first!.firstDataAt! >= 1000, 'the requests arrived at least 1 s apart');

    // The instance measured each call's dispatch delay and sized its margin from it.
    const calls = stack.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'upstream call');
    assert.equal(calls.length, 2);
    for (const c of calls) {
      assert.ok(Number(c.dispatchMs) >= 0 && Number(c.dispatchMs) < 1000, `dispatchMs ${c.dispatchMs}`);
      assert.ok(Number(c.marginMs) >= 40, `marginMs ${c.marginMs}`);
      assert.ok(Number(c.slotAtMs) > 0);
    }
    const metrics = await stack.app.metrics.registry.metrics();
    assert.match(metrics, /^kyc_budget_dispatch_delay_seconds_count\{api="Initialize",outcome="sent"\} 2$/m);
    const margin = Number(/^kyc_budget_margin_seconds (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(margin >= 0.04 + 0.005 && margin <= 0.04 + 0.2, `margin ${margin} s`);
  });

  test('a held connection the server closes before the slot: the request goes out on a new one, once', async () => {
    const { stack, upstream, relay } = await relayedStack({ CLOUDAUTH_QPS_INITIALIZE: '1', CLOUDAUTH_BUDGET_WAIT_MS: '3000' });
    relay.closeFirstIdleAfterMs = 300; // the queued call's connection, long before its slot
    const results = await startTwo(stack);
    assert.deepEqual(results.map((r) => r.status), [201, 201], JSON.stringify(results.map((r) => r.body)));
    assert.equal(relay.connections.filter((c) => c.firstDataAt === undefined).length, 1, 'the closed connection carried nothing');
    const calls = (await clientFor(upstream).sim.calls()).body.filter((c) => c.action === 'Initialize');
    assert.equal(calls.length, 2, 'each call reached Alibaba once');
  });

  test('an unreachable Alibaba costs no slot: the connection fails before the budget is asked', async () => {
    const stack = await startStack({ env: { CLOUDAUTH_ENDPOINT: `http://127.0.0.1:${await freePort()}`, CLOUDAUTH_QPS_INITIALIZE: '1' } });
    stacks.push(stack);
    const res = await clientFor(stack).start(await signToken(randomId('u')), { metaInfo: META_INFO });
    assert.equal(res.status, 502);
    assert.equal(res.body.code, 'UPSTREAM_ERROR');
    assert.equal(await stack.app.redis.exists(`kyc:budget:${stack.config.CLOUDAUTH_ACCOUNT}:Initialize`), 0, 'no reservation was made');
  });
});
