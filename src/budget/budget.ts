import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { defineScript, type RedisClient } from '../redis/client.js';
import { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';
import { DEFAULT_DISPATCH_DELAY, DispatchDelays, type DispatchDelayOptions } from './dispatch-delay.js';
import { RedisClock } from './redis-clock.js';
import { RESERVE_COMMAND, RESERVE_LUA, reservationMember } from './script.js';
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
  /**
   * Jitter allowed between a request leaving this process and its arrival at Alibaba (ms), which
   * nothing here can measure. Each reservation's margin is this plus the dispatch delay its
   * process promises. Default 40 ms.
   */
  networkAllowanceMs?: number;
  /** How the promised dispatch delay is sized from the measured ones (see DispatchDelays). */
  dispatchDelay?: Partial<DispatchDelayOptions>;
  /** Told each measured dispatch delay, for metrics. */
  onDispatch?: (observation: DispatchObservation) => void;
  /** Length of the limit window before the margin. Default 1000 ms (QPS). */
  windowMs?: number;
  /** Deadline for getting an answer from Redis (incl. waiting for a connection). Default 300 ms. */
  commandTimeoutMs?: number;
}

/**
 * Puts the caller's prepared request on the wire, synchronously, and resolves with the moment
 * (performance.now()) its last byte was handed to the kernel; rejects when it never was.
 */
export type Send = () => Promise<number>;

export interface AcquireOptions {
  /** Abort while queued: the slot is given back and acquire rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Overrides BudgetOptions.maxWaitMs for this call. */
  maxWaitMs?: number;
  /**
   * Called at the slot, in the timer callback that found the caller on time, so nothing runs
   * between that check and the write. Its delay is measured and sizes later margins. Without it
   * the caller starts when acquire resolves, and only the wake-up is measured.
   */
  send?: Send;
}

export interface Grant {
  api: string;
  /** Reservations made: more than 1 when the caller woke too late for a slot and queued again. */
  attempts: number;
  /** Reserved start time, epoch ms on Redis's clock. */
  slotAtMs: number;
  /** How long the caller was told to wait (ms). */
  delayMs: number;
  /** The margin this reservation added to the window: its promised dispatch delay + the network allowance (ms). */
  marginMs: number;
  /** How late the caller woke after its slot (ms, its own clock; from the earliest the slot can have been, so never underestimated). */
  latenessMs: number;
}

/** One measured dispatch delay: slot → request written (`sent`), or slot → a wake-up too late to send (`late`). */
export interface DispatchObservation {
  api: string;
  outcome: 'sent' | 'late';
  delayMs: number;
  /** The margin the next reservation of this process adds, after this observation (ms). */
  marginMs: number;
}

export const DEFAULT_NETWORK_ALLOWANCE_MS = 40;
/** Reservations one caller may make when it keeps waking too late (an overloaded process). */
const MAX_LATE_ATTEMPTS = 3;
export const DEFAULT_WINDOW_MS = 1000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 300;

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
 * Fleet-wide sliding-window QPS budget, exact where Alibaba counts: at most `limit` calls per API
 * arrive in any 1-s window (`windowMs`), across every process that shares the Redis key, as long
 * as the network's jitter stays within `networkAllowanceMs`. Each reservation holds the window for
 * 1 s + its own margin (see script.ts), the margin being the dispatch delay its process promises
 * (measured, see DispatchDelays) plus the allowance; a caller that cannot keep the promise gives
 * the slot back. Callers are served in arrival order at Redis; each acquire costs one Redis command
 * (plus one ZREM if it is aborted while queued or wakes too late).
 */
export class QpsBudget {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly account: string;
  private readonly limits: Record<string, number> | number;
  private readonly maxWaitMs: number;
  private readonly windowMs: number;
  private readonly networkAllowanceMs: number;
  private readonly dispatchDelays: DispatchDelays;
  private readonly onDispatch: ((observation: DispatchObservation) => void) | undefined;
  private readonly commandTimeoutMs: number;
  /** Redis's clock: every key of one account shares its hash tag, so one node (one clock) holds them all. */
  private readonly clock = new RedisClock();
  private readonly reserve: (...args: Array<string | number>) => Promise<unknown>;
  private readonly memberPrefix = randomBytes(6).toString('hex');
  private seq = 0;
  private readyWait: Promise<void> | undefined;

