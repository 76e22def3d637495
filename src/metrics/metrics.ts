import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DispatchObservation } from '../budget/budget.js';
import { BudgetExhaustedError, BudgetUnavailableError } from '../budget/errors.js';
import { CloudAuthError } from '../cloudauth/errors.js';
import { HttpError } from '../errors/http-error.js';
import type { CheckOutcome } from '../results/check-result.js';
import type { CallbackResult } from '../sessions/callback.js';
import { PUBLIC_STATUSES } from '../sessions/status.js';

/**
 * The service's Prometheus metrics: one registry per app instance (tests build several apps in one
 * process), with Node's default process metrics. Call sites use the helpers below, one line each.
 */

/** What every metric of the service is, also the source of the README's metrics table. */
export const METRIC_DEFINITIONS = {
  httpDuration: {
    type: 'histogram',
    name: 'kyc_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status code, with their duration.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  upstreamCalls: {
    type: 'counter',
    name: 'kyc_upstream_calls_total',
    help: 'Calls to Alibaba cloudauth-intl (each throttled retry counts) by API and result: Success, the Alibaba code, or timeout / unreachable / aborted.',
    labelNames: ['api', 'result'],
  },
  upstreamDuration: {
    type: 'histogram',
    name: 'kyc_upstream_call_duration_seconds',
    help: 'Duration of calls to Alibaba cloudauth-intl by API and result (budget wait excluded).',
    labelNames: ['api', 'result'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  },
  budgetWait: {
    type: 'histogram',
    name: 'kyc_budget_wait_seconds',
    help: 'Time spent waiting for a slot of the QPS budget, by API and outcome (granted, exhausted, unavailable, aborted).',
    labelNames: ['api', 'outcome'],
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
  },
  budgetRejections: {
    type: 'counter',
    name: 'kyc_budget_rejections_total',
    help: 'Calls refused by the QPS budget, by API and reason: exhausted (429) or unavailable (Redis down, 503).',
    labelNames: ['api', 'reason'],
  },
  budgetQueueDepth: {
    type: 'gauge',
    name: 'kyc_budget_queue_depth',
    help: 'Callers of this process currently waiting for a slot of the QPS budget, by API.',
    labelNames: ['api'],
  },
  budgetDispatchDelay: {
    type: 'histogram',
    name: 'kyc_budget_dispatch_delay_seconds',
    help: 'How late calls reach the wire after their QPS budget slot, by API and outcome: sent (slot → request written to the socket) or late (slot → a wake-up later than its reservation promised: the slot was given back and the call queued again). The margin is sized from it.',
    labelNames: ['api', 'outcome'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
  },
  budgetMargin: {
    type: 'gauge',
    name: 'kyc_budget_margin_seconds',
    help: "Margin this instance's next reservation adds to the 1-s window: CLOUDAUTH_BUDGET_MARGIN_MS (the network allowance) plus the dispatch delay it promises, chosen from its last 64 measured delays as the bound that wastes the least budget (5 ms to CLOUDAUTH_BUDGET_MAX_DISPATCH_MS).",
    labelNames: [],
  },
  callbacks: {
    type: 'counter',
    name: 'kyc_callbacks_total',
    help: "Alibaba's callbacks with a valid query, by outcome: forged (a token this service never made, 403, refused before the rate limit), accepted, duplicate (exact redelivery), ignored (for an erased session, 200), rejected (a token of ours, but not this transaction's, 403), conflict (contradicts the recorded outcome, 409), error.",
    labelNames: ['outcome'],
  },
  callbackProbes: {
    type: 'counter',
    name: 'kyc_callback_probes_total',
    help: 'Requests to the callback route with none of the result fields (Alibaba checks the CallbackUrl is reachable before Initialize), answered 200 with nothing written, by method.',
    labelNames: ['method'],
  },
  checkResultJobs: {
    type: 'counter',
    name: 'kyc_check_result_jobs_total',
    help: 'CheckResult job runs by outcome: passed, failed, expired, error (gave up), skipped (nothing to check), retry (will run again).',
    labelNames: ['outcome'],
  },
  eventDeliveries: {
    type: 'counter',
    name: 'kyc_event_deliveries_total',
    help: 'Attempts to deliver merchant events, by trigger (auto: the delivery job; redeliver: the back office asked) and outcome: delivered, retry (will be tried again), gave_up (the MERCHANT_WEBHOOK_MAX_ATTEMPTS-th automatic attempt failed: the event is failed, a warning is logged), failed (a redelivery that failed).',
    labelNames: ['trigger', 'outcome'],
  },
  erasures: {
    type: 'counter',
    name: 'kyc_erasures_total',
    help: "Session erasures finished, by outcome: complete (Alibaba deleted, or had nothing for, each transaction), incomplete (Alibaba refused, or kept failing, for some transaction: the session's transactions say which; an error is logged).",
    labelNames: ['outcome'],
  },
  sessions: {
    type: 'gauge',
    name: 'kyc_sessions',
    help: 'Stored sessions by status (the stored status: a pending session past its expiry counts as pending until reconciled). Counted on scrape.',
    labelNames: ['status'],
  },
  sessionsCollectFailures: {
    type: 'counter',
    name: 'kyc_sessions_collect_failures_total',
    help: 'Scrapes where counting sessions failed or took longer than 500 ms (kyc_sessions is then left out).',
    labelNames: [],
  },
  statusReads: {
    type: 'counter',
    name: 'kyc_status_reads_total',
    help: 'Status lookups of GET /kyc/sessions/:merchantBizId by source: cache (kept current by the change feed), shared (the query of another read of the same session, under way) or database.',
    labelNames: ['source'],
  },
  statusWaiters: {
    type: 'gauge',
    name: 'kyc_status_waiters',
    help: 'Long polls of GET /kyc/sessions/:merchantBizId (`wait`) waiting in this process for their session to change.',
    labelNames: [],
  },
  sessionChangesLive: {
    type: 'gauge',
    name: 'kyc_session_changes_live',
    help: "1 while this process hears its own heartbeat through the Redis change feed; 0: changes made elsewhere may not reach it, so its long polls answer at their timeout and its status reads skip the cache.",
    labelNames: [],
  },
  sessionChangePublishFailures: {
    type: 'counter',
    name: 'kyc_session_change_publish_failures_total',
    help: "Session changes this process could not publish to the change feed (Redis unreachable): other instances learn them at their long polls' timeout or their cache's expiry.",
    labelNames: [],
  },
} as const;

/** How long a scrape waits for the sessions count before leaving it out. */
export const SESSIONS_COLLECT_TIMEOUT_MS = 500;

export interface MetricsOptions {
  /** Counts sessions by stored status (one GROUP BY query). */
  countSessions?: () => Promise<Array<{ status: string; count: number }>>;
  /** Told why a sessions count was left out. */
  onCollectError?: (err: unknown) => void;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** An Alibaba code as a label value: bounded length and charset, so labels stay few and safe. */
const labelSafe = (value: string) => (/^[A-Za-z0-9._-]{1,64}$/.test(value) ? value : 'other');

export function upstreamResult(err: CloudAuthError): string {
  switch (err.failure) {
    case 'timeout':
    case 'unreachable':
    case 'aborted':
      return err.failure;
    default:
      return labelSafe(err.upstreamCode);
  }
}

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const d = METRIC_DEFINITIONS;

  type Definition = { name: string; help: string; labelNames: readonly string[] };
  const counter = (def: Definition) => new Counter({ ...def, labelNames: [...def.labelNames], registers });
  const gauge = (def: Definition) => new Gauge({ ...def, labelNames: [...def.labelNames], registers });
  const histogram = (def: Definition & { buckets: readonly number[] }) =>
    new Histogram({ ...def, labelNames: [...def.labelNames], buckets: [...def.buckets], registers });

  const httpDuration = histogram(d.httpDuration);
  const upstreamCalls = counter(d.upstreamCalls);
  const upstreamDuration = histogram(d.upstreamDuration);
  const budgetWait = histogram(d.budgetWait);
  const budgetRejections = counter(d.budgetRejections);
  const budgetQueueDepth = gauge(d.budgetQueueDepth);
  const budgetDispatchDelay = histogram(d.budgetDispatchDelay);
  const budgetMargin = gauge(d.budgetMargin);
  const callbacks = counter(d.callbacks);
  const callbackProbes = counter(d.callbackProbes);
  const checkResultJobs = counter(d.checkResultJobs);
  const eventDeliveries = counter(d.eventDeliveries);
  const erasures = counter(d.erasures);
  const statusReads = counter(d.statusReads);
  const statusWaiters = gauge(d.statusWaiters);
  const sessionChangesLive = gauge(d.sessionChangesLive);
  const sessionChangePublishFailures = counter(d.sessionChangePublishFailures);

  // One query at a time: a scrape that finds the previous count still running waits for it
  // (within its own timeout) instead of piling up queries on a slow database.
  let inFlight: Promise<Array<{ status: string; count: number }>> | undefined;
  /** The current scrape's sessions count, awaited by the failures counter so it reports this scrape. */
  let collected: Promise<void> = Promise.resolve();
  const { countSessions } = options;
  const sessions = new Gauge({
    ...d.sessions,
    labelNames: [...d.sessions.labelNames],
    registers,
    collect() {
      this.reset();
      collected = collectSessions(this);
      return collected;
    },
  });
  // Registered after `sessions`: a scrape reads metrics in registration order.
  const sessionsCollectFailures = new Counter({
    ...d.sessionsCollectFailures,
    labelNames: [],
    registers,
    async collect() {
      await collected;
    },
  });

  async function collectSessions(gauge: Gauge): Promise<void> {
    if (!countSessions) return;
    inFlight ??= countSessions().finally(() => {
      inFlight = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sessions count took longer than ${SESSIONS_COLLECT_TIMEOUT_MS} ms`)), SESSIONS_COLLECT_TIMEOUT_MS);
    });
    try {
      const rows = await Promise.race([inFlight, timeout]);
      for (const status of PUBLIC_STATUSES) gauge.set({ status }, 0);
      for (const row of rows) gauge.set({ status: row.status }, row.count);
    } catch (err) {
      sessionsCollectFailures.inc();
      options.onCollectError?.(err);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    registry,
    httpDuration,
    upstreamCalls,
    upstreamDuration,
    budgetWait,
    budgetRejections,
    budgetQueueDepth,
    callbacks,
    checkResultJobs,
    sessions,
    statusReads,
    statusWaiters,
    sessionChangesLive,
    sessionChangePublishFailures,

    /** One attempt to deliver a merchant event. */
    eventDelivery(trigger: 'auto' | 'redeliver', outcome: 'delivered' | 'retry' | 'gave_up' | 'failed'): void {
      eventDeliveries.inc({ trigger, outcome });
    },

    /** One session erasure finished. */
    erasure(outcome: 'complete' | 'incomplete'): void {
      erasures.inc({ outcome });
    },

    /** One upstream call that ended after `durationMs`: pass the error when it failed. */
    upstreamCall(api: string, durationMs: number, err?: CloudAuthError): void {
      const result = err ? upstreamResult(err) : 'Success';
      upstreamCalls.inc({ api, result });
      upstreamDuration.observe({ api, result }, durationMs / 1000);
    },

    /** Runs a budget acquisition, measuring the wait and the queue, and counting rejections. */
    async budgetAcquire<T>(api: string, acquire: () => Promise<T>): Promise<T> {
      const startedAt = performance.now();
      budgetQueueDepth.inc({ api });
      let outcome = 'granted';
      try {
        return await acquire();
      } catch (err) {
        outcome = budgetOutcome(err);
        if (outcome !== 'aborted') budgetRejections.inc({ api, reason: outcome });
        throw err;
      } finally {
        budgetQueueDepth.dec({ api });
        budgetWait.observe({ api, outcome }, (performance.now() - startedAt) / 1000);
      }
    },

    /** Counts a refusal by the budget's look-ahead (budget.check), before anything was queued. */
    budgetRefused(api: string, err: unknown): void {
      const outcome = budgetOutcome(err);
      if (outcome === 'aborted') return;
      // Counted like a refusal after queueing, having waited nothing.
      budgetRejections.inc({ api, reason: outcome });
      budgetWait.observe({ api, outcome }, 0);
    },

    /** One measured dispatch delay of the QPS budget, and the margin it leaves for the next reservation. */
    budgetDispatch(observation: DispatchObservation): void {
      budgetDispatchDelay.observe({ api: observation.api, outcome: observation.outcome }, observation.delayMs / 1000);
      budgetMargin.set(observation.marginMs / 1000);
    },

    /** The margin the next reservation adds (ms), before anything was measured. */
    setBudgetMargin(marginMs: number): void {
      budgetMargin.set(marginMs / 1000);
    },

    /** Counts a callback whose token this service never made. */
    forgedCallback(): void {
      callbacks.inc({ outcome: 'forged' });
    },

    /**
     * Counts a forged callback refused by the callback gate, in front of Fastify: as forged, and as
     * the 403 of the callback route that the request-timing hook never sees.
     */
    forgedCallbackAtGate(route: string, seconds: number): void {
      callbacks.inc({ outcome: 'forged' });
      httpDuration.observe({ method: 'GET', route, status_code: '403' }, seconds);
    },

    /** Counts a reachability probe of the callback route. */
    callbackProbe(method: string): void {
      callbackProbes.inc({ method });
    },

    /** Counts the outcome of acceptCallback (and passes it on). */
    async callback(accepted: Promise<CallbackResult>): Promise<CallbackResult> {
      try {
        const result = await accepted;
        callbacks.inc({ outcome: result === 'recorded' ? 'accepted' : result });
        return result;
      } catch (err) {
        const code = err instanceof HttpError ? err.code : undefined;
        callbacks.inc({ outcome: code === 'CALLBACK_REJECTED' ? 'rejected' : code === 'CALLBACK_CONFLICT' ? 'conflict' : 'error' });
        throw err;
      }
    },

    /** Counts the outcome of one CheckResult job (and passes it on); a throw means it will be retried. */
    async checkResult(checked: Promise<CheckOutcome>): Promise<CheckOutcome> {
      try {
        const outcome = await checked;
        checkResultJobs.inc({ outcome });
        return outcome;
      } catch (err) {
        checkResultJobs.inc({ outcome: 'retry' });
        throw err;
      }
    },
  };
}

/** The README's metrics table, written from METRIC_DEFINITIONS. */
export function metricsTable(): string {
  const rows = Object.values(METRIC_DEFINITIONS).map(
    (m) => `| \`${m.name}\` | ${m.type} | ${m.labelNames.map((l) => `\`${l}\``).join(', ')} | ${m.help.replaceAll('|', '\\|')} |`,
  );
  return ['| Metric | Type | Labels | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** How a budget acquisition or look-ahead ended, when it threw. */
function budgetOutcome(err: unknown): 'exhausted' | 'unavailable' | 'aborted' {
  if (err instanceof BudgetExhaustedError) return 'exhausted';
  if (err instanceof BudgetUnavailableError) return 'unavailable';
  return 'aborted';
}
