import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { internalApiKeys } from './config/named-secrets.js';
import auditPlugin from './audit/plugin.js';
import authPlugin from './auth/plugin.js';
import budgetPlugin, { type LimiterFactory } from './budget/plugin.js';
import cloudauthPlugin from './cloudauth/plugin.js';
import configPlugin from './config/plugin.js';
import type { Config } from './config/schema.js';
import { fastifyTrustProxy } from './config/trust-proxy.js';
import dbPlugin from './db/plugin.js';
import erasurePlugin from './erasure/plugin.js';
import errorHandler, { clientErrors, frameworkErrors } from './errors/handler.js';
import eventsPlugin from './events/plugin.js';
import { HELMET_OPTIONS } from './errors/security-headers.js';
import { loggerOptions } from './logging/options.js';
import requestLoggingPlugin from './logging/plugin.js';
import { RequestLogController, requestIdFrom } from './logging/request-log.js';
import metricsPlugin from './metrics/plugin.js';
import { underPressureOptions } from './overload/options.js';
import privacyPlugin from './privacy/plugin.js';
import limitsPlugin, { rateLimitNamespace } from './ratelimit/plugin.js';
import redisPlugin from './redis/plugin.js';
import healthRoutes from './routes/health.js';
import internalRoutes from './routes/internal/index.js';
import metricsRoute from './routes/metrics.js';
import jobsPlugin from './jobs/plugin.js';
import resultsPlugin from './results/plugin.js';
import { CallbackGate, parseQuery } from './routes/kyc/callback-gate.js';
import kycRoutes from './routes/kyc/index.js';
import sessionChangesPlugin from './sessions/changes-plugin.js';
import sessionsPlugin from './sessions/plugin.js';

export interface AppOptions {
  config: Config;
  /** Refuses forged callbacks in front of Fastify (buildApp makes the server with it). */
  callbackGate?: CallbackGate;
  /** A QPS limiter in place of the QpsBudget (benchmarks compare a baseline with it). */
  budget?: LimiterFactory;
}

/**
 * The service as a plugin: external plugins, then app plugins, then routes (the layout of the
 * official fastify/demo). Config and Redis come first because the rate limiter stores its counts
 * in Redis.
 */
export const serviceApp: FastifyPluginAsync<AppOptions> = async (app, { config, callbackGate, budget }) => {
  // First, so that every route (the docs' too) answers errors in the same envelope.
  await app.register(errorHandler);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // External plugins
  await app.register(helmet, HELMET_OPTIONS);
  // No origins, no plugin: a browser then reads nothing cross-origin, and no request pays a hook for it.
  if (config.CORS_ORIGINS.length > 0) await app.register(cors, { origin: config.CORS_ORIGINS });
  await app.register(configPlugin, { config });
  await app.register(redisPlugin);
  await app.register(underPressure, underPressureOptions(config));
  // The store's scripts touch one counter each, so on a Redis Cluster the counters need no shared
  // hash tag: without one they spread over the nodes (the budget's keys do share one, keyFor).
  await app.register(rateLimit, { global: false, redis: app.redis, nameSpace: rateLimitNamespace(config), skipOnError: true });
  if (config.DOCS_ENABLED) {
    await app.register(swagger, {
      openapi: {
        info: { title: 'kyc-gateway', version: '0.1.0', description: 'Alibaba Cloud eKYC, merchant side' },
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
            metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' },
          },
        },
      },
      transform: jsonSchemaTransform,
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  }

  // On close, in-flight responses end their keep-alive connections: shutdown then waits for the
  // requests being served, not for idle clients (Fastify's keep-alive timeout is 72 s).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  // App plugins
  await app.register(requestLoggingPlugin);
  await app.register(dbPlugin);
  await app.register(metricsPlugin);
  await app.register(limitsPlugin);
  await app.register(authPlugin);
  await app.register(budgetPlugin, { limiter: budget });
  await app.register(cloudauthPlugin);
  await app.register(privacyPlugin);
  await app.register(sessionChangesPlugin);
  await app.register(sessionsPlugin);
  await app.register(jobsPlugin);
  await app.register(auditPlugin);
  await app.register(eventsPlugin);
  await app.register(resultsPlugin);
  await app.register(erasurePlugin);

  // Routes
  await app.register(healthRoutes);
  await app.register(metricsRoute);
  await app.register(kycRoutes, { prefix: '/kyc', callbackGate });
  if (internalApiKeys(config).length > 0) await app.register(internalRoutes, { prefix: '/internal' });
};

/** A ready-to-listen Fastify instance for a validated config (logs to stdout unless given a stream). */
export async function buildApp(config: Config, opts: { logStream?: NodeJS.WritableStream; budget?: LimiterFactory } = {}): Promise<FastifyInstance> {
  const callbackGate = new CallbackGate();
  const app = Fastify({
    serverFactory: callbackGate.serverFactory,
    routerOptions: { querystringParser: parseQuery },
    logger: loggerOptions(config, opts.logStream),
    trustProxy: fastifyTrustProxy(config.TRUST_PROXY),
    bodyLimit: 64 * 1024,
    genReqId: requestIdFrom,
    frameworkErrors,
    clientErrorHandler: clientErrors,
    logController: new RequestLogController(),
  }).withTypeProvider<ZodTypeProvider>();
  await app.register(fp(serviceApp), { config, callbackGate, budget: opts.budget });
  return app;
}
