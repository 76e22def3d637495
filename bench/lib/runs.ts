/** What the benchmarks need around a run: open-loop pacing, a database schema of their own, the image's memory settings. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';

/** The database the benchmarks make their schemas in (DATABASE_URL, else the machine's local PostgreSQL). */
export const BENCH_DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

/** Open loop: call i leaves at start + i / rate whatever the answers do; resolves when all answered. */
export async function paced<T>(rate: number, seconds: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const count = Math.round(rate * seconds);
  const started = Date.now();
  const pending: Array<Promise<T>> = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / rate - Date.now();
    if (wait > 0) await sleep(wait);
    pending.push(call(i));
  }
  return Promise.all(pending);
}

/**
 * A migrated schema of its own (and one for the job queue), dropped by `drop()`: benchmark
 * sessions must not land in a dev or test database, whose sweep would then work through them.
 */
export async function benchDatabase(baseUrl: string) {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const url = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}schema=${schema}`;
  const jobsSchema = `${schema}_jobs`;
  await migrate({ databaseUrl: url, log: () => {} });
  return {
    url,
    jobsSchema,
    async drop() {
      const db = new pg.Client({ connectionString: baseUrl });
      await db.connect();
      for (const name of [schema, jobsSchema]) await db.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      await db.end();
    },
  };
}

/** How the Docker image runs the service: its NODE_OPTIONS and MALLOC_ARENA_MAX, read from the Dockerfile. */
export function imageMemorySettings(): { NODE_OPTIONS: string; MALLOC_ARENA_MAX: string } {
  const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(runtime)?.[1];
  const arenas = /MALLOC_ARENA_MAX=(\d+)/.exec(runtime)?.[1];
  if (nodeOptions === undefined || arenas === undefined) throw new Error('Dockerfile: no NODE_OPTIONS="…" or MALLOC_ARENA_MAX in the runtime stage');
  return { NODE_OPTIONS: nodeOptions, MALLOC_ARENA_MAX: arenas };
}
