import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { splitSchemaParam } from '../src/db/url.js';
import {
  PRISMA_MIGRATION_LOCK_ID,
  hasOwnTransactionControl,
  migrate,
} from '../src/db/migrate.js';

const execFileP = promisify(execFile);

const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const dbName = `kyc_migrate_test_${randomBytes(6).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

const tmpRoot = mkdtempSync(join(tmpdir(), 'kyc-migrate-'));
let dirCounter = 0;
let schemaCounter = 0;

/** Writes a migrations dir: { name: sql }. Adds a migration_lock.toml and a stray file like Prisma's. */
function writeMigrations(files: Record<string, string>): string {
  const dir = join(tmpRoot, `m${dirCounter++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  for (const [name, sql] of Object.entries(files)) {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

/** A fresh schema inside the throwaway database, so tests don't see each other's tables. */
function freshSchemaUrl(): { url: string; schema: string } {
  const schema = `s${schemaCounter++}_${randomBytes(3).toString('hex')}`;
  return { url: `${dbUrl}?schema=${schema}`, schema };
}

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

interface Row {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  started_at: Date;
  rolled_back_at: Date | null;
  logs: string | null;
  applied_steps_count: number;
}

async function rowsOf(schema: string): Promise<Row[]> {
  return withClient(async (c) => {
    const r = await c.query<Row>(`SELECT * FROM "${schema}"."_prisma_migrations" ORDER BY started_at, migration_name`);
    return r.rows;
  });
}

const sha256 = (s: string) => createHash('sha256').update(Buffer.from(s)).digest('hex');

before(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  await admin.end();
});

after(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.end();
  rmSync(tmpRoot, { recursive: true, force: true });
});

