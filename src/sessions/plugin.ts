import fp from 'fastify-plugin';
import { CallbackTokens } from './callback-token.js';
import { SessionRepository } from './repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionRepository;
    callbackTokens: CallbackTokens;
  }
}

export default fp(
  async (app) => {
    app.decorate('sessions', new SessionRepository(app.prisma, app.pgPool, app.sessionChanges));
    // Derived from USER_ID_HASH_SECRET under its own label (HKDF): a separate key, one secret fewer to run.
    app.decorate('callbackTokens', new CallbackTokens(app.config.USER_ID_HASH_SECRET));
  },
  { name: 'sessions', dependencies: ['config', 'db', 'session-changes'] },
);
