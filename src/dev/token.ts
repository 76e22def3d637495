/**
 * `npm run token -- <user-id> [minutes]`: prints a caller JWT signed with AUTH_JWT_SECRET (from
 * .env), for trying the API locally. Merchants' real tokens come from their own auth server.
 */
import { SignJWT } from 'jose';
import { loadConfig } from '../config/load.js';

const [sub = 'demo-user', minutes = '60'] = process.argv.slice(2);
const config = loadConfig();
if (!config.AUTH_JWT_SECRET) {
  console.error('AUTH_JWT_SECRET is not set: this helper only signs HS256 tokens');
  process.exit(1);
}
let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(`${Number(minutes)}m`);
if (config.AUTH_JWT_ISSUER) jwt = jwt.setIssuer(config.AUTH_JWT_ISSUER);
if (config.AUTH_JWT_AUDIENCE) jwt = jwt.setAudience(config.AUTH_JWT_AUDIENCE);
console.log(await jwt.sign(new TextEncoder().encode(config.AUTH_JWT_SECRET)));
