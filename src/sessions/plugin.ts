import fp from 'fastify-plugin';
import { SessionRepository } from './repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionRepository;
  }
}

export default fp(
  async (app) => {
    app.decorate('sessions', new SessionRepository(app.prisma));
  },
  { name: 'sessions', dependencies: ['db'] },
);
