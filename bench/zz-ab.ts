// Temporary A/B of service variants: CPU µs per status read at a fixed rate, interleaved rounds.
import { randomBytes, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import pg from 'pg';
import { userRef } from '../src/auth/user-ref.js';
import { cpuMs, serviceNodeFlags, startNode, type Child } from './lib/processes.js';
import { benchDatabase } from './lib/runs.js';
const variants = (process.env.AB ?? 'none').split(';');
const RATE = Number(process.env.AB_RATE ?? 3000), SECONDS = Number(process.env.AB_SECONDS ?? 4), ROUNDS = Number(process.env.AB_ROUNDS ?? 3);
const JWT_KEY = randomBytes(24).toString('hex'); const SECRET = `ab-${randomBytes(16).toString('hex')}`;
const database = await benchDatabase('postgresql://postgres@127.0.0.1:5432/test');
const apps: Child[] = [];
try {
  const ids = Array.from({ length: 200 }, () => randomUUID());
  const schema = new URL(database.url).searchParams.get('schema')!;
  const db = new pg.Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/test' }); await db.connect();
  await db.query(`SET search_path = "${schema}"`);
  await db.query(`INSERT INTO kyc_session (id, merchant_biz_id, user_ref, doc_type, transaction_id, expires_at, updated_at)
    SELECT id, 'ab' || n, ref, '01000000', 'hksb' || n, now() + interval '50 minutes', now() FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS s(id, ref, n)`,
    [ids, ids.map((_, i) => userRef(SECRET, `u${i}`))]);
  await db.end();
  const tokens = await Promise.all(ids.map((_, i) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`u${i}`).setExpirationTime('50m').sign(new TextEncoder().encode(JWT_KEY))));
  const requests = ids.map((_, i) => ({ method: 'GET' as const, path: `/kyc/sessions/ab${i + 1}`, headers: { authorization: `Bearer ${tokens[i]}` } }));
  for (const [i, v] of variants.entries()) {
    const [dir, abl = '', level = 'info'] = v.split(':');
    apps.push(await startNode(`${dir}/server.js`, { MALLOC_ARENA_MAX: '2', NODE_ENV: 'test', LOG_LEVEL: level, PORT: String(13400 + i), HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: database.url, ALIBABA_CLOUD_ACCESS_KEY_ID: 'k', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's', CLOUDAUTH_ENDPOINT: 'http://127.0.0.1:9',
      CLOUDAUTH_ACCOUNT: `ab-${randomBytes(4).toString('hex')}`, JOBS_SCHEMA: database.jobsSchema, JOBS_WORKERS: 'false', PUBLIC_BASE_URL: 'http://127.0.0.1:9', AUTH_JWT_SECRET: JWT_KEY,
      USER_ID_HASH_SECRET: SECRET, RATE_LIMIT_STATUS_PER_USER: '1000000000', ABL: abl, ...(JSON.parse(process.env.AB_ENV ?? '{}')) }, `http://127.0.0.1:${13400 + i}/healthz`, { keepLine: () => false, nodeArgs: serviceNodeFlags().split(' ') }));
  }
  const results = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS + 1; r++) for (const [i] of variants.entries()) {
    const url = `http://127.0.0.1:${13400 + i}`; const pid = apps[i]!.process.pid!;
    const before = cpuMs(pid);
    const res = await autocannon({ url, connections: 50, duration: SECONDS, overallRate: RATE, requests });
    const us = ((cpuMs(pid) - before) * 1000) / res.requests.total;
    if (r > 0) results[i]!.push(us); // round 0: warm-up
    if (res.non2xx) console.error(`${variants[i]}: ${res.non2xx} non-2xx`);
  }
  for (const [i, v] of variants.entries()) { const s = [...results[i]!].sort((a, b) => a - b); console.log(`${v.padEnd(30)} median ${s[Math.floor(s.length / 2)]!.toFixed(1)} µs  [${s.map((x) => x.toFixed(0)).join(' ')}]`); }
} finally { for (const a of apps) await a.stop(); await database.drop(); }
