import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';

/**
 * The returnUrl to forward to Alibaba, or a 400 RETURN_URL_NOT_ALLOWED: it must point at an allowed
 * origin (KYC_RETURN_URL_ORIGINS).
 */
export function allowedReturnUrl(config: Pick<Config, 'KYC_RETURN_URL_ORIGINS'>, raw: string): string {
  const url = new URL(raw);
  if (!config.KYC_RETURN_URL_ORIGINS.includes(url.origin)) {
    throw new HttpError(400, 'RETURN_URL_NOT_ALLOWED', 'returnUrl must point at an allowed origin');
  }
  return raw;
}
