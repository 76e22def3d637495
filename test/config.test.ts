import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { testConfig } from './helpers/stack.js';

const base = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test',
  REDIS_URL: 'redis://127.0.0.1:6379',
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'id',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'secret',
  PUBLIC_BASE_URL: 'https://kyc.shop.example',
  AUTH_JWT_SECRET: 'x'.repeat(32),
  USER_ID_HASH_SECRET: 'y'.repeat(32),
};

const errorOf = (env: Record<string, string | undefined>) => {
  try {
    parseConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('config was accepted');
};

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

  test('production requires an https PUBLIC_BASE_URL', () => {
    assert.match(errorOf({ ...base, NODE_ENV: 'production', PUBLIC_BASE_URL: 'http://kyc.shop.example' }), /PUBLIC_BASE_URL: must be https/);
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

describe('documentation of the configuration', () => {
  test('README.md has the configuration table generated from the schema (npm run -s config:table)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { configTable } = await import('../src/config/table.js');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(configTable()), 'README.md is out of date: paste the output of `npm run -s config:table`');
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
