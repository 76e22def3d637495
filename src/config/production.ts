/**
 * What production requires of the configuration. With NODE_ENV=production each problem is a
 * validation issue (schema.ts), so the service refuses to start and names every offending
 * variable; elsewhere the same problems are warnings logged at start (config/plugin.ts). The
 * README's production checklist is written from PRODUCTION_RULES (table.ts).
 */
import type { Config } from './schema.js';
import { SECRET_VARIABLES, secretProblems, type Env, type SecretVariable } from './secrets.js';

export interface ConfigProblem {
  variable: string;
  message: string;
}

export interface ProductionRule {
  variable: keyof Env;
  /** What production requires of the variable (a line of the README's checklist). */
  requires: string;
  /** What is wrong with it in this configuration (empty: nothing). */
  problems(env: Env): string[];
}

/** eKYC is served from Hong Kong only (Alibaba's region list for the ID Verification solutions). */
export const CLOUDAUTH_HOSTS = ['cloudauth-intl.cn-hongkong.aliyuncs.com', 'cloudauth-intl-vpc.cn-hongkong.aliyuncs.com'];

/** localhost, 127.0.0.0/8, ::1: a local simulator or receiver, never a public service. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const isHttps = (url: string) => new URL(url).protocol === 'https:';

const secretRule = (s: SecretVariable): ProductionRule => ({
  variable: s.variable,
  requires: s.policy.requires,
  problems: (env) => secretProblems(s, env),
});

/** A server-to-server URL: https, or loopback where `loopbackOk` says so. */
const urlRule = (
  variable: 'CLOUDAUTH_ENDPOINT' | 'PUBLIC_BASE_URL' | 'MERCHANT_WEBHOOK_URL',
  requires: string,
  message: string,
  loopbackOk: (env: Env) => boolean,
): ProductionRule => ({
  variable,
  requires,
  problems: (env) => {
    const url = env[variable];
    return url === undefined || isHttps(url) || (isLoopback(url) && loopbackOk(env)) ? [] : [message];
  },
});

/** Browser origins: https only. A real customer's browser is never on the merchant's loopback. */
const originsRule = (variable: 'CORS_ORIGINS' | 'KYC_RETURN_URL_ORIGINS'): ProductionRule => ({
  variable,
  requires: 'https origins only',
  problems: (env) => {
    const plain = env[variable].filter((o) => !isHttps(o));
    return plain.length === 0 ? [] : [`must list https origins only (not ${plain.join(', ')})`];
  },
});

export const PRODUCTION_RULES: readonly ProductionRule[] = [
  {
    variable: 'METRICS_TOKEN',
    requires: 'set (GET /metrics then needs it as a bearer token)',
    problems: (env) => (env.METRICS_TOKEN ? [] : ['is empty: /metrics would be open to anyone who reaches the service']),
  },
  ...SECRET_VARIABLES.map(secretRule),
  urlRule('CLOUDAUTH_ENDPOINT', 'https (a loopback simulator aside)', 'must be https (or a loopback simulator)', () => true),
  urlRule(
    'PUBLIC_BASE_URL',
    'https (loopback only with a loopback CLOUDAUTH_ENDPOINT: a local simulator calls it back)',
    'must be https (Alibaba only calls https callbacks; loopback only with a loopback CLOUDAUTH_ENDPOINT)',
    (env) => isLoopback(env.CLOUDAUTH_ENDPOINT),
  ),
  urlRule('MERCHANT_WEBHOOK_URL', 'https (a loopback receiver aside)', 'must be https (or a loopback receiver)', () => true),
  originsRule('CORS_ORIGINS'),
  originsRule('KYC_RETURN_URL_ORIGINS'),
  {
    variable: 'TRUST_PROXY',
    requires: "not `true`: `false`, or the proxies' addresses/CIDRs",
    problems: (env) =>
      env.TRUST_PROXY === true
        ? ["is true: every hop is trusted, so a client picks its own address (the per-IP rate limit's key) with X-Forwarded-For; list the proxies' addresses/CIDRs"]
        : [],
  },
  {
    variable: 'AUTH_JWT_AUDIENCE',
    requires: 'set whenever AUTH_JWT_PUBLIC_KEY is',
    problems: (env) =>
      env.AUTH_JWT_PUBLIC_KEY && !env.AUTH_JWT_AUDIENCE
        ? ['is required with AUTH_JWT_PUBLIC_KEY: an identity provider signs tokens for many apps, and only `aud` says a token is for this one']
        : [],
  },
  {
    variable: 'CLOUDAUTH_ACCOUNT',
    requires: "set to the Alibaba Cloud account's UID (not the AccessKey id)",
    // After the defaults it holds the AccessKey id when unset: the same mistake either way.
    problems: (env) =>
      !env.CLOUDAUTH_ACCOUNT || env.CLOUDAUTH_ACCOUNT === env.ALIBABA_CLOUD_ACCESS_KEY_ID
        ? ["is unset (or the AccessKey id): name the Alibaba Cloud account (its UID), whose QPS limit all its RAM users' keys share"]
        : [],
  },
];

/** Everything production refuses in this configuration, one problem per offending value. */
export function productionProblems(env: Env): ConfigProblem[] {
  return PRODUCTION_RULES.flatMap((rule) => rule.problems(env).map((message) => ({ variable: rule.variable, message })));
}

/** Worth a warning in every environment, never a refusal. */
export function advisories(env: Env): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const endpoint = new URL(env.CLOUDAUTH_ENDPOINT);
  if (!isLoopback(env.CLOUDAUTH_ENDPOINT) && !CLOUDAUTH_HOSTS.includes(endpoint.hostname)) {
    out.push({
      variable: 'CLOUDAUTH_ENDPOINT',
      message: `host ${endpoint.hostname} is not a known cloudauth-intl host: eKYC is served from Hong Kong only (${CLOUDAUTH_HOSTS.join(', ')})`,
    });
  }
  if (typeof env.TRUST_PROXY === 'number') {
    out.push({
      variable: 'TRUST_PROXY',
      message: "is a hop count, which Fastify ignores (it cannot tell a proxy from a client): X-Forwarded-For is not read and every request's address is its peer's; list the proxies' addresses/CIDRs instead",
    });
  }
  return out;
}

/** The warnings to log at start: outside production, what production would refuse; everywhere, the advisories. */
export function configWarnings(config: Config): ConfigProblem[] {
  const refusable =
    config.NODE_ENV === 'production' ? [] : productionProblems(config).map((p) => ({ ...p, message: `${p.message}; production refuses this` }));
  return [...refusable, ...advisories(config)];
}
