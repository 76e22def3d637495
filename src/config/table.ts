import { z } from 'zod';
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
