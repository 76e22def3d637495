/**
 * `npx tsx src/dev/tables.ts config|checklist|errors|metrics` (`npm run -s config:table` for the first): prints
 * one of the README's generated tables. `npx tsx src/dev/tables.ts --write` (`npm run readme:tables`)
 * rewrites all of them in README.md. Tests fail when README.md is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable, productionChecklist } from '../config/table.js';
import { errorTable } from '../errors/codes.js';
import { metricsTable } from '../metrics/metrics.js';

const tables: Record<string, () => string> = { config: configTable, checklist: productionChecklist, errors: errorTable, metrics: metricsTable };

/** Replaces, in `text`, the table that starts with the same header row as `table` (up to its last row). */
function replaceTable(text: string, table: string): string {
  const header = table.split('\n')[0]!;
  const start = text.indexOf(`${header}\n`);
  if (start === -1) throw new Error(`README.md has no table starting with ${header}`);
  let end = start;
  while (end < text.length && text[end] === '|') end = text.indexOf('\n', end) + 1 || text.length;
  return `${text.slice(0, start)}${table}\n${text.slice(end)}`;
}

const arg = process.argv[2] ?? '';
if (arg === '--write') {
  let readme = readFileSync('README.md', 'utf8');
  for (const make of Object.values(tables)) readme = replaceTable(readme, make());
  writeFileSync('README.md', readme);
} else {
  const make = tables[arg];
  if (!make) {
    console.error(`usage: tsx src/dev/tables.ts ${Object.keys(tables).join('|')}|--write`);
    process.exit(2);
  }
  console.log(make());
}