describe('migrate()', () => {
  test('applies migrations in name order, records Prisma-compatible rows, and is idempotent', async () => {
    const { url, schema } = freshSchemaUrl();
    const files = {
      // Written out of order on purpose: the second depends on the first.
      '20260102000000_second': 'ALTER TABLE "thing" ADD COLUMN "label" TEXT NOT NULL DEFAULT \'x\';\nINSERT INTO "thing" ("id") VALUES (1);\n',
      '20260101000000_first': '-- CreateTable\nCREATE TABLE "thing" ("id" INTEGER PRIMARY KEY);\n',
      '20260103000000_third':
        'DO $$ BEGIN\n  CREATE TYPE "Color" AS ENUM (\'RED\', \'GREEN\');\nEXCEPTION WHEN duplicate_object THEN null;\nEND $$;\n' +
        'CREATE TABLE "paint" ("c" "Color" NOT NULL);\n',
    };
    const dir = writeMigrations(files);
    const lines: string[] = [];
    const first = await migrate({ databaseUrl: url, migrationsDir: dir, log: (m) => lines.push(m) });
    assert.deepEqual(first.applied, ['20260101000000_first', '20260102000000_second', '20260103000000_third']);
    assert.equal(lines.filter((l) => l.startsWith('Applied migration')).length, 3);

    // The tables landed in the requested schema, not in public.
    const where = await withClient((c) =>
      c.query<{ table_schema: string; table_name: string }>(
        `SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('thing', 'paint', '_prisma_migrations') ORDER BY table_name`,
      ),
    );
    assert.deepEqual(
      where.rows.map((r) => `${r.table_schema}.${r.table_name}`),
      [`${schema}._prisma_migrations`, `${schema}.paint`, `${schema}.thing`],
    );

    const rows = await rowsOf(schema);
    assert.equal(rows.length, 3);
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      ['20260101000000_first', '20260102000000_second', '20260103000000_third'],
    );
    for (const r of rows) {
      assert.match(r.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(r.checksum, sha256(files[r.migration_name as keyof typeof files]));
      assert.ok(r.finished_at instanceof Date, 'finished_at set');
      assert.ok(r.finished_at.getTime() >= r.started_at.getTime());
      assert.equal(r.rolled_back_at, null);
      assert.equal(r.logs, null);
      assert.equal(r.applied_steps_count, 1);
    }

    // The table has Prisma's exact layout.
    const cols = await withClient((c) =>
      c.query<{ column_name: string; data_type: string; len: number | null; is_nullable: string; column_default: string | null }>(
        `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = $1 AND table_name = '_prisma_migrations'
          ORDER BY ordinal_position`,
        [schema],
      ),
    );
    assert.deepEqual(
      cols.rows.map((c) => [c.column_name, c.data_type, c.len, c.is_nullable, c.column_default]),
      [
        ['id', 'character varying', 36, 'NO', null],
        ['checksum', 'character varying', 64, 'NO', null],
        ['finished_at', 'timestamp with time zone', null, 'YES', null],
        ['migration_name', 'character varying', 255, 'NO', null],
        ['logs', 'text', null, 'YES', null],
        ['rolled_back_at', 'timestamp with time zone', null, 'YES', null],
        ['started_at', 'timestamp with time zone', null, 'NO', 'now()'],
        ['applied_steps_count', 'integer', null, 'NO', '0'],
      ],
    );
    const pk = await withClient((c) =>
      c.query<{ col: string }>(
        `SELECT a.attname AS col FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary`,
        [`"${schema}"."_prisma_migrations"`],
      ),
    );
    assert.deepEqual(pk.rows.map((r) => r.col), ['id']);

    // Second run: nothing to do, nothing recorded.
    const second = await migrate({ databaseUrl: url, migrationsDir: dir });
    assert.deepEqual(second.applied, []);
    assert.equal((await rowsOf(schema)).length, 3);
    const count = await withClient((c) => c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}"."thing"`));
    assert.equal(count.rows[0]?.n, '1');
  });

  test('applies only the new migration when one is added later, and warns about an edited one', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({ '001_a': 'CREATE TABLE a (id int);' });
    assert.deepEqual((await migrate({ databaseUrl: url, migrationsDir: dir })).applied, ['001_a']);

    writeFileSync(join(dir, '001_a', 'migration.sql'), 'CREATE TABLE a (id int); -- edited');
    mkdirSync(join(dir, '002_b'));
    writeFileSync(join(dir, '002_b', 'migration.sql'), 'CREATE TABLE b (id int);');
    const lines: string[] = [];
    const res = await migrate({ databaseUrl: url, migrationsDir: dir, log: (m) => lines.push(m) });
    assert.deepEqual(res.applied, ['002_b']);
    assert.ok(lines.some((l) => /001_a/.test(l) && /checksum/i.test(l)), `expected a checksum warning, got ${JSON.stringify(lines)}`);
    // The stored checksum stays the one that was applied.
    const rows = await rowsOf(schema);
    assert.equal(rows.find((r) => r.migration_name === '001_a')?.checksum, sha256('CREATE TABLE a (id int);'));
  });

  test('a failed migration is rolled back, logged, and blocks later runs (P3009) even after the file is fixed', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({
      '001_ok': 'CREATE TABLE ok_table (id int);',
      '002_broken': 'CREATE TABLE half_done (id int);\nCREATE TABLE broken (id int REFERENCES no_such_table(id));',
      '003_later': 'CREATE TABLE later (id int);',
    });
    await assert.rejects(migrate({ databaseUrl: url, migrationsDir: dir }), (err: Error) => {
      assert.match(err.message, /002_broken/);
      assert.match(err.message, /no_such_table/);
      return true;
    });
    const rows = await rowsOf(schema);
    assert.deepEqual(rows.map((r) => r.migration_name), ['001_ok', '002_broken']);
    const broken = rows[1]!;
    assert.equal(broken.finished_at, null);
    assert.equal(broken.rolled_back_at, null);
    assert.equal(broken.applied_steps_count, 0);
    assert.match(broken.logs ?? '', /no_such_table/);
    // The script ran in a transaction: its first statement did not survive.
    const tables = await withClient((c) =>
      c.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [schema],
      ),
    );
    assert.deepEqual(tables.rows.map((r) => r.table_name), ['_prisma_migrations', 'ok_table']);

    // Fixing the file does not unblock it: the failed row has to be resolved first.
    writeFileSync(join(dir, '002_broken', 'migration.sql'), 'CREATE TABLE broken (id int);');
    await assert.rejects(migrate({ databaseUrl: url, migrationsDir: dir }), (err: Error & { code?: string }) => {
      assert.match(err.message, /P3009/);
      assert.match(err.message, /002_broken/);
      assert.equal(err.code, 'P3009');
      return true;
    });
    assert.equal((await rowsOf(schema)).length, 2);

    // After `prisma migrate resolve --rolled-back 002_broken` (which sets rolled_back_at), it is re-applied.
    await withClient((c) =>
      c.query(`UPDATE "${schema}"."_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '002_broken'`),
    );
    const res = await migrate({ databaseUrl: url, migrationsDir: dir });
    assert.deepEqual(res.applied, ['002_broken', '003_later']);
    const finalRows = await rowsOf(schema);
    assert.equal(finalRows.filter((r) => r.migration_name === '002_broken').length, 2);
  });

  test('a script with its own BEGIN/COMMIT runs as written, and a failure in it is still recorded', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({
      '001_own_tx': 'BEGIN;\nCREATE TABLE own (id int);\nCOMMIT;\n',
      '002_own_tx_fail': 'BEGIN;\nCREATE TABLE own2 (id int);\nSELECT 1/0;\nCOMMIT;\n',
    });
    await assert.rejects(migrate({ databaseUrl: url, migrationsDir: dir }), /002_own_tx_fail[\s\S]*division by zero/);
    const rows = await rowsOf(schema);
    assert.ok(rows[0]?.finished_at instanceof Date);
    assert.equal(rows[1]?.finished_at, null);
    assert.match(rows[1]?.logs ?? '', /division by zero/);
  });

  test('refuses a non-empty schema that has no _prisma_migrations table (P3005)', async () => {
    const { url, schema } = freshSchemaUrl();
    await withClient(async (c) => {
      await c.query(`CREATE SCHEMA "${schema}"`);
      await c.query(`CREATE TABLE "${schema}"."legacy" (id int)`);
    });
    const dir = writeMigrations({ '001_a': 'CREATE TABLE a (id int);' });
    await assert.rejects(migrate({ databaseUrl: url, migrationsDir: dir }), (err: Error & { code?: string }) => {
      assert.match(err.message, /P3005/);
      assert.match(err.message, /not empty/);
      assert.match(err.message, /legacy/);
      return true;
    });
    const tables = await withClient((c) =>
      c.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, [schema]),
    );
    assert.deepEqual(tables.rows.map((r) => r.table_name), ['legacy'], 'nothing was created');
  });

  test('an empty migrations directory on an empty schema creates only the bookkeeping table', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({});
    const res = await migrate({ databaseUrl: url, migrationsDir: dir });
    assert.deepEqual(res.applied, []);
    assert.deepEqual(await rowsOf(schema), []);
  });

  test('waits for the advisory lock held by another migrator', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({ '001_a': 'CREATE TABLE a (id int);' });
    const holder = new pg.Client({ connectionString: dbUrl });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATION_LOCK_ID]);
      let settled = false;
      const run = migrate({ databaseUrl: url, migrationsDir: dir }).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(settled, false, 'migrate() must block while the lock is held');
      const waiting = await holder.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`,
        [PRISMA_MIGRATION_LOCK_ID],
      );
      assert.equal(waiting.rows[0]?.n, '1');
      await holder.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATION_LOCK_ID]);
      assert.deepEqual((await run).applied, ['001_a']);
    } finally {
      await holder.end();
    }
    assert.equal((await rowsOf(schema)).length, 1);
    // And the lock is released afterwards.
    const held = await withClient((c) =>
      c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1`, [
        PRISMA_MIGRATION_LOCK_ID,
      ]),
    );
    assert.equal(held.rows[0]?.n, '0');
  });

  test('two concurrent runs apply each migration exactly once', async () => {
    const { url, schema } = freshSchemaUrl();
    const dir = writeMigrations({
      '001_counter': 'CREATE TABLE hits (n int);',
      '002_slow': 'SELECT pg_sleep(0.3);\nINSERT INTO hits VALUES (1);',
      '003_more': 'INSERT INTO hits VALUES (2);',
    });
    const [a, b] = await Promise.all([
      migrate({ databaseUrl: url, migrationsDir: dir }),
      migrate({ databaseUrl: url, migrationsDir: dir }),
    ]);
    assert.deepEqual([...a.applied, ...b.applied].sort(), ['001_counter', '002_slow', '003_more']);
    assert.ok(a.applied.length === 0 || b.applied.length === 0, 'one run did all the work');
    assert.equal((await rowsOf(schema)).length, 3);
    const hits = await withClient((c) => c.query<{ n: number }>(`SELECT n FROM "${schema}".hits ORDER BY n`));
    assert.deepEqual(hits.rows.map((r) => r.n), [1, 2]);
  });
});

