// Configuration of the Prisma 7 CLI (generate, validate, migrate deploy/resolve/status, studio).
// Prisma 7 no longer reads .env by itself: a .env in the working directory is loaded here, and the
// real environment always wins over it (as in src/db/migrate.ts).
import { existsSync } from 'node:fs';
import { defineConfig } from 'prisma/config';

if (existsSync('.env')) {
  const before = { ...process.env };
  process.loadEnvFile('.env');
  for (const [key, value] of Object.entries(before)) {
    if (value !== undefined) process.env[key] = value;
  }
}

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: {
    path: 'prisma/migrations',
  },
  // Not `env('DATABASE_URL')`: that throws when the variable is unset, and `prisma generate` (run by
  // `npm run build`, e.g. in the Docker build) must work without a database. Commands that need a
  // database (migrate deploy/status/resolve) fail with their own clear error when it is empty.
  datasource: {
    url: process.env.DATABASE_URL ?? '',
  },
});
