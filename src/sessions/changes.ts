import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/**
 * The session change feed: every instance tells every other one (Redis pub/sub) which sessions it
 * changed, so that long polls wake wherever they wait and status caches forget what changed.
 *
 * One channel per deployment, the session ids in the messages: an instance subscribes once (one
 * subscriber connection, however many requests wait) and routes each message to its own waiters
 * by id, in memory. 5,000 waiters cost 5,000 map entries and timers, no Redis command each. The
 * channel carries each change once, to every instance: a few messages per verification (start,
 * callback, result), plus one heartbeat per instance per second.
 *
 * The channel is named like the other keys of a deployment, `kyc:sessions:{<CLOUDAUTH_ACCOUNT>}:changes`.
 * On a Redis Cluster a classic PUBLISH reaches the subscribers on every node, so the channel's
 * slot does not matter; its hash tag puts it in the account's slot, next to the budget's keys,
 * should it move to sharded pub/sub (SPUBLISH), where a channel lives in its slot's shard.
 */
export const changesChannel = (account: string): string => `kyc:sessions:{${account}}:changes`;

/** How often each instance publishes a heartbeat to itself through the channel. */
const HEARTBEAT_INTERVAL_MS = 1000;
/** Without its own heartbeat back for this long, an instance stops trusting the feed (`live()`). */
const HEARTBEAT_TIMEOUT_MS = 3000;
/** Session ids per message: a bulk expiry of thousands goes out as a few messages of bounded size. */
const IDS_PER_MESSAGE = 200;
/** Recent changes remembered by session (changedSince); beyond, they are forgotten at once. */
const CHANGED_AT_MAX = 10_000;

/**
 * What SessionRepository calls after a committed write that changed sessions (their status, or
 * their transactions). It must not throw and returns at once: publishing is not the write's
 * business, and a lost publish costs waiters their timeout, never the answer.
 */
export interface SessionChangeNotifier {
  changed(sessionIds: readonly string[]): void;
}

/** Why a wait ended. */
export type WakeReason = 'changed' | 'timeout' | 'closing' | 'aborted';

/** Forget these sessions, or everything (`all`: changes may have gone unseen). */
export type Invalidation = readonly string[] | 'all';

export interface SessionChangesOptions {
  /** Sends one message on the channel (PUBLISH). */
  publish(message: string): Promise<unknown>;
  /** A change could not be published (Redis unreachable). */
  onPublishFailure?(err: unknown, sessionIds: readonly string[]): void;
  /** The feed started or stopped working for this instance. */
  onLiveChange?(live: boolean): void;
  /** The number of watches (waiting requests) changed. */
  onWaiters?(count: number): void;
}

/**
 * One instance's end of the feed. Messages are `<instance id> c <id>,<id>,…` (changes) and
 * `<instance id> h` (heartbeats). An instance hears its own messages too: its own changes it has
 * already applied locally (before publishing) and skips; its own heartbeat tells it that the whole
 * round trip works, publishing and subscription alike.
 */
