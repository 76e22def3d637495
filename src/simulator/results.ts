/**
 * CheckResult's Result for a transaction, with fake but plausible document data.
 * The Ext* fields are JSON text, as Alibaba sends them.
 */
import { createHash } from 'node:crypto';
import type { Transaction, TransactionState } from './store.js';

export const SUB_CODE_PASSED = '200';
export const SUB_CODE_FAILED = '201';
/** Simulator convention: the user never finished before the transaction expired. */
export const SUB_CODE_EXPIRED = '205';

export function defaultSubCode(passed: 'Y' | 'N'): string {
  return passed === 'Y' ? SUB_CODE_PASSED : SUB_CODE_FAILED;
}

export function buildCheckResult(transaction: Transaction, state: TransactionState): Record<string, unknown> {
  return { ...baseResult(transaction, state), ...transaction.resultOverride };
}

function baseResult(transaction: Transaction, state: TransactionState): Record<string, unknown> {
  const { outcome } = transaction;
  if (!outcome) {
    return state === 'expired' ? { Passed: 'N', SubCode: SUB_CODE_EXPIRED } : { Passed: 'P' };
  }
  const passed = outcome.passed === 'Y';
  const person = fakePerson(transaction.transactionId);
  return {
    Passed: outcome.passed,
    SubCode: outcome.subCode,
    ExtBasicInfo: JSON.stringify({
      transactionId: transaction.transactionId,
      merchantBizId: transaction.merchantBizId,
      productCode: transaction.productCode,
      docType: transaction.docType,
    }),
    ExtIdInfo: JSON.stringify({
      ocrIdInfo: { name: person.name, idNumber: person.idNumber, birthDate: person.birthDate, sex: person.sex },
      spoofInfo: { spoofResult: passed ? 'N' : 'Y' },
    }),
    ExtFaceInfo: JSON.stringify({
      faceAttack: passed ? 'N' : 'Y',
      faceQualityScore: 92.5,
      faceComparisonScore: passed ? 96.4 : 31.2,
    }),
    ExtRiskInfo: JSON.stringify({ riskTags: passed ? [] : ['SIMULATED_FAILURE'] }),
    EkycResult: JSON.stringify({ passed: outcome.passed, subCode: outcome.subCode }),
  };
}

/** Deterministic per transaction, so repeated CheckResult calls agree. */
function fakePerson(transactionId: string) {
  const digest = createHash('sha256').update(transactionId).digest();
  const year = 1960 + ((digest[0] ?? 0) % 45);
  const month = 1 + ((digest[1] ?? 0) % 12);
  const day = 1 + ((digest[2] ?? 0) % 28);
  return {
    name: 'TEST USER',
    idNumber: `SIM${digest.readUInt32BE(3).toString().padStart(10, '0')}`,
    birthDate: `${year}/${pad(month)}/${pad(day)}`,
    sex: (digest[7] ?? 0) % 2 === 0 ? 'F' : 'M',
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
