import type { LoggerOptions } from 'pino';
import type { Config } from '../config/schema.js';

/**
 * Keys whose values never reach a log line: credentials, tokens, the caller's MetaInfo and
 * anything that identifies a user. Request URLs are logged without their query string (the
 * callback's holds the token).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.callbackToken',
  '*.CallbackToken',
  '*.token',
  '*.metaInfo',
  '*.MetaInfo',
  '*.MerchantUserId',
  '*.userId',
  '*.sub',
  '*.accessKeySecret',
  '*.ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  '*.password',
  '*.secret',
  'callbackToken',
  'metaInfo',
  'sub',
];

export function loggerOptions(config: Config, stream?: NodeJS.WritableStream): LoggerOptions & { stream?: NodeJS.WritableStream } {
  return {
    ...(stream ? { stream } : {}),
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    serializers: {
      req(req: { method: string; url: string; ip?: string }) {
        return {
          method: req.method,
          url: req.url.split('?')[0],
          remoteAddress: req.ip,
        };
      },
    },
  };
}
