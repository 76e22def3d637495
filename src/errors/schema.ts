import { z } from 'zod';
import { ERROR_CODES, ERROR_GROUPS, type ErrorCode } from './codes.js';

/** The body of every error response. */
export const errorResponseSchema = z
  .object({
    code: z.string().describe('Stable machine-readable error code.'),
    message: z.string().describe('Human-readable explanation.'),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .describe('Error');
export type ErrorResponse = z.infer<typeof errorResponseSchema>;

type ErrorStatusOf<C extends ErrorCode> = (typeof ERROR_CODES)[C]['status'];

/** The error body with `code` limited to `codes` (all of one status). */
function errorSchemaFor(codes: readonly [ErrorCode, ...ErrorCode[]]) {
  const list = codes.map((c) => `\`${c}\`: ${ERROR_CODES[c].meaning}`).join(' ');
  return errorResponseSchema.extend({ code: z.enum(codes).describe('Stable machine-readable error code.') }).describe(list);
}

/**
 * The error responses of a route, by status, from the codes it can answer with (codes or groups
 * of ERROR_GROUPS; INTERNAL_ERROR is always added). Each status documents its codes as an enum,
 * and the serializer refuses any other code, so the OpenAPI document cannot promise less than the
 * route does.
 */
export function errorResponses<const C extends ErrorCode = never>(
  ...codes: ReadonlyArray<C | readonly C[]>
): Record<ErrorStatusOf<C | 'INTERNAL_ERROR'>, z.ZodType<ErrorResponse>> {
  const all = new Set<ErrorCode>([...codes.flat(), ...ERROR_GROUPS.always]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of all) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [status, errorSchemaFor(list as [ErrorCode, ...ErrorCode[]])]),
  ) as unknown as Record<ErrorStatusOf<C | 'INTERNAL_ERROR'>, z.ZodType<ErrorResponse>>;
}
