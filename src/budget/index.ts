export { QpsBudget, DEFAULT_MARGIN_MS, DEFAULT_WINDOW_MS, DEFAULT_COMMAND_TIMEOUT_MS } from './budget.js';
export type { BudgetOptions, AcquireOptions, Grant } from './budget.js';
export { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';
