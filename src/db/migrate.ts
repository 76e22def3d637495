/**
 * Offline migration runner, interchangeable with `prisma migrate deploy`.
 *
 * The Prisma 7 CLI needs a native schema engine for `migrate deploy`, which cannot be downloaded on
 * every machine. This runner applies `prisma/migrations/<name>/migration.sql` with `pg` and keeps the
 * `_prisma_migrations` bookkeeping exactly the way Prisma's engine does, so that either tool can be
 * used on the same database:
 *  - the same advisory lock (72707369) serialises concurrent runs (of either tool);
 *  - the same `_prisma_migrations` table layout;
 *  - checksum = hex sha256 of the migration file's bytes;
 *  - a migration is "applied" when its row has `finished_at` set and `rolled_back_at` null;
 *  - a row that is neither finished nor rolled back is a failed migration and blocks further runs
 *    (Prisma's P3009) until it is resolved (`prisma migrate resolve`, or by hand);
 *  - a non-empty schema without `_prisma_migrations` is refused (Prisma's P3005).
 *
 * Run as a program: `node dist/db/migrate.js` (or `tsx src/db/migrate.ts`) reads DATABASE_URL
 * (a `.env` in the working directory is loaded first, but never overrides the real environment).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { isMainModule } from '../cli/is-main.js';
import { splitSchemaParam } from './url.js';

/** Prisma's advisory lock id for migrations (schema engine, postgres connector). */
export const PRISMA_MIGRATION_LOCK_ID = 72707369;

export interface MigrateOptions {
  /** Postgres URL; Prisma's `?schema=NAME` parameter selects the schema (default `public`). */
  databaseUrl: string;
  /** Directory holding `<name>/migration.sql`; defaults to `<project root>/prisma/migrations`. */
  migrationsDir?: string;
  /** Receives one line per applied migration, plus warnings. */
  log?: (msg: string) => void;
}

export interface MigrateResult {
  applied: string[];
}

export class MigrationError extends Error {
  /** The Prisma error code this corresponds to (P3005, P3009, P3018), when there is one. */
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'MigrationError';
    this.code = code;
  }
}

interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

interface MigrationRow {
  id: string;
  checksum: string;
  migration_name: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

/** `<project root>/prisma/migrations`; this file lives in `src/db/` or `dist/db/`. */
export function defaultMigrationsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, '..', '..', 'prisma', 'migrations');
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function checksumOf(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads `<dir>/<name>/migration.sql` for every sub-directory, in name order. */
export function readLocalMigrations(dir: string): LocalMigration[] {
  if (!existsSync(dir)) {
    throw new MigrationError(`Migrations directory not found: ${dir}`);
  }
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || (e.isSymbolicLink() && statSync(join(dir, e.name)).isDirectory())))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return names.map((name) => {
    const file = join(dir, name, 'migration.sql');
    if (!existsSync(file)) {
      throw new MigrationError(`Migration ${name} has no migration.sql (${file})`);
    }
    if (Buffer.byteLength(name) > 255) {
      throw new MigrationError(`Migration name is longer than 255 bytes: ${name}`);
    }
    const bytes = readFileSync(file);
    return { name, sql: bytes.toString('utf8'), checksum: checksumOf(bytes) };
  });
}

/**
 * True when the script manages its own transaction (a top-level BEGIN / START TRANSACTION /
 * COMMIT / END / ROLLBACK statement). Comments, string literals, quoted identifiers and
 * dollar-quoted bodies (where plpgsql's BEGIN lives) are skipped.
 */
export function hasOwnTransactionControl(sql: string): boolean {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? n : end + 1;
      current += ' ';
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
      current += ' ';
    } else if (c === "'" || c === '"') {
      i++;
      while (i < n) {
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      current += ' x ';
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (m && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const tag = m[0];
        const end = sql.indexOf(tag, i + tag.length);
        i = end === -1 ? n : end + tag.length;
        current += ' x ';
      } else {
        current += c;
        i++;
      }
    } else if (c === ';') {
      statements.push(current);
      current = '';
      i++;
    } else {
      current += c;
      i++;
    }
  }
  statements.push(current);
  return statements.some((s) =>
    /^\s*(BEGIN|COMMIT|ROLLBACK|END|ABORT|START\s+TRANSACTION)\b/i.test(s),
  );
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { detail?: string; hint?: string; position?: string; code?: string };
    const parts = [e.message];
    if (e.code) parts.push(`SQLSTATE ${e.code}`);
    if (e.detail) parts.push(`DETAIL: ${e.detail}`);
    if (e.hint) parts.push(`HINT: ${e.hint}`);
    if (e.position) parts.push(`POSITION: ${e.position}`);
    return parts.join('\n');
  }
  return String(err);
}

