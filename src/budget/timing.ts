import { performance } from 'node:perf_hooks';

/**
 * Calls `fn` once `performance.now()` has reached `target`, never earlier.
 * setTimeout may fire up to ~1 ms early relative to real time (libuv caches the
 * loop clock and works in whole ms), so re-arm until the target has passed.
 * Returns a cancel function.
 */
export function runAt(target: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const tick = (): void => {
    if (cancelled) return;
    const rest = target - performance.now();
    if (rest <= 0) {
      timer = undefined;
      fn();
      return;
    }
    timer = setTimeout(tick, Math.ceil(rest));
  };
  tick();
  return () => {
    cancelled = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}

/** Abortable sleep: resolves after `ms`, rejects with the signal's reason on abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = runAt(performance.now() + ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
