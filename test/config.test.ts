import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseEnv, promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { configWarnings } from '../src/config/production.js';
import { lowEntropyReason, namedList, secretProblems, STRONG } from '../src/config/secrets.js';
import { dropSchemas, LogCapture, testConfig } from './helpers/stack.js';
import { configErrorOf } from './helpers/config-errors.js';

const base = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test',
  REDIS_URL: 'redis://127.0.0.1:6379',
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'id',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'secret',
  PUBLIC_BASE_URL: 'https://kyc.shop.example',
  AUTH_JWT_SECRET: 'x'.repeat(32),
  USER_ID_HASH_SECRET: 'y'.repeat(32),
};

const errorOf = configErrorOf;

describe('configuration', () => {
  test('defaults: Hong Kong endpoint, eKYC policy, QPS 10, the account is the AccessKey id', () => {
    const c = parseConfig(base);
    assert.equal(c.CLOUDAUTH_ENDPOINT, 'https://cloudauth-intl.cn-hongkong.aliyuncs.com');
    assert.equal(c.KYC_PRODUCT_CODE, 'eKYC');
    assert.equal(c.KYC_SECURITY_LEVEL, '02');
    assert.equal(c.CLOUDAUTH_QPS, 10);
    assert.equal(c.CLOUDAUTH_ACCOUNT, 'id');
    assert.equal(c.KYC_DOC_TYPES.length, 8);
  });

  for (const name of Object.keys(base).filter((k) => k !== 'AUTH_JWT_SECRET')) {
    test(`a missing ${name} is named`, () => {
      assert.match(errorOf({ ...base, [name]: undefined }), new RegExp(`${name}: is required`));
    });
  }

  const bad: Array<[string, string]> = [
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'localhost:6379'],
    ['PORT', 'eighty'],
    ['CLOUDAUTH_ENDPOINT', 'ftp://x'],
    ['AUTH_JWT_SECRET', 'short'],
    ['USER_ID_HASH_SECRET', 'short'],
    ['KYC_SECURITY_LEVEL', '03'],
    ['KYC_DOC_TYPES', '01000000,99999999'],
    ['KYC_RETURN_URL_ORIGINS', 'not a url'],
    ['CLOUDAUTH_QPS', '0'],
  ];
  for (const [name, value] of bad) {
    test(`a bad ${name} is named`, () => {
      assert.match(errorOf({ ...base, [name]: value }), new RegExp(`\\n  ${name}(\\.\\d+)?: `));
    });
  }

  test('one of AUTH_JWT_SECRET / AUTH_JWT_PUBLIC_KEY is required', () => {
    assert.match(errorOf({ ...base, AUTH_JWT_SECRET: undefined }), /AUTH_JWT_SECRET: set AUTH_JWT_SECRET and\/or AUTH_JWT_PUBLIC_KEY/);
  });


  test('the default doc type must be allowed', () => {
    assert.match(errorOf({ ...base, KYC_DOC_TYPES: '00000006', KYC_DEFAULT_DOC_TYPE: '01000000' }), /KYC_DEFAULT_DOC_TYPE/);
  });

  test('the server refuses to start on a bad config and names the variable', async () => {
    const env = { PATH: process.env.PATH, ...base, REDIS_URL: 'nope' };
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env, timeout: 20_000 });
    await assert.rejects(run, (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /REDIS_URL: must be a redis:\/\/ URL/);
      assert.ok(!err.stderr.includes(base.ALIBABA_CLOUD_ACCESS_KEY_SECRET + '"'), 'no secret echoed');
      return true;
    });
  });

  test('a job timeout shorter than one CheckResult could take is refused (a live call would be retried)', () => {
    const env = { ...base, CLOUDAUTH_TIMEOUT_MS: '10000', DATABASE_TIMEOUT_MS: '800' };
    assert.match(errorOf({ ...env, CHECK_RESULT_JOB_TIMEOUT_S: '11' }), /CHECK_RESULT_JOB_TIMEOUT_S: must exceed CLOUDAUTH_TIMEOUT_MS/);
    assert.equal(parseConfig({ ...env, CHECK_RESULT_JOB_TIMEOUT_S: '12' }).CHECK_RESULT_JOB_TIMEOUT_S, 12);
    const defaults = parseConfig(base);
    assert.deepEqual([defaults.CHECK_RESULT_JOB_TIMEOUT_S, defaults.JOBS_MAINTENANCE_INTERVAL_S], [120, 120]);
  });

  test('the test config is valid', () => {
    assert.ok(testConfig().AUTH_JWT_SECRET);
  });
});

