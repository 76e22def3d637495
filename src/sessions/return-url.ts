import type { Config } from '../config/schema.js';
import { HttpError } from '../errors/http-error.js';

/**
 * Where a returnUrl may send the user. It is checked with the WHATWG parser (Node's URL) but
 * followed by others (Alibaba's servers, browsers, the merchant's own code), and URL parsers
 * disagree about the host of some inputs: `https://shop.example\@evil.com` is shop.example to
 * WHATWG (a `\` ends the host) and evil.com to Java's and Python's parsers (`@` ends the user
 * info). So only forms every parser reads alike are accepted, and what is forwarded is WHATWG's
 * own serialization (`href`), never the caller's text.
 *
 * Refused, with 400 RETURN_URL_NOT_ALLOWED:
 * - anything but `http(s)://` then the host (`https:shop.example`, `https:/x` and `https:\\x` are
 *   hosts only to WHATWG);
 * - user info of any kind (`user@`, `:pass@`, an empty `@`): its only use in a return address is
 *   to make a URL look like it goes somewhere else;
 * - a host that is not printable ASCII (spaces, controls, Unicode: IDNA mapping erases some characters);
 * - a backslash anywhere, and a percent-escape in the authority (`%5C`, `%40`, `%2F`…): a parser
 *   that decodes before it splits reads `shop.example%5C%40evil.com` as `shop.example\@evil.com`,
 *   and WHATWG decodes escapes in hosts that others keep (`sh%6Fp.example` is shop.example);
 * - an origin not in KYC_RETURN_URL_ORIGINS;
 * - plain http when NODE_ENV=production.
 */
export function allowedReturnUrl(config: Pick<Config, 'NODE_ENV' | 'KYC_RETURN_URL_ORIGINS'>, raw: string): string {
  const refuse = (why: string) => new HttpError(400, 'RETURN_URL_NOT_ALLOWED', `returnUrl ${why}`);
  if (raw.includes('\\')) throw refuse('must not contain a backslash');
  const authority = /^https?:\/\/([^/?#]*)/i.exec(raw)?.[1];
  if (!authority) throw refuse('must be an absolute http(s) URL: http(s)://host/…');
  if (authority.includes('@')) throw refuse('must not contain user info (@)');
  if (authority.includes('%')) throw refuse('must not contain percent-escapes in its host or port');
  // Only printable ASCII in the host: WHATWG drops tabs and newlines anywhere (`shop.exa\tmple` is
  // shop.example) and maps Unicode hosts through IDNA, which erases some characters outright
  // (`\uFEFFshop.example` is shop.example); other parsers do neither. An IDN host is sent punycoded.
  if (/[^\u0021-\u007e]/.test(authority)) throw refuse('must have a printable-ASCII host (punycode for an IDN): no spaces, control or non-ASCII characters');

  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('must be an absolute http(s) URL');
  }
  // Unreachable after the checks above (WHATWG finds user info only after an '@'); kept so that
  // the rule does not rest on the text checks alone.
  if (url.username || url.password) throw refuse('must not contain user info (@)');
  if (config.NODE_ENV === 'production' && url.protocol !== 'https:') throw refuse('must be https');
  if (!config.KYC_RETURN_URL_ORIGINS.includes(url.origin)) throw refuse('must point at an allowed origin');
  return url.href;
}
