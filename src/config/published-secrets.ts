/**
 * Every secret value this repository publishes: anyone can read them, so production refuses them
 * (src/config/secrets.ts). test/config-published.test.ts scans .env.example, the compose files,
 * README.md and the simulator's defaults and fails when one of their values is missing here.
 */
export const PUBLISHED_SECRETS: ReadonlySet<string> = new Set([
  // .env.example (local runs against the simulator)
  'dev-only-jwt-secret-change-me-0123456789',
  'dev-only-user-id-hash-secret-0123456789',
  // The simulator's default AccessKey (src/simulator/main.ts), also in .env.example and docker-compose.dev.yml
  'sim-access-key-secret',
  // docker-compose.dev.yml
  'dev-only-insecure-jwt-secret-change-me-0123456789',
  'dev-only-insecure-user-id-hash-secret-0123456789',
  'kyc', // its PostgreSQL password
]);

export const isPublishedSecret = (value: string): boolean => PUBLISHED_SECRETS.has(value);
