import fp from 'fastify-plugin';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { toDbError } from './errors.js';
import { splitSchemaParam } from './url.js';

export type Db = ReturnType<typeof createPrisma>;

declare module 'fastify' {
  interface FastifyInstance {
    prisma: Db;
  }
}

/**
 * The Prisma client on node-postgres. Every connection attempt and every query is bounded by
 * `timeoutMs`, and every failure that is not a query error surfaces as DbUnavailableError, so a
 * database that is down or hanging costs a caller one bounded wait and a 503, never a hang.
 */
export function createPrisma(databaseUrl: string, timeoutMs = 800) {
  const { connectionString, schema } = splitSchemaParam(databaseUrl);
  const adapter = new PrismaPg(
    {
      connectionString,
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      max: 10,
      // search_path too, so that raw SQL finds the same tables as generated queries.
      options: `-c search_path="${schema.replaceAll('"', '""')}"`,
    },
    { schema },
  );
  return new PrismaClient({ adapter }).$extends({
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
}

export default fp(
  async (app) => {
    const prisma = createPrisma(app.config.DATABASE_URL, app.config.DATABASE_TIMEOUT_MS);
    app.decorate('prisma', prisma);
    app.addHook('onClose', async () => prisma.$disconnect());
  },
  { name: 'db', dependencies: ['config'] },
);
