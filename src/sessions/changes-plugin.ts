import fp from 'fastify-plugin';
import { Cluster } from 'ioredis';
import { changesChannel, SessionChanges } from './changes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The session change feed (changes.ts): SessionRepository publishes to it, long polls wait on it. */
    sessionChanges: SessionChanges;
  }
}

/**
 * The change feed over Redis pub/sub: changes are published on the shared client, and heard on one
 * subscriber connection of this instance's own (`duplicate()`: a connection in subscriber mode
 * serves nothing else). Redis down: publishes fail fast (counted), the subscriber reconnects by
 * itself and subscribes again at each `ready`; meanwhile the feed is not live (no own heartbeat),
 * so status reads skip the cache and long polls answer at their timeout, with a fresh read.
 */
export default fp(
  async (app) => {
    const channel = changesChannel(app.config.CLOUDAUTH_ACCOUNT);
    const { metrics, log } = app;
    const changes = new SessionChanges({
      publish: (message) => app.redis.publish(channel, message),
      onPublishFailure(err, ids) {
        metrics.sessionChangePublishFailures.inc(ids.length);
        log.warn({ err: { message: err instanceof Error ? err.message : String(err) }, sessions: ids.length }, 'session change not published');
      },
      onLiveChange(live) {
        metrics.sessionChangesLive.set(live ? 1 : 0);
        if (live) log.info('session change feed live');
        else log.warn('session change feed lost: long polls answer at their timeout, status reads skip the cache');
      },
      onWaiters: (count) => metrics.statusWaiters.set(count),
    });
    app.decorate('sessionChanges', changes);

    // A Cluster's duplicate subscribes through ioredis's cluster subscriber (one node; another
    // one, subscribed again, when that node goes); a server's or Sentinel master's subscribes again
    // at each `ready` below.
    const subscriber = app.redis instanceof Cluster ? app.redis.duplicate() : app.redis.duplicate({ autoResubscribe: false });
    // The shared client's connection logs Redis being down; this one's errors would repeat it.
    subscriber.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'change feed subscriber error'));
    subscriber.on('message', (from: string, message: string) => {
      if (from === channel) changes.receive(message);
    });
    const subscribe = () => {
      subscriber.subscribe(channel).then(
        () => changes.heartbeat(),
        (err: Error) => log.warn({ err: { message: err.message } }, 'change feed subscription failed'),
      );
    };
    // duplicate() connects in the background: 'ready' comes after this, and again after each reconnect.
    subscriber.on('ready', subscribe);

    // Waiting requests answer at once on close (with a fresh read, while the database is still
    // open), so they never hold up a shutdown.
    app.addHook('preClose', (done) => {
      changes.close();
      done();
    });
    app.addHook('onClose', async () => {
      subscriber.disconnect();
    });
  },
  { name: 'session-changes', dependencies: ['config', 'redis', 'metrics'] },
);
