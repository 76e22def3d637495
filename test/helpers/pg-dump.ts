import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DATABASE_URL, type Stack } from './stack.js';

const execFileP = promisify(execFile);

/** The data of a stack's own schema (its tables), as `pg_dump --data-only` writes it. */
export async function dumpData(stack: Pick<Stack, 'config'>): Promise<string> {
  const schema = new URL(stack.config.DATABASE_URL).searchParams.get('schema')!;
  const url = new URL(DATABASE_URL);
  const { stdout } = await execFileP(
    'pg_dump',
    ['--data-only', '--schema', schema, '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username) || 'postgres', url.pathname.slice(1)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** How pg_dump writes a bytea value, after its `\\x` (hex). */
export const byteaHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
