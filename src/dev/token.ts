/**
 * `npm run token -- <user-id> [minutes]`: prints a caller JWT signed with AUTH_JWT_SECRET (from
 * .env), for trying the API locally. Merchants' real tokens come from their own auth server.
 */
import { createSigner } from 'fast-jwt';
import { loadConfig } from '../config/load.js';

const [sub = 'demo-user', minutes = '60'] = process.argv.slice(2);
const config = loadConfig();
if (!config.AUTH_JWT_SECRET) {
  console.error('AUTH_JWT_SECRET is not set: this helper only signs HS256 tokens');
  process.exit(1);
}
const sign = createSigner({
  key: config.AUTH_JWT_SECRET,
  algorithm: 'HS256',
  sub,
  expiresIn: Number(minutes) * 60_000,
  ...(config.AUTH_JWT_ISSUER ? { iss: config.AUTH_JWT_ISSUER } : {}),
  ...(config.AUTH_JWT_AUDIENCE ? { aud: config.AUTH_JWT_AUDIENCE } : {}),
});
console.log(sign({}));