  constructor(opts: BudgetOptions) {
    if (!opts.keyPrefix || !opts.account) throw new TypeError('keyPrefix and account are required');
    if (typeof opts.limits === 'number') checkLimit('every API', opts.limits);
    else for (const [api, n] of Object.entries(opts.limits)) checkLimit(api, n);
    checkNonNegative('maxWaitMs', opts.maxWaitMs);
    this.networkAllowanceMs = opts.networkAllowanceMs ?? DEFAULT_NETWORK_ALLOWANCE_MS;
    checkNonNegative('networkAllowanceMs', this.networkAllowanceMs);
    this.onDispatch = opts.onDispatch;
    const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) throw new TypeError('windowMs must be > 0');
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!(this.commandTimeoutMs > 0)) throw new TypeError('commandTimeoutMs must be > 0');

    this.redis = opts.redis;
    this.keyPrefix = opts.keyPrefix;
    this.account = opts.account;
    this.limits = typeof opts.limits === 'number' ? opts.limits : { ...opts.limits };
    this.maxWaitMs = opts.maxWaitMs;
    this.windowMs = windowMs;
    this.dispatchDelays = new DispatchDelays({ ...DEFAULT_DISPATCH_DELAY, windowMs, ...opts.dispatchDelay });

    this.reserve = defineScript(this.redis, RESERVE_COMMAND, RESERVE_LUA);
  }

  /**
   * Redis key holding the reservations of one API. The account is the key's hash tag, so on a
   * Redis Cluster every budget key of one account lives in one slot: a script or MULTI may then
   * touch several of them (each script today touches one key).
   */
  keyFor(api: string): string {
    return `${this.keyPrefix}:{${this.account}}:${api}`;
  }

  /** The margin this process's next reservation adds to the window (ms): promised dispatch delay + network allowance. */
  marginMs(): number {
    return this.dispatchDelays.boundMs() + this.networkAllowanceMs;
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
    const key = this.keyFor(api);
    checkNonNegative('maxWaitMs', maxWaitMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
    });
    let reply: ReserveReply;
    try {
      reply = await Promise.race([
        this.whenReady().then(async () => {
          const sentAt = performance.now();
          const parsed = parseReply(await this.runScript(key, limit, this.holdUs(this.dispatchDelays.boundMs()), maxWaitMs, 'peek', true));
          // Every round trip also tells where Redis's clock stands.
          this.clock.observe(sentAt, performance.now(), parsed.nowUs / 1000);
          return parsed;
        }),
        deadline,
      ]);
    } catch (err) {
      throw new BudgetUnavailableError(`QPS budget: Redis unavailable: ${(err as Error)?.message ?? err}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
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
   * what could put N+1 calls into one real second, so each reservation promises a bound on its
   * caller's dispatch delay and holds the window that much longer; a caller that wakes later than
   * its promise gives the slot back and queues again instead of starting. The delays measured
   * (late wakes included) size the next promises.
   */
  async acquireSlot(api: string, opts: AcquireOptions = {}): Promise<Grant> {
    const startedAt = performance.now();
    const maxWaitMs = opts.maxWaitMs ?? this.maxWaitMs;
    for (let attempt = 1; ; attempt++) {
      const remaining = Math.max(0, maxWaitMs - (performance.now() - startedAt));
      const grant = await this.reserveAndWait(api, { ...opts, maxWaitMs: remaining });
      if (grant) return { ...grant, attempts: attempt };
      // Never start late: after a few misses, give up like a caller that found no slot.
      if (attempt >= MAX_LATE_ATTEMPTS) throw new BudgetExhaustedError(api, Math.max(1, Math.ceil(this.marginMs())));
    }
  }

  /** Resolves with the grant once the caller may start (its `send` already called), or undefined when it woke too late. */
  private reserveAndWait(api: string, opts: AcquireOptions): Promise<Omit<Grant, 'attempts'> | undefined> {
    const { signal, send } = opts;
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
    // The promise this reservation makes: it reaches the wire within dispatchMs of its slot.
    const dispatchMs = this.dispatchDelays.boundMs();
    const marginMs = dispatchMs + this.networkAllowanceMs;
    const holdUs = this.holdUs(dispatchMs);
    const member = reservationMember(holdUs, `${this.memberPrefix}:${(++this.seq).toString(36)}`);

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

      let sentAt = 0;
      this.whenReady()
        .then(() => {
          if (settled) return undefined; // gave up before anything was sent
          sentAt = performance.now();
          return this.runScript(key, limit, holdUs, maxWaitMs, member, false).then((raw) => {
            const receivedAt = performance.now();
            const reply = parseReply(raw);
            const offset = this.clock.observe(sentAt, receivedAt, reply.nowUs / 1000);
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
            const slotAtMs = (reply.nowUs + reply.valueUs) / 1000;
            // The slot on this process's clock lies in [slotAt, startAt]: start at the latest, so
            // never before the reserved time on Redis's clock, and measure from the earliest, so
            // delays can only be overestimated.
            const slotAt = slotAtMs - offset.high;
            const startAt = slotAtMs - offset.low;
            cancelWait = runAt(startAt, () => {
              if (settled) return;
              finish();
              const latenessMs = performance.now() - slotAt;
              if (latenessMs > dispatchMs) {
                this.release(key, member);
                this.observe(api, 'late', latenessMs);
                resolve(undefined);
                return;
              }
              let wired: Promise<number> | undefined;
              if (send) {
                try {
                  wired = send();
                } catch (err) {
                  wired = Promise.reject(err);
                }
              }
              resolve({ api, delayMs, slotAtMs, marginMs, latenessMs });
              if (wired) wired.then((at) => this.observe(api, 'sent', at - slotAt), () => {});
              else this.observe(api, 'sent', latenessMs);
            });
          });
        })
        .catch((err: unknown) => {
          fail(new BudgetUnavailableError(`QPS budget: Redis unavailable: ${(err as Error)?.message ?? err}`, { cause: err }));
        });
    });
  }

  private observe(api: string, outcome: DispatchObservation['outcome'], delayMs: number): void {
    this.dispatchDelays.record(delayMs);
    this.onDispatch?.({ api, outcome, delayMs, marginMs: this.marginMs() });
  }

  /** How long a reservation promising `dispatchMs` holds the window (µs). */
  private holdUs(dispatchMs: number): number {
    return Math.round((this.windowMs + dispatchMs + this.networkAllowanceMs) * 1000);
  }

  /** One run of the reservation script; `peek` answers the same without reserving. */
  private runScript(key: string, limit: number, holdUs: number, maxWaitMs: number, member: string, peek: boolean): Promise<unknown> {
    const args = [key, limit, holdUs, Math.round(maxWaitMs * 1000), member] as const;
    return peek ? this.reserve(...args, '1') : this.reserve(...args);
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
