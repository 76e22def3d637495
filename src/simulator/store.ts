/** In-memory transactions, as "Alibaba" knows them. */
import { randomBytes } from 'node:crypto';

export const TRANSACTION_TTL_MS = 30 * 60_000;

export type Passed = 'Y' | 'N';
export type TransactionState = 'pending' | 'completed' | 'expired';
/** DeleteVerifyResult's DeleteType: images, the other result data, or both. */
export type DeleteType = 'Img' | 'Text' | 'All';

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

/** Why a DeleteVerifyResult answered DeleteResult=N (the names of Alibaba's sibling API, DeleteFaceVerifyResult). */
export type DeleteRefusal = 'NOT_COMPLETED' | 'NEED_QUERY_VERIFY_RESULT' | 'NOT_DELETE_REPEATEDLY';

export interface Deletion {
  at: number;
  deleteType: DeleteType;
  deleteAfterQuery: boolean;
  deleted: boolean;
  failReason?: DeleteRefusal;
}

export interface NewTransaction {
  accessKeyId: string;
  /** The Alibaba Cloud account of that key: its transactions are visible to all its keys, and only to them. */
  account: string;
  productCode: string;
  merchantBizId: string;
  merchantUserId: string;
  docType: string;
  callbackUrl?: string;
  callbackToken?: string;
  returnUrl?: string;
  /** Every query parameter as received (so tests can assert what reached "Alibaba"). */
  params: Record<string, string>;
  /** The reachability check of callbackUrl made before this transaction was created. */
  callbackProbe?: Delivery & { ok: boolean };
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
  /** GETs of TransactionUrl (the page serves only the first). */
  opens: number;
  openedAt?: number;
  /** When CheckResult first answered this transaction's outcome (what DeleteAfterQuery=Y waits for). */
  resultQueriedAt?: number;
  /** What DeleteVerifyResult removed, and when. */
  deleted: { img?: number; text?: number };
  deletions: Deletion[];
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
      opens: 0,
      deleted: {},
      deletions: [],
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

  /** Counts a GET of the TransactionUrl; true when it is the first (the only one the page serves). */
  recordOpen(transaction: Transaction): boolean {
    transaction.opens += 1;
    if (transaction.opens > 1) return false;
    transaction.openedAt = this.now();
    return true;
  }

  recordResultQueried(transaction: Transaction): void {
    if (transaction.outcome) transaction.resultQueriedAt ??= this.now();
  }

  /**
   * DeleteVerifyResult's effect. Nothing is deleted (DeleteResult=N) when the verification has no
   * outcome yet, when `afterQuery` (DeleteAfterQuery=Y) and CheckResult never answered the outcome,
   * or when everything asked for is already gone.
   */
  deleteData(transaction: Transaction, deleteType: DeleteType, afterQuery: boolean): Deletion {
    const at = this.now();
    const parts = deleteType === 'All' ? (['img', 'text'] as const) : deleteType === 'Img' ? (['img'] as const) : (['text'] as const);
    let failReason: DeleteRefusal | undefined;
    if (!transaction.outcome) failReason = 'NOT_COMPLETED';
    else if (afterQuery && transaction.resultQueriedAt === undefined) failReason = 'NEED_QUERY_VERIFY_RESULT';
    else if (parts.every((part) => transaction.deleted[part] !== undefined)) failReason = 'NOT_DELETE_REPEATEDLY';
    if (!failReason) for (const part of parts) transaction.deleted[part] ??= at;
    const deletion: Deletion = { at, deleteType, deleteAfterQuery: afterQuery, deleted: !failReason, ...(failReason ? { failReason } : {}) };
    transaction.deletions.push(deletion);
    return deletion;
  }

  clear(): void {
    this.transactions.clear();
  }
}
