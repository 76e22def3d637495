import fp from 'fastify-plugin';
import { configWarnings } from './production.js';
import type { Config } from './schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    app.decorate('config', config);
    // One line per problem, naming the variable: outside production, what production would refuse.
    for (const { variable, message } of configWarnings(config)) app.log.warn({ variable }, `config: ${variable} ${message}`);
  },
  { name: 'config' },
);
