import type { Config } from './schema.js';

export interface NamedSecret {
  name: string;
  secret: string;
}

/** `name:secret` entries (validated by the config schema), split at the first colon. */
export const namedSecrets = (entries: readonly string[]): NamedSecret[] =>
  entries.map((e) => ({ name: e.slice(0, e.indexOf(':')), secret: e.slice(e.indexOf(':') + 1) }));

/** The name INTERNAL_API_KEY goes by in the audit trail. */
const DEFAULT_KEY_NAME = 'default';

/** Every back-office API key with its name: INTERNAL_API_KEY (named `default`), then INTERNAL_API_KEYS. */
export function internalApiKeys(config: Pick<Config, 'INTERNAL_API_KEY' | 'INTERNAL_API_KEYS'>): NamedSecret[] {
  return [
    ...(config.INTERNAL_API_KEY ? [{ name: DEFAULT_KEY_NAME, secret: config.INTERNAL_API_KEY }] : []),
    ...namedSecrets(config.INTERNAL_API_KEYS),
  ];
}
