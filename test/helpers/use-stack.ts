import { after, before } from 'node:test';
import { clientFor } from './client.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

/**
 * The usual test-file set-up: a stack started before the file's tests and closed after them, with
 * a client for it. Read `stack` and `api` inside tests (they are set once `before` has run).
 */
export function useStack(options?: StackOptions): { stack: Stack; api: ReturnType<typeof clientFor> } {
  const ctx = {} as { stack: Stack; api: ReturnType<typeof clientFor> };
  before(async () => {
    ctx.stack = await startStack(options);
    ctx.api = clientFor(ctx.stack);
  });
  after(() => ctx.stack.close());
  return ctx;
}
