import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BudgetExhaustedError, type QpsBudget } from '../../src/budget/index.js';
import { peakInWindow } from '../../src/simulator/peak-window.js';

/**
 * The budget's exactness under contention, shared by the tests on one Redis and on a Cluster: each
 * instance offers 25 acquires a second for 3 s (75/s in all: 7.5 × N); no sliding second may hold more
 * than N starts, and the budget must still grant about N a second.
 */
export async function assertExactUnderOverload(t: TestContext, budgets: QpsBudget[], n: number): Promise<void> {
  const starts: number[] = [];
  const failures: unknown[] = [];
  let exhausted = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const runFor = 3000;
  await Promise.all(
    budgets.map(async (budget) => {
      while (performance.now() - t0 < runFor) {
        pending.push(
          budget.acquire('Initialize').then(
            () => void starts.push(performance.now()),
            (err: unknown) => (err instanceof BudgetExhaustedError ? void exhausted++ : void failures.push(err)),
          ),
        );
        await sleep(40);
      }
    }),
  );
  await Promise.all(pending);
  assert.deepEqual(failures, []);
  assert.ok(exhausted > 0, 'the load should exceed the budget');
  const peak = peakInWindow(starts, 1000);
  const inRun = starts.filter((s) => s - t0 < runFor).length;
  t.diagnostic(`granted ${starts.length}, exhausted ${exhausted}, ${inRun} starts in ${runFor} ms, max in 1 s ${peak}`);
  assert.ok(peak <= n, `max starts in a 1 s window: ${peak}`);
  assert.ok(inRun >= 0.9 * n * (runFor / 1000), `only ${inRun} starts in ${runFor} ms`);
}