describe('helpers', () => {
  test('splitSchemaParam strips only the schema parameter', () => {
    assert.deepEqual(splitSchemaParam('postgresql://u:p@h:5432/db?schema=kyc&sslmode=disable'), {
      connectionString: 'postgresql://u:p@h:5432/db?sslmode=disable',
      schema: 'kyc',
    });
    assert.deepEqual(splitSchemaParam('postgresql://u@h/db?connect_timeout=5&schema=my%20s'), {
      connectionString: 'postgresql://u@h/db?connect_timeout=5',
      schema: 'my s',
    });
    assert.deepEqual(splitSchemaParam('postgresql://u@h/db'), { connectionString: 'postgresql://u@h/db', schema: 'public' });
    assert.deepEqual(splitSchemaParam('postgresql://u@h/db?schema='), { connectionString: 'postgresql://u@h/db', schema: 'public' });
  });

  test('hasOwnTransactionControl ignores BEGIN inside DO blocks, strings and comments', () => {
    assert.equal(hasOwnTransactionControl('BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;'), true);
    assert.equal(hasOwnTransactionControl('create table t (id int);\n  start transaction;'), true);
    assert.equal(hasOwnTransactionControl('DO $$ BEGIN PERFORM 1; END $$;'), false);
    assert.equal(hasOwnTransactionControl('DO $body$ BEGIN\n COMMIT;\nEND $body$;'), false);
    assert.equal(hasOwnTransactionControl("-- BEGIN;\n/* COMMIT; */ SELECT 'BEGIN;';"), false);
    assert.equal(hasOwnTransactionControl('CREATE TABLE "begin" (id int);'), false);
  });
});