// Secrets as `openssl rand -base64 36` makes them; a 30-character AccessKey secret as Alibaba's look.
const SECRETS = {
  AUTH_JWT_SECRET: '7ZTBizkEk1ttRXTQiifMNKvrWJCm+HaW/xtU5b/8lPtGfIG0',
  USER_ID_HASH_SECRET: 'MB6t/WdNsQIjYxw+LM3QD0Gq83HE4RI7VVRcBn3TDGnoic4a',
  METRICS_TOKEN: 'r+7sfnXSmL+1kB/GgeMUtrRwzw+wGt5O6w+ZHy62J04PVKzE',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's+XIxow2uTnnkbai2ZUr6v0Wv5jh4w',
};
/** A configuration production accepts: every later test spoils one thing of it. */
const prod = { ...base, ...SECRETS, NODE_ENV: 'production', CLOUDAUTH_ACCOUNT: '5123456789012345' };
const key = (bytes: Buffer | number[]) => `k1:${Buffer.from(bytes).toString('base64')}`;
const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** The variables a ConfigError names, in order. */
const named = (message: string) => [...message.matchAll(/^ {2}([A-Z0-9_]+)(?:\.\d+)?: /gm)].map((m) => m[1]);

describe('production refuses an unsafe configuration, naming the variable', () => {
  test('a safe production configuration starts, without warnings', () => {
    const config = parseConfig(prod);
    assert.equal(config.NODE_ENV, 'production');
    assert.deepEqual(configWarnings(config), []);
  });

  const cases: Array<[string, Record<string, string | undefined>, RegExp]> = [
    ['a published AUTH_JWT_SECRET (.env.example)', { AUTH_JWT_SECRET: 'dev-only-jwt-secret-change-me-0123456789' }, /AUTH_JWT_SECRET: is published in this repository/],
    ['a published USER_ID_HASH_SECRET (docker-compose.dev.yml)', { USER_ID_HASH_SECRET: 'dev-only-insecure-user-id-hash-secret-0123456789' }, /USER_ID_HASH_SECRET: is published/],
    ["the simulator's AccessKey secret", { ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'sim-access-key-secret' }, /ALIBABA_CLOUD_ACCESS_KEY_SECRET: is published/],
    ['a published database password', { DATABASE_URL: 'postgresql://kyc:kyc@db.internal:5432/kyc' }, /DATABASE_URL: its password is published/],
    ['"a" × 32', { AUTH_JWT_SECRET: 'a'.repeat(32) }, /AUTH_JWT_SECRET: is one character repeated/],
    ['abcabc…', { USER_ID_HASH_SECRET: 'abc'.repeat(12) }, /USER_ID_HASH_SECRET: repeats a pattern of 3 characters/],
    ['0123456789012…', { INTERNAL_API_KEY: '0123456789'.repeat(4) }, /INTERNAL_API_KEY: repeats a pattern of 10 characters/],
    ['an ASCII run (!"#$%…)', { METRICS_TOKEN: String.fromCharCode(...Array.from({ length: 40 }, (_, i) => 33 + i)) }, /METRICS_TOKEN: is a regular sequence/],
    ['few distinct characters', { MERCHANT_WEBHOOK_SECRET: 'abbabaabbbaababbabaaabbabbbaabab' }, /MERCHANT_WEBHOOK_SECRET: has only 2 distinct characters/],
    ['an edited placeholder', { AUTH_JWT_SECRET: 'dev-only-jwt-secret-change-me-9876543210' }, /AUTH_JWT_SECRET: looks like a placeholder/],
    ['a details key of one byte', { KYC_DETAILS_KEYS: key(Buffer.alloc(32)) }, /KYC_DETAILS_KEYS: entry "k1" is one byte repeated/],
    ['a details key of a short period', { KYC_DETAILS_KEYS: key(Buffer.from('abcd'.repeat(8))) }, /KYC_DETAILS_KEYS: entry "k1" repeats a pattern of 4 bytes/],
    ['a details key 0x00 0x01 … 0x1f', { KYC_DETAILS_KEYS: key(Array.from({ length: 32 }, (_, i) => i)) }, /KYC_DETAILS_KEYS: entry "k1" is a regular sequence/],
    ['an empty METRICS_TOKEN', { METRICS_TOKEN: '' }, /METRICS_TOKEN: is empty/],
    ['an http Alibaba endpoint', { CLOUDAUTH_ENDPOINT: 'http://cloudauth-intl.cn-hongkong.aliyuncs.com' }, /CLOUDAUTH_ENDPOINT: must be https/],
    ['an http PUBLIC_BASE_URL', { PUBLIC_BASE_URL: 'http://kyc.shop.example' }, /PUBLIC_BASE_URL: must be https/],
    ['a loopback PUBLIC_BASE_URL Alibaba cannot call', { PUBLIC_BASE_URL: 'http://127.0.0.1:3000' }, /PUBLIC_BASE_URL: must be https/],
    ['an http webhook receiver', { MERCHANT_WEBHOOK_URL: 'http://hooks.shop.example/kyc', MERCHANT_WEBHOOK_SECRET: SECRETS.METRICS_TOKEN.replace('r', 'q') }, /MERCHANT_WEBHOOK_URL: must be https/],
    ['an http CORS origin (even localhost)', { CORS_ORIGINS: 'https://shop.example,http://localhost:5173' }, /CORS_ORIGINS: must list https origins only \(not http:\/\/localhost:5173\)/],
    ['an http returnUrl origin', { KYC_RETURN_URL_ORIGINS: 'http://shop.example' }, /KYC_RETURN_URL_ORIGINS: must list https origins only/],
    ['TRUST_PROXY=true', { TRUST_PROXY: 'true' }, /TRUST_PROXY: is true: every hop is trusted/],
    ['a public key without an audience', { AUTH_JWT_SECRET: undefined, AUTH_JWT_PUBLIC_KEY: pem, AUTH_JWT_PUBLIC_KEY_ALG: 'ES256' }, /AUTH_JWT_AUDIENCE: is required with AUTH_JWT_PUBLIC_KEY/],
    ['no CLOUDAUTH_ACCOUNT', { CLOUDAUTH_ACCOUNT: undefined }, /CLOUDAUTH_ACCOUNT: is unset/],
    ['the AccessKey id as CLOUDAUTH_ACCOUNT', { CLOUDAUTH_ACCOUNT: base.ALIBABA_CLOUD_ACCESS_KEY_ID }, /CLOUDAUTH_ACCOUNT: is unset \(or the AccessKey id\)/],
  ];
  for (const [what, env, message] of cases) {
    test(`${what}: refused in production, a warning elsewhere`, () => {
      const error = errorOf({ ...prod, ...env });
      assert.match(error, message);
      assert.equal(named(error).length, 1, `only the one variable is named:\n${error}`);
      const variable = message.source.split(':')[0];
      const warnings = configWarnings(parseConfig({ ...prod, ...env, NODE_ENV: 'development' }));
      assert.deepEqual(warnings.map((w) => w.variable), [variable]);
      assert.match(`${warnings[0]?.variable}: ${warnings[0]?.message}`, message);
      assert.match(warnings[0]!.message, /; production refuses this$/);
    });
  }

  test('no message repeats a secret', () => {
    for (const [, env] of cases) {
      const error = errorOf({ ...prod, ...env });
      for (const value of Object.values(env)) {
        if (value && value.length >= 16 && !value.startsWith('http')) assert.ok(!error.includes(value), `${error} quotes ${value}`);
      }
    }
  });

  test('loopback stays allowed for a local simulator, its callbacks and a local receiver', () => {
    const config = parseConfig({
      ...prod,
      CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:8090',
      PUBLIC_BASE_URL: 'http://localhost:3000',
      MERCHANT_WEBHOOK_URL: 'http://[::1]:9000/kyc',
      MERCHANT_WEBHOOK_SECRET: 'pY/OwQ+rcDFbEcdDGqUCLn648+NiCuDfgYWKPsNdJZmGCeIj',
    });
    assert.equal(config.CLOUDAUTH_ENDPOINT, 'http://127.0.0.1:8090');
    assert.deepEqual(configWarnings(config), [], 'no unknown-host warning for the simulator either');
  });

  test('every offending variable is named at once', () => {
    const error = errorOf({
      ...prod,
      AUTH_JWT_SECRET: 'a'.repeat(40),
      USER_ID_HASH_SECRET: 'dev-only-user-id-hash-secret-0123456789',
      METRICS_TOKEN: undefined,
      CORS_ORIGINS: 'http://localhost:5173',
      TRUST_PROXY: 'true',
      CLOUDAUTH_ACCOUNT: undefined,
      CLOUDAUTH_ENDPOINT: 'http://cloudauth.example',
    });
    assert.deepEqual(named(error).sort(), [
      'AUTH_JWT_SECRET',
      'CLOUDAUTH_ACCOUNT',
      'CLOUDAUTH_ENDPOINT',
      'CORS_ORIGINS',
      'METRICS_TOKEN',
      'TRUST_PROXY',
      'USER_ID_HASH_SECRET',
    ]);
  });

  test('.env.example copied with NODE_ENV=production: the server exits 1 naming every unsafe variable', async () => {
    const example = parseEnv(readFileSync(new URL('../.env.example', import.meta.url), 'utf8'));
    const server = fileURLToPath(new URL('../src/server.ts', import.meta.url));
    // In a directory of its own, so that no .env fills in anything.
    const run = promisify(execFile)(process.execPath, ['--import', import.meta.resolve('tsx'), server], {
      env: { PATH: process.env.PATH, ...example, NODE_ENV: 'production' },
      cwd: tmpdir(),
      timeout: 30_000,
    });
    await assert.rejects(run, (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.deepEqual(named(err.stderr).sort(), [
        'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
        'AUTH_JWT_SECRET',
        'CLOUDAUTH_ACCOUNT',
        'CORS_ORIGINS',
        'KYC_RETURN_URL_ORIGINS',
        'METRICS_TOKEN',
        'USER_ID_HASH_SECRET',
      ]);
      for (const secret of [example.AUTH_JWT_SECRET, example.USER_ID_HASH_SECRET]) assert.ok(secret && !err.stderr.includes(secret));
      return true;
    });
  });
});

