/**
 * How late this process's calls reach the wire after their slot: the dispatch delay (the timer
 * waking late on a busy event loop or a descheduled process, the work between the wake and the
 * socket write, a reply from Redis read late). Each reservation promises a bound on it, and the
 * margin it adds to the window is that bound plus the network allowance; a caller that cannot keep
 * the promise gives its slot back instead of sending late.
 *
 * Which bound: every ms of bound widens every reservation's hold by 1 ms, while each call later
 * than the bound wastes a whole slot (a window's worth of one call's share). Over the last
 * `samples` delays measured here (late wakes included), the bound promised is the one with the
 * least expected waste, b + windowMs × P(next delay > b). Of n delays, a next one exceeds the one
 * with k above it with probability (k + 1) / (n + 1), which keeps a short history from promising
 * too little. The result: the largest delay when they are all alike, the bulk of them when a rare
 * spike (a GC pause, the process descheduled) sits far above it.
 */
export interface DispatchDelayOptions {
  /** How many recent delays the bound is chosen from. */
  samples: number;
  /** The bound before anything was measured (ms). */
  initialMs: number;
  /** Lower bound of the promise (ms): below it a timer's own granularity makes callers give slots back. */
  minMs: number;
  /** Upper bound (ms): a process slower than this gives its slots back rather than widen every margin more. */
  maxMs: number;
  /** What a slot given back wastes, in ms of hold (the window). */
  windowMs: number;
}

export const DEFAULT_DISPATCH_DELAY: DispatchDelayOptions = { samples: 64, initialMs: 20, minMs: 5, maxMs: 200, windowMs: 1000 };

export class DispatchDelays {
  private readonly recent: number[] = [];
  private next = 0;
  private bound: number;

  constructor(private readonly opts: DispatchDelayOptions = DEFAULT_DISPATCH_DELAY) {
    const { samples, initialMs, minMs, maxMs, windowMs } = opts;
    if (!Number.isInteger(samples) || samples < 1) throw new TypeError('samples must be a positive integer');
    for (const [name, v] of Object.entries({ initialMs, minMs, maxMs, windowMs })) {
      if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a finite number >= 0`);
    }
    if (minMs > maxMs) throw new TypeError('minMs must not exceed maxMs');
    this.bound = this.clamp(initialMs);
  }

  /** Notes one measured delay (ms). */
  record(delayMs: number): void {
    if (!Number.isFinite(delayMs)) return;
    const value = Math.max(0, delayMs);
    if (this.recent.length < this.opts.samples) this.recent.push(value);
    else this.recent[this.next] = value;
    this.next = (this.next + 1) % this.opts.samples;
    this.bound = this.clamp(this.leastWaste());
  }

  /** The dispatch delay the next reservation promises not to exceed (ms). */
  boundMs(): number {
    return this.bound;
  }

  private leastWaste(): number {
    const sorted = [...this.recent].sort((a, b) => a - b);
    const n = sorted.length;
    const wasteOf = (i: number) => sorted[i]! + (this.opts.windowMs * (n - i)) / (n + 1); // n - 1 - i above it
    let best = sorted[n - 1]!;
    let bestWaste = wasteOf(n - 1);
    for (let i = n - 2; i >= 0; i--) {
      if (sorted[i] === sorted[i + 1]) continue; // the same bound as the larger tie
      const waste = wasteOf(i);
      if (waste < bestWaste) {
        best = sorted[i]!;
        bestWaste = waste;
      }
    }
    return best;
  }

  private clamp(ms: number): number {
    return Math.min(this.opts.maxMs, Math.max(this.opts.minMs, ms));
  }
}
