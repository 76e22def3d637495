import type { FastifyPluginAsync } from 'fastify';
import auditRoutes from './audit.js';
import erasureRoutes from './erasure.js';
import eventRoutes from './events.js';
import sessionRoutes from './sessions.js';

/**
 * The merchant's back office (API key in `x-api-key`, named in INTERNAL_API_KEYS): sessions with the
 * person they belong to, erasure, merchant events and their redelivery, and the audit trail that
 * records every one of these actions.
 */
const internalRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('onRequest', app.limits.internalByIp);
  app.addHook('onRequest', app.authenticateApiKey);
  await app.register(sessionRoutes);
  await app.register(erasureRoutes);
  await app.register(eventRoutes);
  await app.register(auditRoutes);
};

export default internalRoutes;
