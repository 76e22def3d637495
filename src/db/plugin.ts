import fp from 'fastify-plugin';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { toDbError } from './errors.js';
import { splitSchemaParam } from './url.js';

export type Db = ReturnType<typeof createDatabase>['prisma'];

declare module 'fastify' {
  interface FastifyInstance {
    prisma: Db;
    /**
     * The node-postgres pool under Prisma, for the few statements on a request's critical path
     * (see SessionRepository): Prisma's query engine adds 0.4–0.6 ms to each, measured in README →
     * Performance. Same connections, same timeouts.
     */
    pgPool: pg.Pool;
  }
}

/**
 * The Prisma client on a node-postgres pool. Every connection attempt and every query is bounded
 * by `timeoutMs`, and every failure that is not a query error surfaces as DbUnavailableError, so
 * a database that is down or hanging costs a caller one bounded wait and a 503, never a hang.
 */
export function createDatabase(databaseUrl: string, timeoutMs = 800) {
  const { connectionString, schema } = splitSchemaParam(databaseUrl);
  const pool = new pg.Pool({
    connectionString,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    max: 10,
    // search_path too, so that raw SQL finds the same tables as generated queries.
    options: `-c search_path="${schema.replaceAll('"', '""')}"`,
  });
  // An idle connection that dies (PostgreSQL restarted) is dropped by the pool; the next query
  // opens a new one. Without a listener, the pool's 'error' event would end the process.
  pool.on('error', () => {});
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema }) }).$extends({
    query: {
      async $allOperations({ args, query }) {
        try {
          return await query(args);
        } catch (err) {
          throw toDbError(err);
        }
      },
    },
  });
  return { prisma, pool };
}

export default fp(
  async (app) => {
    const { prisma, pool } = createDatabase(app.config.DATABASE_URL, app.config.DATABASE_TIMEOUT_MS);
    app.decorate('prisma', prisma);
    app.decorate('pgPool', pool);
    app.addHook('onClose', async () => {
      await prisma.$disconnect();
      await pool.end();
    });
  },
  { name: 'db', dependencies: ['config'] },
);
