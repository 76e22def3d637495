import fp from 'fastify-plugin';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient;
  }
}

/** Splits Prisma's `?schema=NAME` convention off a URL that `pg` would not understand. */
export function pgConnection(databaseUrl: string): { connectionString: string; schema?: string } {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? undefined;
  url.searchParams.delete('schema');
  return { connectionString: url.toString(), ...(schema ? { schema } : {}) };
}

export function createPrisma(databaseUrl: string): PrismaClient {
  const { connectionString, schema } = pgConnection(databaseUrl);
  const adapter = new PrismaPg(
    { connectionString, connectionTimeoutMillis: 1000, max: 10 },
    schema ? { schema } : undefined,
  );
  return new PrismaClient({ adapter });
}

export default fp(
  async (app) => {
    const prisma = createPrisma(app.config.DATABASE_URL);
    app.decorate('prisma', prisma);
    app.addHook('onClose', async () => prisma.$disconnect());
  },
  { name: 'db', dependencies: ['config'] },
);
