/**
 * The change feed and the status cache on their own (no Redis: messages are handed over by the
 * test): no change is lost between a read and a wait, another instance's messages wake and evict,
 * the cache serves only while the feed is live and never keeps a row a change overtook.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionChanges } from '../src/sessions/changes.js';
import { StatusCache } from '../src/sessions/status-cache.js';

/** A feed whose published messages are collected (and can be delivered back, as Redis would). */
function feed() {
  const sent: string[] = [];
  const changes = new SessionChanges({ publish: async (message) => sent.push(message) });
  /** Delivers every message sent so far (its own heartbeat included). */
  const deliver = () => {
    for (const message of sent.splice(0)) changes.receive(message);
  };
  return { changes, sent, deliver };
}

/** A message as another instance publishes it. */
const fromOther = (ids: string[]) => `00000000-0000-4000-8000-000000000000 c ${ids.join(',')}`;

describe('SessionChanges', () => {
  test('a change that comes between the read and the wait is not lost', async () => {
    const { changes } = feed();
    const watch = changes.watch('s1');
    changes.receive(fromOther(['s1'])); // while the caller was still reading
    assert.equal(await watch.wait(5000), 'changed');
    watch.stop();
  });

  test("another instance's change wakes the waiters of that session only; malformed messages are ignored", async () => {
    const { changes } = feed();
    const mine = changes.watch('s1');
    const other = changes.watch('s2');
    const woken = mine.wait(5000);
    const notWoken = other.wait(150);
    for (const junk of ['', 'x', 'x c', `${changes.instanceId}`, 'a b c d', 'x h']) changes.receive(junk);
    changes.receive(fromOther(['s3', 's1']));
    assert.equal(await woken, 'changed');
    assert.equal(await notWoken, 'timeout');
    mine.stop();
    other.stop();
  });

  test('a change made here wakes local waiters at once and is published once, in bounded messages', async () => {
    const { changes, sent } = feed();
    const watch = changes.watch('s1');
    const woken = watch.wait(5000);
    const ids = ['s1', ...Array.from({ length: 450 }, (_, i) => `x${i}`)];
    changes.changed(ids);
    assert.equal(await woken, 'changed');
    assert.equal(sent.length, 3, 'three messages of at most 200 ids');
    assert.deepEqual(sent.flatMap((m) => m.split(' ')[2]!.split(',')), ids);
    // Its own message coming back through Redis is not applied twice.
    const before = changes.version;
    for (const message of sent) changes.receive(message);
    assert.equal(changes.version, before);
    watch.stop();
  });

  test('changedSince tells whether a session changed after a version was read', () => {
    const { changes } = feed();
    const v = changes.version;
    changes.receive(fromOther(['s1']));
    assert.equal(changes.changedSince('s1', v), true);
    assert.equal(changes.changedSince('s2', v), false);
    assert.equal(changes.changedSince('s1', changes.version), false);
  });

  test('close wakes every waiter, and later waits end at once', async () => {
    const { changes } = feed();
    const watch = changes.watch('s1');
    const waiting = watch.wait(5000);
    changes.close();
    assert.equal(await waiting, 'closing');
    assert.equal(await changes.watch('s2').wait(5000), 'closing');
  });

  test('stop ends a wait in progress as aborted', async () => {
    const { changes } = feed();
    const watch = changes.watch('s1');
    const waiting = watch.wait(5000);
    watch.stop();
    assert.equal(await waiting, 'aborted');
  });

  test('live only once its own heartbeat came back; coming back after a gap forgets everything', () => {
    const { changes, deliver } = feed();
    const invalidations: unknown[] = [];
    changes.onInvalidate((i) => invalidations.push(i));
    assert.equal(changes.live(), false);
    changes.heartbeat();
    assert.equal(changes.live(), false, 'not before the heartbeat came back');
    deliver();
    assert.equal(changes.live(), true);
    assert.deepEqual(invalidations, ['all']);
    changes.close();
  });
});

describe('StatusCache', () => {
  const row = (id: string, status: string) => ({ id, status });

  function liveCache() {
    const f = feed();
    f.changes.heartbeat();
    f.deliver();
    const cache = new StatusCache<{ id: string; status: string }>(f.changes, { ttlMs: 60_000 });
    return { ...f, cache };
  }

  test('serves a loaded row until a change of its session evicts it', async () => {
    const { changes, cache } = liveCache();
    const key = StatusCache.key('ref1', 'biz1');
    await cache.load(key, changes.version, async () => row('s1', 'pending')).row;
    assert.deepEqual(cache.get(key), row('s1', 'pending'));
    changes.receive(fromOther(['s1']));
    assert.equal(cache.get(key), undefined);
    changes.close();
  });

  test('keeps no row when its session changed while it was read', async () => {
    const { changes, cache } = liveCache();
    const key = StatusCache.key('ref1', 'biz1');
    const version = changes.version;
    await cache.load(key, version, async () => {
      changes.receive(fromOther(['s1'])); // the change overtakes the query
      return row('s1', 'pending');
    }).row;
    assert.equal(cache.get(key), undefined);
    changes.close();
  });

  test('reads of the same key under way share one query', async () => {
    const { changes, cache } = liveCache();
    const key = StatusCache.key('ref1', 'biz1');
    let queries = 0;
    const load = async () => {
      queries++;
      await new Promise((r) => setTimeout(r, 20));
      return row('s1', 'pending');
    };
    const first = cache.load(key, changes.version, load);
    const second = cache.load(key, changes.version, load);
    assert.equal(first.shared, false);
    assert.equal(second.shared, true);
    assert.deepEqual(await second.row, await first.row);
    assert.equal(queries, 1);
    changes.close();
  });

  test('serves nothing while the feed is not live', async () => {
    const { changes } = feed();
    const cache = new StatusCache<{ id: string; status: string }>(changes, { ttlMs: 60_000 });
    const key = StatusCache.key('ref1', 'biz1');
    await cache.load(key, changes.version, async () => row('s1', 'pending')).row;
    assert.equal(cache.get(key), undefined);
    changes.close();
  });
});