describe('secret checks', () => {
  test('random secrets pass; obvious non-random ones do not', () => {
    for (const secret of Object.values(SECRETS)) assert.equal(lowEntropyReason(Buffer.from(secret)), undefined, secret);
    // 32 random hex digits (openssl rand -hex 16) and 32 random bytes pass.
    assert.equal(lowEntropyReason(Buffer.from('9f86d081884c7d659a2feaa0c55ad015')), undefined);
    assert.equal(lowEntropyReason(Buffer.from('MB6t/WdNsQIjYxw+LM3QD0Gq83HE4RI7VVRcBn3TDGk=', 'base64')), undefined);
    for (const weak of ['x'.repeat(48), 'abab'.repeat(10), 'password1234'.repeat(3), '02468'.repeat(8)]) {
      assert.ok(lowEntropyReason(Buffer.from(weak)), weak);
    }
  });

  test('a variable holding a list of name:secret is checked entry by entry (MERCHANT_WEBHOOK_SECRETS, INTERNAL_API_KEYS)', () => {
    const list = { variable: 'INTERNAL_API_KEYS' as never, read: namedList, policy: STRONG };
    const env = { INTERNAL_API_KEYS: `ops:${SECRETS.METRICS_TOKEN},crm:${'z'.repeat(40)},old:short,legacy:dev-only-jwt-secret-change-me-0123456789` };
    assert.deepEqual(secretProblems(list, env), [
      'entry "crm" is one character repeated',
      'entry "old" is shorter than 32 bytes (5); has only 5 distinct characters',
      'entry "legacy" is published in this repository (.env.example, a compose file, README or the simulator\'s defaults); looks like a placeholder',
    ]);
    assert.deepEqual(secretProblems(list, { INTERNAL_API_KEYS: [`ops:${SECRETS.METRICS_TOKEN}`] }), [], 'a list the schema already split');
  });
});

