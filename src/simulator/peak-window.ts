/**
 * The largest number of timestamps (ms) that fall in any half-open window [t, t + windowMs).
 * Used by benchmarks to check that calls never exceeded Alibaba's QPS in any sliding second.
 */
export function peakInWindow(times: readonly number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}
