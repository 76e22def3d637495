// The baseline of `npm run bench`: a bare Fastify route answering what a rejected callback gets,
// with no logging, auth, rate limiting or database. Whatever the service does per request costs
// relative to this. Port from BARE_PORT.
import fastify from 'fastify';

const app = fastify();
app.get('/kyc/callback', async (_request, reply) =>
  reply.code(403).send({ code: 'CALLBACK_REJECTED', message: 'Unknown transaction or invalid callback token' }),
);
app.get('/healthz', async () => ({ ok: true }));
await app.listen({ port: Number(process.env.BARE_PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
