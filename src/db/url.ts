/**
 * Splits Prisma's `schema` query parameter off a Postgres URL (pg does not know it).
 * Other parameters are kept byte for byte.
 */
export function splitSchemaParam(databaseUrl: string): { connectionString: string; schema: string } {
  const q = databaseUrl.indexOf('?');
  if (q === -1) return { connectionString: databaseUrl, schema: 'public' };
  const base = databaseUrl.slice(0, q);
  let query = databaseUrl.slice(q + 1);
  let fragment = '';
  const hash = query.indexOf('#');
  if (hash !== -1) {
    fragment = query.slice(hash);
    query = query.slice(0, hash);
  }
  let schema: string | undefined;
  const kept: string[] = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
    if (key === 'schema') {
      const rawValue = eq === -1 ? '' : part.slice(eq + 1);
      schema = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    } else {
      kept.push(part);
    }
  }
  const connectionString = (kept.length > 0 ? `${base}?${kept.join('&')}` : base) + fragment;
  return { connectionString, schema: schema !== undefined && schema !== '' ? schema : 'public' };
}
