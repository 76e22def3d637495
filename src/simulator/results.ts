/**
 * CheckResult's Result for a transaction, with fake but plausible data, deterministic per
 * transaction. The Ext* fields are JSON text, as Alibaba sends them.
 *
 * Where the field names come from (Alibaba's CheckResult page shows only `**` for most of them):
 * - ExtIdInfo `ocrIdInfo` / `ocrIdPassed` / `spoofInfo {spoofResult, spoofType}` / `ocrIdEditInfo`,
 *   and `ocrIdInfo`'s fields per document (passport: surname, givenname, passportNo, …; ID cards:
 *   name, idNumber, …): the cloudauth-intl SDK's examples (DocOcr, DocOcrMax, EkycVerify) and
 *   integrators' typings of eKYC's CheckResult.
 * - ExtFaceInfo `faceAttack`, `faceComparisonScore`, `facePassed`, `faceOcclusion`,
 *   `faceQualityScore`, `authorityComparisonScore`: the same SDK examples (EkycVerify, FaceLiveness).
 * - Images (only with IsReturnImage=Y): `idImage` in ExtIdInfo and `faceImg` in ExtFaceInfo, the
 *   names DeleteVerifyResult's doc gives for "all image data" of CheckResult.
 * - ExtInfo: the SDK's example, `{}`.
 * - Not documented by Alibaba, taken from ZOLOZ's Real ID checkresult (the same eKYC flow):
 *   ExtBasicInfo `{certType, certNo, certName}` and EkycResult as a status word (Success/Failure).
 *   ExtRiskInfo follows the product's risk fields elsewhere (`riskTag` list, `riskScore` map).
 * - ExtSourceInfo is left out: the SDK describes it for the Indonesian government data source, not
 *   for eKYC in Hong Kong.
 */
import { createHash } from 'node:crypto';
import type { Transaction, TransactionState } from './store.js';

export const SUB_CODE_PASSED = '200';
export const SUB_CODE_FAILED = '201';
/** Simulator convention: the user never finished before the transaction expired. */
export const SUB_CODE_EXPIRED = '205';

/** A 1×1 PNG standing in for every document and face image. */
export const FAKE_IMAGE_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

const PASSPORT = '01000000';
const MAINLAND_ID = '00000001';

export function defaultSubCode(passed: 'Y' | 'N'): string {
  return passed === 'Y' ? SUB_CODE_PASSED : SUB_CODE_FAILED;
}

export interface CheckResultOptions {
  /** IsReturnImage=Y. */
  returnImage: boolean;
}

export function buildCheckResult(
  transaction: Transaction,
  state: TransactionState,
  options: CheckResultOptions,
): Record<string, unknown> {
  return { ...baseResult(transaction, state, options), ...transaction.resultOverride };
}

function baseResult(transaction: Transaction, state: TransactionState, options: CheckResultOptions): Record<string, unknown> {
  const { outcome } = transaction;
  if (!outcome) {
    return state === 'expired' ? { Passed: 'N', SubCode: SUB_CODE_EXPIRED } : { Passed: 'P' };
  }
  // After DeleteVerifyResult: Text removes the result data, Img the images; the verdict stays.
  const text = transaction.deleted.text === undefined;
  const images = options.returnImage && transaction.deleted.img === undefined;
  const passed = outcome.passed === 'Y';
  const person = fakePerson(transaction.transactionId);
  const params = transaction.params;

  const idInfo = {
    ...(text
      ? {
          ocrIdInfo: ocrIdInfo(transaction.docType, person),
          ocrIdPassed: passed ? 'Y' : 'N',
          ...(params.IdSpoof === 'Y' ? { spoofInfo: { spoofResult: passed ? 'N' : 'Y', spoofType: passed ? [] : ['SCREEN_REMARK'] } } : {}),
          ...(params.EditOcrResult === '1' ? { ocrIdEditInfo: {} } : {}),
        }
      : {}),
    ...(images ? { idImage: FAKE_IMAGE_BASE64 } : {}),
  };
  const faceInfo = {
    ...(text
      ? {
          faceAttack: passed ? 'N' : 'Y',
          faceComparisonScore: passed ? 96.4 : 31.2,
          facePassed: passed ? 'Y' : 'N',
          faceOcclusion: 'N',
          faceQualityScore: 92.5,
          ...(params.Authorize === 'T' ? { authorityComparisonScore: passed ? 88.1 : 12.7 } : {}),
        }
      : {}),
    ...(images ? { faceImg: FAKE_IMAGE_BASE64 } : {}),
  };

  return {
    Passed: outcome.passed,
    SubCode: outcome.subCode,
    ...(text
      ? {
          EkycResult: passed ? 'Success' : 'Failure',
          ExtBasicInfo: JSON.stringify({ certType: transaction.docType, certNo: person.idNumber, certName: person.fullName }),
          ExtRiskInfo: JSON.stringify(passed ? { riskTag: '', riskScore: {} } : { riskTag: 'SCREEN_PHOTO', riskScore: { SCREEN_PHOTO: '0.97' } }),
          ExtInfo: JSON.stringify({}),
        }
      : {}),
    ...(Object.keys(idInfo).length > 0 ? { ExtIdInfo: JSON.stringify(idInfo) } : {}),
    ...(Object.keys(faceInfo).length > 0 ? { ExtFaceInfo: JSON.stringify(faceInfo) } : {}),
  };
}

type Person = ReturnType<typeof fakePerson>;

/** The OCR fields Alibaba's examples show for this kind of document. */
function ocrIdInfo(docType: string, p: Person): Record<string, string> {
  if (docType === PASSPORT) {
    return {
      surname: p.surname,
      givenname: p.givenname,
      passportNo: p.idNumber,
      countryCode: 'HKG',
      nationality: 'CHINA',
      sex: p.sex,
      birthDate: p.birthDate.replaceAll('-', '/'),
      issueDate: p.issueDate.replaceAll('-', '/'),
      expiryDate: p.expiryDate.replaceAll('-', '/'),
    };
  }
  if (docType === MAINLAND_ID) {
    return { name: p.fullName, idNumber: p.idNumber, sex: p.sex, ethnicity: 'Han', address: 'SIMULATED ADDRESS', birthDate: p.birthDate };
  }
  // Hong Kong and Macao ID cards and the travel permits.
  return {
    name: p.fullName,
    englishName: p.fullName,
    idNumber: p.idNumber,
    sex: p.sex,
    birthDate: p.birthDate,
    issueDate: p.issueDate,
    expiryDate: p.expiryDate,
  };
}

/** Deterministic per transaction, so repeated CheckResult calls agree. */
function fakePerson(transactionId: string) {
  const digest = createHash('sha256').update(transactionId).digest();
  const year = 1960 + ((digest[0] ?? 0) % 45);
  const month = pad(1 + ((digest[1] ?? 0) % 12));
  const day = pad(1 + ((digest[2] ?? 0) % 28));
  const issued = 2016 + ((digest[8] ?? 0) % 8);
  return {
    // Hong Kong's placeholder name (the "John Smith" of its forms).
    surname: 'CHAN',
    givenname: 'TAI MAN',
    fullName: 'CHAN TAI MAN',
    idNumber: `SIM${digest.readUInt32BE(3).toString().padStart(10, '0')}`,
    birthDate: `${year}-${month}-${day}`,
    issueDate: `${issued}-${month}-${day}`,
    expiryDate: `${issued + 10}-${month}-${day}`,
    sex: (digest[7] ?? 0) % 2 === 0 ? 'F' : 'M',
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
