import type { FastifyPluginAsync } from 'fastify';
import callbackRoute from './callback.js';
import sessionsRoute from './sessions.js';
import startRoute from './start.js';

const kycRoutes: FastifyPluginAsync = async (app) => {
  await app.register(startRoute);
  await app.register(callbackRoute);
  await app.register(sessionsRoute);
};

export default kycRoutes;