describe('TRUST_PROXY', () => {
  const trust = (value: string) => parseConfig({ ...base, TRUST_PROXY: value }).TRUST_PROXY;

  test("takes Fastify's forms: false, a hop count, addresses/CIDRs, true", () => {
    assert.equal(parseConfig(base).TRUST_PROXY, false);
    assert.equal(trust('false'), false);
    assert.equal(trust('0'), false);
    assert.equal(trust('true'), true);
    assert.equal(trust('2'), 2);
    assert.deepEqual(trust('10.0.0.0/8, 192.168.1.1,fd00::/8,loopback,172.16.0.0/255.240.0.0'), ['10.0.0.0/8', '192.168.1.1', 'fd00::/8', 'loopback', '172.16.0.0/255.240.0.0']);
  });

  for (const bad of ['yes', '10.0.0.0/33', '10.0.0.0/8,proxy.internal', '::1/129', '-1', '']) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      if (bad === '') assert.equal(trust(bad), false, 'empty is unset');
      else assert.match(errorOf({ ...base, TRUST_PROXY: bad }), /TRUST_PROXY: must be false, true, a hop count or a comma list/);
    });
  }

  test('true and a hop count are warned about outside production (a hop count in production too)', () => {
    const warning = configWarnings(parseConfig({ ...base, TRUST_PROXY: 'true' })).find((w) => w.variable === 'TRUST_PROXY');
    assert.match(warning?.message ?? '', /every hop is trusted/);
    for (const env of [base, prod]) {
      const warnings = configWarnings(parseConfig({ ...env, TRUST_PROXY: '1' }));
      assert.ok(warnings.some((w) => w.variable === 'TRUST_PROXY' && /hop count, which Fastify ignores/.test(w.message)));
    }
  });
});

