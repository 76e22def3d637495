/** In-memory transactions, as "Alibaba" knows them. */
import { randomBytes } from 'node:crypto';

export const TRANSACTION_TTL_MS = 30 * 60_000;

export type Passed = 'Y' | 'N';
export type TransactionState = 'pending' | 'completed' | 'expired';

export interface Outcome {
  passed: Passed;
  subCode: string;
  completedAt: number;
}

export interface Delivery {
  url: string;
  status?: number;
  error?: string;
  at: number;
  durationMs: number;
}

export interface NewTransaction {
  accessKeyId: string;
  productCode: string;
  merchantBizId: string;
  merchantUserId: string;
  docType: string;
  callbackUrl?: string;
  callbackToken?: string;
  returnUrl?: string;
  /** Every query parameter as received (so tests can assert what reached "Alibaba"). */
  params: Record<string, string>;
}

export interface Transaction extends NewTransaction {
  transactionId: string;
  protocol: string;
  createdAt: number;
  expiresAt: number;
  outcome?: Outcome;
  /** Fields merged over CheckResult's Result (set through the control API). */
  resultOverride?: Record<string, unknown>;
  deliveries: Delivery[];
}

export type CompletionResult =
  | { ok: true; transaction: Transaction }
  | { ok: false; reason: 'not_found' | 'expired' | 'already_completed' };

export class TransactionStore {
  private readonly transactions = new Map<string, Transaction>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly ttlMs: number = TRANSACTION_TTL_MS,
  ) {}

  create(input: NewTransaction): Transaction {
    const createdAt = this.now();
    const transaction: Transaction = {
      ...input,
      transactionId: `hksb${randomBytes(14).toString('hex')}`,
      protocol: randomBytes(36).toString('base64url'),
      createdAt,
      expiresAt: createdAt + this.ttlMs,
      deliveries: [],
    };
    this.transactions.set(transaction.transactionId, transaction);
    return transaction;
  }

  get(transactionId: string): Transaction | undefined {
    return this.transactions.get(transactionId);
  }

  list(): Transaction[] {
    return [...this.transactions.values()];
  }

  stateOf(transaction: Transaction): TransactionState {
    if (transaction.outcome) return 'completed';
    return this.now() >= transaction.expiresAt ? 'expired' : 'pending';
  }

  complete(transactionId: string, passed: Passed, subCode: string): CompletionResult {
    const transaction = this.transactions.get(transactionId);
    if (!transaction) return { ok: false, reason: 'not_found' };
    const state = this.stateOf(transaction);
    if (state === 'completed') return { ok: false, reason: 'already_completed' };
    if (state === 'expired') return { ok: false, reason: 'expired' };
    transaction.outcome = { passed, subCode, completedAt: this.now() };
    return { ok: true, transaction };
  }

  clear(): void {
    this.transactions.clear();
  }
}
