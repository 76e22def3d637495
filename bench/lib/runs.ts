/** What both benchmarks need around a run: open-loop pacing and a database schema of their own. */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';

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
