import { z } from 'zod';

/** The body of every error response. */
export const errorResponseSchema = z
  .object({
    code: z.string().describe('Stable machine-readable error code.'),
    message: z.string().describe('Human-readable explanation.'),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .describe('Error');
export type ErrorResponse = z.infer<typeof errorResponseSchema>;