export class SessionChanges implements SessionChangeNotifier {
  readonly instanceId = randomUUID();
  /**
   * Moves whenever this instance learns of a change, and when the feed comes or goes (changes may
   * have gone unseen). Read it before reading a session; changedSince(id, version) then tells
   * whether the read may have missed a change of it.
   */
  version = 0;
  /** The version at which each recently changed session last changed (cleared when it grows large). */
  private readonly changedAt = new Map<string, number>();
  /** Anything read before this version may have missed a change (the feed came back, or changedAt was cleared). */
  private floor = 0;
  private heardAt = Number.NEGATIVE_INFINITY;
  private wasLive = false;
  private closed = false;
  private watching = 0;
  private readonly watches = new Map<string, Set<Watch>>();
  private readonly listeners: Array<(invalidation: Invalidation) => void> = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SessionChangesOptions) {}

  /** Calls `listener` with every change this instance learns of (before waiters wake). */
  onInvalidate(listener: (invalidation: Invalidation) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Whether a change of this session was learnt of after `version` (SessionChanges.version read
   * before reading the session): true when it cannot tell.
   */
  changedSince(sessionId: string, version: number): boolean {
    return version < this.floor || (this.changedAt.get(sessionId) ?? -1) > version;
  }

  /** Whether changes made anywhere reach this instance now: its own heartbeat came back lately. */
  live(): boolean {
    const live = performance.now() - this.heardAt < HEARTBEAT_TIMEOUT_MS;
    if (!live && this.wasLive) this.setLive(false);
    return live;
  }

  /**
   * These sessions changed here (a committed write): forget and wake locally at once, then tell
   * the other instances.
   */
  changed(sessionIds: readonly string[]): void {
    if (sessionIds.length === 0) return;
    this.apply(sessionIds);
    for (let i = 0; i < sessionIds.length; i += IDS_PER_MESSAGE) {
      const ids = sessionIds.slice(i, i + IDS_PER_MESSAGE);
      this.options.publish(`${this.instanceId} c ${ids.join(',')}`).catch((err: unknown) => this.options.onPublishFailure?.(err, ids));
    }
  }

  /** A message from the channel. Anything malformed is ignored: the channel is not trusted input. */
  receive(message: string): void {
    const [origin, kind, payload] = message.split(' ', 3);
    if (kind === 'h') {
      if (origin === this.instanceId) this.heard();
      return;
    }
    if (kind !== 'c' || origin === this.instanceId || !payload) return;
    this.apply(payload.split(','));
  }

  /** Starts the heartbeat (at once, then every HEARTBEAT_INTERVAL_MS); call again to send one now. */
  heartbeat(): void {
    if (this.closed) return;
    clearInterval(this.heartbeatTimer);
    const beat = () => {
      this.live(); // notices a feed that went quiet, even with no request asking
      this.options.publish(`${this.instanceId} h`).catch(() => {});
    };
    beat();
    this.heartbeatTimer = setInterval(beat, HEARTBEAT_INTERVAL_MS).unref();
  }

  /**
   * Watches one session from now on: no change of it learnt of after this call goes unnoticed,
   * including one that comes while the caller is still reading. Holds no connection and runs no
   * query: a map entry (and a timer while waiting). Stop it when done.
   */
  watch(sessionId: string): Watch {
    const watch = new Watch(sessionId, (w) => this.unwatch(w));
    if (this.closed) {
      watch.notify('closing');
      return watch;
    }
    let watches = this.watches.get(sessionId);
    if (!watches) this.watches.set(sessionId, (watches = new Set()));
    watches.add(watch);
    this.options.onWaiters?.(++this.watching);
    return watch;
  }

  /** Shutdown: every watch wakes now (to answer with the current status), later ones at once. */
  close(): void {
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    for (const watches of this.watches.values()) for (const watch of watches) watch.notify('closing');
  }

  private unwatch(watch: Watch): void {
    const watches = this.watches.get(watch.sessionId);
    if (!watches?.delete(watch)) return;
    if (watches.size === 0) this.watches.delete(watch.sessionId);
    this.options.onWaiters?.(--this.watching);
  }

  private apply(sessionIds: readonly string[]): void {
    this.version++;
    if (this.changedAt.size + sessionIds.length > CHANGED_AT_MAX) {
      this.changedAt.clear();
      this.floor = this.version;
    }
    for (const id of sessionIds) this.changedAt.set(id, this.version);
    for (const listener of this.listeners) listener(sessionIds);
    for (const id of sessionIds) {
      const watches = this.watches.get(id);
      if (watches) for (const watch of watches) watch.notify('changed');
    }
  }

  private heard(): void {
    // Back after a gap: changes published meanwhile never arrived, so nothing cached before counts.
    if (!this.live()) this.setLive(true);
    this.heardAt = performance.now();
  }

  private setLive(live: boolean): void {
    this.wasLive = live;
    this.floor = ++this.version;
    for (const listener of this.listeners) listener('all');
    this.options.onLiveChange?.(live);
  }
}

/** One request's watch of one session (SessionChanges.watch). */
export class Watch {
  /** What woke it while nobody was waiting: the next wait returns it at once. */
  private pending: WakeReason | undefined;
  private wake: ((reason: WakeReason) => void) | undefined;

  constructor(
    readonly sessionId: string,
    private readonly onStop: (watch: Watch) => void,
  ) {}

  /**
   * Resolves when a change of the session was learnt of since the watch began or the last wait
   * returned (at once if one was), after `timeoutMs`, when the watch stops (the caller went away:
   * `aborted`) or when the feed closes (shutdown).
   */
  wait(timeoutMs: number): Promise<WakeReason> {
    if (this.pending) {
      const reason = this.pending;
      if (reason !== 'closing' && reason !== 'aborted') this.pending = undefined; // those two stay: every later wait ends at once
      return Promise.resolve(reason);
    }
    return new Promise<WakeReason>((resolve) => {
      const timer = setTimeout(() => this.wake?.('timeout'), Math.max(0, timeoutMs));
      this.wake = (reason) => {
        this.wake = undefined;
        clearTimeout(timer);
        resolve(reason);
      };
    });
  }

  /** From the feed: the session changed, or the feed is closing. */
  notify(reason: 'changed' | 'closing'): void {
    if (this.pending === 'aborted') return;
    if (this.pending !== 'closing') this.pending = reason;
    if (!this.wake) return;
    if (this.pending === 'changed') this.pending = undefined; // delivered now
    this.wake(reason);
  }

  /** Ends the watch: a wait in progress, and any later one, resolves as aborted. */
  stop(): void {
    this.pending = 'aborted';
    this.wake?.('aborted');
    this.onStop(this);
  }
}
