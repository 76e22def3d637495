/**
 * Errors raised by the QPS budget. Both carry a stable `code` so HTTP layers can
 * map them without instanceof checks (e.g. 429 + Retry-After / 503).
 */

/** No slot is free within the caller's maximum wait. Nothing was reserved. */
export class BudgetExhaustedError extends Error {
  readonly code = 'QPS_BUDGET_EXHAUSTED' as const;
  /** Wait after which a retry with the same maxWaitMs could get a slot (ms, ≥ 1). */
  readonly retryAfterMs: number;
  readonly api: string;

  constructor(api: string, retryAfterMs: number) {
    super(`QPS budget for ${api} exhausted; retry after ${retryAfterMs} ms`);
    this.name = 'BudgetExhaustedError';
    this.api = api;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The budget could not be consulted (Redis down, slow or not connected).
 * The call must not be made: the budget fails closed.
 */
export class BudgetUnavailableError extends Error {
  readonly code = 'BUDGET_UNAVAILABLE' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BudgetUnavailableError';
  }
}
