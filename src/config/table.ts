import { z } from 'zod';
import { PRODUCTION_RULES } from './production.js';
import { envSchema } from './schema.js';

interface JsonSchemaProperty {
  description?: string;
  default?: unknown;
  enum?: unknown[];
}

/** The README's configuration table, written from the zod schema the service validates with. */
export function configTable(): string {
  const schema = z.toJSONSchema(envSchema, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, JsonSchemaProperty>;
    required?: string[];
  };
  const required = new Set(schema.required ?? []);
  const rows = Object.entries(schema.properties).map(([name, p]) => {
    const fallback = required.has(name) ? '**required**' : p.default === undefined || p.default === '' ? '' : `\`${String(p.default)}\``;
    const values = p.enum ? ` One of: ${p.enum.map((v) => `\`${String(v)}\``).join(', ')}.` : '';
    return `| \`${name}\` | ${fallback} | ${(p.description ?? '').replaceAll('|', '\\|')}${values} |`;
  });
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The README's production checklist: what NODE_ENV=production requires of each variable (production.ts). */
export function productionChecklist(): string {
  const requirements = new Map<string, string[]>();
  for (const rule of PRODUCTION_RULES) requirements.set(rule.variable, [...(requirements.get(rule.variable) ?? []), rule.requires]);
  const order = Object.keys(envSchema.shape);
  const position = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const rows = [...requirements]
    .sort(([a], [b]) => position(a) - position(b))
    .map(([name, requires]) => `| \`${name}\` | ${requires.join('; ').replaceAll('|', '\\|')} |`);
  return ['| Variable | Production requires |', '| --- | --- |', ...rows].join('\n');
}
