/**
 * An error a route answers with: an HTTP status, a stable machine-readable `code` and a message
 * that is safe to show the caller. Anything that is not an HttpError becomes a 500 without details.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
