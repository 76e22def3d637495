import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * TRUST_PROXY, in the forms Fastify's `trustProxy` option takes: `false`, `true` (every hop), a hop
 * count, or the addresses/CIDRs of the proxies (proxy-addr also knows the names `loopback`,
 * `linklocal` and `uniquelocal`). The Fastify pinned here (5.12.8) treats a hop count as "trust no proxy",
 * because it cannot tell a proxy from a client that sends the header itself: production.ts warns.
 */
export type TrustProxy = boolean | number | string[];

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An IP, an IP/prefix-length or an IPv4/netmask, as proxy-addr accepts them. */
function isAddressOrRange(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const [ip, range] = [entry.slice(0, slash), entry.slice(slash + 1)];
  const family = isIP(ip);
  if (family === 0) return false;
  if (/^\d{1,3}$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(range) === 4; // 10.0.0.0/255.0.0.0
}

export const trustProxy = z
  .string()
  .default('false')
  .transform((value, ctx): TrustProxy => {
    const v = value.trim();
    if (v === 'false' || v === '0') return false;
    if (v === 'true') return true;
    if (/^\d+$/.test(v)) return Number(v);
    const entries = v.split(',').map((e) => e.trim());
    const bad = entries.filter((e) => !isAddressOrRange(e));
    if (bad.length > 0) {
      ctx.addIssue({ code: 'custom', message: `must be false, true, a hop count or a comma list of IP addresses/CIDRs (not ${bad.map((b) => JSON.stringify(b)).join(', ')})` });
      return z.NEVER;
    }
    return entries;
  });

/**
 * The value for Fastify's `trustProxy`. Fastify (5.12.8 here) no longer types or honours hop counts:
 * it treats one as "trust no proxy", which is what `false` says (advisories() warns about it).
 */
export function fastifyTrustProxy(value: TrustProxy): boolean | string[] {
  return typeof value === 'number' ? false : value;
}
