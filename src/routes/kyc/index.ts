import type { FastifyPluginAsync } from 'fastify';
import callbackRoute from './callback.js';
import type { CallbackGate } from './callback-gate.js';
import sessionsRoute from './sessions.js';
import startRoute from './start.js';

const kycRoutes: FastifyPluginAsync<{ callbackGate?: CallbackGate | undefined }> = async (app, { callbackGate }) => {
  await app.register(startRoute);
  await app.register(callbackRoute, { callbackGate });
  await app.register(sessionsRoute);
};

export default kycRoutes;
