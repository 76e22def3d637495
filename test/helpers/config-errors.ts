import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.js';

/** The message a refused configuration throws (the test fails if the configuration is accepted). */
export function configErrorOf(env: Record<string, string | undefined>): string {
  try {
    parseConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail('config was accepted');
}
