/**
 * `npx tsx src/dev/tables.ts errors|metrics`: prints the README's error or metrics table
 * (the configuration table is `npm run -s config:table`). Tests fail when README.md is out of date.
 */
import { errorTable } from '../errors/codes.js';
import { metricsTable } from '../metrics/metrics.js';

const tables: Record<string, () => string> = { errors: errorTable, metrics: metricsTable };
const make = tables[process.argv[2] ?? ''];
if (!make) {
  console.error(`usage: tsx src/dev/tables.ts ${Object.keys(tables).join('|')}`);
  process.exit(2);
}
console.log(make());
