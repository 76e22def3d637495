/**
 * Where Redis's clock stands against this process's (performance.now()), so that a slot reserved
 * on Redis's clock can be met on ours.
 *
 * One round trip alone only says that Redis read its clock somewhere between sending the command
 * and reading the reply; on a busy event loop the reply may sit unread for milliseconds, and a
 * caller that waits from the reply's arrival starts late by that much. Every reply narrows the
 * offset (Redis − local) to [redisNow − receivedAt, redisNow − sentAt]; the intersection over the
 * recent ones is as narrow as the quickest of them (the idea of NTP's best-round-trip filter).
 * Rates drift little over `horizonMs`; a stepped clock (an empty intersection) starts afresh.
 */
export interface OffsetBounds {
  /** Redis's clock minus ours, in ms: at least `low`, at most `high`. */
  low: number;
  high: number;
}

interface Sample extends OffsetBounds {
  /** performance.now() when the reply was read. */
  at: number;
}

export class RedisClock {
  private samples: Sample[] = [];

  constructor(
    private readonly horizonMs = 10_000,
    private readonly maxSamples = 64,
  ) {}

  /** Notes a round trip: sent and read at these performance.now() times, Redis's clock read `redisNowMs`. Returns the bounds now known. */
  observe(sentAt: number, receivedAt: number, redisNowMs: number): OffsetBounds {
    const sample = { low: redisNowMs - receivedAt, high: redisNowMs - sentAt, at: receivedAt };
    this.samples = this.samples.filter((s) => receivedAt - s.at <= this.horizonMs).slice(-(this.maxSamples - 1));
    this.samples.push(sample);
    let low = -Infinity;
    let high = Infinity;
    for (const s of this.samples) {
      low = Math.max(low, s.low);
      high = Math.min(high, s.high);
    }
    if (low > high) {
      // A clock was stepped: what was known no longer holds.
      this.samples = [sample];
      return { low: sample.low, high: sample.high };
    }
    return { low, high };
  }
}
