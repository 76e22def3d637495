import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { PUBLISHED_SECRETS } from '../src/config/published-secrets.js';

/**
 * Keeps src/config/published-secrets.ts complete: every secret-looking value assigned in the files
 * this repository publishes for copying (.env.example, the compose files, README.md) or baked into
 * the simulator's defaults must be on the list production refuses.
 */

const root = new URL('../', import.meta.url);
const FILES = [
  '.env.example',
  'README.md',
  ...readdirSync(root).filter((f) => /^docker-compose.*\.ya?ml$/.test(f)),
  'src/simulator/main.ts',
];

/** Names that hold secrets: *_SECRET*, *TOKEN*, *PASSWORD*, *_KEY(S), not key ids, algorithms or public keys. */
const isSecretName = (name: string) => /SECRET|TOKEN|PASSWORD|API_KEY|_KEYS?$/.test(name) && !/PUBLIC_KEY|_KEY_ID$|_ALG$/.test(name);

interface Found {
  file: string;
  name: string;
  value: string;
}

/** A value as written, or undefined when it is none (empty, a reference, a placeholder, a command). */
function literal(raw: string): string | undefined {
  const value = raw
    .trim()
    .replace(/^&[\w-]+\s+/, '') // a YAML anchor before the value
    .replace(/^(["'])(.*)\1$/, '$2');
  if (value === '' || /^[*$<]/.test(value) || value.includes('…') || value.includes('${')) return undefined;
  return value;
}

/** Every secret-looking assignment of a file's text. */
function secretAssignments(file: string, text: string): Found[] {
  const found: Found[] = [];
  const add = (name: string, raw: string) => {
    const value = literal(raw);
    if (value !== undefined && isSecretName(name)) found.push({ file, name, value });
  };
  for (const line of text.split('\n')) {
    // NAME=value: .env lines, shell examples
    for (const m of line.matchAll(/\b([A-Z][A-Z0-9_]*)=("[^"]*"|'[^']*'|[^\s`'"]*)/g)) add(m[1]!, m[2]!);
    // NAME: value (YAML), without a trailing comment
    const yaml = /\.ya?ml$/.test(file) && /^\s*([A-Z][A-Z0-9_]*):\s*(.*?)\s*(?:\s#.*)?$/.exec(line);
    if (yaml) add(yaml[1]!, yaml[2]!);
    // ${NAME:-fallback} / ${NAME-fallback} (compose)
    for (const m of line.matchAll(/\$\{([A-Z][A-Z0-9_]*):?-([^}]*)\}/g)) add(m[1]!, m[2]!);
    // scheme://user:password@host: the password, named after the URL
    for (const m of line.matchAll(/[a-z]+:\/\/[^:/\s@]+:([^@\s/]+)@/g)) add('URL_PASSWORD', m[1]!);
    // NAME_SECRET: z.string()….default('value') (the simulator's environment)
    const zod = file.endsWith('.ts') && /([A-Z][A-Z0-9_]*):\s*z\..*\.default\('([^']*)'\)/.exec(line);
    if (zod) add(zod[1]!, zod[2]!);
  }
  return found;
}

describe('secrets published in this repository', () => {
  test('the scanner finds what it should (and skips references and placeholders)', () => {
    const env = ['AUTH_JWT_SECRET=planted-jwt-secret', 'ALIBABA_CLOUD_ACCESS_KEY_ID=sim-access-key-id', 'METRICS_TOKEN='].join('\n');
    const yml = [
      '      USER_ID_HASH_SECRET: &hash planted-hash # dev-only',
      '      METRICS_TOKEN: ${METRICS_TOKEN:-planted-token}',
      '      DATABASE_URL: postgresql://kyc:planted-password@postgres:5432/kyc',
      '      INTERNAL_API_KEY: ${INTERNAL_API_KEY:?set it}',
      '      SIMULATOR_DEMO_JWT_SECRET: *auth-jwt-secret',
      '      AUTH_JWT_PUBLIC_KEY: ${AUTH_JWT_PUBLIC_KEY:-}',
    ].join('\n');
    const md = ['TOKEN=$(npm run -s token -- alice)', '`KYC_DETAILS_KEYS=k1:…,k2:…`', 'curl -H "x-api-key: <INTERNAL_API_KEY>"'].join('\n');
    const ts = ["  SIMULATOR_ACCESS_KEY_SECRET: z.string().min(1).default('planted-ak'),", '  AUTH_JWT_SECRET: z.string().min(1).optional(),'].join('\n');
    const found = [
      ...secretAssignments('.env', env),
      ...secretAssignments('compose.yml', yml),
      ...secretAssignments('README.md', md),
      ...secretAssignments('main.ts', ts),
    ];
    assert.deepEqual(
      found.map((f) => `${f.name}=${f.value}`),
      ['AUTH_JWT_SECRET=planted-jwt-secret', 'USER_ID_HASH_SECRET=planted-hash', 'METRICS_TOKEN=planted-token', 'URL_PASSWORD=planted-password', 'SIMULATOR_ACCESS_KEY_SECRET=planted-ak'],
    );
  });

  test('every one of them is in src/config/published-secrets.ts', () => {
    const found = FILES.flatMap((file) => secretAssignments(file, readFileSync(new URL(file, root), 'utf8')));
    // The files do publish secrets: a scan that finds none has stopped working.
    for (const file of ['.env.example', 'docker-compose.dev.yml', 'src/simulator/main.ts']) {
      assert.ok(found.some((f) => f.file === file), `no secret found in ${file}`);
    }
    const missing = found.filter((f) => !PUBLISHED_SECRETS.has(f.value)).map((f) => `${f.file}: ${f.name}=${f.value}`);
    assert.deepEqual(missing, [], 'add these values to src/config/published-secrets.ts');
  });

  test('the production compose file has no fallback for a secret', () => {
    const text = readFileSync(new URL('docker-compose.yml', root), 'utf8');
    assert.deepEqual(secretAssignments('docker-compose.yml', text), []);
    for (const name of ['POSTGRES_PASSWORD', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET', 'USER_ID_HASH_SECRET', 'METRICS_TOKEN', 'CLOUDAUTH_ACCOUNT', 'PUBLIC_BASE_URL']) {
      assert.match(text, new RegExp(`\\$\\{${name}:\\?`), `${name} is required (\${${name}:?…})`);
    }
    assert.match(text, /^\s+NODE_ENV: production$/m);
  });
});