describe('command line (node dist/db/migrate.js / tsx src/db/migrate.ts)', () => {
  const script = resolve(fileURLToPath(import.meta.url), '..', '..', 'src', 'db', 'migrate.ts');
  const tsxLoader = import.meta.resolve('tsx');

  /** Runs the CLI in `cwd` with only PATH and the given variables in its environment. */
  async function runCli(cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileP(process.execPath, ['--import', tsxLoader, script], {
        cwd,
        env: { PATH: process.env.PATH ?? '', ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  test('the environment wins over .env, .env fills in what is missing, and nothing set fails', async () => {
    const cwd = mkdtempSync(join(tmpRoot, 'cli-'));
    const { url, schema } = freshSchemaUrl();
    const unreachable = 'postgresql://postgres@127.0.0.1:1/nowhere';

    // .env points nowhere, the real environment at the throwaway db: the environment must win.
    writeFileSync(join(cwd, '.env'), `DATABASE_URL=${unreachable}\n`);
    const a = await runCli(cwd, { DATABASE_URL: url });
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /migrations? applied|No pending migrations/);
    // It applied the project's own prisma/migrations into the requested schema.
    const present = await withClient((c) =>
      c.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = '_prisma_migrations'`, [schema]),
    );
    assert.equal(present.rowCount, 1);

    // Only .env has it: it is used (and finds nothing left to apply).
    writeFileSync(join(cwd, '.env'), `DATABASE_URL=${url}\n`);
    const b = await runCli(cwd, {});
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /No pending migrations/);

    // Neither: a clear error and exit code 1.
    const c = await runCli(mkdtempSync(join(tmpRoot, 'cli-empty-')), {});
    assert.equal(c.code, 1);
    assert.match(c.stderr, /DATABASE_URL/);

    // A failure (the unreachable database) exits 1.
    const d = await runCli(cwd, { DATABASE_URL: unreachable });
    assert.equal(d.code, 1);
  });
});
