/**
 * Alibaba's material spells the callback's fields more than one way: the Initialize reference adds
 * `transactionId`, `passed` and `subcode`, says "the CallbackToken field is displayed", and its
 * example reads `?callbackToken=…&transactionId=…&passed=Y&subCode=200`. Every spelling is accepted;
 * two spellings of one field in one request are refused (which one would count is anyone's guess).
 */
export const CALLBACK_FIELDS = {
  transactionId: ['transactionId', 'TransactionId'],
  passed: ['passed', 'Passed'],
  subCode: ['subCode', 'subcode', 'SubCode'],
  callbackToken: ['callbackToken', 'CallbackToken'],
} as const;

export type CallbackField = keyof typeof CALLBACK_FIELDS;

/** Every spelling of every result field: a request with none of them is a reachability probe. */
export const RESULT_FIELD_NAMES: readonly string[] = Object.values(CALLBACK_FIELDS).flat();

/** The spellings of `field` present in `query`. */
export function spellingsPresent(query: Record<string, unknown>, field: CallbackField): string[] {
  return CALLBACK_FIELDS[field].filter((name) => query[name] !== undefined);
}

/** The field's value when exactly one spelling is present (any type; validation judges it), else undefined. */
export function singleValue(query: Record<string, unknown>, field: CallbackField): unknown {
  const present = spellingsPresent(query, field);
  return present.length === 1 ? query[present[0]!] : undefined;
}