describe('warnings at start', () => {
  const apps: Array<{ close(): Promise<unknown> }> = [];
  after(async () => {
    for (const app of apps) await app.close();
  });

  /** Builds the service (no HTTP server) and returns its warning lines. */
  const warningsLogged = async (env: Record<string, string | undefined>) => {
    const config = testConfig({ JOBS_WORKERS: 'false', ...env });
    const logs = new LogCapture();
    const app = await buildApp(config, { logStream: logs });
    apps.push({ close: async () => { await app.close(); await dropSchemas(config); } });
    await app.ready();
    return logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; variable?: string }).filter((l) => l.level === 40);
  };

  test('outside production: one warn line per problem, naming the variable', async () => {
    const lines = await warningsLogged({
      NODE_ENV: 'development',
      CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9',
      AUTH_JWT_SECRET: 'dev-only-jwt-secret-change-me-0123456789',
      CORS_ORIGINS: 'http://localhost:5173',
      TRUST_PROXY: 'true',
    });
    assert.deepEqual(lines.map((l) => l.variable).sort(), ['AUTH_JWT_SECRET', 'CORS_ORIGINS', 'METRICS_TOKEN', 'TRUST_PROXY']);
    for (const line of lines) assert.match(line.msg, new RegExp(`^config: ${line.variable} .*; production refuses this$`));
    assert.ok(!JSON.stringify(lines).includes('dev-only-jwt-secret'), 'no secret in the log');
  });

  test('an endpoint that is not a cloudauth-intl host is warned about in every environment (loopback aside)', async () => {
    const unknown = await warningsLogged({ NODE_ENV: 'production', ...SECRETS, CLOUDAUTH_ENDPOINT: 'https://cloudauth-intl.ap-southeast-1.aliyuncs.com', PUBLIC_BASE_URL: 'https://kyc.shop.example' });
    assert.deepEqual(unknown.map((l) => l.variable), ['CLOUDAUTH_ENDPOINT']);
    assert.match(unknown[0]!.msg, /host cloudauth-intl\.ap-southeast-1\.aliyuncs\.com is not a known cloudauth-intl host: eKYC is served from Hong Kong only/);
    for (const endpoint of ['https://cloudauth-intl.cn-hongkong.aliyuncs.com', 'https://cloudauth-intl-vpc.cn-hongkong.aliyuncs.com', 'http://127.0.0.1:8090']) {
      assert.deepEqual(configWarnings(parseConfig({ ...prod, CLOUDAUTH_ENDPOINT: endpoint })), [], endpoint);
    }
  });
});

describe('documentation of the configuration', () => {
  test('README.md has the configuration table generated from the schema (npm run -s config:table)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { configTable } = await import('../src/config/table.js');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(configTable()), 'README.md is out of date: paste the output of `npm run -s config:table`');
  });

  test('README.md has the production checklist generated from the production rules (npx tsx src/dev/tables.ts checklist)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { productionChecklist } = await import('../src/config/table.js');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const checklist = productionChecklist();
    for (const variable of ['AUTH_JWT_SECRET', 'METRICS_TOKEN', 'TRUST_PROXY', 'CLOUDAUTH_ACCOUNT', 'KYC_DETAILS_KEYS', 'CORS_ORIGINS']) {
      assert.match(checklist, new RegExp(`^\\| \`${variable}\` \\| `, 'm'));
    }
    assert.ok(readme.includes(checklist), 'README.md is out of date: paste the output of `npx tsx src/dev/tables.ts checklist`');
  });

  test('.env.example sets every variable', async () => {
    const { readFile } = await import('node:fs/promises');
    const { envSchema } = await import('../src/config/schema.js');
    const example = await readFile(new URL('../.env.example', import.meta.url), 'utf8');
    const names = new Set(example.split('\n').map((l) => /^([A-Z0-9_]+)=/.exec(l)?.[1]).filter(Boolean));
    const missing = Object.keys(envSchema.shape).filter((k) => !names.has(k));
    assert.deepEqual(missing, []);
  });
});