export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const migrationsDir = opts.migrationsDir ?? defaultMigrationsDir();
  const local = readLocalMigrations(migrationsDir);
  const { connectionString, schema } = splitSchemaParam(opts.databaseUrl);
  const table = `${quoteIdent(schema)}."_prisma_migrations"`;

  const client = new pg.Client({ connectionString });
  await client.connect();
  let locked = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATION_LOCK_ID]);
    locked = true;

    const schemaExists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (schemaExists.rowCount === 0) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    }
    await client.query(`SET search_path TO ${quoteIdent(schema)}`);

    const hasTable = await client.query(
      `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = '_prisma_migrations' AND c.relkind IN ('r', 'p')`,
      [schema],
    );
    if (hasTable.rowCount === 0) {
      const existing = await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          ORDER BY c.relname`,
        [schema],
      );
      if (existing.rows.length > 0) {
        const names = existing.rows.map((r) => r.name);
        const shown = names.slice(0, 10).join(', ') + (names.length > 10 ? `, ... (${names.length} in all)` : '');
        throw new MigrationError(
          `P3005: The database schema "${schema}" is not empty (it has ${shown}) and has no _prisma_migrations table. ` +
            'Refusing to apply migrations to it. Baseline it first (mark the migrations that already exist there as ' +
            'applied: https://pris.ly/d/migrate-baseline), or use an empty database/schema.',
          'P3005',
        );
      }
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
        "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
        "checksum"              VARCHAR(64) NOT NULL,
        "finished_at"           TIMESTAMPTZ,
        "migration_name"        VARCHAR(255) NOT NULL,
        "logs"                  TEXT,
        "rolled_back_at"        TIMESTAMPTZ,
        "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
        "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
      )`);
    }

    const rows = (
      await client.query<MigrationRow>(
        `SELECT id, checksum, migration_name, finished_at, rolled_back_at, logs
           FROM ${table} ORDER BY started_at ASC, migration_name ASC`,
      )
    ).rows;

    const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
    if (failed.length > 0) {
      const list = failed
        .map((r) => `The \`${r.migration_name}\` migration started${r.logs ? ` and failed:\n${r.logs}` : ' but did not finish'}`)
        .join('\n');
      throw new MigrationError(
        `P3009: found failed migrations in the target database (schema "${schema}"); new migrations will not be applied.\n` +
          `${list}\n` +
          'Fix the database by hand, then mark the migration with `prisma migrate resolve --applied <name>` or ' +
          '`--rolled-back <name>` (https://pris.ly/d/migrate-resolve), or without the Prisma CLI: ' +
          `UPDATE ${table} SET rolled_back_at = now() WHERE migration_name = '<name>' AND finished_at IS NULL ` +
          '(it is then re-applied on the next run).',
        'P3009',
      );
    }

    const finished = new Map<string, MigrationRow>();
    for (const r of rows) {
      if (r.finished_at !== null && r.rolled_back_at === null) finished.set(r.migration_name, r);
    }
    const localNames = new Set(local.map((m) => m.name));
    for (const name of finished.keys()) {
      if (!localNames.has(name)) {
        log(`Warning: migration ${name} is applied to the database but missing from ${migrationsDir}`);
      }
    }

    const applied: string[] = [];
    for (const m of local) {
      const done = finished.get(m.name);
      if (done) {
        if (done.checksum !== m.checksum) {
          log(`Warning: migration ${m.name} was modified after it was applied (checksum differs); not re-applying it`);
        }
        continue;
      }

      const id = randomUUID();
      await client.query(
        `INSERT INTO ${table} (id, checksum, migration_name, started_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), 0)`,
        [id, m.checksum, m.name],
      );
      const ownTransaction = hasOwnTransactionControl(m.sql);
      try {
        if (ownTransaction) {
          await client.query(m.sql);
        } else {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query('COMMIT');
        }
      } catch (err) {
        const message = errorMessage(err);
        // Leave whatever transaction the script was in (a no-op warning if none) before bookkeeping.
        await client.query('ROLLBACK').catch(() => {});
        await client.query(`SET search_path TO ${quoteIdent(schema)}`).catch(() => {});
        await client.query(`UPDATE ${table} SET logs = $2 WHERE id = $1`, [id, message]);
        throw new MigrationError(
          `P3018: migration ${m.name} failed to apply; no further migrations were applied.\n${message}`,
          'P3018',
        );
      }
      await client.query(
        `UPDATE ${table} SET finished_at = now(), applied_steps_count = applied_steps_count + 1 WHERE id = $1`,
        [id],
      );
      // The script may have changed the session's search_path; later migrations expect the target schema.
      await client.query(`SET search_path TO ${quoteIdent(schema)}`);
      applied.push(m.name);
      log(`Applied migration ${m.name}`);
    }
    return { applied };
  } finally {
    if (locked) {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATION_LOCK_ID]).catch(() => {});
    }
    await client.end().catch(() => {});
  }
}

/** Loads `<cwd>/.env` if present; variables already in the environment always win. */
export function loadDotEnv(file = join(process.cwd(), '.env')): void {
  if (!existsSync(file)) return;
  const before = { ...process.env };
  process.loadEnvFile(file);
  // Some Node releases let loadEnvFile overwrite existing variables; put the real ones back.
  for (const [key, value] of Object.entries(before)) {
    if (value !== undefined) process.env[key] = value;
  }
}

async function main(): Promise<void> {
  loadDotEnv();
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error('migrate: DATABASE_URL is not set (environment or .env)');
    process.exitCode = 1;
    return;
  }
  try {
    const { applied } = await migrate({ databaseUrl, log: (msg) => console.log(msg) });
    console.log(
      applied.length === 0
        ? 'No pending migrations to apply.'
        : `${applied.length} migration${applied.length === 1 ? '' : 's'} applied.`,
    );
  } catch (err) {
    console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

if (isMainModule(import.meta.url)) {
  await main();
}
