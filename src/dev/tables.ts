/**
 * `npx tsx src/dev/tables.ts config|checklist|errors|metrics` (`npm run -s config:table` for the first): prints
 * one of the README's generated tables. Tests fail when README.md is out of date.
 */
import { configTable, productionChecklist } from '../config/table.js';
import { errorTable } from '../errors/codes.js';
import { metricsTable } from '../metrics/metrics.js';

const tables: Record<string, () => string> = { config: configTable, checklist: productionChecklist, errors: errorTable, metrics: metricsTable };
const make = tables[process.argv[2] ?? ''];
if (!make) {
  console.error(`usage: tsx src/dev/tables.ts ${Object.keys(tables).join('|')}`);
  process.exit(2);
}
console.log(make());
