/**
 * How late this process's calls reach the wire after their slot: the dispatch delay (the timer
 * waking late on a busy event loop, the work between the wake and the socket write, a reply from
 * Redis read late). Each reservation promises a bound on it, and the margin it adds to the window
 * is that bound plus the network allowance; a caller that cannot keep the promise gives its slot
 * back instead of sending late.
 *
 * The bound promised is the largest of the last `samples` delays measured here: a spike widens the
 * next reservations' margins at once, and they narrow again once the spike has left the window.
 */
export interface DispatchDelayOptions {
  /** How many recent delays the bound looks at. */
  samples: number;
  /** The bound before anything was measured (ms). */
  initialMs: number;
  /** Lower bound of the promise (ms): below it a timer's own granularity makes callers give slots back. */
  minMs: number;
  /** Upper bound (ms): a process slower than this gives its slots back rather than widen every margin more. */
  maxMs: number;
}

export const DEFAULT_DISPATCH_DELAY: DispatchDelayOptions = { samples: 32, initialMs: 20, minMs: 1, maxMs: 200 };

export class DispatchDelays {
  private readonly recent: number[] = [];
  private next = 0;

  constructor(private readonly opts: DispatchDelayOptions = DEFAULT_DISPATCH_DELAY) {
    const { samples, initialMs, minMs, maxMs } = opts;
    if (!Number.isInteger(samples) || samples < 1) throw new TypeError('samples must be a positive integer');
    for (const [name, v] of Object.entries({ initialMs, minMs, maxMs })) {
      if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a finite number >= 0`);
    }
    if (minMs > maxMs) throw new TypeError('minMs must not exceed maxMs');
  }

  /** Notes one measured delay (ms). */
  record(delayMs: number): void {
    if (!Number.isFinite(delayMs)) return;
    const value = Math.max(0, delayMs);
    if (this.recent.length < this.opts.samples) this.recent.push(value);
    else this.recent[this.next] = value;
    this.next = (this.next + 1) % this.opts.samples;
  }

  /** The dispatch delay the next reservation promises not to exceed (ms). */
  boundMs(): number {
    const seen = this.recent.length === 0 ? this.opts.initialMs : Math.max(...this.recent);
    return Math.min(this.opts.maxMs, Math.max(this.opts.minMs, seen));
  }
}
