export { QpsBudget, DEFAULT_NETWORK_ALLOWANCE_MS, DEFAULT_WINDOW_MS, DEFAULT_COMMAND_TIMEOUT_MS } from './budget.js';
export type { BudgetOptions, AcquireOptions, Grant, Send, DispatchObservation } from './budget.js';
export { DispatchDelays, DEFAULT_DISPATCH_DELAY, type DispatchDelayOptions } from './dispatch-delay.js';
export { BudgetExhaustedError, BudgetUnavailableError } from './errors.js';
