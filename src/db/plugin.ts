import fp from 'fastify-plugin';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { splitSchemaParam } from './url.js';

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient;
  }
}

export function createPrisma(databaseUrl: string): PrismaClient {
  const { connectionString, schema } = splitSchemaParam(databaseUrl);
  const adapter = new PrismaPg(
    // search_path too, so that raw SQL finds the same tables as generated queries.
    { connectionString, connectionTimeoutMillis: 1000, max: 10, options: `-c search_path="${schema.replaceAll('"', '""')}"` },
    { schema },
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
