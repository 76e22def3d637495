/** `npm run -s config:table`: prints the configuration table for README.md. */
import { configTable } from '../config/table.js';

console.log(configTable());
