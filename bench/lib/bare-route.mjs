// The baseline of `npm run bench` and `npm run bench:status`: bare Fastify routes answering what the
// service answers (a rejected callback, a session's status), with no logging, auth, rate limiting or
// database. Whatever the service does per request costs relative to this. Port from BARE_PORT.
import fastify from 'fastify';

const app = fastify();
app.get('/kyc/callback', async (_request, reply) =>
  reply.code(403).send({ code: 'CALLBACK_REJECTED', message: 'Unknown transaction or invalid callback token' }),
);
// What a status read answers, the same size and shape, from memory.
const expiresAt = new Date(Date.now() + 30 * 60_000).toISOString();
app.get('/kyc/sessions/:merchantBizId', async (request) => ({
  merchantBizId: request.params.merchantBizId,
  status: 'pending',
  transactionId: 'hksb0123456789abcdef0123456789abcdef',
  expiresAt,
  attempts: 1,
  maxAttempts: 3,
  updatedAt: expiresAt,
}));
app.get('/healthz', async () => ({ ok: true }));
await app.listen({ port: Number(process.env.BARE_PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
