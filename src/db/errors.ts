import pg from 'pg';
import { HttpError } from '../errors/http-error.js';
import { Prisma } from '../generated/prisma/client.js';

/** PostgreSQL could not be reached or did not answer in time. Nothing was written. */
export class DbUnavailableError extends HttpError {
  override name = 'DbUnavailableError';
  constructor(options?: { cause?: unknown }) {
    super(503, 'DB_UNAVAILABLE', 'The database is temporarily unavailable; retry shortly', { 'retry-after': '1' });
    if (options?.cause) this.cause = options.cause;
  }
}

/**
 * A failed query either is a query error (P2xxx or a SQLSTATE: a constraint, a bad value — a bug,
 * kept as is) or means the database is unreachable, slow or restarting (connection refused, reset,
 * timed out): that becomes a DbUnavailableError, answered 503. Takes Prisma's errors and
 * node-postgres's (the statements that skip Prisma).
 */
export function toDbError(err: unknown): unknown {
  if (err instanceof pg.DatabaseError) return err.code && !UNAVAILABLE_SQLSTATE.test(err.code) ? err : new DbUnavailableError({ cause: err });
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2010') {
    // A raw query ($executeRaw) failed: PostgreSQL answered with an error (a SQLSTATE), or never answered.
    return isAnsweredByPostgres(err) ? err : new DbUnavailableError({ cause: err });
  }
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code.startsWith('P2')) return err;
  if (err instanceof Prisma.PrismaClientValidationError) return err;
  return new DbUnavailableError({ cause: err });
}

/** SQLSTATE classes that mean "the server is going away or cannot serve now", not "your query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P)|^57014$/;

function isAnsweredByPostgres(err: Prisma.PrismaClientKnownRequestError): boolean {
  const cause = (err.meta?.driverAdapterError as { cause?: { originalCode?: unknown } } | undefined)?.cause;
  const sqlState = typeof cause?.originalCode === 'string' ? cause.originalCode : undefined;
  return sqlState !== undefined && !UNAVAILABLE_SQLSTATE.test(sqlState);
}
