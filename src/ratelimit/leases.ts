import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { defineScript, type RedisClient } from '../redis/client.js';

/**
 * Takes `ARGV[1]` units of a fixed window's count (`KEYS[1]`, created with a `ARGV[2]`-ms TTL):
 * the count after them, and the window's remaining TTL (ms). One key: fine on a Redis Cluster.
 */
const LEASE_LUA = `
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return { current, ttl }`;

/** Name under which the script is registered on the ioredis client (defineCommand). */
const LEASE_COMMAND = 'kycRateLimitLease';

/** The largest lease: at most this many units, minus one, go unused per instance and window. */
const MAX_LEASE = 16;

export interface LeaseVerdict {
  allowed: boolean;
  max: number;
  /** Requests left in the window, as far as this instance knows (its unused units included). */
  remaining: number;
  /** Seconds until the window ends. */
  ttlInSeconds: number;
}

interface Lease {
  /** performance.now() at which the window ends: the lease goes with it. */
  endsAt: number;
  /** Units of this lease not used yet. */
  left: number;
  /** This lease's size: the next one is twice as large (up to MAX_LEASE). */
  size: number;
  /** Units of the window nobody had taken when this lease was granted. */
  untaken: number;
  /** The next lease, while Redis is asked for it: requests of the key wait for it. */
  asking?: Promise<void>;
}

/**
 * A request limit per key and fixed window, counted in Redis across instances, that asks Redis
 * for units in leases rather than once a request: the first request of a key in a window takes 1
 * unit, each next lease twice as many (2, 4, 8, 16, then 16). An instance serves only units it was
 * granted, and grants never go past `max`, so across all instances no more than `max` requests
 * pass in a window, exactly as when every request asks; an instance that stops serving a key
 * leaves at most MAX_LEASE - 1 of its units unused (the limit is that much stricter, never looser:
 * 15 of the default 300). A frontend polling once a second makes ~7 Redis round trips a minute
 * instead of 60; a burst, 16× fewer. A key that reached `max` is refused locally until its window ends (a count only grows).
 * With Redis unreachable, requests pass (like @fastify/rate-limit's skipOnError) and nothing is
 * remembered.
 */
export class LeasedLimit {
  private readonly leases: LRUCache<string, Lease>;
  private readonly lease: (key: string, size: number, windowMs: number) => Promise<[number, number]>;

  constructor(
    redis: RedisClient,
    private readonly options: { keyPrefix: string; max: number; windowMs: number; maxKeys?: number },
  ) {
    // An evicted lease loses its unused units: the safe direction.
    this.leases = new LRUCache<string, Lease>({ max: options.maxKeys ?? 10_000 });
    this.lease = defineScript<[number, number]>(redis, LEASE_COMMAND, LEASE_LUA);
  }

  /** Counts one request of `key`. */
  async take(key: string): Promise<LeaseVerdict> {
    const { max } = this.options;
    for (;;) {
      const now = performance.now();
      let lease = this.leases.get(key);
      if (lease && now >= lease.endsAt) {
        this.leases.delete(key);
        lease = undefined;
      }
      if (lease?.asking) {
        await lease.asking;
        continue;
      }
      if (lease && lease.left > 0) {
        lease.left--;
        return { allowed: true, max, remaining: lease.untaken + lease.left, ttlInSeconds: Math.ceil((lease.endsAt - now) / 1000) };
      }
      // Exhausted: refused until the window ends, without asking (nobody can give units back).
      if (lease && lease.size === 0) {
        return { allowed: false, max, remaining: 0, ttlInSeconds: Math.ceil((lease.endsAt - now) / 1000) };
      }
      const verdict = await this.ask(key, lease ? Math.min(MAX_LEASE, lease.size * 2) : 1, lease);
      if (verdict) return verdict;
    }
  }

  /**
   * Asks Redis for `size` units of `key` (one request at a time per key: the others wait on
   * `asking`). Resolves with a verdict when Redis failed (allowed) or nothing was granted (refused),
   * undefined when the new lease holds units (take them from it).
   */
  private ask(key: string, size: number, previous: Lease | undefined): Promise<LeaseVerdict | undefined> {
    const { max, windowMs } = this.options;
    const placeholder: Lease = previous ?? { endsAt: Number.POSITIVE_INFINITY, left: 0, size: 0, untaken: 0 };
    let done!: () => void;
    placeholder.asking = new Promise<void>((resolve) => {
      done = resolve;
    });
    if (!previous) this.leases.set(key, placeholder);
    return this.lease(`${this.options.keyPrefix}${key}`, size, windowMs)
      .then(
        ([current, ttl]): LeaseVerdict | undefined => {
          const granted = Math.max(0, Math.min(size, max - (current - size)));
          const endsAt = performance.now() + Number(ttl);
          // size 0 marks an exhausted window (see take).
          this.leases.set(key, { endsAt, left: granted, size: granted === 0 ? 0 : size, untaken: Math.max(0, max - current) });
          if (granted > 0) return undefined;
          return { allowed: false, max, remaining: 0, ttlInSeconds: Math.ceil(Number(ttl) / 1000) };
        },
        (): LeaseVerdict => {
          // Redis unreachable: let it through, remember nothing.
          this.leases.delete(key);
          return { allowed: true, max, remaining: max, ttlInSeconds: Math.ceil(windowMs / 1000) };
        },
      )
      .finally(() => {
        placeholder.asking = undefined;
        done();
      });
  }
}
