import fp from 'fastify-plugin';
import { Sealer } from './cipher.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Seals personal data at rest (user ids, result details); see cipher.ts. */
    sealer: Sealer;
  }
}

export default fp(
  async (app) => {
    app.decorate('sealer', new Sealer(app.config));
  },
  { name: 'privacy', dependencies: ['config'] },
);
