/** Public surface of the simulator for tests, benchmarks and the demo. */
export { buildSimulator, DEFAULT_QPS, type Simulator, type SimulatorOptions } from './server.js';
export { peakInWindow } from './peak-window.js';
export type { ApiCallRecord } from './call-log.js';
export type { FaultSpec } from './faults.js';
export { CONNECTION_RESET, NON_JSON } from './faults.js';
export type { Delivery, Transaction, TransactionState } from './store.js';
export type { CallbackSpelling } from './callback.js';
export { API_VERSION } from './protocol.js';
