import type { ErrorCode } from './codes.js';

/**
 * An error a route answers with: an HTTP status, a stable machine-readable `code` (one of the
 * catalogue in codes.ts) and a message that is safe to show the caller. Anything that is not an
 * HttpError becomes a 500 without details.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    // An answer to the caller, not a fault: capturing a stack trace would cost more than the
    // answer (a flood of forged callbacks is thousands of these per second) and tell nobody anything.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
  }
}
