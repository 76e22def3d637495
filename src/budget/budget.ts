import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RedisClient } from '../redis/client.js';
import { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';
import { RESERVE_COMMAND, RESERVE_LUA } from './script.js';
import { runAt } from './timing.js';

export interface BudgetOptions {
  /** Shared ioredis client (a server or a Cluster); it should fail fast (see src/redis/options.ts). */
  redis: RedisClient;
  /** e.g. "kyc:budget" */
  keyPrefix: string;
  /** Alibaba Cloud account the limit belongs to (all services using it must agree). */
  account: string;
  /** Calls allowed per window, per API name, or one number for every API. */
  limits: Record<string, number> | number;
  /** Longest a caller may be queued for a slot before BudgetExhaustedError. */
  maxWaitMs: number;
  /** Added to the window: half absorbs late starts, half the jitter on the way to Alibaba. Default 40 ms. */
  marginMs?: number;
  /** Length of the limit window before the margin. Default 1000 ms (QPS). */
  windowMs?: number;
  /** Deadline for getting an answer from Redis (incl. waiting for a connection). Default 300 ms. */
  commandTimeoutMs?: number;
}

export interface AcquireOptions {
  /** Abort while queued: the slot is given back and acquire rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Overrides BudgetOptions.maxWaitMs for this call. */
  maxWaitMs?: number;
}

export interface Grant {
  api: string;
  /** Reservations made: more than 1 when the caller woke too late for a slot and queued again. */
  attempts: number;
  /** Reserved start time, epoch ms on Redis's clock. */
  slotAtMs: number;
  /** How long the caller was told to wait (ms). */
  delayMs: number;
}

export const DEFAULT_MARGIN_MS = 40;
/** Reservations one caller may make when it keeps waking too late (an overloaded process). */
const MAX_LATE_ATTEMPTS = 3;
export const DEFAULT_WINDOW_MS = 1000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 300;

type ReserveFn = (
  key: string,
  limit: number,
  windowUs: number,
  maxWaitUs: number,
  member: string,
  peek?: '1',
) => Promise<unknown>;

interface ReserveReply {
  granted: boolean;
  /** delay if granted, else retry-after (µs) */
  valueUs: number;
  nowUs: number;
}

function parseReply(reply: unknown): ReserveReply {
  if (!Array.isArray(reply) || reply.length < 3) {
    throw new Error(`unexpected reply from budget script: ${JSON.stringify(reply)}`);
  }
  const [granted, valueUs, nowUs] = reply.map(Number);
  if (!Number.isFinite(valueUs) || !Number.isFinite(nowUs)) {
    throw new Error(`unexpected reply from budget script: ${JSON.stringify(reply)}`);
  }
  return { granted: granted === 1, valueUs: valueUs as number, nowUs: nowUs as number };
}

function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a finite number >= 0`);
}

function checkLimit(api: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new TypeError(`QPS limit for ${api} must be a positive integer, got ${value}`);
  }
}

/**
 * Fleet-wide sliding-window QPS budget. At most `limit` calls per API start in
 * any window of `windowMs + marginMs` (Redis clock), across every process that
 * shares the Redis key. Callers are served in arrival order at Redis; each
 * acquire costs one Redis command (plus one ZREM if it is aborted while queued).
 */
export class QpsBudget {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly account: string;
  private readonly limits: Record<string, number> | number;
  private readonly maxWaitMs: number;
  private readonly windowUs: number;
  private readonly maxLatenessMs: number;
  private readonly commandTimeoutMs: number;
  private readonly memberPrefix = randomBytes(6).toString('hex');
  private seq = 0;
  private readyWait: Promise<void> | undefined;

  constructor(opts: BudgetOptions) {
    if (!opts.keyPrefix || !opts.account) throw new TypeError('keyPrefix and account are required');
    if (typeof opts.limits === 'number') checkLimit('every API', opts.limits);
    else for (const [api, n] of Object.entries(opts.limits)) checkLimit(api, n);
    checkNonNegative('maxWaitMs', opts.maxWaitMs);
    const marginMs = opts.marginMs ?? DEFAULT_MARGIN_MS;
    checkNonNegative('marginMs', marginMs);
    const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) throw new TypeError('windowMs must be > 0');
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(this.commandTimeoutMs > 0)) throw new TypeError('commandTimeoutMs must be > 0');

    this.redis = opts.redis;
    this.keyPrefix = opts.keyPrefix;
    this.account = opts.account;
    this.limits = typeof opts.limits === 'number' ? opts.limits : { ...opts.limits };
    this.maxWaitMs = opts.maxWaitMs;
    this.windowUs = Math.round((windowMs + marginMs) * 1000);
    this.maxLatenessMs = marginMs / 2;

    if (typeof (this.redis as unknown as Record<string, unknown>)[RESERVE_COMMAND] !== 'function') {
      this.redis.defineCommand(RESERVE_COMMAND, { numberOfKeys: 1, lua: RESERVE_LUA });
    }
  }

  /**
   * Redis key holding the reservations of one API. The account is the key's hash tag, so on a
   * Redis Cluster every budget key of one account lives in one slot: a script or MULTI may then
   * touch several of them (each script today touches one key).
   */
  keyFor(api: string): string {
    return `${this.keyPrefix}:{${this.account}}:${api}`;
  }

  limitFor(api: string): number {
    if (typeof this.limits === 'number') return this.limits;
    const n = Object.hasOwn(this.limits, api) ? this.limits[api] : undefined;
    if (n === undefined) throw new TypeError(`no QPS limit configured for API "${api}"`);
    return n;
  }

  /**
   * Rejects with BudgetExhaustedError when a call to `api` queued now would find no slot within
   * `maxWaitMs`, reserving nothing (one Redis command): overload is refused before any work is
   * done for it. Fails closed like acquire. A later acquire may still be refused (others queued).
   */
  async check(api: string, opts: Pick<AcquireOptions, 'maxWaitMs'> = {}): Promise<void> {
    const maxWaitMs = opts.maxWaitMs ?? this.maxWaitMs;
    const limit = this.limitFor(api);
    checkNonNegative('maxWaitMs', maxWaitMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
    });
    let raw: unknown;
    try {
      raw = await Promise.race([
        this.whenReady().then(() =>
          this.runScript(this.keyFor(api), limit, maxWaitMs, 'peek', true),
        ),
        deadline,
      ]);
    } catch (err) {
      throw new BudgetUnavailableError(`QPS budget: Redis unavailable: ${(err as Error)?.message ?? err}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const reply = parseReply(raw);
    if (!reply.granted) throw new BudgetExhaustedError(api, Math.max(1, Math.ceil(reply.valueUs / 1000)));
  }

  /** Resolves when the caller may start its call to `api`. */
  async acquire(api: string, opts: AcquireOptions = {}): Promise<void> {
    await this.acquireSlot(api, opts);
  }

  /**
   * Same as acquire, but resolves with details of the slot (for metrics).
   *
   * A caller may start late (a busy event loop, a reply stuck in a socket buffer). Late starts are
   * what could put N+1 calls into one real second, so a caller that wakes more than half the
   * margin after its slot gives the slot back and queues again instead of starting: every start
   * is then within margin/2 of its reserved time, and the other half of the margin absorbs the
   * jitter between the start and the arrival at Alibaba.
   */
  async acquireSlot(api: string, opts: AcquireOptions = {}): Promise<Grant> {
    const startedAt = performance.now();
    const maxWaitMs = opts.maxWaitMs ?? this.maxWaitMs;
    for (let attempt = 1; ; attempt++) {
      const remaining = Math.max(0, maxWaitMs - (performance.now() - startedAt));
      const { grant, latenessMs } = await this.reserveAndWait(api, { ...opts, maxWaitMs: remaining });
      if (latenessMs <= this.maxLatenessMs) return { ...grant, attempts: attempt };
      // Never start late: after a few misses, give up like a caller that found no slot.
      if (attempt >= MAX_LATE_ATTEMPTS) throw new BudgetExhaustedError(api, this.maxLatenessMs * 2);
    }
  }

  private reserveAndWait(api: string, opts: AcquireOptions): Promise<{ grant: Omit<Grant, 'attempts'>; latenessMs: number }> {
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let limit: number;
    const maxWaitMs = opts.maxWaitMs ?? this.maxWaitMs;
    try {
      limit = this.limitFor(api);
      checkNonNegative('maxWaitMs', maxWaitMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = this.keyFor(api);
    const member = `${this.memberPrefix}:${(++this.seq).toString(36)}`;

    return new Promise((resolve, reject) => {
      let settled = false;
      let reserved = false;
      let cancelWait: (() => void) | undefined;

      const finish = (): void => {
        settled = true;
        clearTimeout(deadline);
        cancelWait?.();
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: unknown): void => {
        if (settled) return;
        finish();
        reject(err);
      };
      const onAbort = (): void => {
        if (settled) return;
        // Give the place back so later arrivals can use it. If the reply is still
        // in flight, the release happens when it arrives (see below).
        if (reserved) this.release(key, member);
        fail(signal?.reason);
      };
      const deadline = setTimeout(() => {
        fail(new BudgetUnavailableError(`QPS budget: Redis did not answer within ${this.commandTimeoutMs} ms`));
      }, this.commandTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });

      const send = (): Promise<unknown> => this.runScript(key, limit, maxWaitMs, member, false);

      let sentAt = 0;
      this.whenReady()
        .then(() => {
          if (settled) return undefined; // gave up before anything was sent
          sentAt = performance.now();
          return send().then((raw) => {
            const receivedAt = performance.now();
            const reply = parseReply(raw);
            if (settled) {
              // Timed out or aborted meanwhile: nobody will use this slot.
              if (reply.granted) this.release(key, member);
              return;
            }
            if (!reply.granted) {
              fail(new BudgetExhaustedError(api, Math.max(1, Math.ceil(reply.valueUs / 1000))));
              return;
            }
            reserved = true;
            clearTimeout(deadline);
            const delayMs = reply.valueUs / 1000;
            const grant = { api, delayMs, slotAtMs: (reply.nowUs + reply.valueUs) / 1000 };
            // Start no earlier than reply receipt + delay, hence never before the
            // reserved time on Redis's clock.
            cancelWait = runAt(receivedAt + delayMs, () => {
              if (settled) return;
              finish();
              // Measured from when the command was sent, so it can only overestimate.
              const latenessMs = performance.now() - (sentAt + delayMs);
              if (latenessMs > this.maxLatenessMs) this.release(key, member);
              resolve({ grant, latenessMs });
            });
          });
        })
        .catch((err: unknown) => {
          fail(new BudgetUnavailableError(`QPS budget: Redis unavailable: ${(err as Error)?.message ?? err}`, { cause: err }));
        });
    });
  }

  /** One run of the reservation script; `peek` answers the same without reserving. */
  private runScript(key: string, limit: number, maxWaitMs: number, member: string, peek: boolean): Promise<unknown> {
    const redis = this.redis as unknown as Record<string, ReserveFn>;
    const args = [key, limit, this.windowUs, Math.round(maxWaitMs * 1000), member] as const;
    return peek ? redis[RESERVE_COMMAND]!(...args, '1') : redis[RESERVE_COMMAND]!(...args);
  }

  private release(key: string, member: string): void {
    this.redis.zrem(key, member).catch(() => {
      // Redis unreachable: the slot stays reserved and simply goes unused (safe).
    });
  }

  private whenReady(): Promise<void> {
    const redis = this.redis;
    if (redis.status === 'ready') return Promise.resolve();
    if (redis.status === 'end') return Promise.reject(new Error('Redis connection closed'));
    if (!this.readyWait) {
      this.readyWait = new Promise<void>((resolve) => {
        redis.once('ready', () => {
          this.readyWait = undefined;
          resolve();
        });
      });
      if (redis.status === 'wait') redis.connect().catch(() => {});
    }
    return this.readyWait;
  }
}
