import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { parseConfig } from '../src/config/load.js';
import { createRedis, type RedisClient } from '../src/redis/client.js';
import { freePort } from './helpers/stack.js';
import { configErrorOf } from './helpers/config-errors.js';

const base = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test',
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'id',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'secret',
  PUBLIC_BASE_URL: 'https://kyc.shop.example',
  AUTH_JWT_SECRET: 'x'.repeat(32),
  USER_ID_HASH_SECRET: 'y'.repeat(32),
};
const URL_FORM = { REDIS_URL: 'redis://127.0.0.1:6379' };
const SENTINEL_FORM = { REDIS_SENTINELS: 's1:26379, s2:26380', REDIS_SENTINEL_NAME: 'mymaster' };
const CLUSTER_FORM = { REDIS_CLUSTER_NODES: '10.0.0.1:6379,[fd00::2]:7000' };

const errorOf = configErrorOf;

describe('the Redis forms in the configuration', () => {
  test('each form alone is accepted, addresses parsed', () => {
    assert.equal(parseConfig({ ...base, ...URL_FORM }).REDIS_URL, 'redis://127.0.0.1:6379');
    const sentinel = parseConfig({ ...base, ...SENTINEL_FORM, REDIS_PASSWORD: 'p', REDIS_SENTINEL_PASSWORD: 'q' });
    assert.deepEqual(sentinel.REDIS_SENTINELS, [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
    ]);
    assert.equal(sentinel.REDIS_SENTINEL_NAME, 'mymaster');
    assert.deepEqual(parseConfig({ ...base, ...CLUSTER_FORM }).REDIS_CLUSTER_NODES, [
      { host: '10.0.0.1', port: 6379 },
      { host: 'fd00::2', port: 7000 },
    ]);
  });

  test('none: REDIS_URL is required, and the other forms are named', () => {
    assert.match(errorOf(base), /REDIS_URL: is required \(or REDIS_SENTINELS with REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES\)/);
  });

  test('two forms at once are refused, naming both', () => {
    assert.match(errorOf({ ...base, ...URL_FORM, ...CLUSTER_FORM }), /REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_CLUSTER_NODES/);
    assert.match(errorOf({ ...base, ...SENTINEL_FORM, ...CLUSTER_FORM }), /set only one of REDIS_SENTINELS, REDIS_CLUSTER_NODES/);
    assert.match(errorOf({ ...base, ...URL_FORM, ...SENTINEL_FORM }), /set only one of REDIS_URL, REDIS_SENTINELS/);
  });

  test('variables of another form are refused rather than ignored', () => {
    assert.match(errorOf({ ...base, REDIS_SENTINELS: 's1:26379' }), /REDIS_SENTINEL_NAME: is required with REDIS_SENTINELS/);
    assert.match(errorOf({ ...base, ...URL_FORM, REDIS_SENTINEL_NAME: 'm' }), /REDIS_SENTINEL_NAME: is only used with REDIS_SENTINELS/);
    assert.match(errorOf({ ...base, ...CLUSTER_FORM, REDIS_SENTINEL_PASSWORD: 'q' }), /REDIS_SENTINEL_PASSWORD: is only used with REDIS_SENTINELS/);
    assert.match(errorOf({ ...base, ...URL_FORM, REDIS_PASSWORD: 'p' }), /REDIS_PASSWORD: put the password in REDIS_URL/);
  });

  for (const bad of ['s1', 's1:', ':6379', 's1:99999', 'fd00::2:7000', 'redis://s1:6379']) {
    test(`a bad address (${bad}) is named`, () => {
      assert.match(errorOf({ ...base, REDIS_CLUSTER_NODES: bad }), /\n {2}REDIS_CLUSTER_NODES\.0: each (address must be host:port|port must be 1-65535)/);
    });
  }
});

describe('the client of each form fails fast when nothing answers', () => {
  const clients: RedisClient[] = [];
  after(() => {
    for (const c of clients) c.disconnect();
  });

  // Ports nothing listens on: connections are refused, as when Redis is down.
  const cases: Array<[string, () => Promise<Record<string, string>>, typeof Redis | typeof Cluster]> = [
    ['one server', async () => ({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }), Redis],
    ['Sentinel', async () => ({ REDIS_SENTINELS: `127.0.0.1:${await freePort()}`, REDIS_SENTINEL_NAME: 'm' }), Redis],
    ['Cluster', async () => ({ REDIS_CLUSTER_NODES: `127.0.0.1:${await freePort()}` }), Cluster],
  ];
  for (const [form, env, kind] of cases) {
    test(`${form}: a command is refused at once, not queued`, async () => {
      const redis = createRedis(parseConfig({ ...base, ...(await env()) }));
      redis.on('error', () => {});
      clients.push(redis);
      assert.ok(redis instanceof kind);
      const t0 = Date.now();
      await assert.rejects(redis.ping());
      assert.ok(Date.now() - t0 < 300, `refused after ${Date.now() - t0} ms`);
    });
  }
});
